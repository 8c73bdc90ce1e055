package pipelinetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"maps"
	"math"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/tensors"
)

const testScale = 0.001

func write(t *testing.T, opts Options) *Manifest {
	t.Helper()
	m, err := WriteSD15(context.Background(), t.TempDir(), opts)
	require.NoError(t, err)
	return m
}

// listFiles returns every file under dir as a sorted slash path.
func listFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		out = append(out, filepath.ToSlash(rel))
		return err
	}))
	slices.Sort(out)
	return out
}

// readTensor returns the data of one tensor of a safetensors file.
func readTensor(t *testing.T, file, name string) (tensors.TensorInfo, []byte) {
	t.Helper()
	f, err := tensors.Open(file)
	require.NoError(t, err)
	defer f.Close()
	info, ok := f.Header.Tensor(name)
	require.True(t, ok, "%s: no %s", file, name)
	var b bytes.Buffer
	require.NoError(t, f.TensorSource(info).CopyTo(context.Background(), &b))
	return info, b.Bytes()
}

func embedded(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := files.ReadFile("sd15/" + rel)
	require.NoError(t, err)
	return b
}

func TestWriteSD15Small(t *testing.T) {
	m := write(t, Options{Scale: testScale, Seed: 1})
	assert.Equal(t, []string{
		"feature_extractor/preprocessor_config.json",
		"model_index.json",
		"scheduler/scheduler_config.json",
		"text_encoder/config.json",
		"text_encoder/model.safetensors",
		"tokenizer/merges.txt",
		"tokenizer/special_tokens_map.json",
		"tokenizer/tokenizer_config.json",
		"tokenizer/vocab.json",
		"unet/config.json",
		"unet/diffusion_pytorch_model.safetensors",
		"vae/config.json",
		"vae/diffusion_pytorch_model.safetensors",
	}, m.Files)
	assert.Equal(t, m.Files, listFiles(t, m.Dir))
	assert.NotContains(t, m.Components, SafetyChecker)

	var total int64
	for _, rel := range m.Files {
		data, err := os.ReadFile(filepath.Join(m.Dir, rel))
		require.NoError(t, err)
		total += int64(len(data))
		switch {
		case rel == "model_index.json":
			want, err := modelIndexWithoutSafetyChecker(embedded(t, rel))
			require.NoError(t, err)
			assert.Equal(t, string(want), string(data))
		case !strings.HasSuffix(rel, ".safetensors"):
			assert.Equal(t, embedded(t, rel), data, "%s is written byte for byte", rel)
		}
	}
	assert.Equal(t, total, m.Bytes)
	t.Logf("scale %g: %d files, %d bytes", testScale, len(m.Files), m.Bytes)
	assert.Less(t, m.Bytes, int64(10<<20), "a few MB")

	var compBytes int64
	for name, c := range m.Components {
		assert.Equal(t, name, c.Name)
		for _, rel := range c.Files {
			assert.True(t, strings.HasPrefix(rel, name+"/"), rel)
			st, err := os.Stat(filepath.Join(m.Dir, rel))
			require.NoError(t, err)
			compBytes += st.Size()
		}
	}
	st, err := os.Stat(filepath.Join(m.Dir, "model_index.json"))
	require.NoError(t, err)
	assert.Equal(t, m.Bytes, compBytes+st.Size(), "every file but model_index.json is in a component")

	for _, comp := range []string{UNet, TextEncoder, VAE} {
		c := m.Components[comp]
		specs := SD15TensorSpecs(comp, testScale)
		assert.Equal(t, specs, c.Specs)
		require.Len(t, c.Tensors, len(specs))
		assert.Equal(t, Parameters(specs), c.Parameters)
		assert.Equal(t, DataBytes(specs), c.DataBytes)
		file := path.Join(comp, WeightsBase(comp)+".safetensors")
		assert.Equal(t, []string{file}, c.WeightFiles)
		assert.Empty(t, c.IndexFile)
		assert.Empty(t, c.VariantFiles)
		assert.Equal(t, []string{path.Join(comp, "config.json"), file}, c.Files)

		h, err := tensors.ReadHeaderFile(filepath.Join(m.Dir, file))
		require.NoError(t, err)
		assert.Equal(t, tensors.Metadata{{Key: "format", Value: "pt"}}, h.Metadata)
		assert.Equal(t, c.DataBytes, h.DataSize())
		require.Len(t, h.Tensors, len(specs))
		for i, s := range specs {
			assert.Equal(t, s.Name, c.Tensors[i])
			info, ok := h.Tensor(s.Name)
			if assert.True(t, ok, "%s: %s", comp, s.Name) {
				assert.Equal(t, s.DType, info.DType, s.Name)
				assert.Equal(t, s.Shape, info.Shape, s.Name)
			}
		}
	}
}

func TestModelIndex(t *testing.T) {
	// WriteSD15 writes this (TestWriteSD15Small) when the safety checker
	// is left out, and the real file (TestWriteSD15Variants) otherwise.
	got, err := modelIndexWithoutSafetyChecker(embedded(t, "model_index.json"))
	require.NoError(t, err)
	want := `{
  "_class_name": "StableDiffusionPipeline",
  "_diffusers_version": "0.6.0",
  "feature_extractor": [
    "transformers",
    "CLIPImageProcessor"
  ],
  "requires_safety_checker": true,
  "safety_checker": [
    null,
    null
  ],
  "scheduler": [
    "diffusers",
    "PNDMScheduler"
  ],
  "text_encoder": [
    "transformers",
    "CLIPTextModel"
  ],
  "tokenizer": [
    "transformers",
    "CLIPTokenizer"
  ],
  "unet": [
    "diffusers",
    "UNet2DConditionModel"
  ],
  "vae": [
    "diffusers",
    "AutoencoderKL"
  ]
}
`
	assert.Equal(t, want, string(got))
}

// hashes returns the sha256 of every file under dir.
func hashes(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	for _, rel := range listFiles(t, dir) {
		data, err := os.ReadFile(filepath.Join(dir, rel))
		require.NoError(t, err)
		out[rel] = sha256.Sum256(data)
	}
	return out
}

func TestWriteSD15Deterministic(t *testing.T) {
	opts := Options{Scale: testScale, Seed: 7, FP16Variant: []string{VAE}}
	a := hashes(t, write(t, opts).Dir)
	b := hashes(t, write(t, opts).Dir)
	assert.Equal(t, a, b, "the same options give the same bytes")

	opts.Seed = 8
	c := hashes(t, write(t, opts).Dir)
	require.Equal(t, slices.Sorted(maps.Keys(a)), slices.Sorted(maps.Keys(c)))
	for rel, h := range a {
		if strings.HasSuffix(rel, ".safetensors") {
			assert.NotEqual(t, h, c[rel], "%s: another seed gives other values", rel)
		} else {
			assert.Equal(t, h, c[rel], rel)
		}
	}
}

// f16Stats converts a tensor's F32 data to F16 and counts what is lost.
func f16Stats(data []byte) tensors.ConvStats {
	return tensors.ConvertF32ToF16(make([]byte, len(data)/2), data)
}

func TestWriteSD15Values(t *testing.T) {
	m := write(t, Options{Scale: testScale, Seed: 3, SafetyChecker: true})
	for _, comp := range WeightComponents {
		file := filepath.Join(m.Dir, comp, WeightsBase(comp)+".safetensors")
		f, err := tensors.Open(file)
		require.NoError(t, err)
		for _, s := range m.Components[comp].Specs {
			info, _ := f.Header.Tensor(s.Name)
			var b bytes.Buffer
			require.NoError(t, f.TensorSource(info).CopyTo(context.Background(), &b))
			data := b.Bytes()
			switch s.Init {
			case InitPositionIDs:
				for i := range s.NumElements() {
					assert.Equal(t, uint64(i), binary.LittleEndian.Uint64(data[8*i:]), s.Name)
				}
				continue
			case InitFP16Unsafe:
				require.Equal(t, 4*len(FP16UnsafeValues), len(data))
				for i, v := range FP16UnsafeValues {
					assert.Equal(t, v, math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:])))
				}
				assert.Equal(t, tensors.ConvStats{Overflow: FP16Overflows, Underflow: FP16Underflows}, f16Stats(data))
				bf := tensors.ConvertF32ToBF16(make([]byte, len(data)/2), data)
				assert.Zero(t, bf, "bfloat16 holds them")
				continue
			}
			assert.Zero(t, f16Stats(data), "%s %s: only %s loses values in fp16", comp, s.Name, FP16UnsafeTensor)
			var sum, sq float64
			n := float64(len(data) / 4)
			for i := 0; i < len(data); i += 4 {
				v := float64(math.Float32frombits(binary.LittleEndian.Uint32(data[i:])))
				sum += v
				sq += v * v
			}
			mean := sum / n
			std := math.Sqrt(sq/n - mean*mean)
			if n < 1000 {
				continue
			}
			switch s.Init {
			case InitWeight:
				assert.InDelta(t, 0, mean, 0.002, s.Name)
				assert.InDelta(t, 0.02, std, 0.002, s.Name)
			case InitNormWeight:
				assert.InDelta(t, 1, mean, 0.002, s.Name)
			case InitBias, InitNormBias:
				assert.InDelta(t, 0.005, std, 0.001, s.Name)
			}
		}
		f.Close()
	}
}

func TestWriteSD15Variants(t *testing.T) {
	m := write(t, Options{Scale: testScale, Seed: 1, SafetyChecker: true, FP16Variant: []string{UNet, TextEncoder, SafetyChecker}})
	got, err := os.ReadFile(filepath.Join(m.Dir, "model_index.json"))
	require.NoError(t, err)
	assert.Equal(t, embedded(t, "model_index.json"), got, "with the safety checker: the real file")
	assert.Contains(t, m.Files, "safety_checker/config.json")
	assert.Contains(t, m.Files, "feature_extractor/preprocessor_config.json")
	assert.Equal(t, m.Files, listFiles(t, m.Dir))
	assert.Empty(t, m.Components[VAE].VariantFiles)
	assert.NoFileExists(t, filepath.Join(m.Dir, "vae", "diffusion_pytorch_model.fp16.safetensors"))
	for _, comp := range []string{UNet, TextEncoder, SafetyChecker} {
		c := m.Components[comp]
		main := path.Join(comp, WeightsBase(comp)+".safetensors")
		variant := path.Join(comp, WeightsBase(comp)+".fp16.safetensors")
		assert.Equal(t, []string{variant}, c.VariantFiles)
		assert.Empty(t, c.VariantIndexFile)
		assert.Contains(t, c.Files, variant)
		h, err := tensors.ReadHeaderFile(filepath.Join(m.Dir, variant))
		require.NoError(t, err)
		require.Len(t, h.Tensors, len(c.Specs))
		for _, s := range c.Specs {
			info, ok := h.Tensor(s.Name)
			require.True(t, ok, s.Name)
			assert.Equal(t, s.Shape, info.Shape)
			if s.DType == tensors.I64 {
				assert.Equal(t, tensors.I64, info.DType, "%s: integer tensors are copied", s.Name)
			} else {
				assert.Equal(t, tensors.F16, info.DType, s.Name)
			}
		}
		// Spot-check the values: the variant is the main file converted.
		for _, s := range []Spec{c.Specs[0], c.Specs[len(c.Specs)-1]} {
			_, want := readTensor(t, filepath.Join(m.Dir, main), s.Name)
			_, got := readTensor(t, filepath.Join(m.Dir, variant), s.Name)
			if s.DType == tensors.F32 {
				conv := make([]byte, len(want)/2)
				tensors.ConvertF32ToF16(conv, want)
				want = conv
			}
			assert.Equal(t, want, got, "%s %s", comp, s.Name)
		}
	}
	_, got = readTensor(t, filepath.Join(m.Dir, "unet/diffusion_pytorch_model.fp16.safetensors"), FP16UnsafeTensor)
	assert.Equal(t, []byte{0x00, 0x7C, 0x00, 0xFC, 0x00, 0x00, 0x00, 0x80}, got, "+Inf, -Inf, +0, -0")
}

func TestWriteSD15Sharded(t *testing.T) {
	const max = 1_000_000
	plain := write(t, Options{Scale: testScale, Seed: 5})
	m := write(t, Options{Scale: testScale, Seed: 5, MaxShardSize: max, FP16Variant: []string{UNet}})
	assert.Equal(t, m.Files, listFiles(t, m.Dir))

	unet := m.Components[UNet]
	assert.Equal(t, "unet/diffusion_pytorch_model.safetensors.index.json", unet.IndexFile)
	assert.Greater(t, len(unet.WeightFiles), 2)
	assert.Equal(t, "unet/diffusion_pytorch_model.safetensors.index.fp16.json", unet.VariantIndexFile)
	assert.Greater(t, len(unet.VariantFiles), 1)
	assert.Less(t, len(unet.VariantFiles), len(unet.WeightFiles))

	for _, tc := range []struct {
		index string
		files []string
		specs []Spec
		dt    tensors.DType
	}{
		{unet.IndexFile, unet.WeightFiles, unet.Specs, tensors.F32},
		{unet.VariantIndexFile, unet.VariantFiles, unet.Specs, tensors.F16},
	} {
		set, err := tensors.OpenShardedSet(filepath.Join(m.Dir, tc.index))
		require.NoError(t, err)
		var shards []string
		for _, f := range tc.files {
			shards = append(shards, path.Base(f))
		}
		assert.Equal(t, shards, set.Index.Shards())
		assert.Equal(t, Parameters(tc.specs), set.Index.TotalParameters)
		for _, s := range shards {
			h := set.Shards[s]
			assert.LessOrEqual(t, h.DataSize(), int64(max), s)
			for _, ti := range h.Tensors {
				assert.Equal(t, tc.dt, ti.DType)
			}
		}
		// No tensor is over max here, so the shards cut the state dict
		// into consecutive runs.
		require.Len(t, set.Index.WeightMap, len(tc.specs))
		last := 0
		for _, s := range tc.specs {
			i := slices.Index(shards, set.Index.WeightMap[s.Name])
			assert.GreaterOrEqual(t, i, last, "%s: shards follow state-dict order", s.Name)
			last = i
		}
		assert.Equal(t, len(shards)-1, last)
	}
	assert.Equal(t, unet.DataBytes, mustIndex(t, filepath.Join(m.Dir, unet.IndexFile)).TotalSize)

	// Sharding does not change a tensor's values.
	set, err := tensors.OpenShardedSet(filepath.Join(m.Dir, unet.IndexFile))
	require.NoError(t, err)
	for _, name := range []string{"conv_in.weight", "up_blocks.1.attentions.2.proj_out.weight", FP16UnsafeTensor} {
		_, shard, ok := set.Tensor(name)
		require.True(t, ok)
		_, a := readTensor(t, filepath.Join(m.Dir, UNet, shard), name)
		_, b := readTensor(t, filepath.Join(plain.Dir, UNet, "diffusion_pytorch_model.safetensors"), name)
		assert.Equal(t, b, a, name)
	}

	// Weight sets under the limit stay single files without an index.
	for _, comp := range []string{TextEncoder, VAE} {
		c := m.Components[comp]
		if c.DataBytes <= max {
			assert.Len(t, c.WeightFiles, 1)
			assert.Empty(t, c.IndexFile)
		} else {
			assert.NotEmpty(t, c.IndexFile)
			_, err := tensors.OpenShardedSet(filepath.Join(m.Dir, c.IndexFile))
			assert.NoError(t, err)
		}
	}
}

func mustIndex(t *testing.T, p string) *tensors.Index {
	t.Helper()
	data, err := os.ReadFile(p)
	require.NoError(t, err)
	ix, err := tensors.ParseIndex(data)
	require.NoError(t, err)
	return ix
}

func TestWriteSD15LegacyVAENames(t *testing.T) {
	m := write(t, Options{Scale: testScale, LegacyVAENames: true, FP16Variant: []string{VAE}})
	for _, f := range slices.Concat(m.Components[VAE].WeightFiles, m.Components[VAE].VariantFiles) {
		h, err := tensors.ReadHeaderFile(filepath.Join(m.Dir, f))
		require.NoError(t, err)
		for _, name := range []string{"encoder.mid_block.attentions.0.query.weight", "decoder.mid_block.attentions.0.proj_attn.bias", "decoder.mid_block.attentions.0.group_norm.weight"} {
			_, ok := h.Tensor(name)
			assert.True(t, ok, "%s: %s", f, name)
		}
		_, ok := h.Tensor("encoder.mid_block.attentions.0.to_q.weight")
		assert.False(t, ok)
	}
	specs := LegacyVAENames(SD15TensorSpecs(VAE, 1))
	assert.Equal(t, Parameters(SD15TensorSpecs(VAE, 1)), Parameters(specs))
	n := 0
	for _, s := range specs {
		if strings.Contains(s.Name, ".query.") || strings.Contains(s.Name, ".key.") || strings.Contains(s.Name, ".value.") || strings.Contains(s.Name, ".proj_attn.") {
			n++
		}
	}
	assert.Equal(t, 16, n)
}

func TestWriteSD15Errors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "x"), nil, 0o644))
	_, err := WriteSD15(ctx, dir, Options{Scale: testScale})
	assert.ErrorIs(t, err, ErrDirNotEmpty)

	for _, opts := range []Options{
		{},
		{Scale: math.NaN()},
		{Scale: -1},
		{Scale: testScale, MaxShardSize: -1},
		{Scale: testScale, FP16Variant: []string{SafetyChecker}},
		{Scale: testScale, FP16Variant: []string{"scheduler"}},
	} {
		dir := filepath.Join(t.TempDir(), "new")
		_, err := WriteSD15(ctx, dir, opts)
		assert.Error(t, err, "%+v", opts)
		assert.NoDirExists(t, dir, "nothing is written for invalid options")
	}

	ctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = WriteSD15(ctx, filepath.Join(t.TempDir(), "new"), Options{Scale: testScale})
	assert.ErrorIs(t, err, context.Canceled)
}

// chunkWriter records the size of every write.
type chunkWriter struct {
	n, max int
	h      []byte
}

func (w *chunkWriter) Write(p []byte) (int, error) {
	w.n += len(p)
	w.max = max(w.max, len(p))
	w.h = append(w.h, p...)
	return len(p), nil
}

func TestSourceStreamsInChunks(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))     // use the parallel path
	for _, elems := range []int64{600_001, 1_100_001} { // 3 chunks: sequential; 5: parallel
		s := Spec{Name: "x", DType: tensors.F32, Shape: []int64{1, elems}, Init: InitWeight}
		src := newSource(1, UNet, s)
		require.Equal(t, s.Size(), src.Size())
		var w chunkWriter
		require.NoError(t, src.CopyTo(context.Background(), &w))
		assert.Equal(t, int(s.Size()), w.n)
		assert.Equal(t, chunkBytes, w.max, "1 MiB at a time")

		// Any chunk gives the same values as the whole.
		all := make([]byte, s.Size())
		require.NoError(t, src.(randomSource).fill(all, 0))
		assert.True(t, bytes.Equal(all, w.h), "%d elements", elems)
		part := make([]byte, 4*1000)
		require.NoError(t, src.(randomSource).fill(part, 300_000))
		assert.Equal(t, w.h[4*300_000:4*301_000], part)

		var again bytes.Buffer
		require.NoError(t, src.CopyTo(context.Background(), &again))
		assert.True(t, bytes.Equal(w.h, again.Bytes()), "every CopyTo gives the same bytes")

		other := newSource(1, TextEncoder, s)
		var ob bytes.Buffer
		require.NoError(t, other.CopyTo(context.Background(), &ob))
		assert.False(t, bytes.Equal(w.h, ob.Bytes()), "the seed of a tensor depends on its component")

		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		assert.ErrorIs(t, src.CopyTo(ctx, io.Discard), context.Canceled)
		assert.ErrorIs(t, src.CopyTo(context.Background(), &failingWriter{after: 2}), errWrite)
	}
	bad := newSource(1, UNet, Spec{Name: "y", DType: tensors.F16, Shape: []int64{2}, Init: InitWeight})
	assert.Error(t, bad.CopyTo(context.Background(), io.Discard))
	bad = newSource(1, UNet, Spec{Name: "y", DType: tensors.F16, Shape: []int64{8 << 20}, Init: InitWeight})
	assert.Error(t, bad.CopyTo(context.Background(), io.Discard))
}

var errWrite = errors.New("write failed")

// failingWriter fails from its (after+1)-th write on.
type failingWriter struct{ after int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.after == 0 {
		return 0, errWrite
	}
	w.after--
	return len(p), nil
}

// TestFullScaleSizes reports the sizes of a full-scale pipeline, computed
// from the specs (nothing is written).
func TestFullScaleSizes(t *testing.T) {
	var total int64
	for _, comp := range WeightComponents {
		specs := SD15TensorSpecs(comp, 1)
		size := plannedSize(t, specs, tensors.F32)
		small := plannedSize(t, SD15TensorSpecs(comp, testScale), tensors.F32)
		t.Logf("%-14s %4d tensors %11d parameters, file %13d bytes at scale 1, %9d at %g", comp, len(specs), Parameters(specs), size, small, testScale)
		if comp != SafetyChecker {
			total += size
		}
	}
	t.Logf("unet + text_encoder + vae: %d bytes", total)
	assert.InDelta(t, 4.27e9, float64(total), 0.01e9)
}

func BenchmarkRandomSource(b *testing.B) {
	s := Spec{Name: "x", DType: tensors.F32, Shape: []int64{64 << 20 / 4}, Init: InitWeight}
	src := newSource(1, UNet, s)
	b.SetBytes(s.Size())
	for b.Loop() {
		if err := src.CopyTo(context.Background(), io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}

// TestWriteSD15Progress: the progress counts every byte of tensor data
// written, main weights and variants, against a total known from the start.
func TestWriteSD15Progress(t *testing.T) {
	var mu sync.Mutex
	var last, total int64
	calls := 0
	opts := Options{Scale: testScale, Seed: 1, FP16Variant: []string{UNet}, MaxShardSize: 200_000,
		Progress: func(done, tot int64) {
			mu.Lock()
			defer mu.Unlock()
			calls++
			if total == 0 {
				total = tot
			}
			assert.Equal(t, total, tot, "the total never changes")
			last = max(last, done)
		}}
	m := write(t, opts)
	var data int64
	for _, c := range m.Components {
		for _, f := range slices.Concat(c.WeightFiles, c.VariantFiles) {
			h, err := tensors.ReadHeaderFile(filepath.Join(m.Dir, filepath.FromSlash(f)))
			require.NoError(t, err)
			for _, ti := range h.Tensors {
				data += ti.Size()
			}
		}
	}
	assert.Greater(t, calls, 3)
	assert.Equal(t, data, total)
	assert.Equal(t, total, last, "done reaches the total")
}
