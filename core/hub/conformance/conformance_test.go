package conformance_test

// Conformance with the official client: @huggingface/hub (pinned in
// package.json, locked in package-lock.json) runs scenario.mjs against the
// in-process emulator, our Go client runs the same scenario, and each side
// downloads what the other uploaded. Needs node and npm (with access to the
// npm registry, or an npm cache that holds the locked packages); without
// them the test is skipped, except under CI=true where it fails.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/hub"
	"modelpub/core/hub/hubemu"
)

const (
	token     = "hf_conformanceToken0123456789abcdef"
	user      = "alice"
	chunkSize = 1 << 20 // the emulator's multipart chunk size: a few MiB go multipart
	goRepo    = "alice/from-go"
	jsRepo    = "alice/from-js"
)

// scenarioReport is what scenario.mjs prints on stdout.
type scenarioReport struct {
	Library      string             `json:"library"`
	Node         string             `json:"node"`
	User         string             `json:"user"`
	RepoURL      string             `json:"repoUrl"`
	Commit       string             `json:"commit"`
	Uploaded     map[string]fileSum `json:"uploaded"`
	Listed       map[string]int64   `json:"listed"`
	SecondCreate *struct {
		Class      string `json:"class"` // the thrown class, HubApiError
		StatusCode int    `json:"statusCode"`
		Message    string `json:"message"`
	} `json:"secondCreate"`
	Fetched map[string]fileSum `json:"fetched"`
}

type fileSum struct {
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

func sumOf(b []byte) fileSum {
	h := sha256.Sum256(b)
	return fileSum{Size: int64(len(b)), SHA256: hex.EncodeToString(h[:])}
}

// requireTool skips without the tool, but fails under CI=true: CI must run
// the conformance test, not silently skip it.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found in PATH (CI=true: the @huggingface/hub conformance test must run; `make deps-node` installs it)", name)
		}
		t.Skipf("%s not found in PATH: skipping the @huggingface/hub conformance test (`make deps-node` installs node and npm)", name)
	}
	return p
}

// installClient copies package.json, package-lock.json and scenario.mjs to
// a temp folder and runs `npm ci` there, so the source tree never gets a
// node_modules and concurrent runs do not share one. npm's own cache makes
// repeated installs quick.
func installClient(t *testing.T, npm string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"package.json", "package-lock.json", "scenario.mjs"} {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), b, 0o644))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--loglevel=warn")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "npm_config_update_notifier=false")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "npm ci in %s:\n%s", dir, out)
	t.Logf("npm ci: %s", time.Since(start).Round(time.Millisecond))
	return dir
}

// writeFolder writes files under a new temp folder.
func writeFolder(t *testing.T, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for p, b := range files {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, p), b, 0o644))
	}
	return dir
}

func random(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return b
}

func download(t *testing.T, base, repo, path string) []byte {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("%s/%s/resolve/main/%s", base, repo, path))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "GET %s/%s", repo, path)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return b
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// uploadRequests checks that no upload URL (basic PUT, part PUT, multipart
// completion) received an Authorization header, and returns how many part
// or basic PUTs and completions arrived.
func uploadRequests(t *testing.T, srv *hubemu.Server, who string) (puts, completes int) {
	t.Helper()
	for _, r := range srv.Requests() {
		switch r.Class {
		case hubemu.ClassLFSUpload:
			puts++
		case hubemu.ClassLFSComplete:
			completes++
		default:
			continue
		}
		assert.False(t, r.Auth, "%s sent Authorization to an upload URL: %s %s", who, r.Method, r.Path)
		assert.Less(t, r.Status, 300, "%s: %s %s answered %d", who, r.Method, r.Path, r.Status)
	}
	return puts, completes
}

func TestOfficialClientConformance(t *testing.T) {
	start := time.Now()
	node := requireTool(t, "node")
	npm := requireTool(t, "npm")
	jsDir := installClient(t, npm)

	// NoXet: this scenario checks the LFS path (basic and multipart) of
	// both clients; TestOfficialClientXetUpload checks the Xet one.
	srv, err := hubemu.New(hubemu.Options{Dir: t.TempDir(), Tokens: map[string]string{token: user},
		ChunkSize: chunkSize, Record: true, NoXet: true})
	require.NoError(t, err)
	_, err = srv.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	ctx := context.Background()

	// Folder A (Go) and folder B (JS): each a file of a few MiB (multipart
	// at 1 MiB parts), a small binary and text files.
	filesA := map[string][]byte{
		"README.md":                   []byte("# uploaded by the Go client\n"),
		"unet/config.json":            []byte(`{"_class_name": "UNet2DConditionModel"}` + "\n"),
		"unet/model.safetensors":      random(t, 3*chunkSize+12345),
		"vae/small.safetensors":       random(t, 200<<10),
		"tokenizer/vocab with sp.txt": []byte("hello\nworld\n"),
	}
	filesB := map[string][]byte{
		"notes.txt":                      []byte("uploaded by @huggingface/hub\n"),
		"text_encoder/config.json":       []byte(`{"architectures": ["CLIPTextModel"]}` + "\n"),
		"text_encoder/model.safetensors": random(t, 2*chunkSize+777),
	}
	dirA, dirB := writeFolder(t, filesA), writeFolder(t, filesB)

	// (1) The Go client: the same scenario, uploading folder A.
	goStart := time.Now()
	c, err := hub.NewClient(hub.Options{Endpoint: srv.URL(), Token: token, Version: "conformance",
		Retry: hub.RetryPolicy{MaxRetries: 2, BaseWait: 10 * time.Millisecond, MaxWait: 50 * time.Millisecond}})
	require.NoError(t, err)
	me, err := c.WhoAmI(ctx)
	require.NoError(t, err)
	assert.Equal(t, user, me.Name)
	idA, err := hub.ParseRepoID(goRepo)
	require.NoError(t, err)
	_, err = c.CreateRepo(ctx, idA, hub.CreateRepoOptions{})
	require.NoError(t, err)
	cache, err := hub.OpenHashCache(filepath.Join(t.TempDir(), "hashes.json"))
	require.NoError(t, err)
	info, err := c.UploadFolder(ctx, idA, dirA, hub.UploadOptions{CommitMessage: "conformance: upload from Go", HashCache: cache})
	require.NoError(t, err)
	require.False(t, info.NoChanges)
	tree, err := c.ListTree(ctx, idA, "main", "", true)
	require.NoError(t, err)
	sizes := map[string]int64{}
	for _, e := range tree {
		if e.Type == "file" {
			sizes[e.Path] = e.Size
		}
	}
	for p, b := range filesA {
		assert.Equal(t, int64(len(b)), sizes[p], "Go ListTree size of %s", p)
		assert.True(t, bytes.Equal(b, download(t, srv.URL(), goRepo, p)), "%s/%s downloads byte for byte", goRepo, p)
	}
	_, err = c.CreateRepo(ctx, idA, hub.CreateRepoOptions{})
	assert.ErrorIs(t, err, hub.ErrConflict, "second CreateRepo from Go")
	puts, completes := uploadRequests(t, srv, "the Go client")
	assert.GreaterOrEqual(t, puts, 4+1, "Go: 4 parts of the 3 MiB file and 1 basic PUT")
	assert.GreaterOrEqual(t, completes, 1, "Go: the multipart upload was completed")
	t.Logf("Go client scenario: %s (%d upload PUTs, %d completions)", time.Since(goStart).Round(time.Millisecond), puts, completes)

	// (2) @huggingface/hub: uploads folder B to from-js, then downloads
	// folder A's files from from-go.
	srv.ResetRequests()
	jsStart := time.Now()
	args := []string{filepath.Join(jsDir, "scenario.mjs"), "--repo", jsRepo, "--upload", dirB, "--fetch-repo", goRepo}
	for _, p := range sortedKeys(filesA) {
		args = append(args, "--fetch", p)
	}
	nctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(nctx, node, args...)
	cmd.Dir = jsDir
	cmd.Env = append(os.Environ(), "HUB_ENDPOINT="+srv.URL(), "HUB_TOKEN="+token)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	t.Logf("scenario.mjs (%s):\n%s", time.Since(jsStart).Round(time.Millisecond), stderr.String())
	require.NoError(t, err, "scenario.mjs failed:\n%s", stderr.String())
	var rep scenarioReport
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &rep), "scenario.mjs stdout: %q", stdout.String())
	t.Logf("%s on node %s, commit %s", rep.Library, rep.Node, rep.Commit)

	assert.Equal(t, user, rep.User, "whoAmI")
	assert.Len(t, rep.Commit, 40, "uploadFiles commit oid")
	if assert.NotNil(t, rep.SecondCreate, "second createRepo must fail") {
		assert.Equal(t, http.StatusConflict, rep.SecondCreate.StatusCode, "second createRepo: %s", rep.SecondCreate.Message)
		assert.Equal(t, "HubApiError", rep.SecondCreate.Class)
	}
	for p, b := range filesB {
		assert.Equal(t, sumOf(b), rep.Uploaded[p], "JS read %s as written", p)
		assert.Equal(t, int64(len(b)), rep.Listed[p], "JS listFiles size of %s", p)
	}
	for p, b := range filesA {
		assert.Equal(t, sumOf(b), rep.Fetched[p], "JS downloads %s/%s byte for byte", goRepo, p)
	}
	puts, completes = uploadRequests(t, srv, "@huggingface/hub")
	assert.GreaterOrEqual(t, puts, 3, "JS: 3 parts of the 2 MiB file")
	assert.GreaterOrEqual(t, completes, 1, "JS: the multipart upload was completed")
	var whoamiAuth bool
	for _, r := range srv.Requests() {
		if r.Class == hubemu.ClassWhoami {
			whoamiAuth = r.Auth
		}
	}
	assert.True(t, whoamiAuth, "the recording sees the token where it belongs (whoami)")

	// (3) Go reads what JS uploaded: listing and bytes.
	idB, err := hub.ParseRepoID(jsRepo)
	require.NoError(t, err)
	treeB, err := c.ListTree(ctx, idB, "main", "", true)
	require.NoError(t, err)
	sizesB := map[string]int64{}
	for _, e := range treeB {
		if e.Type == "file" {
			sizesB[e.Path] = e.Size
		}
	}
	for p, b := range filesB {
		assert.Equal(t, int64(len(b)), sizesB[p], "Go ListTree size of %s/%s", jsRepo, p)
		got := download(t, srv.URL(), jsRepo, p)
		assert.Equal(t, sumOf(b), sumOf(got), "Go downloads %s/%s byte for byte", jsRepo, p)
	}
	var extra []string
	for p := range sizesB {
		if _, ok := filesB[p]; !ok {
			extra = append(extra, p)
		}
	}
	sort.Strings(extra)
	t.Logf("%s also holds: %s; total %s", jsRepo, strings.Join(extra, ", "), time.Since(start).Round(time.Millisecond))
}
