package hub_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/hub"
	"modelpub/core/hub/hubemu"
	"modelpub/core/hub/xet"
)

// seenRequest is one request as the client's transport sent it.
type seenRequest struct {
	host, method, path, auth, session string
}

// recorder is a transport that records every request the client sends
// (Hub and CAS alike), with its Authorization header.
type recorder struct {
	mu   sync.Mutex
	reqs []seenRequest
	next http.RoundTripper
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, seenRequest{host: req.URL.Host, method: req.Method, path: req.URL.Path,
		auth: req.Header.Get("Authorization"), session: req.Header.Get(xet.HeaderSessionID)})
	r.mu.Unlock()
	return r.next.RoundTrip(req)
}

func (r *recorder) all() []seenRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]seenRequest(nil), r.reqs...)
}

// newXetClient is a client of the emulator with the given transfer and a
// recording transport.
func newXetClient(t *testing.T, srv *hubemu.Server, transfer hub.Transfer, logs *bytes.Buffer) (*hub.Client, *recorder) {
	t.Helper()
	rec := &recorder{next: http.DefaultTransport.(*http.Transport).Clone()}
	c, err := hub.NewClient(hub.Options{Endpoint: srv.URL(), Token: token, Version: "test", Transfer: transfer,
		HTTPClient: &http.Client{Transport: rec},
		Retry:      hub.RetryPolicy{MaxRetries: 8, BaseWait: time.Millisecond, MaxWait: 5 * time.Millisecond},
		Logf: func(f string, a ...any) {
			if logs != nil {
				fmt.Fprintf(logs, f+"\n", a...)
			}
		}})
	require.NoError(t, err)
	return c, rec
}

// weightsLike is n bytes shaped like F16 weights (a slowly varying high
// byte, noisy low byte): they chunk and compress like real ones.
func weightsLike(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+1 < n; i += 2 {
		b[i] = byte(r.Uint32())
		b[i+1] = 0x30 + byte(r.IntN(16))
	}
	return b
}

func writeFiles(t *testing.T, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for p, b := range files {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, p), b, 0o644))
	}
	return dir
}

func newShardCache(t *testing.T) *xet.ShardCache {
	t.Helper()
	c, err := xet.OpenShardCache(t.TempDir(), 0, nil)
	require.NoError(t, err)
	return c
}

func createRepo(t *testing.T, c *hub.Client, name string) hub.RepoID {
	t.Helper()
	id, err := hub.ParseRepoID(name)
	require.NoError(t, err)
	_, err = c.CreateRepo(context.Background(), id, hub.CreateRepoOptions{})
	require.NoError(t, err)
	return id
}

// xetCounts counts the emulator's answered CAS and LFS upload requests.
type xetCounts struct {
	xorbs, shards, lfsPuts, queries int
	xorbBytes                       int64
}

func countXet(srv *hubemu.Server) xetCounts {
	var n xetCounts
	for _, r := range srv.Requests() {
		switch {
		case r.Class == hubemu.ClassLFSUpload:
			n.lfsPuts++
		case r.Class == hubemu.ClassXet && r.Method == http.MethodPost && strings.HasPrefix(r.Path, "/v1/xorbs/") && r.Status == 200:
			n.xorbs++
			n.xorbBytes += r.BodySize
		case r.Class == hubemu.ClassXet && r.Method == http.MethodPost && r.Path == "/v1/shards" && r.Status == 200:
			n.shards++
		case r.Class == hubemu.ClassXet && strings.HasPrefix(r.Path, "/v1/chunks/"):
			n.queries++
		}
	}
	return n
}

// A folder uploaded through Xet (the emulator answers xet to auto) comes
// back byte for byte through resolve; no LFS PUT is made, the CAS sees
// only CAS tokens and the session id, and the report counts the bytes.
func TestXetUploadRoundTrip(t *testing.T) {
	ctx := context.Background()
	srv := startEmulator(t, "")
	var logs bytes.Buffer
	c, rec := newXetClient(t, srv, hub.TransferAuto, &logs)
	id := createRepo(t, c, "alice/xet-roundtrip")

	half := weightsLike(1<<20, 7)
	files := map[string][]byte{
		"model_index.json":                         []byte(`{"_class_name": "StableDiffusionPipeline"}` + "\n"),
		"unet/diffusion_pytorch_model.safetensors": weightsLike(3<<20+12345, 1),
		"vae/diffusion_pytorch_model.safetensors":  weightsLike(300<<10, 2),
		"text_encoder/twice.safetensors":           append(append([]byte{}, half...), half...),
		"text_encoder/copy.safetensors":            weightsLike(300<<10, 2), // the vae's bytes at another path
	}
	dir := writeFiles(t, files)
	var mu sync.Mutex
	var last hub.Progress
	info, err := c.UploadFolder(ctx, id, dir, hub.UploadOptions{XetCache: newShardCache(t), Progress: func(p hub.Progress) {
		if p.Phase == "upload" {
			mu.Lock()
			last = p
			mu.Unlock()
		}
	}})
	require.NoError(t, err, "logs:\n%s", logs.String())
	for p, b := range files {
		assert.True(t, bytes.Equal(b, download(t, srv.URL(), id.String(), "main", p)), "%s downloads byte for byte", p)
	}
	n := countXet(srv)
	assert.Zero(t, n.lfsPuts, "no LFS upload with Xet")
	assert.GreaterOrEqual(t, n.xorbs, 1)
	assert.GreaterOrEqual(t, n.shards, 1)

	// The report: every LFS file's bytes were sent or deduplicated; the
	// twice file's second half and the copy were not sent.
	var lfsSize int64
	for p, b := range files {
		if p != "model_index.json" {
			lfsSize += int64(len(b))
		}
	}
	r := info.Upload
	regular := int64(len(files["model_index.json"]))
	assert.Equal(t, lfsSize-int64(len(files["text_encoder/copy.safetensors"])), r.Sent-regular+r.Deduped,
		"sent and deduplicated bytes cover every LFS object once")
	assert.GreaterOrEqual(t, r.Deduped, int64(len(half))*3/4, "the repeated half is deduplicated (but the chunks around the seam)")
	for _, f := range r.Files {
		if f.Path == "text_encoder/copy.safetensors" || f.Path == "vae/diffusion_pytorch_model.safetensors" {
			continue // one of the two sends, the other waits for it
		}
		if f.LFS {
			assert.Equal(t, hub.FileSent, f.Outcome, f.Path)
			assert.LessOrEqual(t, f.Sent, f.Size, f.Path)
		}
	}
	mu.Lock()
	assert.Equal(t, last.Total, last.Bytes+last.Deduped, "the upload phase ends with every byte sent or deduplicated: %+v", last)
	assert.Equal(t, r.Deduped, last.Deduped)
	mu.Unlock()

	// The CAS saw CAS tokens only, each with the session id; the Hub saw
	// the Hub token.
	var cas int
	session := ""
	for _, q := range rec.all() {
		if !strings.HasPrefix(q.path, "/v1/") && !strings.HasPrefix(q.path, "/v2/") {
			continue
		}
		cas++
		assert.NotContains(t, q.auth, token, "the Hub token reached the CAS: %s %s", q.method, q.path)
		repo, write, ok := srv.XetCAS().TokenScope(strings.TrimPrefix(q.auth, "Bearer "))
		assert.True(t, ok && write && repo != "", "%s %s carries a CAS write token", q.method, q.path)
		assert.NotEmpty(t, q.session, "%s %s carries X-Xet-Session-Id", q.method, q.path)
		if session == "" {
			session = q.session
		}
		assert.Equal(t, session, q.session, "one session id per upload")
	}
	assert.GreaterOrEqual(t, cas, 2)
	assert.NotContains(t, logs.String(), token)

	// Uploading the same folder again sends nothing and commits nothing.
	before := countXet(srv)
	again, err := c.UploadFolder(ctx, id, dir, hub.UploadOptions{XetCache: newShardCache(t)})
	require.NoError(t, err)
	assert.True(t, again.NoChanges)
	assert.Equal(t, before.xorbs, countXet(srv).xorbs)
}

// transfer=lfs never touches the CAS; transfer=xet against a Hub without
// Xet fails with ErrXetUnavailable naming its answer; auto against it
// uploads through LFS.
func TestTransferChoice(t *testing.T) {
	ctx := context.Background()
	files := map[string][]byte{"unet/w.safetensors": weightsLike(2<<20, 3), "README.md": []byte("# t\n")}
	dir := writeFiles(t, files)

	t.Run("lfs", func(t *testing.T) {
		srv := startEmulator(t, "")
		c, rec := newXetClient(t, srv, hub.TransferLFS, nil)
		id := createRepo(t, c, "alice/lfs-only")
		_, err := c.UploadFolder(ctx, id, dir, hub.UploadOptions{XetCache: newShardCache(t)})
		require.NoError(t, err)
		for _, q := range rec.all() {
			assert.False(t, strings.HasPrefix(q.path, "/v1/") || strings.HasPrefix(q.path, "/v2/") || strings.Contains(q.path, "xet-"),
				"transfer=lfs reached Xet: %s %s", q.method, q.path)
		}
		assert.Positive(t, countXet(srv).lfsPuts)
	})

	noXet := func(t *testing.T) *hubemu.Server {
		srv, err := hubemu.New(hubemu.Options{Dir: t.TempDir(), Tokens: map[string]string{token: "alice"},
			ChunkSize: 1 << 20, Record: true, NoXet: true})
		require.NoError(t, err)
		_, err = srv.Start("127.0.0.1:0")
		require.NoError(t, err)
		t.Cleanup(func() { srv.Close() })
		return srv
	}
	t.Run("xet without xet", func(t *testing.T) {
		srv := noXet(t)
		c, _ := newXetClient(t, srv, hub.TransferXet, nil)
		id := createRepo(t, c, "alice/xet-refused")
		_, err := c.UploadFolder(ctx, id, dir, hub.UploadOptions{XetCache: newShardCache(t)})
		require.ErrorIs(t, err, hub.ErrXetUnavailable)
		assert.Contains(t, err.Error(), "answered the transfer basic", "the error names the Hub's answer")
		n := countXet(srv)
		assert.Zero(t, n.lfsPuts+n.xorbs)
		for _, r := range srv.Requests() {
			assert.NotEqual(t, hubemu.ClassCommit, r.Class, "nothing is committed")
		}
	})
	t.Run("auto without xet", func(t *testing.T) {
		srv := noXet(t)
		c, _ := newXetClient(t, srv, hub.TransferAuto, nil)
		id := createRepo(t, c, "alice/auto-lfs")
		info, err := c.UploadFolder(ctx, id, dir, hub.UploadOptions{XetCache: newShardCache(t)})
		require.NoError(t, err)
		assert.Positive(t, countXet(srv).lfsPuts)
		assert.Zero(t, info.Upload.Deduped)
		for p, b := range files {
			assert.Equal(t, b, download(t, srv.URL(), id.String(), "main", p))
		}
	})
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
