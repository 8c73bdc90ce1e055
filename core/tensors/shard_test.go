package tensors

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// entries names the sizes a, b, c, ... in order.
func entries(sizes ...int64) []ShardEntry {
	es := make([]ShardEntry, len(sizes))
	for i, s := range sizes {
		es[i] = ShardEntry{Name: string(rune('a' + i)), Size: s}
	}
	return es
}

func TestPlanShards(t *testing.T) {
	// The expected shards were produced by huggingface_hub's
	// split_state_dict_into_shards_factory (Python 3.11, the function body
	// of src/huggingface_hub/serialization/_base.py) with
	// filename_pattern "diffusion_pytorch_model.fp16{suffix}.safetensors"
	// and the sizes as tensor sizes. The empty case differs on purpose.
	type shard struct {
		suffix  string // file name minus "diffusion_pytorch_model.fp16"
		tensors string // tensor names, one letter each
		size    int64
	}
	tests := []struct {
		name    string
		sizes   []int64
		max     int64
		sharded bool
		total   int64
		shards  []shard
	}{
		{"oversize tensor comes before the open shard", []int64{1, 9, 1}, 5, true, 11,
			[]shard{{"-00001-of-00002.safetensors", "b", 9}, {"-00002-of-00002.safetensors", "ac", 2}}},
		{"exact fit stays in one shard", []int64{2, 3}, 5, false, 5,
			[]shard{{".safetensors", "ab", 5}}},
		{"one over starts a new shard", []int64{2, 3, 1}, 5, true, 6,
			[]shard{{"-00001-of-00002.safetensors", "ab", 5}, {"-00002-of-00002.safetensors", "c", 1}}},
		{"zero-size tensors always fit", []int64{5, 0, 0}, 5, false, 5,
			[]shard{{".safetensors", "abc", 5}}},
		{"zero-size around an oversize tensor", []int64{0, 6, 0}, 5, true, 6,
			[]shard{{"-00001-of-00002.safetensors", "b", 6}, {"-00002-of-00002.safetensors", "ac", 0}}},
		{"only oversize tensors", []int64{6, 7}, 5, true, 13,
			[]shard{{"-00001-of-00002.safetensors", "a", 6}, {"-00002-of-00002.safetensors", "b", 7}}},
		{"one oversize tensor is not sharded", []int64{6}, 5, false, 6,
			[]shard{{".safetensors", "a", 6}}},
		{"empty model: one empty file (hub gives none)", nil, 5, false, 0,
			[]shard{{".safetensors", "", 0}}},
		{"no bin-packing", []int64{3, 3, 3, 3}, 6, true, 12,
			[]shard{{"-00001-of-00002.safetensors", "ab", 6}, {"-00002-of-00002.safetensors", "cd", 6}}},
		{"growing sizes", []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 10, true, 55,
			[]shard{
				{"-00001-of-00007.safetensors", "abcd", 10}, {"-00002-of-00007.safetensors", "e", 5},
				{"-00003-of-00007.safetensors", "f", 6}, {"-00004-of-00007.safetensors", "g", 7},
				{"-00005-of-00007.safetensors", "h", 8}, {"-00006-of-00007.safetensors", "i", 9},
				{"-00007-of-00007.safetensors", "j", 10},
			}},
		{"mixed", []int64{4, 1, 6, 1, 4, 2}, 5, true, 18,
			[]shard{
				{"-00001-of-00004.safetensors", "c", 6}, {"-00002-of-00004.safetensors", "ab", 5},
				{"-00003-of-00004.safetensors", "de", 5}, {"-00004-of-00004.safetensors", "f", 2},
			}},
		{"exactly max then zero", []int64{10, 0}, 10, false, 10,
			[]shard{{".safetensors", "ab", 10}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := PlanShards(entries(tt.sizes...), tt.max, "diffusion_pytorch_model", "fp16")
			require.NoError(t, err)
			assert.Equal(t, tt.sharded, plan.Sharded)
			assert.Equal(t, tt.total, plan.TotalSize)
			require.Len(t, plan.Shards, len(tt.shards))
			for i, want := range tt.shards {
				got := plan.Shards[i]
				assert.Equal(t, "diffusion_pytorch_model.fp16"+want.suffix, got.File)
				assert.Equal(t, strings.Join(strings.Split(want.tensors, ""), ","), strings.Join(got.Tensors, ","))
				assert.NotNil(t, got.Tensors)
				assert.Equal(t, want.size, got.Size)
			}
		})
	}
}

func TestPlanShardsNames(t *testing.T) {
	plan, err := PlanShards(entries(3, 3), 5, "model", "")
	require.NoError(t, err)
	assert.Equal(t, "model-00001-of-00002.safetensors", plan.Shards[0].File)
	assert.Equal(t, "model-00002-of-00002.safetensors", plan.Shards[1].File)

	plan, err = PlanShards(entries(3, 2), 5, "model", "")
	require.NoError(t, err)
	assert.Equal(t, "model.safetensors", plan.Shards[0].File)

	plan, err = PlanShards(entries(3, 2), 5, "diffusion_pytorch_model", "bf16")
	require.NoError(t, err)
	assert.Equal(t, "diffusion_pytorch_model.bf16.safetensors", plan.Shards[0].File)

	// Large real-world numbers: the default 10GB with SD3.5-Large's total.
	es := []ShardEntry{{"x", 9_000_000_000}, {"y", 1_000_000_000}, {"z", 6_292_561_536}}
	plan, err = PlanShards(es, DefaultMaxShardSize, "diffusion_pytorch_model", "")
	require.NoError(t, err)
	assert.Equal(t, int64(16_292_561_536), plan.TotalSize)
	assert.Equal(t, []Shard{
		{"diffusion_pytorch_model-00001-of-00002.safetensors", []string{"x", "y"}, 10_000_000_000},
		{"diffusion_pytorch_model-00002-of-00002.safetensors", []string{"z"}, 6_292_561_536},
	}, plan.Shards)
}

func TestPlanShardsMaxShards(t *testing.T) {
	es := make([]ShardEntry, MaxShards+1)
	for i := range es {
		es[i] = ShardEntry{Name: fmt.Sprint(i), Size: 1}
	}
	plan, err := PlanShards(es[:MaxShards], 1, "model", "")
	require.NoError(t, err)
	require.Len(t, plan.Shards, MaxShards)
	assert.Equal(t, "model-99999-of-99999.safetensors", plan.Shards[MaxShards-1].File)

	_, err = PlanShards(es, 1, "model", "")
	require.ErrorContains(t, err, "100000 shards is more than the 99999")
}

func TestPlanShardsErrors(t *testing.T) {
	tests := []struct {
		name     string
		es       []ShardEntry
		max      int64
		base, v  string
		msg      string
		sizeSent bool
	}{
		{"zero max", entries(1), 0, "model", "", "max shard size must be greater than zero, got 0", true},
		{"negative max", entries(1), -5, "model", "", "got -5", true},
		{"negative size", []ShardEntry{{"w", -1}}, 5, "model", "", `tensor "w" has a negative size -1`, false},
		{"duplicate", []ShardEntry{{"w", 1}, {"v", 1}, {"w", 1}}, 5, "model", "", `tensor "w" appears more than once`, false},
		{"overflow", []ShardEntry{{"w", math.MaxInt64}, {"v", 1}}, 5, "model", "", `total size overflows int64 at tensor "v"`, false},
		{"empty base", entries(1), 5, "", "", "empty base name", false},
		{"dotted base", entries(1), 5, "model.x", "", `base name "model.x" must not contain`, false},
		{"slash base", entries(1), 5, "a/model", "", "must not contain", false},
		{"backslash base", entries(1), 5, `a\model`, "", "must not contain", false},
		{"colon base", entries(1), 5, "c:model", "", "must not contain", false},
		{"shard-suffixed base", entries(1), 5, "model-00001-of-00002", "", "shard suffix", false},
		{"dotted variant", entries(1), 5, "model", "fp.16", `variant "fp.16" must not contain`, false},
		{"NUL variant", entries(1), 5, "model", "fp\x0016", "must not contain", false},
		{"shard-suffixed variant", entries(1), 5, "model", "fp16-00001-of-00002", "shard suffix", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := PlanShards(tt.es, tt.max, tt.base, tt.v)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.msg)
			assert.Equal(t, tt.sizeSent, errors.Is(err, ErrInvalidSize))
		})
	}
}

// hubSplit is a line-by-line port of huggingface_hub's
// split_state_dict_into_shards_factory (without shared storage), used as a
// differential reference for PlanShards.
func hubSplit(es []ShardEntry, max int64) (shards [][]string, total int64) {
	var current []string
	var currentSize int64
	for _, e := range es {
		if e.Size > max {
			total += e.Size
			shards = append(shards, []string{e.Name})
			continue
		}
		if currentSize+e.Size > max {
			shards = append(shards, current)
			current, currentSize = nil, 0
		}
		current = append(current, e.Name)
		currentSize += e.Size
		total += e.Size
	}
	if len(current) > 0 {
		shards = append(shards, current)
	}
	return shards, total
}

func TestPlanShardsMatchesHub(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for iter := range 5000 {
		n := 1 + r.IntN(40)
		max := int64(1 + r.IntN(20))
		es := make([]ShardEntry, n)
		for i := range es {
			size := int64(r.IntN(int(max) + 3)) // some oversize, some zero
			if r.IntN(8) == 0 {
				size = 0
			}
			es[i] = ShardEntry{Name: fmt.Sprintf("t%d", i), Size: size}
		}
		want, wantTotal := hubSplit(es, max)
		plan, err := PlanShards(es, max, "model", "")
		require.NoError(t, err)
		require.Equal(t, wantTotal, plan.TotalSize, "iter %d", iter)
		require.Len(t, plan.Shards, len(want), "iter %d", iter)
		require.Equal(t, len(want) > 1, plan.Sharded)
		seen := 0
		for i, s := range plan.Shards {
			require.Equal(t, want[i], s.Tensors, "iter %d shard %d", iter, i)
			var sum int64
			for _, name := range s.Tensors {
				for _, e := range es {
					if e.Name == name {
						sum += e.Size
					}
				}
			}
			require.Equal(t, sum, s.Size)
			if len(s.Tensors) > 1 {
				require.LessOrEqual(t, s.Size, max, "a shard of several tensors must fit")
			}
			seen += len(s.Tensors)
		}
		require.Equal(t, n, seen)
	}
}

func TestShardPlanIndex(t *testing.T) {
	plan, err := PlanShards(entries(1, 9, 1), 5, "diffusion_pytorch_model", "fp16")
	require.NoError(t, err)
	ix := plan.Index()
	assert.Equal(t, int64(11), ix.TotalSize)
	assert.Equal(t, map[string]string{
		"a": "diffusion_pytorch_model.fp16-00002-of-00002.safetensors",
		"b": "diffusion_pytorch_model.fp16-00001-of-00002.safetensors",
		"c": "diffusion_pytorch_model.fp16-00002-of-00002.safetensors",
	}, ix.WeightMap)
	assert.Equal(t, []string{
		"diffusion_pytorch_model.fp16-00001-of-00002.safetensors",
		"diffusion_pytorch_model.fp16-00002-of-00002.safetensors",
	}, ix.Shards())
	require.NoError(t, ix.Validate())
	assert.Equal(t, "diffusion_pytorch_model.safetensors.index.fp16.json", IndexFileName("diffusion_pytorch_model", "fp16"))
}

func TestFileNames(t *testing.T) {
	assert.Equal(t, "diffusion_pytorch_model.safetensors", WeightsFileName("diffusion_pytorch_model", ""))
	assert.Equal(t, "diffusion_pytorch_model.fp16.safetensors", WeightsFileName("diffusion_pytorch_model", "fp16"))
	assert.Equal(t, "model.fp16.safetensors", WeightsFileName("model", "fp16"))
	assert.Equal(t, "diffusion_pytorch_model.non_ema.safetensors", WeightsFileName("diffusion_pytorch_model", "non_ema"))

	assert.Equal(t, "model-00001-of-00002.safetensors", ShardFileName("model", "", 1, 2))
	assert.Equal(t, "diffusion_pytorch_model-00003-of-00003.safetensors", ShardFileName("diffusion_pytorch_model", "", 3, 3))
	assert.Equal(t, "diffusion_pytorch_model.fp16-00001-of-00002.safetensors", ShardFileName("diffusion_pytorch_model", "fp16", 1, 2))
	assert.Equal(t, "model.fp16-00001-of-00002.safetensors", ShardFileName("model", "fp16", 1, 2))
	assert.Equal(t, "model-00012-of-00345.safetensors", ShardFileName("model", "", 12, 345))

	assert.Equal(t, "diffusion_pytorch_model.safetensors.index.json", IndexFileName("diffusion_pytorch_model", ""))
	assert.Equal(t, "model.safetensors.index.json", IndexFileName("model", ""))
	assert.Equal(t, "model.safetensors.index.fp16.json", IndexFileName("model", "fp16"))
}

func TestParseWeightsFileName(t *testing.T) {
	type W = WeightsName
	tests := []struct {
		in   string
		want W
		ok   bool
	}{
		// Real names (diffusers-format facts, fixture folders, diffusers tests).
		{"diffusion_pytorch_model.safetensors", W{Base: "diffusion_pytorch_model", Ext: "safetensors"}, true},
		{"diffusion_pytorch_model.bin", W{Base: "diffusion_pytorch_model", Ext: "bin"}, true},
		{"diffusion_pytorch_model.fp16.safetensors", W{Base: "diffusion_pytorch_model", Variant: "fp16", Ext: "safetensors"}, true},
		{"diffusion_pytorch_model.fp16.bin", W{Base: "diffusion_pytorch_model", Variant: "fp16", Ext: "bin"}, true},
		{"diffusion_pytorch_model.non_ema.safetensors", W{Base: "diffusion_pytorch_model", Variant: "non_ema", Ext: "safetensors"}, true},
		{"diffusion_pytorch_model.non_ema.bin", W{Base: "diffusion_pytorch_model", Variant: "non_ema", Ext: "bin"}, true},
		{"model.safetensors", W{Base: "model", Ext: "safetensors"}, true},
		{"model.fp16.safetensors", W{Base: "model", Variant: "fp16", Ext: "safetensors"}, true},
		{"pytorch_model.bin", W{Base: "pytorch_model", Ext: "bin"}, true},
		{"pytorch_model.fp16.bin", W{Base: "pytorch_model", Variant: "fp16", Ext: "bin"}, true},
		{"model-00001-of-00002.safetensors", W{Base: "model", Ext: "safetensors", Shard: 1, Of: 2}, true},
		{"text_encoder_2/model-00001-of-00002.safetensors", W{Base: "model", Ext: "safetensors", Shard: 1, Of: 2}, true},
		{"text_encoder_2/model-00002-of-00002.safetensors", W{Base: "model", Ext: "safetensors", Shard: 2, Of: 2}, true},
		{"diffusion_pytorch_model-00001-of-00002.safetensors", W{Base: "diffusion_pytorch_model", Ext: "safetensors", Shard: 1, Of: 2}, true},
		{"diffusion_pytorch_model.fp16-00001-of-00002.safetensors", W{Base: "diffusion_pytorch_model", Variant: "fp16", Ext: "safetensors", Shard: 1, Of: 2}, true},
		{"diffusion_pytorch_model.fp16-00003-of-00003.safetensors", W{Base: "diffusion_pytorch_model", Variant: "fp16", Ext: "safetensors", Shard: 3, Of: 3}, true},
		{"unet/diffusion_pytorch_model.fp16-00001-of-00002.safetensors", W{Base: "diffusion_pytorch_model", Variant: "fp16", Ext: "safetensors", Shard: 1, Of: 2}, true},
		{"text_encoder/model.fp16-00001-of-00002.safetensors", W{Base: "model", Variant: "fp16", Ext: "safetensors", Shard: 1, Of: 2}, true},
		{"pytorch_model-00001-of-00002.bin", W{Base: "pytorch_model", Ext: "bin", Shard: 1, Of: 2}, true},
		{"diffusion_pytorch_model-00001-of-00002.fp16.safetensors", W{Base: "diffusion_pytorch_model", Variant: "fp16", Ext: "safetensors", Shard: 1, Of: 2, Legacy: true}, true},
		{"pytorch_model-00002-of-00002.fp16.bin", W{Base: "pytorch_model", Variant: "fp16", Ext: "bin", Shard: 2, Of: 2, Legacy: true}, true},
		{`C:\models\unet\diffusion_pytorch_model.safetensors`, W{Base: "diffusion_pytorch_model", Ext: "safetensors"}, true},
		// Other bases are taken apart too; the caller checks the base.
		{"v1-5-pruned-emaonly.safetensors", W{Base: "v1-5-pruned-emaonly", Ext: "safetensors"}, true},
		{"pytorch_lora_weights.safetensors", W{Base: "pytorch_lora_weights", Ext: "safetensors"}, true},
		// Numbers are not range-checked (like the loaders' \d{5}).
		{"model-00000-of-00000.safetensors", W{}, false},
		{"model-00000-of-00002.safetensors", W{}, false},
		{"model-00001-of-00000.safetensors", W{}, false},
		{"model.fp16-00000-of-00002.safetensors", W{}, false},
		{"model-00000-of-00002.fp16.safetensors", W{}, false},
		{"model-00003-of-00002.safetensors", W{Base: "model", Ext: "safetensors", Shard: 3, Of: 2}, true},

		{"diffusion_pytorch_model.safetensors.index.json", W{}, false},
		{"model.safetensors.index.fp16.json", W{}, false},
		{"diffusion_flax_model.msgpack", W{}, false},
		{"model.onnx", W{}, false},
		{"model.onnx_data", W{}, false},
		{"openvino_model.xml", W{}, false},
		{"config.json", W{}, false},
		{"LICENSE", W{}, false},
		{"safetensors", W{}, false},
		{".safetensors", W{}, false},
		{"model..safetensors", W{}, false},
		{"model.fp16.x.safetensors", W{}, false},
		{"model.SAFETENSORS", W{}, false},
		{"model.safetensors.pointer", W{}, false},
		{"-00001-of-00002.safetensors", W{}, false},
		{"model.-00001-of-00002.safetensors", W{}, false},
		{"model-1-of-2.safetensors", W{Base: "model-1-of-2", Ext: "safetensors"}, true},
		{"model-000001-of-000002.safetensors", W{Base: "model-000001-of-000002", Ext: "safetensors"}, true},
		{"model-00001-of-00002.fp16-00001-of-00002.safetensors", W{}, false},
		{"model-00001-of-00002.-00001-of-00002.safetensors", W{}, false},
		{"unet/", W{}, false},
		{"", W{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			w, ok := ParseWeightsFileName(tt.in)
			assert.Equal(t, tt.ok, ok)
			assert.Equal(t, tt.want, w)
			assert.Equal(t, tt.want.Of > 0, w.Sharded())
		})
	}
}

func TestParseWeightsFileNameRoundTrip(t *testing.T) {
	for _, base := range []string{"diffusion_pytorch_model", "model", "pytorch_model", "weights"} {
		for _, v := range []string{"", "fp16", "bf16", "non_ema", "ema"} {
			w, ok := ParseWeightsFileName(WeightsFileName(base, v))
			require.True(t, ok)
			assert.Equal(t, WeightsName{Base: base, Variant: v, Ext: "safetensors"}, w)
			for _, n := range []int{2, 3, 17} {
				for i := 1; i <= n; i++ {
					w, ok := ParseWeightsFileName(ShardFileName(base, v, i, n))
					require.True(t, ok)
					assert.Equal(t, WeightsName{Base: base, Variant: v, Ext: "safetensors", Shard: i, Of: n}, w)
				}
			}
			ix, ok := ParseIndexFileName(IndexFileName(base, v))
			require.True(t, ok)
			assert.Equal(t, IndexName{Base: base, Variant: v, Ext: "safetensors"}, ix)
		}
	}
}

func TestParseIndexFileName(t *testing.T) {
	type I = IndexName
	tests := []struct {
		in   string
		want I
		ok   bool
	}{
		{"diffusion_pytorch_model.safetensors.index.json", I{Base: "diffusion_pytorch_model", Ext: "safetensors"}, true},
		{"transformer/diffusion_pytorch_model.safetensors.index.json", I{Base: "diffusion_pytorch_model", Ext: "safetensors"}, true},
		{"diffusion_pytorch_model.bin.index.json", I{Base: "diffusion_pytorch_model", Ext: "bin"}, true},
		{"diffusion_pytorch_model.safetensors.index.fp16.json", I{Base: "diffusion_pytorch_model", Variant: "fp16", Ext: "safetensors"}, true},
		{"diffusion_pytorch_model.bin.index.fp16.json", I{Base: "diffusion_pytorch_model", Variant: "fp16", Ext: "bin"}, true},
		{"text_encoder_2/model.safetensors.index.json", I{Base: "model", Ext: "safetensors"}, true},
		{"model.safetensors.index.fp16.json", I{Base: "model", Variant: "fp16", Ext: "safetensors"}, true},
		{"pytorch_model.bin.index.json", I{Base: "pytorch_model", Ext: "bin"}, true},
		{"diffusion_pytorch_model.safetensors.fp16.index.json", I{Base: "diffusion_pytorch_model", Variant: "fp16", Ext: "safetensors", Legacy: true}, true},
		{"diffusion_pytorch_model.bin.fp16.index.json", I{Base: "diffusion_pytorch_model", Variant: "fp16", Ext: "bin", Legacy: true}, true},

		{"diffusion_pytorch_model.safetensors", I{}, false},
		{"model.fp16.safetensors", I{}, false},
		{"model_index.json", I{}, false},
		{"config.json", I{}, false},
		{"model.onnx.index.json", I{}, false},
		{"model.safetensors.index", I{}, false},
		{".safetensors.index.json", I{}, false},
		{"model.safetensors.index..json", I{}, false},
		{"model.safetensors..index.json", I{}, false},
		{"model.safetensors.index.index.json", I{}, false},
		{"model.safetensors.index.fp16.x.json", I{}, false},
		{"model.fp16.safetensors.index.json", I{}, false},
		{"", I{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			ix, ok := ParseIndexFileName(tt.in)
			assert.Equal(t, tt.ok, ok)
			assert.Equal(t, tt.want, ix)
		})
	}
}
