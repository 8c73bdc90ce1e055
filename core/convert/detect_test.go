package convert

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/convert/converttest"
	"modelpub/core/tensors"
)

// signatureCheckpoint writes a checkpoint holding only the given keys, each
// a small F16 tensor of the given shape, and opens it.
func signatureCheckpoint(t *testing.T, keys map[string][]int64) *Checkpoint {
	t.Helper()
	var ts []converttest.Tensor
	for k, shape := range keys {
		ts = append(ts, converttest.Float(k, tensors.F16, shape))
	}
	path := filepath.Join(t.TempDir(), "sig.safetensors")
	converttest.WriteSafetensors(t, path, ts)
	c, err := OpenCheckpoint(path)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestDetect(t *testing.T) {
	sd1 := map[string][]int64{keyInpainting: {8, 4, 3, 3}, keyV2: {8, 768}, keyCLIP: {77, 8}, keyVAE: {8, 3, 3, 3}}
	sd2 := map[string][]int64{keyInpainting: {8, 4, 3, 3}, keyV2: {8, 1024}, keyOpenCLIP: {8, 8}, keyVAE: {8, 3, 3, 3}}
	with := func(base map[string][]int64, k string, shape []int64) map[string][]int64 {
		out := map[string][]int64{}
		for a, b := range base {
			out[a] = b
		}
		if shape == nil {
			delete(out, k)
		} else {
			out[k] = shape
		}
		return out
	}
	flux := func(prefix string) map[string][]int64 {
		return map[string][]int64{prefix + "double_blocks.0.img_attn.norm.key_norm.scale": {8}, prefix + "img_in.weight": {8, 64},
			prefix + "final_layer.adaLN_modulation.1.weight": {16, 8}}
	}
	cases := []struct {
		name     string
		keys     map[string][]int64
		want     Type
		wantErr  error
		wantText []string
	}{
		{"SD 1.x", sd1, SD15, nil, []string{keyInpainting + " is [8 4 3 3]", keyCLIP}},
		{"SD 1.x inpainting", with(sd1, keyInpainting, []int64{8, 9, 3, 3}), SD15Inpaint, nil, []string{"9 input channels"}},
		{"SD 2.x", sd2, SD2, nil, []string{"ends in 1024", keyOpenCLIP + " is [8 8]: the OpenCLIP ViT-H/14 text encoder"}},
		{"SD 2.x inpainting", with(sd2, keyInpainting, []int64{8, 9, 3, 3}), SD2Inpaint, nil, []string{"9 input channels"}},
		{"SD 2.x with SD 1.x's text encoder", with(with(sd1, keyV2, []int64{8, 1024}), keyOpenCLIP, nil), "", ErrUnknownArchitecture,
			[]string{"not Stable Diffusion 2.x", keyOpenCLIP + " (the OpenCLIP ViT-H/14 text encoder) is missing"}},
		{"SDXL refiner", map[string][]int64{keyXLRefiner: {8}, keyRefinerProj: {8, 8}, keyInpainting: {8, 4, 3, 3}, keyAddEmbedding: {8, 8}, keyVAE: {8, 3, 3, 3}},
			SDXLRefiner, nil, []string{keyXLRefiner + " is present: SDXL refiner's only text encoder", keyRefinerProj + " is [8 8]"}},
		{"SDXL refiner without its VAE", map[string][]int64{keyXLRefiner: {8}, keyRefinerProj: {8, 8}, keyInpainting: {8, 4, 3, 3}, keyAddEmbedding: {8, 8}},
			"", ErrUnknownArchitecture, []string{"not Stable Diffusion XL refiner", keyVAE + " (the VAE) is missing"}},
		{"SD 3 without its patch embedding", map[string][]int64{keySD3: {8}}, "", ErrUnknownArchitecture, []string{"not Stable Diffusion 3 (transformer)",
			"x_embedder.proj.weight (the patch embedding) is missing"}},
		{"Stable Cascade", map[string][]int64{keyCascadeC: {8, 8}}, "", ErrUnsupportedType, []string{"Stable Cascade",
			"modelpub converts sd15, sd15-inpaint, sdxl, sdxl-inpaint, sd2, sd2-inpaint, sdxl-refiner, sd3, sd35, flux-dev, flux-schnell, flux-fill, flux-depth"}},
		{"FLUX.1 schnell", flux(""), FluxSchnell, nil, []string{"guidance_in.in_layer.bias is absent", "img_in.weight is [8 64]"}},
		{"FLUX.1 dev under model.diffusion_model", with(flux("model.diffusion_model."), "model.diffusion_model.guidance_in.in_layer.bias", []int64{8}),
			FluxDev, nil, []string{"model.diffusion_model.guidance_in.in_layer.bias is present"}},
		{"FLUX.1 Fill", with(with(flux(""), "guidance_in.in_layer.bias", []int64{8}), "img_in.weight", []int64{8, 384}), FluxFill, nil, []string{"384 channels: FLUX.1 Fill"}},
		{"FLUX.1 Depth", with(with(flux(""), "guidance_in.in_layer.bias", []int64{8}), "img_in.weight", []int64{8, 128}), FluxDepth, nil, []string{"128 channels: FLUX.1 Depth"}},
		{"Flux without its final layer", with(flux(""), "final_layer.adaLN_modulation.1.weight", nil), "", ErrUnknownArchitecture,
			[]string{"final_layer.adaLN_modulation.1.weight (the final layer's modulation) is missing"}},
		{"ControlNet", map[string][]int64{keyControlNet: {8, 8}}, "", ErrUnsupportedType, []string{"ControlNet"}},
		{"SD 1.x without its VAE", with(sd1, keyVAE, nil), "", ErrUnknownArchitecture, []string{keyVAE + " (the VAE) is missing"}},
		{"SD 1.x with a 3-channel UNet", with(sd1, keyInpainting, []int64{8, 3, 3, 3}), "", ErrUnknownArchitecture, []string{"want [*, 4, 3, 3]"}},
		{"SDXL without its second text encoder's embedding", with(map[string][]int64{keyXLBase: {8}, keyCLIPXL: {77, 8}, keyInpainting: {8, 4, 3, 3}, keyAddEmbedding: {8, 8}, keyVAE: {8, 3, 3, 3}}, keyOpenCLIPXL, nil),
			"", ErrUnknownArchitecture, []string{keyOpenCLIPXL + " (OpenCLIP ViT-bigG's position embedding) is missing"}},
		{"unknown", map[string][]int64{"bert.embeddings.word_embeddings.weight": {8, 8}, "bert.pooler.dense.bias": {8}}, "", ErrUnknownArchitecture,
			[]string{"none of the keys that identify a model type is present", keyCLIP, keyXLBase, "its keys are bert.* (2)"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Detect(signatureCheckpoint(t, tc.keys))
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				for _, s := range tc.wantText {
					assert.Contains(t, err.Error(), s)
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, d.Type)
			assert.False(t, d.Forced)
			joined := ""
			for _, r := range d.Reasons {
				joined += r + "\n"
			}
			for _, s := range tc.wantText {
				assert.Contains(t, joined, s)
			}
		})
	}
}

func TestDetectAs(t *testing.T) {
	c := signatureCheckpoint(t, map[string][]int64{keyInpainting: {8, 4, 3, 3}, keyV2: {8, 768}, keyCLIP: {77, 8}, keyVAE: {8, 3, 3, 3}})
	d, err := DetectAs(c, SD15)
	require.NoError(t, err)
	assert.True(t, d.Forced)
	_, err = DetectAs(c, SDXL)
	require.ErrorIs(t, err, ErrTypeMismatch)
	assert.Contains(t, err.Error(), keyXLBase+" (OpenCLIP ViT-bigG, SDXL base's second text encoder) is missing")
	_, err = DetectAs(c, SD15Inpaint)
	require.ErrorIs(t, err, ErrTypeMismatch)
	assert.Contains(t, err.Error(), "9 input channels")
	_, err = DetectAs(c, SD2)
	require.ErrorIs(t, err, ErrTypeMismatch)
	assert.Contains(t, err.Error(), "is [8 768], want [*, 1024]")
	_, err = DetectAs(c, ControlNet)
	assert.ErrorIs(t, err, ErrOptions)

	dev := signatureCheckpoint(t, map[string][]int64{"double_blocks.0.img_attn.norm.key_norm.scale": {8}, "img_in.weight": {8, 64},
		"final_layer.adaLN_modulation.1.weight": {16, 8}, "guidance_in.in_layer.bias": {8}})
	_, err = DetectAs(dev, FluxSchnell)
	require.ErrorIs(t, err, ErrTypeMismatch)
	assert.Contains(t, err.Error(), "guidance_in.in_layer.bias is present (FLUX.1 schnell has no guidance embedder)")
}

// Checkpoints whose keys do not all fit the diffusers models are refused,
// naming every key that is wrong.
func TestBuildRefuses(t *testing.T) {
	cases := []struct {
		name    string
		edit    func([]converttest.Tensor) []converttest.Tensor
		wantErr error
		want    []string
	}{
		{"a key the UNet does not have", func(ts []converttest.Tensor) []converttest.Tensor {
			return append(ts, converttest.Float("model.diffusion_model.input_blocks.1.0.extra.weight", tensors.F32, []int64{2}))
		}, ErrUnmappedTensor, []string{"model.diffusion_model.input_blocks.1.0.extra.weight"}},
		{"an attention tensor diffusers does not have", func(ts []converttest.Tensor) []converttest.Tensor {
			return append(ts, converttest.Float("model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1.to_q.bias", tensors.F32, []int64{2}))
		}, ErrUnmappedTensor, []string{"input_blocks.1.1.transformer_blocks.0.attn1.to_q.bias (→ down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.bias)"}},
		{"two upsamplers for one block", func(ts []converttest.Tensor) []converttest.Tensor {
			return append(ts, converttest.Float("model.diffusion_model.output_blocks.2.2.conv.weight", tensors.F32, []int64{2}))
		}, ErrUnmappedTensor, []string{"model.diffusion_model.output_blocks.2.1.conv.weight and model.diffusion_model.output_blocks.2.2.conv.weight (→ up_blocks.0.upsamplers.0.conv.weight)"}},
		{"a VAE attention weight that is not 1×1", func(ts []converttest.Tensor) []converttest.Tensor {
			for i, c := range ts {
				if c.Name == "first_stage_model.encoder.mid.attn_1.k.weight" {
					ts[i] = converttest.Float(c.Name, c.DType, []int64{c.Shape[0], c.Shape[1], 3, 3})
				}
			}
			return ts
		}, ErrBadShape, []string{"first_stage_model.encoder.mid.attn_1.k.weight is ["}},
		{"missing tensors", func(ts []converttest.Tensor) []converttest.Tensor {
			var out []converttest.Tensor
			for _, c := range ts {
				if c.Name != "cond_stage_model.transformer.text_model.final_layer_norm.bias" && c.Name != "model.diffusion_model.out.2.bias" {
					out = append(out, c)
				}
			}
			return out
		}, ErrMissingTensor, []string{"1 tensors of the unet UNet2DConditionModel: conv_out.bias", "text_encoder CLIPTextModel: text_model.final_layer_norm.bias"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "m.safetensors")
			converttest.WriteSafetensors(t, path, converttest.SD15(converttest.Options{Edit: tc.edit}))
			c, err := OpenCheckpoint(path)
			require.NoError(t, err)
			defer c.Close()
			d, err := Detect(c)
			require.NoError(t, err)
			_, err = Build(c, d, 0, "")
			require.ErrorIs(t, err, tc.wantErr)
			var pe *PlanError
			require.ErrorAs(t, err, &pe)
			for _, s := range tc.want {
				assert.Contains(t, err.Error(), s)
			}
		})
	}
}

// A safetensors header of 128 bytes starts the file with 0x80, a pickle's
// first opcode: the format is told by the header's "{", not by that byte.
func TestOpenCheckpointSniffsTheFormat(t *testing.T) {
	js := `{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`
	for len(js) < 128 {
		js += " "
	}
	data := append([]byte{0x80, 0, 0, 0, 0, 0, 0, 0}, js...)
	data = append(data, 0, 0, 0x80, 0x3f)
	path := filepath.Join(t.TempDir(), "a.safetensors")
	require.NoError(t, os.WriteFile(path, data, 0o644))
	c, err := OpenCheckpoint(path)
	require.NoError(t, err)
	defer c.Close()
	assert.Equal(t, FormatSafetensors, c.Format)
	assert.True(t, c.Has("a"))
}
