package pipeline

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/pipeline/pipelinetest"
	"modelpub/core/tensors"
)

// openSD15 writes a synthetic SD-1.5 pipeline with opts (Scale 0.001
// unless set) and opens it.
func openSD15(t *testing.T, opts pipelinetest.Options) *Pipeline {
	t.Helper()
	if opts.Scale == 0 {
		opts.Scale = 0.001
	}
	dir := filepath.Join(t.TempDir(), "sd15")
	_, err := pipelinetest.WriteSD15(context.Background(), dir, opts)
	require.NoError(t, err)
	p, err := Open(context.Background(), dir)
	require.NoError(t, err)
	return p
}

// writtenWeights lists the weights files and indexes of a component folder
// with their sizes.
func writtenWeights(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	out := map[string]int64{}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".safetensors") || strings.Contains(e.Name(), ".safetensors.index") {
			st, err := e.Info()
			require.NoError(t, err)
			out[e.Name()] = st.Size()
		}
	}
	return out
}

// plannedWeights lists the files and indexes of a component plan with their
// sizes.
func plannedWeights(cp *ComponentPlan) map[string]int64 {
	out := map[string]int64{}
	for _, sp := range cp.Sets {
		for _, f := range sp.Files {
			out[f.Name] = f.Size
		}
		if sp.Index != "" {
			out[sp.Index] = sp.IndexSize
		}
	}
	return out
}

// TestPlanEqualsSave checks the plan against what Save writes: the same
// files, byte for byte the same sizes, the same tensors at the same offsets.
func TestPlanEqualsSave(t *testing.T) {
	sd15 := openSD15(t, pipelinetest.Options{Seed: 3, FP16Variant: []string{"vae"}})
	withNonEMA := func() *Pipeline { // a unet with fp16 and non_ema variants, text encoder as .bin beside
		src := materialize(t, "sd15", synthetic)
		p, err := Open(context.Background(), src)
		require.NoError(t, err)
		return p
	}()
	tests := []struct {
		name     string
		p        *Pipeline
		maxShard int64
		variant  string
	}{
		{"defaults", sd15, 0, ""},
		{"1MB", sd15, 1_000_000, ""},
		{"1MB fp16", sd15, 1_000_000, "fp16"},
		{"300KB bf16", sd15, 300_000, "bf16"},
		{"every tensor its own shard", sd15, 1, ""},
		{"carried variants", withNonEMA, 20, ""},
		{"carried variants, fp16 generated", withNonEMA, 0, "fp16"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := SaveOptions{MaxShardSize: tt.maxShard, Variant: tt.variant}
			plan, err := Plan(tt.p, opts)
			require.NoError(t, err)
			dst := filepath.Join(t.TempDir(), "out")
			res, err := Save(context.Background(), tt.p, dst, opts)
			require.NoError(t, err)
			assert.Equal(t, plan.Total(), res.Bytes, "the plan counts every byte Save writes")

			var sum int64
			for i := range plan.Components {
				cp := &plan.Components[i]
				dir := filepath.Join(dst, cp.Name)
				assert.Equal(t, writtenWeights(t, dir), plannedWeights(cp), cp.Name)
				for _, sp := range cp.Sets {
					for _, f := range sp.Files {
						h, err := tensors.ReadHeaderFile(filepath.Join(dir, f.Name))
						require.NoError(t, err)
						require.Len(t, f.Tensors, len(h.Tensors), f.Name)
						for k, ht := range h.Tensors {
							want := PlannedTensor{Name: ht.Name, DType: ht.DType, Shape: ht.Shape, Offset: h.DataStart + ht.Begin, Bytes: ht.Size()}
							require.Equal(t, want, f.Tensors[k], f.Name)
						}
					}
				}
				sum += cp.Bytes
			}
			assert.Equal(t, sum, plan.Bytes)
		})
	}
}

func TestPlanSets(t *testing.T) {
	p := openSD15(t, pipelinetest.Options{Seed: 1, FP16Variant: []string{"vae"}})
	plan, err := Plan(p, SaveOptions{})
	require.NoError(t, err)
	var names []string
	for _, cp := range plan.Components {
		names = append(names, cp.Name)
	}
	assert.Equal(t, []string{"text_encoder", "unet", "vae"}, names, "model components only, in model_index order")
	te, unet, vae := plan.Component("text_encoder"), plan.Component("unet"), plan.Component("vae")
	assert.Equal(t, TransformersMaxShardSize, te.MaxShardSize)
	assert.Equal(t, DiffusersMaxShardSize, unet.MaxShardSize)
	assert.Equal(t, "model", te.Base)
	require.Len(t, vae.Sets, 2, "the fp16 variant the folder has is carried")
	assert.Equal(t, "fp16", vae.Sets[1].Variant)
	assert.Zero(t, vae.Sets[1].To, "a carried variant is copied, not converted")

	plan, err = Plan(p, SaveOptions{MaxShardSize: 1_000_000, Variant: "bf16"})
	require.NoError(t, err)
	unet = plan.Component("unet")
	require.Len(t, unet.Sets, 1+1)
	assert.Equal(t, tensors.BF16, unet.Sets[1].To)
	assert.Equal(t, "diffusion_pytorch_model.safetensors.index.json", unet.Sets[0].Index)
	assert.Equal(t, "diffusion_pytorch_model.safetensors.index.bf16.json", unet.Sets[1].Index)
	assert.Less(t, len(unet.Sets[1].Files), len(unet.Sets[0].Files), "half the bytes, fewer shards")
	vae = plan.Component("vae")
	require.Len(t, vae.Sets, 3, "main, the bf16 generated, the fp16 carried")
	assert.Equal(t, []string{"", "bf16", "fp16"}, []string{vae.Sets[0].Variant, vae.Sets[1].Variant, vae.Sets[2].Variant})
	for _, f := range unet.Sets[1].Files {
		for _, pt := range f.Tensors {
			require.Equal(t, tensors.BF16, pt.DType, pt.Name)
		}
	}

	plan, err = Plan(p, SaveOptions{Variant: "fp16"})
	require.NoError(t, err)
	vae = plan.Component("vae")
	require.Len(t, vae.Sets, 2, "the fp16 the folder has is replaced by the one converted")
	assert.Equal(t, tensors.F16, vae.Sets[1].To)
}

func TestPlanErrors(t *testing.T) {
	p := openSD15(t, pipelinetest.Options{Seed: 1})
	_, err := Plan(p, SaveOptions{Variant: "fp8"})
	require.ErrorIs(t, err, ErrUnsupportedVariant)

	lp, err := Open(context.Background(), materialize(t, "sd15", lfs))
	require.NoError(t, err)
	_, err = Plan(lp, SaveOptions{})
	require.ErrorIs(t, err, ErrUnreadableWeights)
	assert.ErrorIs(t, err, ErrLFSPointer)
}

// TestCurrentLayout checks the folder's own layout, and that a folder Save
// wrote has the layout that was planned.
func TestCurrentLayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sd15")
	m, err := pipelinetest.WriteSD15(context.Background(), dir, pipelinetest.Options{Scale: 0.001, Seed: 2, MaxShardSize: 1_000_000})
	require.NoError(t, err)
	p, err := Open(context.Background(), dir)
	require.NoError(t, err)

	unet := p.Component("unet")
	assert.Equal(t, []string{""}, CurrentVariants(unet))
	assert.Nil(t, CurrentLayout(unet, "fp16"))
	cur := CurrentLayout(unet, "")
	require.NotNil(t, cur)
	assert.Equal(t, "diffusion_pytorch_model.safetensors.index.json", cur.Index)
	var files []string
	var sum int64
	for _, f := range cur.Files {
		files = append(files, "unet/"+f.Name)
		h, err := tensors.ReadHeaderFile(filepath.Join(dir, "unet", f.Name))
		require.NoError(t, err)
		assert.Equal(t, h.FileSize, f.Size)
		require.Len(t, f.Tensors, len(h.Tensors))
		for k, ht := range h.Tensors {
			assert.Equal(t, h.DataStart+ht.Begin, f.Tensors[k].Offset, ht.Name)
		}
		sum += f.Size
	}
	assert.Equal(t, m.Components["unet"].WeightFiles, files)
	assert.Equal(t, sum+cur.IndexSize, cur.Bytes)

	opts := SaveOptions{MaxShardSize: 700_000, Variant: "fp16"}
	plan, err := Plan(p, opts)
	require.NoError(t, err)
	dst := filepath.Join(t.TempDir(), "out")
	_, err = Save(context.Background(), p, dst, opts)
	require.NoError(t, err)
	out, err := Open(context.Background(), dst)
	require.NoError(t, err)
	for _, cp := range plan.Components {
		c := out.Component(cp.Name)
		require.Len(t, CurrentVariants(c), len(cp.Sets), cp.Name)
		for _, sp := range cp.Sets {
			got := CurrentLayout(c, sp.Variant)
			require.NotNil(t, got, cp.Name+" "+sp.Variant)
			assert.Equal(t, sp.Files, got.Files, cp.Name+" "+sp.Variant)
			assert.Equal(t, sp.Index, got.Index)
			assert.Equal(t, sp.IndexSize, got.IndexSize)
			assert.Equal(t, sp.Bytes, got.Bytes)
		}
	}
}

// TestPlanIsFast keeps re-planning fit for every keystroke: 686 UNet
// tensors (the real SD-1.5 list) in one shard per tensor.
func TestPlanIsFast(t *testing.T) {
	p := openSD15(t, pipelinetest.Options{Seed: 1})
	start := time.Now()
	plan, err := Plan(p, SaveOptions{MaxShardSize: 1, Variant: "fp16"})
	require.NoError(t, err)
	assert.Len(t, plan.Component("unet").Sets[0].Files, 686)
	assert.Less(t, time.Since(start), 2*time.Second)
	assert.True(t, slices.IsSortedFunc(plan.Component("unet").Sets[0].Files, func(a, b PlannedFile) int { return strings.Compare(a.Name, b.Name) }))
}

// BenchmarkPlan plans the SD-1.5 tensor list (the names and counts of the
// real model) at a 1 MB limit with an fp16 variant, as the shard map does
// on every change.
func BenchmarkPlan(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "sd15")
	_, err := pipelinetest.WriteSD15(context.Background(), dir, pipelinetest.Options{Scale: 0.001, Seed: 1})
	require.NoError(b, err)
	p, err := Open(context.Background(), dir)
	require.NoError(b, err)
	for b.Loop() {
		if _, err := Plan(p, SaveOptions{MaxShardSize: 1_000_000, Variant: "fp16"}); err != nil {
			b.Fatal(err)
		}
	}
}
