package publish_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/card"
	"modelpub/core/hub"
	"modelpub/core/hub/hubemu"
	"modelpub/core/pipeline"
	"modelpub/core/pipeline/pipelinetest"
	"modelpub/core/publish"
	"modelpub/core/tensors"
)

const (
	aliceTok = "hf_alice_publish_secret_0123456789abcdef"
	bobTok   = "hf_bob_publish_secret_0123456789abcdef"
	readTok  = "hf_alice_read_only_secret_0123456789ab"
)

func startHub(t *testing.T) *hubemu.Server {
	t.Helper()
	srv, err := hubemu.New(hubemu.Options{Dir: t.TempDir(), ChunkSize: 1 << 20, Record: true,
		Tokens:     map[string]string{aliceTok: "alice", bobTok: "bob", readTok: "alice"},
		ReadTokens: map[string]bool{readTok: true},
		Orgs:       map[string]map[string]string{"studio": {"alice": "write", "bob": "read"}}})
	require.NoError(t, err)
	_, err = srv.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	return srv
}

// sd15 writes a small synthetic SD-1.5 folder (a few MB) and returns it.
func sd15(t *testing.T, o pipelinetest.Options) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "sd15")
	if o.Scale == 0 {
		o.Scale = 0.001
	}
	_, err := pipelinetest.WriteSD15(context.Background(), dir, o)
	require.NoError(t, err)
	return dir
}

// recorder collects events safely and checks they never carry a token.
type recorder struct {
	mu     sync.Mutex
	events []publish.Event
}

func (r *recorder) add(e publish.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) json(t *testing.T) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, err := json.Marshal(r.events)
	require.NoError(t, err)
	return string(b)
}

func (r *recorder) messages() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, e := range r.events {
		fmt.Fprintf(&b, "%s %s %s\n", e.Step, e.Phase, e.Message)
	}
	return b.String()
}

func options(t *testing.T, srv *hubemu.Server, src, repo string, rec *recorder) publish.Options {
	t.Helper()
	o := publish.Options{Source: src, Repo: repo, Token: aliceTok, CacheDir: t.TempDir(), Version: "test",
		Retry: hub.RetryPolicy{MaxRetries: 3, BaseWait: 5 * time.Millisecond, MaxWait: 20 * time.Millisecond}}
	if srv != nil {
		o.Endpoint = srv.URL()
	}
	if rec != nil {
		o.Events = rec.add
	}
	return o
}

func download(t *testing.T, base, repo, rev, path string) []byte {
	t.Helper()
	resp, err := http.Get(base + "/" + repo + "/resolve/" + rev + "/" + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode, "%s: %s", path, b)
	return b
}

func client(t *testing.T, srv *hubemu.Server) *hub.Client {
	c, err := hub.NewClient(hub.Options{Endpoint: srv.URL(), Token: aliceTok})
	require.NoError(t, err)
	return c
}

// remoteTree lists the files of repo at rev, path → size.
func remoteTree(t *testing.T, srv *hubemu.Server, repo, rev string) map[string]int64 {
	t.Helper()
	id, err := hub.ParseRepoID(repo)
	require.NoError(t, err)
	entries, err := client(t, srv).ListTree(context.Background(), id, rev, "", true)
	require.NoError(t, err)
	out := map[string]int64{}
	for _, e := range entries {
		if e.Type == "file" {
			out[e.Path] = e.Size
		}
	}
	return out
}

// snapshot reads every file under dir, path → bytes.
func snapshot(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)+"@"+st.ModTime().String()] = b
		return nil
	}))
	return out
}

func lfsUploadBytes(srv *hubemu.Server) int64 {
	var n int64
	for _, r := range srv.Requests() {
		if r.Class == hubemu.ClassLFSUpload {
			n += r.BodySize
		}
	}
	return n
}

func countClass(srv *hubemu.Server, class string) int {
	n := 0
	for _, r := range srv.Requests() {
		if r.Class == class {
			n++
		}
	}
	return n
}

// A pipeline saved with sharding and an fp16 variant lands on the Hub byte
// for byte as staged; the card says what was asked; a second run sends
// nothing and makes no commit; the source is never touched; no event and
// no recorded request carries the token to storage.
func TestPublishEndToEnd(t *testing.T) {
	ctx := context.Background()
	srv := startHub(t)
	src := sd15(t, pipelinetest.Options{Seed: 1})
	before := snapshot(t, src)
	rec := &recorder{}
	o := options(t, srv, src, "alice/sd15-test", rec)
	o.MaxShardSize = 1 << 20
	o.Variant = "fp16"
	o.License = "creativeml-openrail-m"
	o.BaseModel = "runwayml/stable-diffusion-v1-5"
	o.KeepStaging = true // compared below, and reused by the second run

	res, err := publish.Run(ctx, o)
	require.NoError(t, err, rec.messages())
	assert.Equal(t, "alice/sd15-test", res.Repo)
	assert.False(t, res.AsIs)
	assert.False(t, res.NoChanges)
	assert.Contains(t, res.URL, srv.URL()+"/alice/sd15-test/commit/")
	assert.Equal(t, res.URL, res.CommitURL)
	require.NotNil(t, res.Report)
	assert.True(t, res.Report.OK())

	// The staged folder has shards and the variant, as diffusers names them.
	staged := map[string]bool{}
	for _, f := range res.Files {
		staged[f.Path] = true
	}
	assert.True(t, staged["unet/diffusion_pytorch_model.safetensors.index.json"], "unet sharded: %v", staged)
	assert.True(t, staged["unet/"+tensors.IndexFileName("diffusion_pytorch_model", "fp16")], "diffusers' variant index name: %v", staged)
	assert.True(t, staged["README.md"])

	// Every file is on the Hub, byte for byte.
	tree := remoteTree(t, srv, "alice/sd15-test", "main")
	for _, f := range res.Files {
		require.Contains(t, tree, f.Path)
		got := download(t, srv.URL(), "alice/sd15-test", "main", f.Path)
		var want []byte
		if f.Path == "README.md" {
			want = res.Card
		} else {
			want, err = os.ReadFile(filepath.Join(res.Folder, filepath.FromSlash(f.Path)))
			require.NoError(t, err)
		}
		assert.True(t, bytes.Equal(want, got), "%s differs", f.Path)
	}
	for p := range tree {
		if p != ".gitattributes" {
			assert.True(t, staged[p], "unexpected file on the Hub: %s", p)
		}
	}

	// The card's metadata is what was asked.
	c, err := card.Parse(download(t, srv.URL(), "alice/sd15-test", "main", "README.md"))
	require.NoError(t, err)
	m := c.Metadata()
	assert.Equal(t, "diffusers", m.LibraryName)
	assert.Equal(t, "creativeml-openrail-m", m.License)
	assert.Equal(t, []string{"runwayml/stable-diffusion-v1-5"}, m.BaseModel)
	assert.Equal(t, "text-to-image", m.PipelineTag)
	assert.Contains(t, m.Tags, "diffusers")
	assert.Contains(t, c.Body(), `variant="fp16"`)

	// The commit message is diffusers' default.
	resp, err := http.Get(srv.URL() + "/api/models/alice/sd15-test/commits/main")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Contains(t, string(body), "Upload StableDiffusionPipeline")

	// Again, unchanged: known to be published already, so no staging, no
	// upload, no commit.
	srv.ResetRequests()
	rec2 := &recorder{}
	o.Events = rec2.add
	res2, err := publish.Run(ctx, o)
	require.NoError(t, err, rec2.messages())
	assert.True(t, res2.NoChanges)
	assert.Equal(t, res.CommitURL, res2.URL)
	assert.Contains(t, rec2.messages(), "nothing to do")
	assert.Zero(t, countClass(srv, hubemu.ClassPreupload))
	assert.Zero(t, countClass(srv, hubemu.ClassCommit))

	// Someone else commits to main: the same inputs go through every step
	// again (the staging reused), and the Hub has every file: no LFS bytes,
	// no commit.
	id, _ := hub.ParseRepoID("alice/sd15-test")
	_, err = client(t, srv).Commit(ctx, id, "main", hub.CommitOptions{Summary: "notes"},
		[]hub.Operation{hub.AddBytes("NOTES.md", []byte("hello\n"))})
	require.NoError(t, err)
	srv.ResetRequests()
	rec3 := &recorder{}
	o.Events = rec3.add
	res3, err := publish.Run(ctx, o)
	require.NoError(t, err, rec3.messages())
	assert.True(t, res3.NoChanges)
	assert.True(t, res3.Reused)
	assert.Equal(t, res.Folder, res3.Folder)
	assert.Zero(t, lfsUploadBytes(srv))
	assert.Zero(t, countClass(srv, hubemu.ClassCommit))
	assert.Contains(t, rec3.messages(), "already checked")

	// The source was only read.
	assert.Equal(t, before, snapshot(t, src))

	// No file Modelpub wrote holds the token.
	require.NoError(t, filepath.WalkDir(o.CacheDir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil // a dangling link of the upload view
		}
		assert.NotContains(t, string(b), aliceTok, p)
		return nil
	}))

	// The token is in no event, and never went to storage URLs.
	for _, r := range [](*recorder){rec, rec2, rec3} {
		assert.NotContains(t, r.json(t), aliceTok)
	}
	for _, r := range srv.Requests() {
		if strings.HasPrefix(r.Path, "/_emu/") {
			assert.False(t, r.Auth, "token sent to storage: %s", r.Path)
		}
	}
}

// --create-pr opens a pull request: refs/pr/N holds the files, main is
// unchanged. A branch gets created and committed to.
func TestPublishPullRequestAndBranch(t *testing.T) {
	ctx := context.Background()
	srv := startHub(t)
	src := sd15(t, pipelinetest.Options{Seed: 2})
	o := options(t, srv, src, "alice/pr-test", nil)
	first, err := publish.Run(ctx, o)
	require.NoError(t, err)
	mainBefore := remoteTree(t, srv, "alice/pr-test", "main")

	o.Variant = "fp16"
	o.CreatePR = true
	o.CommitMessage = "Add the fp16 variant"
	pr, err := publish.Run(ctx, o)
	require.NoError(t, err)
	assert.Contains(t, pr.URL, "/alice/pr-test/discussions/")
	assert.Equal(t, pr.PullRequestURL, pr.URL)
	assert.Equal(t, mainBefore, remoteTree(t, srv, "alice/pr-test", "main"), "main is unchanged")
	prTree := remoteTree(t, srv, "alice/pr-test", "refs/pr/1")
	assert.Contains(t, prTree, "unet/diffusion_pytorch_model.fp16.safetensors")
	id, _ := hub.ParseRepoID("alice/pr-test")
	info, err := client(t, srv).RepoInfo(ctx, id, "main")
	require.NoError(t, err)
	assert.Contains(t, first.CommitURL, info.SHA, "main still at the first commit")

	o.CreatePR = false
	o.Branch = "fp16-work"
	br, err := publish.Run(ctx, o)
	require.NoError(t, err)
	assert.Contains(t, remoteTree(t, srv, "alice/pr-test", "fp16-work"), "unet/diffusion_pytorch_model.fp16.safetensors")
	assert.NotEmpty(t, br.CommitURL)
	assert.Equal(t, mainBefore, remoteTree(t, srv, "alice/pr-test", "main"))
}

// Every refusal comes before any heavy work: nothing is staged and no
// repository is created.
func TestPublishRefusals(t *testing.T) {
	srv := startHub(t)
	src := sd15(t, pipelinetest.Options{Seed: 3})
	tests := []struct {
		name   string
		modify func(o *publish.Options)
		is     error
		says   string
	}{
		{"wrong token", func(o *publish.Options) { o.Token = "hf_wrong" }, hub.ErrUnauthorized, "refused the token"},
		{"read-only token", func(o *publish.Options) { o.Token = readTok }, publish.ErrReadOnlyToken, "write role"},
		{"other user's namespace", func(o *publish.Options) { o.Repo = "bob/model" }, publish.ErrNamespace, "alice, studio"},
		{"org where the role is read", func(o *publish.Options) { o.Token, o.Repo = bobTok, "studio/model" }, publish.ErrNamespace, "bob"},
		{"bad repo id", func(o *publish.Options) { o.Repo = "alice/bad--name" }, hub.ErrInvalidRepoID, "bad--name"},
		{"dataset repo", func(o *publish.Options) { o.Repo = "datasets/alice/data" }, hub.ErrInvalidRepoID, "models"},
		{"no token", func(o *publish.Options) { o.Token = "" }, publish.ErrNoToken, "no Hub token"},
		{"unreachable endpoint", func(o *publish.Options) { o.Endpoint = "http://127.0.0.1:1" }, hub.ErrNetwork, "127.0.0.1:1"},
		{"bad variant", func(o *publish.Options) { o.Variant = "int8" }, pipeline.ErrUnsupportedVariant, "int8"},
		{"both PR and branch", func(o *publish.Options) { o.CreatePR, o.Branch = true, "dev" }, nil, "either a pull request or a branch"},
		{"not a pipeline", func(o *publish.Options) { o.Source = t.TempDir() }, pipeline.ErrNotPipeline, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.ResetRequests()
			o := options(t, srv, src, "alice/refused", nil)
			o.Retry.MaxRetries = -1
			tt.modify(&o)
			start := time.Now()
			_, err := publish.Run(context.Background(), o)
			require.Error(t, err)
			if tt.is != nil {
				assert.ErrorIs(t, err, tt.is)
			}
			assert.Contains(t, err.Error(), tt.says)
			assert.NotContains(t, err.Error(), aliceTok)
			assert.Less(t, time.Since(start), 10*time.Second)
			_, statErr := os.Stat(filepath.Join(o.CacheDir, "staging"))
			assert.True(t, os.IsNotExist(statErr), "nothing staged")
			assert.Zero(t, countClass(srv, hubemu.ClassCreate))
			var se *publish.StepError
			require.ErrorAs(t, err, &se)
		})
	}
}

// A dry run stages, validates and writes the card, lists the files, and
// sends nothing anywhere (not even whoami).
func TestPublishDryRun(t *testing.T) {
	srv := startHub(t)
	src := sd15(t, pipelinetest.Options{Seed: 4})
	o := options(t, srv, src, "alice/dry", nil)
	o.Token = ""
	o.DryRun = true
	o.Variant = "bf16"
	res, err := publish.Run(context.Background(), o)
	require.NoError(t, err)
	assert.Empty(t, srv.Requests())
	assert.True(t, res.DryRun)
	var paths []string
	var total int64
	for _, f := range res.Files {
		paths = append(paths, f.Path)
		total += f.Size
		if strings.HasSuffix(f.Path, ".safetensors") {
			assert.True(t, f.LFS, f.Path)
		}
	}
	assert.Equal(t, total, res.Bytes)
	assert.Contains(t, paths, "unet/diffusion_pytorch_model.bf16.safetensors")
	assert.Contains(t, paths, "model_index.json")
	assert.Contains(t, paths, "README.md")
	assert.Contains(t, string(res.Card), "torch.bfloat16")
}

// A source already in the wanted form (safetensors, variant present) is
// uploaded as it is, with no staging copy.
func TestPublishAsIs(t *testing.T) {
	srv := startHub(t)
	src := sd15(t, pipelinetest.Options{Seed: 5, FP16Variant: []string{"unet", "text_encoder", "vae"}})
	// pipelinetest writes {"format":"pt"}; check our reasoning rather than assume it.
	o := options(t, srv, src, "alice/as-is", nil)
	o.Variant = "fp16"
	res, err := publish.Run(context.Background(), o)
	require.NoError(t, err)
	assert.True(t, res.AsIs)
	assert.Equal(t, src, res.Folder)
	entries, err := os.ReadDir(filepath.Join(o.CacheDir, "staging"))
	if err == nil {
		for _, e := range entries {
			assert.True(t, strings.HasSuffix(e.Name(), ".valid.json"), "no staged copy: %s", e.Name())
		}
	}
	want, err := os.ReadFile(filepath.Join(src, "unet", "diffusion_pytorch_model.fp16.safetensors"))
	require.NoError(t, err)
	assert.Equal(t, want, download(t, srv.URL(), "alice/as-is", "main", "unet/diffusion_pytorch_model.fp16.safetensors"))

	// Asking for a bf16 variant needs a staging.
	o.Variant = "bf16"
	res, err = publish.Run(context.Background(), o)
	require.NoError(t, err)
	assert.False(t, res.AsIs)
}

// The README.md already on the Hub keeps its body and unknown keys; the
// published metadata is added to it. An explicit card replaces the body.
func TestPublishMergesRemoteCard(t *testing.T) {
	ctx := context.Background()
	srv := startHub(t)
	src := sd15(t, pipelinetest.Options{Seed: 6})
	id, _ := hub.ParseRepoID("alice/carded")
	c := client(t, srv)
	_, err := c.CreateRepo(ctx, id, hub.CreateRepoOptions{})
	require.NoError(t, err)
	remote := "---\nthumbnail: cat.png\nlicense: mit\ntags:\n- cats\n---\n# My own words\n\nKeep me.\n"
	_, err = c.Commit(ctx, id, "main", hub.CommitOptions{Summary: "card"}, []hub.Operation{hub.AddBytes("README.md", []byte(remote))})
	require.NoError(t, err)

	o := options(t, srv, src, "alice/carded", nil)
	_, err = publish.Run(ctx, o)
	require.NoError(t, err)
	got, err := card.Parse(download(t, srv.URL(), "alice/carded", "main", "README.md"))
	require.NoError(t, err)
	assert.Equal(t, "# My own words\n\nKeep me.\n", got.Body())
	v, ok := got.Get("thumbnail")
	assert.True(t, ok)
	assert.Equal(t, "cat.png", v)
	m := got.Metadata()
	assert.Equal(t, "mit", m.License, "the Hub's license stays when none is asked")
	assert.Equal(t, "diffusers", m.LibraryName)
	assert.Contains(t, m.Tags, "cats")
	assert.Contains(t, m.Tags, "diffusers")

	explicit, err := card.Parse([]byte("---\nlicense: apache-2.0\n---\n# Replaced\n"))
	require.NoError(t, err)
	o.Card = explicit
	_, err = publish.Run(ctx, o)
	require.NoError(t, err)
	got, err = card.Parse(download(t, srv.URL(), "alice/carded", "main", "README.md"))
	require.NoError(t, err)
	assert.Equal(t, "# My own words\n\nKeep me.\n", got.Body(), "a card's body replaces the Hub's only when asked")
	assert.Equal(t, "apache-2.0", got.Metadata().License, "its metadata wins")

	o.ReplaceBody = true
	_, err = publish.Run(ctx, o)
	require.NoError(t, err)
	got, err = card.Parse(download(t, srv.URL(), "alice/carded", "main", "README.md"))
	require.NoError(t, err)
	assert.Equal(t, "# Replaced\n", got.Body())
	assert.Equal(t, "apache-2.0", got.Metadata().License)
	v, _ = got.Get("thumbnail")
	assert.Equal(t, "cat.png", v, "unknown keys on the Hub survive an explicit card")

	bad, err := card.Parse([]byte("---\nlicense: not-a-license\n---\nx\n"))
	require.NoError(t, err)
	o.Card = bad
	srv.ResetRequests()
	_, err = publish.Run(ctx, o)
	require.ErrorIs(t, err, publish.ErrCard)
	assert.Contains(t, err.Error(), "not-a-license")
	assert.Zero(t, countClass(srv, hubemu.ClassCommit))
}

// A staged folder damaged after staging is caught by validation; its
// files are never uploaded.
func TestPublishCatchesDamagedStaging(t *testing.T) {
	ctx := context.Background()
	srv := startHub(t)
	src := sd15(t, pipelinetest.Options{Seed: 7})
	o := options(t, srv, src, "alice/damaged", nil)
	o.DryRun, o.Token, o.Variant = true, "", "fp16"
	res, err := publish.Run(ctx, o)
	require.NoError(t, err)
	require.False(t, res.AsIs)

	// Flip a byte of tensor data in the staged UNet.
	path := filepath.Join(res.Folder, "unet", "diffusion_pytorch_model.safetensors")
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	b[len(b)-3] ^= 0x40
	require.NoError(t, os.WriteFile(path, b, 0o644))

	o.DryRun, o.Token = false, aliceTok
	_, err = publish.Run(ctx, o)
	require.ErrorIs(t, err, publish.ErrInvalid)
	assert.Contains(t, err.Error(), "unet")
	var se *publish.StepError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, publish.StepValidate, se.Step)
	assert.Zero(t, countClass(srv, hubemu.ClassCommit))
}

// Cancelling stops the job; a later run completes. A second job on the
// same folder meanwhile is refused rather than racing the first.
func TestPublishCancelAndResume(t *testing.T) {
	srv := startHub(t)
	src := sd15(t, pipelinetest.Options{Seed: 8})
	o := options(t, srv, src, "alice/cancel", nil)
	o.Variant = "fp16"
	ctx, cancel := context.WithCancel(context.Background())
	started, proceed := make(chan struct{}), make(chan struct{})
	var once sync.Once
	o.Events = func(e publish.Event) {
		if e.Step == publish.StepStage && e.Bytes > 0 {
			once.Do(func() { close(started); <-proceed })
		}
	}
	done := make(chan error, 1)
	go func() {
		_, err := publish.Run(ctx, o)
		done <- err
	}()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("finished before it could be cancelled: %v", err)
	}
	o2 := o
	o2.Events = nil
	_, err := publish.Run(context.Background(), o2)
	assert.ErrorIs(t, err, publish.ErrBusy)
	cancel()
	close(proceed)
	assert.ErrorIs(t, <-done, context.Canceled)
	entries, _ := os.ReadDir(filepath.Join(o.CacheDir, "staging"))
	for _, e := range entries {
		if e.IsDir() {
			assert.False(t, pipeline.Complete(filepath.Join(o.CacheDir, "staging", e.Name())),
				"a cancelled save leaves no staged folder that passes for complete: %s", e.Name())
		}
	}

	o.Events = nil
	res, err := publish.Run(context.Background(), o)
	require.NoError(t, err)
	assert.NotEmpty(t, res.URL)
	entries, _ = os.ReadDir(filepath.Join(o.CacheDir, "staging"))
	for _, e := range entries {
		assert.False(t, strings.HasPrefix(e.Name(), "."), "temporary folders cleaned: %s", e.Name())
	}
}

// A sharded source is uploaded as it is only when its layout is the one
// the wanted shard size gives.
func TestPublishAsIsNeedsTheWantedLayout(t *testing.T) {
	src := sd15(t, pipelinetest.Options{Seed: 12, MaxShardSize: 1 << 20})
	o := options(t, nil, src, "alice/sharded", nil)
	o.DryRun, o.Token = true, ""
	for _, tt := range []struct {
		size int64
		asIs bool
	}{{0, true}, {1 << 20, true}, {2 << 20, false}, {512 << 10, false}} {
		o.MaxShardSize = tt.size
		res, err := publish.Run(context.Background(), o)
		require.NoError(t, err)
		assert.Equal(t, tt.asIs, res.AsIs, "max shard size %d", tt.size)
	}
}

// A single model folder (config.json and weights, no model_index.json)
// publishes too, staged and reused like a pipeline.
func TestPublishSingleModel(t *testing.T) {
	ctx := context.Background()
	srv := startHub(t)
	src := filepath.Join(sd15(t, pipelinetest.Options{Seed: 13}), "unet")
	o := options(t, srv, src, "alice/just-a-unet", nil)
	o.Variant, o.KeepStaging = "fp16", true
	res, err := publish.Run(ctx, o)
	require.NoError(t, err)
	assert.False(t, res.AsIs)
	tree := remoteTree(t, srv, "alice/just-a-unet", "main")
	assert.Contains(t, tree, "config.json")
	assert.Contains(t, tree, "diffusion_pytorch_model.safetensors")
	assert.Contains(t, tree, "diffusion_pytorch_model.fp16.safetensors")
	c, err := card.Parse(download(t, srv.URL(), "alice/just-a-unet", "main", "README.md"))
	require.NoError(t, err)
	assert.Equal(t, "diffusers", c.Metadata().LibraryName)
	resp, err := http.Get(srv.URL() + "/api/models/alice/just-a-unet/commits/main")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Contains(t, string(body), "Upload model", "diffusers' message for a model class")

	again, err := publish.Run(ctx, o)
	require.NoError(t, err)
	assert.True(t, again.NoChanges)
}

// A folder cloned without git-lfs (pointer files instead of weights) is
// refused at staging, naming the file, before anything is uploaded.
func TestPublishRefusesLFSPointers(t *testing.T) {
	srv := startHub(t)
	src := sd15(t, pipelinetest.Options{Seed: 14})
	pointer := "version https://git-lfs.github.com/spec/v1\noid sha256:" + strings.Repeat("ab", 32) + "\nsize 334643268\n"
	require.NoError(t, os.WriteFile(filepath.Join(src, "vae", "diffusion_pytorch_model.safetensors"), []byte(pointer), 0o644))
	o := options(t, srv, src, "alice/pointers", nil)
	_, err := publish.Run(context.Background(), o)
	require.ErrorIs(t, err, pipeline.ErrLFSPointer)
	assert.Contains(t, err.Error(), "vae/diffusion_pytorch_model.safetensors")
	var se *publish.StepError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, publish.StepStage, se.Step)
	assert.Zero(t, countClass(srv, hubemu.ClassCreate))
}

// After a successful publish the staged folder is removed (a model's worth
// of disk); after a dry run it is kept for the publish that follows.
func TestPublishRemovesTheStagingWhenDone(t *testing.T) {
	ctx := context.Background()
	srv := startHub(t)
	src := sd15(t, pipelinetest.Options{Seed: 15})
	rec := &recorder{}
	o := options(t, srv, src, "alice/tidy", rec)
	o.Variant = "fp16"
	o.DryRun, o.Token = true, ""
	dry, err := publish.Run(ctx, o)
	require.NoError(t, err)
	require.DirExists(t, dry.Folder)

	o.DryRun, o.Token = false, aliceTok
	res, err := publish.Run(ctx, o)
	require.NoError(t, err)
	assert.True(t, res.Reused, "the dry run's staging")
	assert.True(t, res.StagingRemoved)
	assert.NoDirExists(t, res.Folder)
	entries, err := os.ReadDir(filepath.Join(o.CacheDir, "staging"))
	require.NoError(t, err)
	assert.Empty(t, entries, "no staging, no stamp left")
	assert.Contains(t, rec.messages(), "removed the staging folder")
	assert.Contains(t, remoteTree(t, srv, "alice/tidy", "main"), "unet/diffusion_pytorch_model.fp16.safetensors")
}

// A staging cut short (a cancel here; a kill works the same) is resumed by
// the next run: the files it finished are kept.
func TestPublishResumesStaging(t *testing.T) {
	srv := startHub(t)
	src := sd15(t, pipelinetest.Options{Seed: 16, Scale: 0.02})
	o := options(t, srv, src, "alice/resumed", nil)
	o.Variant, o.MaxShardSize = "fp16", 8<<20
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Cancel as soon as the text encoder (the first model saved) is
	// complete in the partial staging folder.
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for ctx.Err() == nil {
			m, _ := filepath.Glob(filepath.Join(o.CacheDir, "staging", "*", "text_encoder", "model*.safetensors*"))
			if len(m) > 0 {
				cancel()
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	_, err := publish.Run(ctx, o)
	cancel()
	<-watched
	require.ErrorIs(t, err, context.Canceled)

	rec := &recorder{}
	o.Events = rec.add
	res, err := publish.Run(context.Background(), o)
	require.NoError(t, err, rec.messages())
	assert.Regexp(t, `resumed: [0-9.]+ [KM]B kept`, rec.messages())
	assert.True(t, res.Report.OK())
	assert.Contains(t, remoteTree(t, srv, "alice/resumed", "main"), "vae/diffusion_pytorch_model.fp16.safetensors")
}

// The "already published" shortcut holds only for the same inputs: a
// changed option or source file goes through the steps again.
func TestPublishShortcutNeedsTheSameInputs(t *testing.T) {
	ctx := context.Background()
	srv := startHub(t)
	src := sd15(t, pipelinetest.Options{Seed: 17})
	o := options(t, srv, src, "alice/inputs", nil)
	_, err := publish.Run(ctx, o)
	require.NoError(t, err)

	run := func() string {
		rec := &recorder{}
		o.Events = rec.add
		_, err := publish.Run(ctx, o)
		require.NoError(t, err)
		return rec.messages()
	}
	assert.Contains(t, run(), "nothing to do")
	o.License = "mit"
	msgs := run()
	assert.NotContains(t, msgs, "nothing to do", "a new license is a new card")
	assert.Contains(t, msgs, "committed")
	assert.Contains(t, run(), "nothing to do")

	cfg := filepath.Join(src, "scheduler", "scheduler_config.json")
	b, err := os.ReadFile(cfg)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(cfg, append(b, '\n'), 0o644))
	assert.NotContains(t, run(), "nothing to do", "a changed source file")
}

// Editing the source's README.md never restages the model: the staging is
// reused and the card made from the new README.md.
func TestPublishReadmeEditReusesTheStaging(t *testing.T) {
	ctx := context.Background()
	srv := startHub(t)
	src := sd15(t, pipelinetest.Options{Seed: 18})
	readme := filepath.Join(src, "README.md")
	require.NoError(t, os.WriteFile(readme, []byte("---\nlicense: mit\n---\n# Mine\n"), 0o644))
	o := options(t, srv, src, "alice/readme-edit", nil)
	o.Variant, o.KeepStaging = "fp16", true
	first, err := publish.Run(ctx, o)
	require.NoError(t, err)
	assert.False(t, first.Reused)

	require.NoError(t, os.WriteFile(readme, []byte("---\nlicense: mit\nthumbnail: cat.png\n---\n# Mine, edited\n"), 0o644))
	again, err := publish.Run(ctx, o)
	require.NoError(t, err)
	assert.True(t, again.Reused, "a README edit does not restage")
	assert.Equal(t, first.Folder, again.Folder)
	assert.False(t, again.NoChanges, "the card changed")
	got, err := card.Parse(download(t, srv.URL(), "alice/readme-edit", "main", "README.md"))
	require.NoError(t, err)
	v, ok := got.Get("thumbnail")
	assert.True(t, ok)
	assert.Equal(t, "cat.png", v, "the new metadata reached the Hub")
}

// A source README.md with broken metadata stops the publish at the card,
// naming the source's file and line (not the staged copy's), before any
// upload.
func TestPublishNamesABrokenSourceReadme(t *testing.T) {
	srv := startHub(t)
	src := sd15(t, pipelinetest.Options{Seed: 19})
	require.NoError(t, os.WriteFile(filepath.Join(src, "README.md"), []byte("---\nlicense: [mit\n---\n# x\n"), 0o644))
	o := options(t, srv, src, "alice/broken-readme", nil)
	o.Variant = "fp16" // staged: the card is read from the staged copy
	_, err := publish.Run(context.Background(), o)
	require.ErrorIs(t, err, publish.ErrCard)
	assert.ErrorIs(t, err, card.ErrInvalidYAML)
	assert.Contains(t, err.Error(), filepath.Join(src, "README.md")+": line ")
	assert.Zero(t, countClass(srv, hubemu.ClassCreate))
}
