package convert

import (
	"context"
	"crypto/sha256"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/convert/converttest"
	"modelpub/core/hub"
	"modelpub/core/pipeline"
)

// serveReferences serves each stand-in reference repository (repo id →
// files) from the Hub emulator, on loopback, and returns an anonymous
// client of it.
func serveReferences(t *testing.T, refs map[string]fs.FS) *hub.Client {
	t.Helper()
	anon, err := hub.NewClient(hub.Options{Endpoint: converttest.ServeRepos(t, refs, converttest.HubOptions{})})
	require.NoError(t, err)
	return anon
}

// An SD 2.x checkpoint (key names and shapes of the original layout, the
// OpenCLIP ViT-H text tower included) converts with the reference
// repository's configs, read from the Hub: every output tensor as the
// mapping table derived from diffusers says (q/k/v split by rows), the last
// OpenCLIP layer, text_projection and logit_scale dropped, the repository's
// model_index.json and scheduler kept.
func TestConvertSD2(t *testing.T) {
	h := serveReferences(t, map[string]fs.FS{
		DefaultConfigRepo(SD2): converttest.SD2Reference(), DefaultConfigRepo(SD2Inpaint): converttest.SD2Reference()})
	m := converttest.SD2Model()
	cases := []struct {
		name      string
		opts      converttest.Options
		want      Type
		class     string
		inChannel int64
	}{
		{"sd2", converttest.Options{Extras: true}, SD2, "StableDiffusionPipeline", 0},
		{"sd2-inpaint", converttest.Options{InChannels: 9}, SD2Inpaint, "StableDiffusionInpaintPipeline", 9},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := converttest.SD2(tc.opts)
			dir := t.TempDir()
			src := filepath.Join(dir, "v2-1_768-ema-pruned.safetensors")
			converttest.WriteSafetensors(t, src, ts)
			out := filepath.Join(dir, "out")
			res, err := Convert(context.Background(), src, out, Options{Hub: h})
			require.NoError(t, err)
			assert.Equal(t, tc.want, res.Plan.Detection.Type)
			assert.Contains(t, strings.Join(res.Plan.Detection.Reasons, "\n"), "ends in 1024")
			assert.Equal(t, DefaultConfigRepo(tc.want), res.Plan.ConfigFrom)
			assert.True(t, res.Verification.OK(), "%v", res.Verification.Problems)

			checkModel(t, out, m.Specs, m.Mapping, byName(ts), 0, tc.inChannel)
			dropped := map[string]string{}
			for _, d := range res.Plan.Dropped {
				dropped[d.Name] = d.Reason
			}
			for _, r := range m.Mapping {
				if r.Component == "-" {
					assert.Contains(t, dropped, r.LDM, "%s (%s) is dropped", r.LDM, r.Diffusers)
				}
			}
			assert.Contains(t, dropped["cond_stage_model.model.transformer.resblocks.23.attn.in_proj_weight"], "penultimate layer")
			assert.Contains(t, dropped["cond_stage_model.model.text_projection"], "without one")

			mi := readJSON(t, filepath.Join(out, "model_index.json"))
			assert.Equal(t, tc.class, mi["_class_name"])
			assert.Equal(t, []any{nil, nil}, mi["safety_checker"])
			assert.Equal(t, false, mi["requires_safety_checker"], "the reference repository's value")
			assert.Equal(t, []any{"diffusers", "DDIMScheduler"}, mi["scheduler"])
			assert.Equal(t, "v_prediction", readJSON(t, filepath.Join(out, "scheduler/scheduler_config.json"))["prediction_type"])
			assert.Equal(t, 23.0, readJSON(t, filepath.Join(out, "text_encoder/config.json"))["num_hidden_layers"])
			inCh := 4.0
			if tc.inChannel != 0 {
				inCh = float64(tc.inChannel)
			}
			assert.Equal(t, inCh, readJSON(t, filepath.Join(out, "unet/config.json"))["in_channels"])
			vocab, err := fs.ReadFile(converttest.SD2Reference(), "tokenizer/vocab.json")
			require.NoError(t, err)
			assert.Equal(t, sha256.Sum256(vocab), fileHash(t, filepath.Join(out, "tokenizer/vocab.json")))

			// validate --against reads the configs from the folder itself.
			p, err := pipeline.Open(context.Background(), out)
			require.NoError(t, err)
			rep, err := VerifyFolder(context.Background(), src, p, "", nil)
			require.NoError(t, err)
			assert.True(t, rep.OK(), "%v", rep.Problems)
		})
	}
}

// SD 2.x without a way to download its configs, or with a text encoder
// that is not OpenCLIP's, is refused before anything is written.
func TestConvertSD2Refusals(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "sd2.safetensors")
	converttest.WriteSafetensors(t, src, converttest.SD2(converttest.Options{}))
	_, err := Convert(context.Background(), src, filepath.Join(dir, "out"), Options{})
	require.ErrorIs(t, err, ErrOptions)
	assert.Contains(t, err.Error(), "stabilityai/stable-diffusion-2-1")
	assert.NoDirExists(t, filepath.Join(dir, "out"))

	noOpenCLIP := filepath.Join(dir, "odd.safetensors")
	converttest.WriteSafetensors(t, noOpenCLIP, converttest.SD2(converttest.Options{Edit: func(ts []converttest.Tensor) []converttest.Tensor {
		var keep []converttest.Tensor
		for _, c := range ts {
			if !strings.HasPrefix(c.Name, "cond_stage_model.") {
				keep = append(keep, c)
			}
		}
		return keep
	}}))
	_, err = Convert(context.Background(), noOpenCLIP, filepath.Join(dir, "out"), Options{})
	require.ErrorIs(t, err, ErrUnknownArchitecture)
	assert.Contains(t, err.Error(), keyOpenCLIP)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 2)
}
