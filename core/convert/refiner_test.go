package convert

import (
	"context"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/convert/converttest"
)

// An SDXL refiner checkpoint (its only text encoder OpenCLIP ViT-bigG under
// conditioner.embedders.0.model.) converts with the reference repository's
// configs, read from the Hub: every output tensor as the mapping table
// derived from diffusers says, the text encoder written as text_encoder_2
// with its q/k/v split by rows and text_projection transposed, and no
// first text encoder or tokenizer, as in the repository.
func TestConvertSDXLRefiner(t *testing.T) {
	h := serveReferences(t, map[string]fs.FS{DefaultConfigRepo(SDXLRefiner): converttest.SDXLRefinerReference()})
	m := converttest.SDXLRefinerModel()
	ts := converttest.SDXLRefiner(converttest.Options{})
	dir := t.TempDir()
	src := filepath.Join(dir, "sd_xl_refiner_1.0.safetensors")
	converttest.WriteSafetensors(t, src, ts)
	out := filepath.Join(dir, "out")
	res, err := Convert(context.Background(), src, out, Options{Hub: h})
	require.NoError(t, err)
	assert.Equal(t, SDXLRefiner, res.Plan.Detection.Type)
	assert.Contains(t, strings.Join(res.Plan.Detection.Reasons, "\n"), keyXLRefiner+" is present")
	assert.Equal(t, "stabilityai/stable-diffusion-xl-refiner-1.0", res.Plan.ConfigFrom)
	assert.True(t, res.Verification.OK(), "%v", res.Verification.Problems)
	checkModel(t, out, m.Specs, m.Mapping, byName(ts), 0, 0)
	require.Len(t, res.Plan.Dropped, 1)
	assert.Equal(t, "conditioner.embedders.0.model.logit_scale", res.Plan.Dropped[0].Name)

	mi := readJSON(t, filepath.Join(out, "model_index.json"))
	assert.Equal(t, "StableDiffusionXLImg2ImgPipeline", mi["_class_name"])
	assert.Equal(t, []any{nil, nil}, mi["text_encoder"])
	assert.Equal(t, []any{nil, nil}, mi["tokenizer"])
	assert.Equal(t, []any{nil, nil}, mi["image_encoder"])
	assert.Equal(t, true, mi["requires_aesthetics_score"])
	assert.NoDirExists(t, filepath.Join(out, "text_encoder"))
	assert.Equal(t, "float32", readJSON(t, filepath.Join(out, "text_encoder_2/config.json"))["torch_dtype"])
}
