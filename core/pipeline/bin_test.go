package pipeline

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// binModel is a single-model folder whose only weights are a PyTorch
// checkpoint of views (transposed, sliced) or shared storages.
func binModel(t *testing.T, fixture string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "model")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"_class_name": "UNet2DConditionModel"}`), 0o644))
	data, err := os.ReadFile(filepath.Join("testdata", "bin", fixture))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "diffusion_pytorch_model.bin"), data, 0o644))
	return dir
}

func TestBinWeightsAreReadSavedAndValidated(t *testing.T) {
	for _, fixture := range []string{"views.pt", "shared.pt"} {
		t.Run(fixture, func(t *testing.T) {
			src := binModel(t, fixture)
			p, err := Open(context.Background(), src)
			require.NoError(t, err)
			main := p.Components[0].Main()
			require.NotNil(t, main)
			require.NoError(t, main.Err)
			assert.Equal(t, "bin", main.Format)
			assert.NotEmpty(t, main.Tensors)
			if fixture == "shared.pt" {
				assert.Positive(t, main.Shared)
				assert.Contains(t, codes(p), "bin-shared-storage")
			}

			dst := filepath.Join(t.TempDir(), "out")
			_, err = Save(context.Background(), p, dst, SaveOptions{Variant: "fp16"})
			require.NoError(t, err)
			assert.Equal(t, []string{"config.json", "diffusion_pytorch_model.fp16.safetensors", "diffusion_pytorch_model.safetensors"},
				listDir(t, dst), "safetensors only, no pickle")

			out, err := Open(context.Background(), dst)
			require.NoError(t, err)
			assert.Equal(t, len(main.Tensors), len(out.Components[0].Main().Tensors))
			r, err := Validate(context.Background(), out, ValidateOptions{Against: p})
			require.NoError(t, err)
			assert.Empty(t, r.Problems, "every tensor equals what torch holds, views gathered")
			assert.Equal(t, 2*len(main.Tensors), r.Tensors, "main weights and the fp16 variant compared")
		})
	}
}
