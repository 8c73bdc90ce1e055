package convert

import (
	"context"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/convert/converttest"
	"modelpub/core/hub"
	"modelpub/core/hub/hubemu"
)

const (
	refsTok  = "hf_refsOwnerToken0000000000000000"
	otherTok = "hf_someoneElseToken000000000000000"
)

// startRefHub starts the Hub emulator on loopback with the repositories
// "refs/sd15" (the embedded SD 1.5 configs, with weights, an index file, a
// safety checker and a README beside them, as the real repository has)
// and "refs/flux" (a FluxPipeline repository's transformer config).
func startRefHub(t *testing.T) (*hubemu.Server, *hub.Client) {
	t.Helper()
	srv, err := hubemu.New(hubemu.Options{Dir: t.TempDir(), Tokens: map[string]string{refsTok: "refs", otherTok: "someone"}})
	require.NoError(t, err)
	_, err = srv.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	owner, err := hub.NewClient(hub.Options{Endpoint: srv.URL(), Token: refsTok})
	require.NoError(t, err)

	sd15 := t.TempDir()
	require.NoError(t, os.CopyFS(sd15, os.DirFS("configs/sd15")))
	require.NoError(t, os.Remove(filepath.Join(sd15, "SOURCES.md")))
	extra := map[string]string{
		"README.md": "---\nlicense: openrail\n---\n# a reference\n",
		"unet/diffusion_pytorch_model.safetensors":            "weights: never fetched",
		"unet/diffusion_pytorch_model.safetensors.index.json": `{"metadata": {}, "weight_map": {}}`,
		"text_encoder/pytorch_model.bin":                      "weights: never fetched",
		"safety_checker/config.json":                          `{"_name_or_path": "x"}`,
		"v1-5-pruned.ckpt":                                    "weights: never fetched",
	}
	require.NoError(t, os.MkdirAll(filepath.Join(sd15, "safety_checker"), 0o755))
	for rel, data := range extra {
		require.NoError(t, os.WriteFile(filepath.Join(sd15, rel), []byte(data), 0o644))
	}

	flux := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(flux, "transformer"), 0o755))
	cfg, err := os.ReadFile("configs/flux/config.json")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(flux, "transformer", "config.json"), cfg, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(flux, "model_index.json"),
		[]byte(`{"_class_name": "FluxPipeline", "transformer": ["diffusers", "FluxTransformer2DModel"], "vae": ["diffusers", "AutoencoderKL"]}`), 0o644))

	ctx := context.Background()
	for name, dir := range map[string]string{"sd15": sd15, "flux": flux} {
		id := hub.RepoID{Namespace: "refs", Name: name}
		_, err := owner.CreateRepo(ctx, id, hub.CreateRepoOptions{})
		require.NoError(t, err)
		_, err = owner.UploadFolder(ctx, id, dir, hub.UploadOptions{})
		require.NoError(t, err)
	}
	return srv, owner
}

// readLog records the paths a HubReader is asked for.
type readLog struct {
	HubReader
	mu    sync.Mutex
	paths []string
}

func (l *readLog) ReadFile(ctx context.Context, id hub.RepoID, rev, p string) ([]byte, error) {
	l.mu.Lock()
	l.paths = append(l.paths, p)
	l.mu.Unlock()
	return l.HubReader.ReadFile(ctx, id, rev, p)
}

// FetchConfigs reads model_index.json and the configs and tokenizer files
// of the components it names, never weights, index files, the card or
// folders it does not name.
func TestFetchConfigsTakesNoWeights(t *testing.T) {
	srv, _ := startRefHub(t)
	c, err := hub.NewClient(hub.Options{Endpoint: srv.URL()})
	require.NoError(t, err)
	log := &readLog{HubReader: c}
	cfg, err := FetchConfigs(context.Background(), log, "refs/sd15", "")
	require.NoError(t, err)
	var got []string
	require.NoError(t, fs.WalkDir(cfg, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			got = append(got, p)
		}
		return err
	}))
	want := []string{"feature_extractor/preprocessor_config.json", "model_index.json", "safety_checker/config.json",
		"scheduler/scheduler_config.json", "text_encoder/config.json", "tokenizer/merges.txt",
		"tokenizer/special_tokens_map.json", "tokenizer/tokenizer_config.json", "tokenizer/vocab.json",
		"unet/config.json", "vae/config.json"}
	assert.Equal(t, want, got)
	sort.Strings(log.paths)
	assert.Equal(t, want, log.paths, "only these were downloaded")
	for _, p := range want[1:] {
		if p == "safety_checker/config.json" {
			continue
		}
		data, err := fs.ReadFile(cfg, p)
		require.NoError(t, err)
		orig, err := os.ReadFile(filepath.Join("configs/sd15", p))
		require.NoError(t, err)
		assert.Equal(t, orig, data, "%s byte for byte", p)
	}
}

// A conversion with --config-from writes what it writes with the embedded
// configs when the repository holds the same ones; the safety checker the
// pipeline registers as None is not written; Flux takes its transformer's
// config from the repository's transformer folder.
func TestConvertWithConfigFrom(t *testing.T) {
	srv, _ := startRefHub(t)
	c, err := hub.NewClient(hub.Options{Endpoint: srv.URL()})
	require.NoError(t, err)
	dir := t.TempDir()

	src := filepath.Join(dir, "m.safetensors")
	converttest.WriteSafetensors(t, src, converttest.SD15(converttest.Options{}))
	embedded := filepath.Join(dir, "embedded")
	_, err = Convert(context.Background(), src, embedded, Options{SkipVerify: true})
	require.NoError(t, err)
	fetched := filepath.Join(dir, "fetched")
	res, err := Convert(context.Background(), src, fetched, Options{ConfigFrom: "refs/sd15", Hub: c})
	require.NoError(t, err)
	assert.Equal(t, "refs/sd15", res.Plan.ConfigFrom)
	assert.True(t, res.Verification.OK())
	assert.NoDirExists(t, filepath.Join(fetched, "safety_checker"))
	for _, f := range res.Files {
		if f == "README.md" {
			continue
		}
		assert.Equal(t, fileHash(t, filepath.Join(embedded, f)), fileHash(t, filepath.Join(fetched, f)), "%s", f)
	}

	fsrc := filepath.Join(dir, "flux.safetensors")
	converttest.WriteSafetensors(t, fsrc, converttest.Flux(false, converttest.Options{}))
	fres, err := Convert(context.Background(), fsrc, filepath.Join(dir, "flux"), Options{ConfigFrom: "refs/flux", Hub: c})
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"README.md", "config.json", "diffusion_pytorch_model.safetensors"}, fres.Files)
	cfg := readJSON(t, filepath.Join(dir, "flux", "config.json"))
	assert.Equal(t, false, cfg["guidance_embeds"])
	assert.NotContains(t, cfg, "quantization_config")
}

// A reference repository that cannot be read stops the conversion before
// anything is written, saying why: gated (with and without a token), not
// found, not a pipeline, no download allowed.
func TestConvertConfigFromRefusals(t *testing.T) {
	srv, owner := startRefHub(t)
	gate, err := http.NewRequest(http.MethodPut, srv.URL()+"/api/models/refs/sd15/settings", strings.NewReader(`{"gated": "auto"}`))
	require.NoError(t, err)
	gate.Header.Set("Authorization", "Bearer "+refsTok)
	gate.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(gate)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	anon, err := hub.NewClient(hub.Options{Endpoint: srv.URL()})
	require.NoError(t, err)
	other, err := hub.NewClient(hub.Options{Endpoint: srv.URL(), Token: otherTok})
	require.NoError(t, err)
	dir := t.TempDir()
	src := filepath.Join(dir, "m.safetensors")
	converttest.WriteSafetensors(t, src, converttest.SD15(converttest.Options{}))

	cases := []struct {
		name     string
		opts     Options
		is       []error
		contains string
	}{
		{"gated, no token", Options{ConfigFrom: "refs/sd15", Hub: anon}, []error{ErrConfigRepo, hub.ErrForbidden}, "gated"},
		{"gated, a token without access", Options{ConfigFrom: "refs/sd15", Hub: other}, []error{ErrConfigRepo, hub.ErrForbidden}, "modelpub login"},
		{"missing", Options{ConfigFrom: "refs/nope", Hub: anon}, []error{ErrConfigRepo, hub.ErrRepoNotFound}, "no such repository"},
		{"not a repo id", Options{ConfigFrom: "nope", Hub: anon}, []error{ErrConfigRepo}, "not a repo id"},
		{"no download", Options{ConfigFrom: "refs/flux"}, []error{ErrOptions}, "no download is allowed"},
		{"not a pipeline of this type", Options{ConfigFrom: "refs/flux", Hub: anon}, nil, "with the configs of refs/flux"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Convert(context.Background(), src, filepath.Join(dir, "out"), tc.opts)
			require.Error(t, err)
			for _, e := range tc.is {
				assert.True(t, errors.Is(err, e), "%v is %v", err, e)
			}
			assert.Contains(t, err.Error(), tc.contains)
			assert.NotContains(t, err.Error(), otherTok)
			assert.NoDirExists(t, filepath.Join(dir, "out"))
		})
	}

	// The owner still reads it: gating is what refused the others.
	_, err = FetchConfigs(context.Background(), owner, "refs/sd15", "")
	require.NoError(t, err)
}

// The default reference repositories are diffusers' (DIFFUSERS_DEFAULT_PIPELINE_PATHS).
func TestDefaultConfigRepo(t *testing.T) {
	for typ, want := range map[Type]string{
		SD15: "stable-diffusion-v1-5/stable-diffusion-v1-5", SD15Inpaint: "stable-diffusion-v1-5/stable-diffusion-inpainting",
		SD2: "stabilityai/stable-diffusion-2-1", SD2Inpaint: "stabilityai/stable-diffusion-2-inpainting",
		SDXL: "stabilityai/stable-diffusion-xl-base-1.0", SDXLRefiner: "stabilityai/stable-diffusion-xl-refiner-1.0",
		SDXLInpaint: "diffusers/stable-diffusion-xl-1.0-inpainting-0.1",
		FluxDev:     "black-forest-labs/FLUX.1-dev", FluxSchnell: "black-forest-labs/FLUX.1-schnell", SD3: "stabilityai/stable-diffusion-3-medium-diffusers",
		SD35: "stabilityai/stable-diffusion-3.5-large", ControlNet: "",
	} {
		assert.Equal(t, want, DefaultConfigRepo(typ), "%s", typ)
	}
	for typ, want := range map[Type]bool{SD15: false, SDXL: false, FluxDev: false, SD2: true, SD2Inpaint: true, SDXLRefiner: true, SDXLInpaint: true, SD3: true, SD35: true, ControlNet: false} {
		assert.Equal(t, want, NeedsConfigs(typ), "%s", typ)
	}
}
