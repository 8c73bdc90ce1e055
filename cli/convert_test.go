package cli

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/convert"
	"modelpub/core/convert/converttest"
	"modelpub/core/hub"
	"modelpub/core/tensors"
)

// isolateUserCache points the user cache (where convert keeps checkpoint
// hashes) at a fresh folder and returns it.
func isolateUserCache(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", dir)
	t.Setenv("LocalAppData", dir)
	return dir
}

func writeSD15Checkpoint(t *testing.T, dir string) string {
	t.Helper()
	isolateUserCache(t)
	src := filepath.Join(dir, "v1-5.safetensors")
	converttest.WriteSafetensors(t, src, converttest.SD15(converttest.Options{Extras: true}))
	return src
}

func TestConvertCommand(t *testing.T) {
	dir := t.TempDir()
	src := writeSD15Checkpoint(t, dir)
	out := filepath.Join(dir, "out")
	var stdout, stderr bytes.Buffer
	code := Run([]string{"convert", src, out, "--variant", "fp16"}, &stdout, &stderr)
	require.Equal(t, ExitOK, code, stderr.String()+stdout.String())
	for _, want := range []string{
		"detected Stable Diffusion 1.x (sd15):\n",
		"  model.diffusion_model.input_blocks.0.0.weight is [6 4 3 3]: the UNet's conv_in, 4 input channels\n",
		"dropped 17 keys, as diffusers does:\n",
		"  noise schedule buffer of the training code: the scheduler config describes the schedule: alphas_cumprod, alphas_cumprod_prev, betas, log_one_minus_alphas_cumprod and 8 more\n",
		"  CLIP's position_ids buffer: transformers rebuilds it and does not save it: cond_stage_model.transformer.text_model.embeddings.position_ids\n",
		"converted " + out + " (",
		"  unet           UNet2DConditionModel          686 tensors",
		"  text_encoder   CLIPTextModel                 196 tensors",
		"valid: loads as diffusers loads a pipeline folder\n",
		"verified: 2260 tensors",
	} {
		assert.Contains(t, stdout.String(), want)
	}
	assert.FileExists(t, filepath.Join(out, "unet", "diffusion_pytorch_model.fp16.safetensors"))
	assert.FileExists(t, filepath.Join(out, "tokenizer", "vocab.json"))
	raw, err := os.ReadFile(src)
	require.NoError(t, err)
	sum := sha256.Sum256(raw)
	wantSum := hex.EncodeToString(sum[:])
	assert.Contains(t, stdout.String(), "card: README.md names the source v1-5.safetensors, sha256 "+wantSum+"\n")
	readme, err := os.ReadFile(filepath.Join(out, "README.md"))
	require.NoError(t, err)
	assert.Contains(t, string(readme), "| `v1-5.safetensors` | ")
	assert.Contains(t, string(readme), "`"+wantSum+"`")
	cachePath, err := hub.DefaultHashCachePath()
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(cachePath, os.Getenv("XDG_CACHE_HOME")), "the test's own cache")
	cached, err := os.ReadFile(cachePath)
	require.NoError(t, err, "the checkpoint's sha256 is kept for the next conversion or publish")
	assert.Contains(t, string(cached), wantSum)

	stdout.Reset()
	stderr.Reset()
	assert.Equal(t, ExitUsage, Run([]string{"convert", src, out}, &stdout, &stderr), "OUT is not empty")
	assert.Contains(t, stderr.String(), "exists and is not an empty folder")

	stdout.Reset()
	out2 := filepath.Join(dir, "out2")
	code = Run([]string{"convert", "--json", "--type", "sd15", "--no-verify", src, out2}, &stdout, &stderr)
	require.Equal(t, ExitOK, code, stderr.String())
	var got struct {
		Detected struct {
			Type   string `json:"type"`
			Forced bool   `json:"forced"`
		} `json:"detected"`
		Components []struct {
			Name    string `json:"name"`
			Tensors int    `json:"tensors"`
		} `json:"components"`
		Dropped []struct {
			Name   string `json:"name"`
			Reason string `json:"reason"`
		} `json:"dropped"`
		Verification *struct{} `json:"verification"`
		Files        []string  `json:"files"`
		Source       struct {
			Name   string `json:"name"`
			Size   int64  `json:"size"`
			SHA256 string `json:"sha256"`
		} `json:"source"`
	}
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &got), stdout.String())
	assert.Equal(t, "sd15", got.Detected.Type)
	assert.True(t, got.Detected.Forced)
	require.Len(t, got.Components, 3)
	assert.Equal(t, "vae", got.Components[1].Name)
	assert.Equal(t, 248, got.Components[1].Tensors)
	assert.Len(t, got.Dropped, 17)
	assert.Nil(t, got.Verification, "--no-verify")
	assert.Contains(t, got.Files, "model_index.json")
	assert.Contains(t, got.Files, "vae/diffusion_pytorch_model.safetensors")
	assert.Contains(t, got.Files, "README.md")
	assert.Equal(t, "v1-5.safetensors", got.Source.Name)
	assert.Equal(t, int64(len(raw)), got.Source.Size)
	assert.Equal(t, wantSum, got.Source.SHA256)
}

// Bad arguments and checkpoints that cannot be converted exit 2 with the
// reason, and create nothing.
func TestConvertCommandRefuses(t *testing.T) {
	isolateUserCache(t)
	dir := t.TempDir()
	good := writeSD15Checkpoint(t, dir)
	unknown := filepath.Join(dir, "bert.safetensors")
	converttest.WriteSafetensors(t, unknown, []converttest.Tensor{converttest.Float("encoder.layer.0.weight", tensors.F32, []int64{2})})
	pickle := filepath.Join(dir, "evil.ckpt")
	converttest.WriteTorch(t, pickle, converttest.SD15(converttest.Options{})[:4], converttest.TorchOptions{Nested: true, Forbidden: true})
	truncated := filepath.Join(dir, "cut.safetensors")
	data, err := os.ReadFile(good)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(truncated, data[:len(data)-10], 0o644))
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown architecture", []string{unknown}, "unknown checkpoint layout: none of the keys that identify a model type is present"},
		{"pickle outside the allow-list", []string{pickle}, "refusing to load"},
		{"truncated", []string{truncated}, "cut.safetensors"},
		{"missing file", []string{filepath.Join(dir, "none.ckpt")}, "no such file"},
		{"bad type", []string{good, "--type", "sd9"}, `--type "sd9": use auto or one of sd15, sd15-inpaint`},
		{"wrong type", []string{good, "--type", "sd15-inpaint"}, "not Stable Diffusion 1.x inpainting"},
		{"bad variant", []string{good, "--variant", "fp8"}, `--variant "fp8"`},
		{"bad dtype", []string{good, "--dtype", "int8"}, `--dtype "int8"`},
		{"bad shard size", []string{good, "--max-shard-size", "lots"}, "--max-shard-size"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			var stdout, stderr bytes.Buffer
			args := append([]string{"convert", tc.args[0], out}, tc.args[1:]...)
			assert.Equal(t, ExitUsage, Run(args, &stdout, &stderr))
			assert.Contains(t, stderr.String(), tc.want)
			assert.NoDirExists(t, out)
			_, err := os.Stat(converttest.MarkerFile)
			assert.ErrorIs(t, err, os.ErrNotExist)
		})
	}
}

func TestConvertHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	assert.Equal(t, ExitOK, Run([]string{"help", "convert"}, &stdout, &stderr))
	assert.Contains(t, stdout.String(), "auto (default), or one of: sd15, sd15-inpaint")
}

func TestConvertCommandSDXL(t *testing.T) {
	isolateUserCache(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "sd_xl_base.safetensors")
	converttest.WriteSafetensors(t, src, converttest.SDXL(converttest.Options{DType: tensors.F16}))
	out := filepath.Join(dir, "out")
	var stdout, stderr bytes.Buffer
	require.Equal(t, ExitOK, Run([]string{"convert", src, out}, &stdout, &stderr), stderr.String())
	for _, want := range []string{
		"detected Stable Diffusion XL base (sdxl):\n",
		"  conditioner.embedders.1.model.transformer.resblocks.9.mlp.c_proj.bias is present: SDXL base's second text encoder (OpenCLIP ViT-bigG)\n",
		"  CLIP's contrastive logit scale, unused by the text encoder: conditioner.embedders.1.model.logit_scale\n",
		"  text_encoder_2 CLIPTextModelWithProjection   517 tensors",
		"verified: 2641 tensors",
	} {
		assert.Contains(t, stdout.String(), want)
	}
	assert.FileExists(t, filepath.Join(out, "tokenizer_2", "vocab.json"))
}

func TestConvertCommandFlux(t *testing.T) {
	isolateUserCache(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "flux1-schnell.safetensors")
	converttest.WriteSafetensors(t, src, converttest.Flux(false, converttest.Options{DType: tensors.BF16}))
	out := filepath.Join(dir, "out")
	var stdout, stderr bytes.Buffer
	require.Equal(t, ExitOK, Run([]string{"convert", src, out}, &stdout, &stderr), stderr.String())
	for _, want := range []string{
		"detected FLUX.1 schnell (transformer) (flux-schnell):\n",
		"  guidance_in.in_layer.bias is absent: no guidance embedder, which is FLUX.1 schnell\n",
		"  transformer    FluxTransformer2DModel       1156 tensors",
		"(from the top-level keys)",
		"valid: loads as diffusers loads a model folder\n",
		"verified: 1156 tensors",
	} {
		assert.Contains(t, stdout.String(), want)
	}
	assert.FileExists(t, filepath.Join(out, "config.json"))
	assert.FileExists(t, filepath.Join(out, "diffusion_pytorch_model.safetensors"))
}

// --config-from reads the configs from a repository of the Hub given by
// --endpoint (the emulator, on loopback) with the token of HF_TOKEN; a
// gated repository the token cannot read stops the conversion, saying so,
// and the token is in no output.
func TestConvertConfigFrom(t *testing.T) {
	const otherTok = "hf_someoneElseToken000000000000000"
	refs := convert.EmbeddedConfigs(convert.SD15)
	url := converttest.ServeRepos(t, map[string]fs.FS{"refs/open": refs, "refs/gated": refs},
		converttest.HubOptions{Gated: []string{"refs/gated"}, Tokens: map[string]string{otherTok: "someone"}})

	t.Setenv("HF_TOKEN", otherTok)
	dir := t.TempDir()
	src := writeSD15Checkpoint(t, dir)
	var stdout, stderr bytes.Buffer
	out := filepath.Join(dir, "out")
	code := Run([]string{"convert", "--endpoint", url, "--config-from", "refs/open@main", src, out}, &stdout, &stderr)
	require.Equal(t, ExitOK, code, stderr.String())
	assert.Contains(t, stdout.String(), "configs and tokenizer files from refs/open on the Hub\n")
	assert.FileExists(t, filepath.Join(out, "tokenizer", "vocab.json"))

	stdout.Reset()
	stderr.Reset()
	out2 := filepath.Join(dir, "out2")
	code = Run([]string{"convert", "--endpoint", url, "--config-from", "refs/gated", src, out2}, &stdout, &stderr)
	assert.Equal(t, ExitUsage, code)
	assert.Contains(t, stderr.String(), "refs/gated: it is gated or private")
	assert.NoDirExists(t, out2)
	assert.NotContains(t, stdout.String()+stderr.String(), otherTok)
}

// An SD 2.x checkpoint converts with the configs of
// stabilityai/stable-diffusion-2-1, read from the Hub of --endpoint, and
// the result validates against it.
func TestConvertSD2Command(t *testing.T) {
	isolateUserCache(t)
	url := converttest.ServeRepos(t, map[string]fs.FS{"stabilityai/stable-diffusion-2-1": converttest.SD2Reference()}, converttest.HubOptions{})
	t.Setenv("HF_TOKEN", "")

	dir := t.TempDir()
	src := filepath.Join(dir, "v2-1_768-ema-pruned.safetensors")
	converttest.WriteSafetensors(t, src, converttest.SD2(converttest.Options{}))
	out := filepath.Join(dir, "out")
	var stdout, stderr bytes.Buffer
	code := Run([]string{"convert", "--endpoint", url, src, out}, &stdout, &stderr)
	require.Equal(t, ExitOK, code, stderr.String())
	for _, want := range []string{
		"detected Stable Diffusion 2.x (sd2):\n",
		"configs and tokenizer files from stabilityai/stable-diffusion-2-1 on the Hub\n",
		"OpenCLIP's last layer",
		"  text_encoder   CLIPTextModel                 372 tensors",
		"valid: loads as diffusers loads a pipeline folder\n",
	} {
		assert.Contains(t, stdout.String(), want)
	}

	stdout.Reset()
	stderr.Reset()
	code = Run([]string{"validate", out, "--against", src}, &stdout, &stderr)
	assert.Equal(t, ExitOK, code, stderr.String()+stdout.String())
}
