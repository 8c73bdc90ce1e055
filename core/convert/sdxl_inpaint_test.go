package convert

import (
	"context"
	"encoding/json"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/convert/converttest"
	"modelpub/core/pipeline"
)

// sdxlInpaintReference stands for diffusers/stable-diffusion-xl-1.0-
// inpainting-0.1 on the Hub: SDXL base's configs (what the repository was
// made from) with StableDiffusionXLInpaintPipeline, its
// requires_aesthetics_score, and a 9-channel UNet.
func sdxlInpaintReference(t *testing.T) fs.FS {
	t.Helper()
	base, err := fs.Sub(configs, "configs/sdxl")
	require.NoError(t, err)
	ref := fstest.MapFS{}
	require.NoError(t, fs.WalkDir(base, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(base, p)
		if err != nil {
			return err
		}
		edit := func(f func(map[string]any)) {
			var v map[string]any
			require.NoError(t, json.Unmarshal(data, &v))
			f(v)
			data, err = json.MarshalIndent(v, "", "  ")
			require.NoError(t, err)
		}
		switch p {
		case "model_index.json":
			edit(func(v map[string]any) {
				v["_class_name"] = "StableDiffusionXLInpaintPipeline"
				v["requires_aesthetics_score"] = false
			})
		case "unet/config.json":
			edit(func(v map[string]any) { v["in_channels"] = 9 })
		}
		ref[p] = &fstest.MapFile{Data: data}
		return nil
	}))
	return ref
}

// An SDXL inpainting checkpoint (9-channel conv_in) converts as SDXL base
// does, with the configs diffusers reads for it ("xl_inpaint") from the
// Hub: every tensor as the SDXL mapping table says, the UNet's conv_in with
// its 9 input channels, and a StableDiffusionXLInpaintPipeline folder.
// Without a way to download the configs it is refused, nothing written.
func TestConvertSDXLInpaint(t *testing.T) {
	repo := DefaultConfigRepo(SDXLInpaint)
	require.Equal(t, "diffusers/stable-diffusion-xl-1.0-inpainting-0.1", repo)
	require.True(t, NeedsConfigs(SDXLInpaint))
	h := serveReferences(t, map[string]fs.FS{repo: sdxlInpaintReference(t)})
	m := converttest.SDXLModel()
	ts := converttest.SDXL(converttest.Options{InChannels: 9})
	dir := t.TempDir()
	src := filepath.Join(dir, "sd_xl_base_1.0_inpainting_0.1.safetensors")
	converttest.WriteSafetensors(t, src, ts)

	_, err := Convert(context.Background(), src, filepath.Join(dir, "offline"), Options{})
	require.ErrorIs(t, err, ErrOptions)
	assert.Contains(t, err.Error(), repo)
	assert.NoDirExists(t, filepath.Join(dir, "offline"))

	out := filepath.Join(dir, "out")
	res, err := Convert(context.Background(), src, out, Options{Hub: h})
	require.NoError(t, err)
	assert.Equal(t, SDXLInpaint, res.Plan.Detection.Type)
	assert.Contains(t, strings.Join(res.Plan.Detection.Reasons, "\n"), "9 input channels")
	assert.Equal(t, repo, res.Plan.ConfigFrom)
	assert.True(t, res.Verification.OK(), "%v", res.Verification.Problems)
	checkModel(t, out, m.Specs, m.Mapping, byName(ts), 0, 9)

	mi := readJSON(t, filepath.Join(out, "model_index.json"))
	assert.Equal(t, "StableDiffusionXLInpaintPipeline", mi["_class_name"])
	assert.Equal(t, false, mi["requires_aesthetics_score"], "the reference repository's value")
	assert.Equal(t, []any{nil, nil}, mi["image_encoder"])
	assert.Equal(t, 9.0, readJSON(t, filepath.Join(out, "unet/config.json"))["in_channels"])

	p, err := pipeline.Open(context.Background(), out)
	require.NoError(t, err)
	rep, err := VerifyFolder(context.Background(), src, p, "", nil)
	require.NoError(t, err)
	assert.True(t, rep.OK(), "%v", rep.Problems)

	// SDXL base's signature does not fit a 9-channel UNet, and back.
	_, err = Convert(context.Background(), src, filepath.Join(dir, "as-base"), Options{Type: SDXL})
	require.ErrorIs(t, err, ErrTypeMismatch)
	assert.Contains(t, err.Error(), "4 input channels")
}
