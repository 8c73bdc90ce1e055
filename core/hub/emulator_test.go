package hub_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/hub"
	"modelpub/core/hub/hubemu"
)

// The client against the emulator: two independent implementations of the
// same wire protocol (neither imports the other) must agree end to end.

const token = "hf_emulatorTestToken0123456789abcdef"

func startEmulator(t *testing.T, faults string) *hubemu.Server {
	t.Helper()
	spec, err := hubemu.ParseFaults(faults)
	require.NoError(t, err)
	srv, err := hubemu.New(hubemu.Options{Dir: t.TempDir(), Tokens: map[string]string{token: "alice"},
		ChunkSize: 1 << 20, Record: true, Faults: spec})
	require.NoError(t, err)
	_, err = srv.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	return srv
}

// modelFolder writes a small pipeline-like folder: a 3 MiB weights file
// (multipart at 1 MiB parts), a 300 KiB binary, and text files.
func modelFolder(t *testing.T) (string, map[string][]byte) {
	t.Helper()
	dir := t.TempDir()
	files := map[string][]byte{
		"model_index.json": []byte(`{"_class_name": "StableDiffusionPipeline"}` + "\n"),
		"README.md":        []byte("---\nlibrary_name: diffusers\n---\n# test\n"),
		"unet/config.json": []byte(`{"_class_name": "UNet2DConditionModel"}` + "\n"),
	}
	weights := make([]byte, 3<<20+12345)
	_, _ = rand.Read(weights)
	files["unet/diffusion_pytorch_model.safetensors"] = weights
	small := make([]byte, 300<<10)
	_, _ = rand.Read(small)
	files["vae/diffusion_pytorch_model.safetensors"] = small
	for p, b := range files {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, p), b, 0o644))
	}
	return dir, files
}

func download(t *testing.T, base, repo, rev, path string) []byte {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("%s/%s/resolve/%s/%s", base, repo, rev, path))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, path)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return b
}

// newClient is a client of the emulator that uploads through Git LFS
// (basic and multipart): the tests of that path use it; the Xet ones use
// newXetClient.
func newClient(t *testing.T, srv *hubemu.Server, logs *bytes.Buffer) *hub.Client {
	t.Helper()
	c, err := hub.NewClient(hub.Options{Endpoint: srv.URL(), Token: token, Version: "test", Transfer: hub.TransferLFS,
		Retry: hub.RetryPolicy{MaxRetries: 8, BaseWait: 10 * time.Millisecond, MaxWait: 50 * time.Millisecond},
		Logf:  func(f string, a ...any) { fmt.Fprintf(logs, f+"\n", a...) }})
	require.NoError(t, err)
	return c
}

func TestClientAgainstEmulator(t *testing.T) {
	ctx := context.Background()
	srv := startEmulator(t, "")
	var logs bytes.Buffer
	c := newClient(t, srv, &logs)

	me, err := c.WhoAmI(ctx)
	require.NoError(t, err)
	assert.Equal(t, "alice", me.Name)

	id, err := hub.ParseRepoID("alice/sd15-test")
	require.NoError(t, err)
	url, err := c.CreateRepo(ctx, id, hub.CreateRepoOptions{})
	require.NoError(t, err)
	again, err := c.CreateRepo(ctx, id, hub.CreateRepoOptions{ExistOK: true})
	require.NoError(t, err)
	assert.Equal(t, url, again, "exist_ok: the 409's url")
	_, err = c.CreateRepo(ctx, id, hub.CreateRepoOptions{})
	assert.ErrorIs(t, err, hub.ErrConflict)

	dir, files := modelFolder(t)
	cache, err := hub.OpenHashCache(filepath.Join(t.TempDir(), "hashes.json"))
	require.NoError(t, err)
	info, err := c.UploadFolder(ctx, id, dir, hub.UploadOptions{CommitMessage: "Upload StableDiffusionPipeline", HashCache: cache})
	require.NoError(t, err)
	assert.False(t, info.NoChanges)
	assert.Len(t, info.OID, 40)

	tree, err := c.ListTree(ctx, id, "main", "", true)
	require.NoError(t, err)
	sizes := map[string]int64{}
	for _, e := range tree {
		if e.Type == "file" {
			sizes[e.Path] = e.Size
		}
	}
	for p, b := range files {
		assert.Equal(t, int64(len(b)), sizes[p], p)
		assert.True(t, bytes.Equal(b, download(t, srv.URL(), "alice/sd15-test", "main", p)), "%s downloads byte for byte", p)
	}
	var parts int
	for _, r := range srv.Requests() {
		if r.Class == hubemu.ClassLFSUpload {
			parts++
			assert.False(t, r.Auth, "no token on an upload URL: %s", r.Path)
		}
	}
	assert.GreaterOrEqual(t, parts, 4+1, "the 3 MiB file went up in 1 MiB parts")

	// Unchanged folder: no LFS bytes, no commit.
	srv.ResetRequests()
	info2, err := c.UploadFolder(ctx, id, dir, hub.UploadOptions{HashCache: cache})
	require.NoError(t, err)
	assert.True(t, info2.NoChanges)
	assert.Equal(t, info.OID, info2.OID, "the current head is returned")
	for _, r := range srv.Requests() {
		assert.NotEqual(t, hubemu.ClassLFSUpload, r.Class, "nothing re-sent")
		assert.NotEqual(t, hubemu.ClassCommit, r.Class, "no empty commit")
	}

	// A pull request with one changed file.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "README.md"), []byte("---\nlibrary_name: diffusers\n---\n# v2\n"), 0o644))
	pr, err := c.UploadFolder(ctx, id, dir, hub.UploadOptions{CreatePR: true, HashCache: cache})
	require.NoError(t, err)
	assert.Equal(t, "refs/pr/1", pr.PRRevision)
	assert.True(t, strings.HasSuffix(pr.PullRequestURL, "/discussions/1"))
	assert.Equal(t, "# v2\n", strings.SplitN(string(download(t, srv.URL(), "alice/sd15-test", "refs%2Fpr%2F1", "README.md")), "---\n", 3)[2])
	assert.NotContains(t, logs.String(), token)
}

// TestClientAgainstFaultyEmulator uploads through an emulator failing a
// tenth of the upload-related requests (500, 503, 429, dropped and lost
// responses): every upload completes, once, with identical bytes.
func TestClientAgainstFaultyEmulator(t *testing.T) {
	seeds := 20
	if testing.Short() {
		seeds = 3
	}
	dir, files := modelFolder(t)
	for seed := 1; seed <= seeds; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			srv := startEmulator(t, fmt.Sprintf("seed=%d,rate=0.1,endpoints=preupload+lfs-batch+lfs-upload+lfs-complete+lfs-verify+commit+info", seed))
			var logs bytes.Buffer
			c := newClient(t, srv, &logs)
			id, err := hub.ParseRepoID("alice/flaky")
			require.NoError(t, err)
			_, err = c.CreateRepo(context.Background(), id, hub.CreateRepoOptions{ExistOK: true})
			require.NoError(t, err)
			cache, err := hub.OpenHashCache(filepath.Join(t.TempDir(), "hashes.json"))
			require.NoError(t, err)
			_, err = c.UploadFolder(context.Background(), id, dir, hub.UploadOptions{HashCache: cache})
			require.NoError(t, err, logs.String())
			for p, b := range files {
				assert.True(t, bytes.Equal(b, download(t, srv.URL(), "alice/flaky", "main", p)), p)
			}
			var commits int
			for _, r := range srv.Requests() {
				if r.Class == hubemu.ClassCommit && r.Status == http.StatusOK {
					commits++
				}
			}
			assert.LessOrEqual(t, commits, 1, "never a duplicate commit")
		})
	}
}

func TestReadFile(t *testing.T) {
	srv := startEmulator(t, "")
	var logs bytes.Buffer
	c := newClient(t, srv, &logs)
	ctx := context.Background()
	dir, files := modelFolder(t)
	cache, err := hub.OpenHashCache(filepath.Join(t.TempDir(), "hashes.json"))
	require.NoError(t, err)
	id, err := hub.ParseRepoID("alice/readme")
	require.NoError(t, err)
	_, err = c.CreateRepo(ctx, id, hub.CreateRepoOptions{})
	require.NoError(t, err)
	_, err = c.UploadFolder(ctx, id, dir, hub.UploadOptions{HashCache: cache})
	require.NoError(t, err)

	got, err := c.ReadFile(ctx, id, "", "README.md")
	require.NoError(t, err)
	assert.Equal(t, files["README.md"], got)
	got, err = c.ReadFile(ctx, id, "main", "unet/config.json")
	require.NoError(t, err)
	assert.Equal(t, files["unet/config.json"], got)

	_, err = c.ReadFile(ctx, id, "", "nope.md")
	assert.ErrorIs(t, err, hub.ErrEntryNotFound)
	_, err = c.ReadFile(ctx, hub.RepoID{Namespace: "alice", Name: "absent"}, "", "README.md")
	assert.ErrorIs(t, err, hub.ErrRepoNotFound)
	_, err = c.ReadFile(ctx, id, "", "../etc/passwd")
	assert.ErrorIs(t, err, hub.ErrInvalidPath)
}
