package pipeline

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/tensors"
)

// saved returns a source pipeline and its save with an fp16 variant.
func saved(t *testing.T) (src *Pipeline, dst string) {
	t.Helper()
	dir := materialize(t, "sd15", synthetic)
	src, err := Open(context.Background(), dir)
	require.NoError(t, err)
	dst = filepath.Join(t.TempDir(), "out")
	_, err = Save(context.Background(), src, dst, SaveOptions{MaxShardSize: 20, Variant: "fp16"})
	require.NoError(t, err)
	return src, dst
}

func validate(t *testing.T, dir string, src *Pipeline, strict bool) *Report {
	t.Helper()
	p, err := Open(context.Background(), dir)
	require.NoError(t, err)
	r, err := Validate(context.Background(), p, ValidateOptions{Against: src, Strict: strict})
	require.NoError(t, err)
	return r
}

func TestValidateSavedFolder(t *testing.T) {
	src, dst := saved(t)
	r := validate(t, dst, src, false)
	assert.Empty(t, r.Problems)
	assert.Positive(t, r.Tensors)

	alone := validate(t, dst, nil, false)
	assert.Empty(t, alone.Problems)
}

func TestValidateFindsAFlippedByte(t *testing.T) {
	src, dst := saved(t)
	shard := filepath.Join(dst, "unet", "diffusion_pytorch_model-00002-of-00003.safetensors")
	h, err := tensors.ReadHeaderFile(shard)
	require.NoError(t, err)
	victim := h.Tensors[0]
	b, err := os.ReadFile(shard)
	require.NoError(t, err)
	b[h.DataStart+victim.Begin+2] ^= 0x40
	require.NoError(t, os.WriteFile(shard, b, 0o644))

	r := validate(t, dst, src, false)
	require.Len(t, r.Problems, 1)
	assert.Equal(t, "tensor-data", r.Problems[0].Code)
	assert.Contains(t, r.Problems[0].Message, `tensor "`+victim.Name+`" is not bit-identical to the source (first difference at byte 2`)
}

func TestValidateFindsARenamedTensorInAnIndex(t *testing.T) {
	src, dst := saved(t)
	path := filepath.Join(dst, "unet", "diffusion_pytorch_model.safetensors.index.json")
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var ix map[string]any
	require.NoError(t, json.Unmarshal(data, &ix))
	wm := ix["weight_map"].(map[string]any)
	wm["layer.0.weightX"] = wm["layer.0.weight"]
	delete(wm, "layer.0.weight")
	data, err = json.Marshal(ix)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, data, 0o644))

	r := validate(t, dst, src, false)
	require.NotEmpty(t, r.Problems)
	joined := ""
	for _, p := range r.Problems {
		joined += p.Code + ": " + p.Message + "\n"
	}
	assert.Contains(t, joined, "unreadable-weights")
	assert.Contains(t, joined, `"layer.0.weight"`, "the problem names the tensor")
}

func TestValidateVariantAgainstExactConversion(t *testing.T) {
	src, dst := saved(t)
	// Replace the fp16 variant's first tensor bytes with a wrongly rounded value.
	shard := filepath.Join(dst, "vae", "diffusion_pytorch_model.fp16-00001-of-00002.safetensors")
	h, err := tensors.ReadHeaderFile(shard)
	require.NoError(t, err)
	b, err := os.ReadFile(shard)
	require.NoError(t, err)
	b[h.DataStart+h.Tensors[0].Begin] ^= 1 // one ulp off
	require.NoError(t, os.WriteFile(shard, b, 0o644))
	r := validate(t, dst, src, false)
	require.Len(t, r.Problems, 1)
	assert.Contains(t, r.Problems[0].Message, "vae variant fp16")
	assert.Contains(t, r.Problems[0].Message, "is not the exact conversion of the source")
}

func TestValidateAloneFindsFormatAndConfigProblems(t *testing.T) {
	_, dst := saved(t)
	require.NoError(t, os.WriteFile(filepath.Join(dst, "vae", "config.json"), []byte(`{"broken":`), 0o644))
	shard := filepath.Join(dst, "vae", "diffusion_pytorch_model-00001-of-00003.safetensors")
	f, err := tensors.Open(shard)
	require.NoError(t, err)
	var ws []tensors.WriteTensor
	for _, ti := range f.Header.Tensors {
		b := make([]byte, ti.Size())
		_, err := f.ReadAt(b, f.Header.DataStart+ti.Begin)
		require.NoError(t, err)
		ws = append(ws, tensors.WriteTensor{Name: ti.Name, DType: ti.DType, Shape: ti.Shape, Data: tensors.Bytes(b)})
	}
	f.Close()
	_, err = tensors.WriteFile(context.Background(), shard, ws, tensors.Metadata{{Key: "format", Value: "np"}}, tensors.WriteOptions{Verbatim: true})
	require.NoError(t, err)
	r := validate(t, dst, nil, false)
	var codes []string
	for _, p := range r.Problems {
		codes = append(codes, p.Code+": "+p.Message)
	}
	joined := strings.Join(codes, "\n")
	assert.Contains(t, joined, "invalid-config: vae/config.json is not valid JSON")
	assert.Contains(t, joined, `format-metadata: vae/diffusion_pytorch_model-00001-of-00003.safetensors has __metadata__ format "np"`)
}

func TestValidateLossyVariantIsAWarningUnlessStrict(t *testing.T) {
	dir := materialize(t, "sd15", synthetic)
	// A UNet with values float16 cannot hold: 1e6 overflows, 1e-10 underflows.
	b := make([]byte, 16)
	for i, v := range []float32{1e6, 1e-10, 1, -2} {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	_, err := tensors.WriteFile(context.Background(), filepath.Join(dir, "unet", "diffusion_pytorch_model.safetensors"),
		[]tensors.WriteTensor{{Name: "conv_out.bias", DType: tensors.F32, Shape: []int64{4}, Data: tensors.Bytes(b)}}, nil, tensors.WriteOptions{})
	require.NoError(t, err)
	src, err := Open(context.Background(), dir)
	require.NoError(t, err)
	dst := filepath.Join(t.TempDir(), "out")
	res, err := Save(context.Background(), src, dst, SaveOptions{Variant: "fp16"})
	require.NoError(t, err)
	require.Len(t, res.Lossy, 1)
	assert.Equal(t, LossyTensor{Component: "unet", Tensor: "conv_out.bias", Variant: "fp16",
		ConvStats: tensors.ConvStats{Overflow: 1, Underflow: 1}}, res.Lossy[0])

	r := validate(t, dst, src, false)
	assert.Empty(t, r.Problems)
	require.Len(t, r.Warnings, 1)
	assert.Contains(t, r.Warnings[0].Message, `unet variant fp16: tensor "conv_out.bias": 1 values overflowed to ±inf and 1 non-zero values became zero in F16`)

	strict := validate(t, dst, src, true)
	require.Len(t, strict.Problems, 1)
	assert.Equal(t, "lossy-variant", strict.Problems[0].Code)
}
