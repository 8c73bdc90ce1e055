package conformance_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/hub"
	"modelpub/core/hub/hubemu"
	"modelpub/core/hub/xet"
)

// TestOfficialClientXetUpload: @huggingface/hub's uploadFiles (Xet on, its
// default) uploads to the emulator, which offers the "xet" transfer as the
// Hub does; the bytes must reach the emulator's CAS as xorbs and a shard
// (no LFS PUT at all), the commit must take them, and our Go client must
// read every file back byte for byte.
func TestOfficialClientXetUpload(t *testing.T) {
	node := requireTool(t, "node")
	npm := requireTool(t, "npm")
	jsDir := installClient(t, npm)

	srv, err := hubemu.New(hubemu.Options{Dir: t.TempDir(), Tokens: map[string]string{token: user}, Record: true})
	require.NoError(t, err)
	_, err = srv.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })

	big := random(t, 3<<20+4321)
	half := random(t, 1<<20)
	files := map[string][]byte{
		"notes.txt":                   []byte("uploaded by @huggingface/hub over Xet\n"),
		"unet/config.json":            []byte(`{"_class_name": "UNet2DConditionModel"}` + "\n"),
		"unet/model.safetensors":      big,
		"vae/twice.safetensors":       append(append([]byte{}, half...), half...), // chunks repeat inside the file
		"vae/small.safetensors":       random(t, 100<<10),
		"unet/model-copy.safetensors": big, // the same object twice
	}
	dir := writeFolder(t, files)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(jsDir, "scenario.mjs"), "--repo", jsRepo, "--upload", dir)
	cmd.Dir = jsDir
	cmd.Env = append(os.Environ(), "HUB_ENDPOINT="+srv.URL(), "HUB_TOKEN="+token)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	t.Logf("scenario.mjs:\n%s", stderr.String())
	require.NoError(t, err, "scenario.mjs failed:\n%s", stderr.String())
	var rep scenarioReport
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &rep), "scenario.mjs stdout: %q", stdout.String())
	t.Logf("%s on node %s, commit %s", rep.Library, rep.Node, rep.Commit)
	assert.Len(t, rep.Commit, 40, "uploadFiles commit oid")
	for p, b := range files {
		assert.Equal(t, sumOf(b), rep.Uploaded[p], "JS read %s as written", p)
		assert.Equal(t, int64(len(b)), rep.Listed[p], "JS listFiles size of %s", p)
	}

	// The bytes went to the CAS: xorbs and a shard, all accepted, and not
	// one LFS upload.
	var xorbs, shards, tokens, recons int
	for _, r := range srv.Requests() {
		switch {
		case r.Class == hubemu.ClassLFSUpload || r.Class == hubemu.ClassLFSComplete:
			t.Errorf("an LFS upload request arrived with Xet offered: %s %s", r.Method, r.Path)
		case r.Class == hubemu.ClassXet && r.Method == http.MethodPost && strings.HasPrefix(r.Path, "/v1/xorbs/"):
			xorbs++
			assert.Less(t, r.Status, 300, "%s %s answered %d", r.Method, r.Path, r.Status)
		case r.Class == hubemu.ClassXet && r.Method == http.MethodPost && r.Path == "/v1/shards":
			shards++
			assert.Less(t, r.Status, 300, "%s %s answered %d", r.Method, r.Path, r.Status)
		case r.Class == hubemu.ClassXet && r.Method == http.MethodGet && strings.Contains(r.Path, "/reconstructions/"):
			recons++
			assert.Less(t, r.Status, 300, "%s %s answered %d", r.Method, r.Path, r.Status)
		case r.Class == hubemu.ClassXetToken:
			tokens++
			assert.Equal(t, http.StatusOK, r.Status, "%s %s", r.Method, r.Path)
		}
	}
	// downloadFile read the Xet-stored files back through the CAS: the
	// resolve answered their Xet file info, the client asked for a read
	// token and the files' reconstructions.
	assert.GreaterOrEqual(t, recons, 3, "reconstruction queries of downloadFile")
	assert.GreaterOrEqual(t, tokens, 1, "xet-read-token requests of downloadFile")
	assert.GreaterOrEqual(t, xorbs, 1, "xorb uploads")
	assert.GreaterOrEqual(t, shards, 1, "shard uploads")
	t.Logf("CAS: %d xorb and %d shard uploads, %d reconstructions, %d token requests", xorbs, shards, recons, tokens)
	for _, p := range []string{"unet/model.safetensors", "vae/twice.safetensors", "vae/small.safetensors"} {
		sum := sha256.Sum256(files[p])
		_, ok := srv.XetFile(hex.EncodeToString(sum[:]))
		assert.True(t, ok, "the CAS holds %s (by its sha256)", p)
	}

	// Our Go client reads the repo back: listing and bytes.
	c, err := hub.NewClient(hub.Options{Endpoint: srv.URL(), Token: token, Version: "conformance"})
	require.NoError(t, err)
	id, err := hub.ParseRepoID(jsRepo)
	require.NoError(t, err)
	tree, err := c.ListTree(ctx, id, "main", "", true)
	require.NoError(t, err)
	sizes := map[string]int64{}
	for _, e := range tree {
		if e.Type == "file" {
			sizes[e.Path] = e.Size
		}
	}
	for p, b := range files {
		assert.Equal(t, int64(len(b)), sizes[p], "Go ListTree size of %s", p)
		assert.Equal(t, sumOf(b), sumOf(download(t, srv.URL(), jsRepo, p)), "Go downloads %s byte for byte", p)
	}
	got, err := c.ReadFile(ctx, id, "main", "unet/config.json")
	require.NoError(t, err)
	assert.Equal(t, files["unet/config.json"], got)
}

// TestOfficialClientDownloadsOurXetUpload: our client uploads a folder
// through Xet (xorbs and shards, no LFS PUT) and @huggingface/hub's
// listFiles and downloadFile (fetch.mjs) read every file back, byte for
// byte, through the CAS's reconstructions.
func TestOfficialClientDownloadsOurXetUpload(t *testing.T) {
	node := requireTool(t, "node")
	npm := requireTool(t, "npm")
	jsDir := installClient(t, npm)
	b, err := os.ReadFile("fetch.mjs")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(jsDir, "fetch.mjs"), b, 0o644))

	srv, err := hubemu.New(hubemu.Options{Dir: t.TempDir(), Tokens: map[string]string{token: user}, Record: true})
	require.NoError(t, err)
	_, err = srv.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })

	half := random(t, 1<<20)
	files := map[string][]byte{
		"README.md":                     []byte("# uploaded by modelpub over Xet\n"),
		"unet/config.json":              []byte(`{"_class_name": "UNet2DConditionModel"}` + "\n"),
		"unet/model.safetensors":        random(t, 3<<20+4321),
		"vae/twice.safetensors":         append(append([]byte{}, half...), half...),
		"vae/small.safetensors":         random(t, 100<<10),
		"text_encoder/same.safetensors": random(t, 64<<10),
	}
	files["text_encoder/copy.safetensors"] = files["text_encoder/same.safetensors"]
	dir := writeFolder(t, files)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := hub.NewClient(hub.Options{Endpoint: srv.URL(), Token: token, Version: "conformance", Transfer: hub.TransferXet})
	require.NoError(t, err)
	id, err := hub.ParseRepoID(goRepo)
	require.NoError(t, err)
	_, err = c.CreateRepo(ctx, id, hub.CreateRepoOptions{})
	require.NoError(t, err)
	cache, err := xet.OpenShardCache(t.TempDir(), 0, nil)
	require.NoError(t, err)
	info, err := c.UploadFolder(ctx, id, dir, hub.UploadOptions{CommitMessage: "conformance: Xet upload from Go", XetCache: cache})
	require.NoError(t, err)
	require.False(t, info.NoChanges)
	var xorbs, shards int
	for _, r := range srv.Requests() {
		switch {
		case r.Class == hubemu.ClassLFSUpload || r.Class == hubemu.ClassLFSComplete:
			t.Errorf("an LFS upload request arrived through Xet: %s %s", r.Method, r.Path)
		case r.Class == hubemu.ClassXet && r.Method == http.MethodPost && strings.HasPrefix(r.Path, "/v1/xorbs/"):
			xorbs++
		case r.Class == hubemu.ClassXet && r.Method == http.MethodPost && r.Path == "/v1/shards":
			shards++
		}
	}
	assert.Positive(t, xorbs, "xorb uploads")
	assert.Positive(t, shards, "shard uploads")
	srv.ResetRequests()

	cmd := exec.CommandContext(ctx, node, filepath.Join(jsDir, "fetch.mjs"), "--repo", goRepo)
	cmd.Dir = jsDir
	cmd.Env = append(os.Environ(), "HUB_ENDPOINT="+srv.URL(), "HUB_TOKEN="+token)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "fetch.mjs failed:\n%s", stderr.String())
	var rep struct {
		Listed  map[string]int64   `json:"listed"`
		Fetched map[string]fileSum `json:"fetched"`
	}
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &rep), "fetch.mjs stdout: %q", stdout.String())
	for p, b := range files {
		assert.Equal(t, int64(len(b)), rep.Listed[p], "JS listFiles size of %s", p)
		assert.Equal(t, sumOf(b), rep.Fetched[p], "JS downloads %s byte for byte", p)
	}
	assert.Len(t, rep.Fetched, len(files)+1, "nothing else in the repo but .gitattributes")
	var recons int
	for _, r := range srv.Requests() {
		if r.Class == hubemu.ClassXet && r.Method == http.MethodGet && strings.Contains(r.Path, "/reconstructions/") {
			recons++
			assert.Less(t, r.Status, 300, "%s %s answered %d", r.Method, r.Path, r.Status)
		}
	}
	assert.GreaterOrEqual(t, recons, 4, "downloadFile read the large files through the CAS")
}
