package pipeline

import (
	"context"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/pipeline/pipelinetest"
	"modelpub/core/tensors"
)

// plantedValues lose values in both variants: 7e4, -1e5 and 3.4e38
// overflow fp16, 3.4e38 also bf16; 1e-9, -2e-8 and 1e-41 underflow fp16,
// 1e-41 also bf16.
var plantedValues = []float32{7e4, -1e5, 1e-9, 3.4e38, 1e-41, 0.5, 0, -2e-8}

// plant rewrites the safetensors file at path with the F32 tensor name
// filled with plantedValues, over and over.
func plant(t *testing.T, path, name string) {
	t.Helper()
	f, err := tensors.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var ws []tensors.WriteTensor
	found := false
	for _, ti := range f.Header.Tensors {
		w := tensors.WriteTensor{Name: ti.Name, DType: ti.DType, Shape: ti.Shape, Data: f.TensorSource(ti)}
		if ti.Name == name {
			require.Equal(t, tensors.F32, ti.DType)
			b := make([]byte, ti.Size())
			for i := 0; i < len(b); i += 4 {
				binary.LittleEndian.PutUint32(b[i:], math.Float32bits(plantedValues[i/4%len(plantedValues)]))
			}
			w.Data, found = tensors.Bytes(b), true
		}
		ws = append(ws, w)
	}
	require.True(t, found, name)
	// Written beside it, then over it once closed: Windows refuses to
	// replace a file that is open.
	planted := path + ".planted"
	_, err = tensors.WriteFile(context.Background(), planted, ws, f.Header.Metadata, tensors.WriteOptions{})
	require.NoError(t, err)
	require.NoError(t, f.Close())
	require.NoError(t, os.Rename(planted, path))
}

// plantedSD15 is a synthetic SD-1.5 with the UNet's conv_out.bias of
// pipelinetest (2 fp16 overflows, 2 underflows) and the VAE's
// quant_conv.weight (64 values) planted.
func plantedSD15(t *testing.T) *Pipeline {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "sd15")
	_, err := pipelinetest.WriteSD15(context.Background(), dir, pipelinetest.Options{Scale: 0.001, Seed: 5, MaxShardSize: 500_000})
	require.NoError(t, err)
	plant(t, filepath.Join(dir, "vae", "diffusion_pytorch_model.safetensors"), "quant_conv.weight")
	p, err := Open(context.Background(), dir)
	require.NoError(t, err)
	return p
}

func TestScanVariantCountsWhatSaveReports(t *testing.T) {
	p := plantedSD15(t)
	tests := []struct {
		variant string
		want    []TensorLoss
	}{
		{"fp16", []TensorLoss{
			{Component: "vae", Tensor: "quant_conv.weight", DType: tensors.F32, ConvStats: tensors.ConvStats{Overflow: 24, Underflow: 24}, Values: 64},
			{Component: pipelinetest.FP16UnsafeComponent, Tensor: pipelinetest.FP16UnsafeTensor, DType: tensors.F32, ConvStats: tensors.ConvStats{Overflow: 2, Underflow: 2}, Values: 4},
		}},
		{"bf16", []TensorLoss{
			{Component: "vae", Tensor: "quant_conv.weight", DType: tensors.F32, ConvStats: tensors.ConvStats{Overflow: 8, Underflow: 8}, Values: 64},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.variant, func(t *testing.T) {
			var calls int
			var last [2]int64
			scan, err := ScanVariant(context.Background(), p, tt.variant, func(done, total int64) {
				calls++
				require.GreaterOrEqual(t, done, last[0])
				last = [2]int64{done, total}
			})
			require.NoError(t, err)
			assert.Equal(t, tt.want, scan.Tensors, "worst first")
			assert.Positive(t, calls)
			assert.Equal(t, last[1], last[0], "progress ends at its total")

			var wantOver, wantUnder int64
			for _, l := range tt.want {
				wantOver += l.Overflow
				wantUnder += l.Underflow
			}
			assert.Equal(t, wantOver, scan.Overflow)
			assert.Equal(t, wantUnder, scan.Underflow)
			var floats int64
			var count int
			for _, c := range p.Components {
				if w := c.Main(); w != nil {
					for _, tn := range w.Tensors {
						if tn.DType == tensors.F32 {
							floats += tn.NumElements()
							count++
						}
					}
				}
			}
			assert.Equal(t, floats, scan.Values)
			assert.Equal(t, count, scan.Scanned)

			before, err := Plan(p, SaveOptions{})
			require.NoError(t, err)
			after, err := Plan(p, SaveOptions{Variant: tt.variant})
			require.NoError(t, err)
			assert.Equal(t, before.Total(), scan.SizeBefore)
			assert.Equal(t, after.Total(), scan.SizeAfter)
			assert.Greater(t, scan.SizeAfter, scan.SizeBefore)

			res, err := Save(context.Background(), p, filepath.Join(t.TempDir(), "out"), SaveOptions{Variant: tt.variant})
			require.NoError(t, err)
			var saved []TensorLoss
			for _, l := range res.Lossy {
				assert.Equal(t, tt.variant, l.Variant)
				saved = append(saved, TensorLoss{Component: l.Component, Tensor: l.Tensor, ConvStats: l.ConvStats})
			}
			var scanned []TensorLoss
			for _, l := range scan.Tensors {
				scanned = append(scanned, TensorLoss{Component: l.Component, Tensor: l.Tensor, ConvStats: l.ConvStats})
			}
			assert.ElementsMatch(t, saved, scanned, "the scan counts what Save reports")
		})
	}
}

func TestScanVariantCancels(t *testing.T) {
	p := plantedSD15(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var after int
	_, err := ScanVariant(ctx, p, "fp16", func(done, total int64) {
		if ctx.Err() != nil {
			after++
		}
		if done > 0 {
			cancel()
		}
	})
	require.ErrorIs(t, err, context.Canceled)
	assert.LessOrEqual(t, after, 1, "the scan stops within a chunk of the cancellation")
}

func TestScanVariantRefuses(t *testing.T) {
	p := openSD15(t, pipelinetest.Options{Seed: 1})
	for _, v := range []string{"", "fp8"} {
		_, err := ScanVariant(context.Background(), p, v, nil)
		require.ErrorIs(t, err, ErrUnsupportedVariant, v)
	}
}
