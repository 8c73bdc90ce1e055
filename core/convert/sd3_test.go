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
	"modelpub/core/tensors"
)

// SD 3 medium and SD 3.5 medium transformers (key names and shapes of the
// original layout, with and without "model.diffusion_model.", a bundled
// text encoder beside them) convert with the reference repository's
// transformer config, read from the Hub: every output tensor as the
// mapping transcribed from diffusers' convert_sd3_transformer_checkpoint_to_diffusers
// says (q/k/v thirds, the last block's context modulation and the final
// modulation swapped), the bundled text encoder dropped.
func TestConvertSD3(t *testing.T) {
	h := serveReferences(t, map[string]fs.FS{
		DefaultConfigRepo(SD3):                    converttest.SD3Reference("sd3-medium"),
		"stabilityai/stable-diffusion-3.5-medium": converttest.SD3Reference("sd35-medium"),
	})
	cases := []struct {
		name   string
		arch   converttest.SD3Arch
		typ    Type
		prefix string
		repo   string
	}{
		{"sd3 medium", converttest.SD3Medium, SD3, "model.diffusion_model.", "stabilityai/stable-diffusion-3-medium-diffusers"},
		{"sd3.5 medium, no prefix", converttest.SD35Medium, SD35, "", "stabilityai/stable-diffusion-3.5-medium"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := converttest.SD3Model(tc.arch, tc.prefix)
			ts := converttest.SD3(tc.arch, tc.prefix, converttest.Options{DType: tensors.F16, Edit: func(ts []converttest.Tensor) []converttest.Tensor {
				return append(ts, converttest.Float("text_encoders.clip_l.transformer.text_model.final_layer_norm.weight", tensors.F16, []int64{8}))
			}})
			src := filepath.Join(t.TempDir(), "sd3.safetensors")
			converttest.WriteSafetensors(t, src, ts)
			out := filepath.Join(t.TempDir(), "out")
			// The scaled model's widths are not the real ones detection
			// reads (9216, 36864 positions): the type is given.
			res, err := Convert(context.Background(), src, out, Options{Type: tc.typ, Hub: h})
			require.NoError(t, err)
			assert.Equal(t, tc.repo, res.Plan.ConfigFrom)
			assert.True(t, res.Verification.OK(), "%v", res.Verification.Problems)
			byLDM := map[string]converttest.Tensor{}
			for _, c := range ts {
				byLDM[c.Name] = c
			}
			checkModel(t, out, m.Specs, m.Mapping, byLDM, 0, 0)
			require.Len(t, res.Plan.Dropped, 1)
			assert.Equal(t, "text_encoders.clip_l.transformer.text_model.final_layer_norm.weight", res.Plan.Dropped[0].Name)
			cfg := readJSON(t, filepath.Join(out, "config.json"))
			assert.Equal(t, "SD3Transformer2DModel", cfg["_class_name"])
			assert.ElementsMatch(t, []string{"README.md", "config.json", "diffusion_pytorch_model.safetensors"}, res.Files)
		})
	}
}

// Detection follows infer_diffusers_model_type: the first block's context
// modulation 9216 wide with 192² positions is SD 3, with 384² SD 3.5
// medium; a 38th block is SD 3.5 large (whose default repository is
// chosen by it); q/k norms tell SD 3.5 from SD 3 in the signature.
func TestDetectSD3(t *testing.T) {
	p := "model.diffusion_model."
	base := func(pos int64, extra ...string) map[string][]int64 {
		m := map[string][]int64{p + keySD3Block: {9216}, p + "x_embedder.proj.weight": {8, 16, 2, 2}, p + keySD3PosEmb: {1, pos, 1},
			p + "final_layer.adaLN_modulation.1.weight": {16, 8}}
		for _, k := range extra {
			m[p+k] = []int64{8}
		}
		return m
	}
	cases := []struct {
		name string
		keys map[string][]int64
		want Type
		repo string
		why  string
	}{
		{"sd3 medium", base(36864), SD3, "stabilityai/stable-diffusion-3-medium-diffusers", "192×192 positions"},
		{"sd3.5 medium", base(147456, keySD3QKNorm), SD35, "stabilityai/stable-diffusion-3.5-medium", "384×384 positions"},
		{"sd3.5 large", base(36864, keySD3QKNorm, keySD35Large), SD35, "stabilityai/stable-diffusion-3.5-large", "38 joint blocks"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.want == SD35 && tc.repo == "stabilityai/stable-diffusion-3.5-large" {
				tc.keys[p+keySD3Block] = []int64{14592}
			}
			c := signatureCheckpoint(t, tc.keys)
			d, err := Detect(c)
			require.NoError(t, err)
			assert.Equal(t, tc.want, d.Type)
			assert.Contains(t, strings.Join(d.Reasons, "\n"), tc.why)
			got := DefaultConfigRepo(d.Type)
			if r := recipeFor(d.Type); r.repoFor != nil {
				got = r.repoFor(c)
			}
			assert.Equal(t, tc.repo, got)
		})
	}
	_, err := DetectAs(signatureCheckpoint(t, base(36864)), SD35)
	require.ErrorIs(t, err, ErrTypeMismatch)
	assert.Contains(t, err.Error(), keySD3QKNorm+" (the q/k RMS norms of SD 3.5) is missing")
}
