package hub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
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
	host, method, path, query, auth, session string
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
	r.reqs = append(r.reqs, seenRequest{host: req.URL.Host, method: req.Method, path: req.URL.Path, query: req.URL.RawQuery,
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

// safetensorsLike is a safetensors-shaped file: an 8-byte length, a JSON
// header naming the tensors, then their bytes in order.
func safetensorsLike(tensors []string, data map[string][]byte) []byte {
	var hdr strings.Builder
	hdr.WriteString("{")
	off := 0
	for i, name := range tensors {
		if i > 0 {
			hdr.WriteString(",")
		}
		n := len(data[name])
		fmt.Fprintf(&hdr, `"%s":{"dtype":"F16","shape":[%d],"data_offsets":[%d,%d]}`, name, n/2, off, off+n)
		off += n
	}
	hdr.WriteString("}")
	for hdr.Len()%8 != 0 {
		hdr.WriteString(" ")
	}
	out := make([]byte, 8, 8+hdr.Len()+off)
	for i, v := 0, uint64(hdr.Len()); i < 8; i, v = i+1, v>>8 {
		out[i] = byte(v)
	}
	out = append(out, hdr.String()...)
	for _, name := range tensors {
		out = append(out, data[name]...)
	}
	return out
}

// sentSince sums the xorb bytes the emulator accepted after the first
// skip requests.
func sentSince(srv *hubemu.Server, skip int) (xorbBytes int64) {
	for i, r := range srv.Requests() {
		if i >= skip && r.Class == hubemu.ClassXet && r.Method == http.MethodPost && strings.HasPrefix(r.Path, "/v1/xorbs/") && r.Status == 200 {
			xorbBytes += r.BodySize
		}
	}
	return xorbBytes
}

// Re-publishing the same tensors in another layout (one file split into
// two shards) sends at most 5% of the bytes: only the chunks around the
// new headers and the seam.
func TestXetReshardSendsLittle(t *testing.T) {
	ctx := context.Background()
	srv := startEmulator(t, "")
	c, _ := newXetClient(t, srv, hub.TransferAuto, nil)
	id := createRepo(t, c, "alice/reshard")
	names := []string{"down.weight", "mid.weight", "up.weight", "out.weight"}
	data := map[string][]byte{}
	for i, n := range names {
		data[n] = weightsLike(4<<20, uint64(10+i))
	}
	one := map[string][]byte{"unet/diffusion_pytorch_model.safetensors": safetensorsLike(names, data)}
	cache := newShardCache(t)
	_, err := c.UploadFolder(ctx, id, writeFiles(t, one), hub.UploadOptions{XetCache: cache})
	require.NoError(t, err)

	two := map[string][]byte{
		"unet/diffusion_pytorch_model-00001-of-00002.safetensors": safetensorsLike(names[:2], data),
		"unet/diffusion_pytorch_model-00002-of-00002.safetensors": safetensorsLike(names[2:], data),
	}
	var total int64
	for _, b := range two {
		total += int64(len(b))
	}
	skip := len(srv.Requests())
	info, err := c.UploadFolder(ctx, id, writeFiles(t, two), hub.UploadOptions{XetCache: cache,
		Delete: []string{"unet/diffusion_pytorch_model.safetensors"}})
	require.NoError(t, err)
	wire := sentSince(srv, skip)
	t.Logf("resharded %d bytes: %d sent (%d on the wire), %d deduplicated", total, info.Upload.Sent, wire, info.Upload.Deduped)
	assert.LessOrEqual(t, info.Upload.Sent, total/20, "≤ 5%% of the bytes sent")
	assert.LessOrEqual(t, wire, total/20, "≤ 5%% of the bytes on the wire")
	assert.Equal(t, total, info.Upload.Sent+info.Upload.Deduped)
	for p, b := range two {
		assert.True(t, bytes.Equal(b, download(t, srv.URL(), id.String(), "main", p)), p)
	}
}

// A fine-tune published to another repository of the same Hub, whose unet
// alone changed, sends at most 1.1× the unet: the other components are
// found through the global deduplication query (a fresh shard cache, as
// on another machine) or the local cache. Xorbs of 512 KiB make each file
// span many: one query must reveal the others.
func TestXetFineTuneSendsTheChangedFile(t *testing.T) {
	defer hub.SetXetXorbSize(512 << 10)()
	for _, fresh := range []bool{true, false} {
		t.Run(fmt.Sprintf("fresh cache %v", fresh), func(t *testing.T) {
			ctx := context.Background()
			srv := startEmulator(t, "")
			c, _ := newXetClient(t, srv, hub.TransferAuto, nil)
			base := map[string][]byte{
				"model_index.json":                                   []byte(`{"_class_name": "StableDiffusionPipeline"}` + "\n"),
				"unet/diffusion_pytorch_model.safetensors":           weightsLike(6<<20, 21),
				"vae/diffusion_pytorch_model.safetensors":            weightsLike(3<<20, 22),
				"text_encoder/model.safetensors":                     weightsLike(4<<20, 23),
				"safety_checker/diffusion_pytorch_model.safetensors": weightsLike(2<<20, 24),
			}
			cache := newShardCache(t)
			_, err := c.UploadFolder(ctx, createRepo(t, c, "alice/base"), writeFiles(t, base), hub.UploadOptions{XetCache: cache})
			require.NoError(t, err)

			tuned := map[string][]byte{}
			for p, b := range base {
				tuned[p] = b
			}
			unet := weightsLike(6<<20, 99)
			tuned["unet/diffusion_pytorch_model.safetensors"] = unet
			if fresh {
				cache = newShardCache(t)
			}
			id := createRepo(t, c, "alice/fine-tune")
			skip := len(srv.Requests())
			info, err := c.UploadFolder(ctx, id, writeFiles(t, tuned), hub.UploadOptions{XetCache: cache})
			require.NoError(t, err)
			wire := sentSince(srv, skip)
			lfsSent := info.Upload.Sent - int64(len(tuned["model_index.json"]))
			t.Logf("unet %d bytes: %d sent (%d on the wire), %d deduplicated", len(unet), lfsSent, wire, info.Upload.Deduped)
			assert.LessOrEqual(t, lfsSent, int64(len(unet))*11/10)
			assert.LessOrEqual(t, wire, int64(len(unet))*11/10)
			for p, b := range tuned {
				assert.True(t, bytes.Equal(b, download(t, srv.URL(), id.String(), "main", p)), p)
			}
		})
	}
}

// 10% of the CAS and token requests fail (errors, dropped connections,
// answers lost after the work was done): every upload completes with the
// right bytes, for 20 seeds.
func TestXetUploadUnderFaults(t *testing.T) {
	files := map[string][]byte{
		"unet/w.safetensors": weightsLike(700<<10, 31),
		"vae/w.safetensors":  weightsLike(300<<10, 32),
		"config.json":        []byte(`{"a": 1}` + "\n"),
	}
	dir := writeFiles(t, files)
	struck := 0
	t.Cleanup(func() {
		t.Logf("%d CAS requests met a fault", struck)
		assert.Positive(t, struck, "faults struck the CAS")
	})
	for seed := 1; seed <= 20; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			ctx := context.Background()
			srv := startEmulator(t, fmt.Sprintf("seed=%d,rate=10%%,kinds=500+503+drop+lost,endpoints=xet+xet-token", seed))
			var logs bytes.Buffer
			c, _ := newXetClient(t, srv, hub.TransferXet, &logs)
			id := createRepo(t, c, "alice/faults")
			_, err := c.UploadFolder(ctx, id, dir, hub.UploadOptions{XetCache: newShardCache(t)})
			require.NoError(t, err, "logs:\n%s", logs.String())
			for _, r := range srv.Requests() {
				if r.Fault != "" && (r.Class == hubemu.ClassXet || r.Class == hubemu.ClassXetToken) {
					struck++
				}
			}
			for p, b := range files {
				assert.True(t, bytes.Equal(b, download(t, srv.URL(), id.String(), "main", p)), p)
			}
		})
	}
}

// A local Hub started afresh at the same address does not hold the xorbs
// the shard cache remembers: its CAS refuses the shard that references
// them, and the upload clears the cache and sends the files again.
func TestXetStaleCacheIsCleared(t *testing.T) {
	ctx := context.Background()
	files := map[string][]byte{"unet/w.safetensors": weightsLike(1<<20, 41)}
	dir := writeFiles(t, files)
	cache := newShardCache(t)

	first := startEmulator(t, "")
	addr := strings.TrimPrefix(first.URL(), "http://")
	c, _ := newXetClient(t, first, hub.TransferXet, nil)
	_, err := c.UploadFolder(ctx, createRepo(t, c, "alice/stale"), dir, hub.UploadOptions{XetCache: cache})
	require.NoError(t, err)
	require.Positive(t, cache.Size())
	first.Close()

	second, err := hubemu.New(hubemu.Options{Dir: t.TempDir(), Tokens: map[string]string{token: "alice"}, Record: true})
	require.NoError(t, err)
	_, err = second.Start(addr)
	require.NoError(t, err)
	t.Cleanup(func() { second.Close() })
	var logs bytes.Buffer
	c2, _ := newXetClient(t, second, hub.TransferXet, &logs)
	id := createRepo(t, c2, "alice/stale")
	_, err = c2.UploadFolder(ctx, id, dir, hub.UploadOptions{XetCache: cache})
	require.NoError(t, err, "logs:\n%s", logs.String())
	assert.Contains(t, logs.String(), "clearing the cache")
	assert.Equal(t, files["unet/w.safetensors"], download(t, second.URL(), id.String(), "main", "unet/w.safetensors"))
}

func TestXetCacheDirIsPerHub(t *testing.T) {
	base, err := xet.DefaultShardCacheDir()
	require.NoError(t, err)
	for _, tc := range []struct{ endpoint, dir string }{
		{"https://huggingface.co", "https___huggingface.co"},
		{"https://HuggingFace.co/", "https___huggingface.co"},
		{"http://127.0.0.1:8080", "http___127.0.0.1_8080"},
		{"https://hub.example/mirror", "https___hub.example_mirror"},
	} {
		c, err := hub.NewClient(hub.Options{Endpoint: tc.endpoint})
		require.NoError(t, err)
		got, err := c.XetCacheDir()
		require.NoError(t, err)
		assert.Equal(t, filepath.Join(base, tc.dir), got, tc.endpoint)
	}
}

// A pull request against a branch uploads through Xet: the xet-write-token
// requests name that branch with create_pr=1 (never main), the files land
// in the pull request's ref, the branch is untouched.
func TestXetPullRequestAgainstABranch(t *testing.T) {
	ctx := context.Background()
	srv := startEmulator(t, "")
	var logs bytes.Buffer
	c, rec := newXetClient(t, srv, hub.TransferXet, &logs)
	id := createRepo(t, c, "alice/xet-pr")
	require.NoError(t, c.CreateBranch(ctx, id, "dev", ""))
	files := map[string][]byte{"unet/w.safetensors": weightsLike(1<<20, 51)}
	// Tokens that expire within the client's refresh margin: it fetches
	// a new one from the xet-write-token endpoint before each CAS request.
	srv.XetCAS().SetTokenTTL(30 * time.Second)
	info, err := c.UploadFolder(ctx, id, writeFiles(t, files), hub.UploadOptions{Revision: "dev", CreatePR: true, XetCache: newShardCache(t)})
	require.NoError(t, err, "logs:\n%s", logs.String())
	require.NotEmpty(t, info.PullRequestURL)
	var refreshes int
	for _, q := range rec.all() {
		if strings.Contains(q.path, "/xet-write-token/") {
			refreshes++
			assert.Equal(t, "/api/models/alice/xet-pr/xet-write-token/dev", q.path)
			assert.Equal(t, "create_pr=1", q.query)
			assert.Equal(t, "Bearer "+token, q.auth, "the Hub token goes to the Hub's token endpoint")
			assert.NotEmpty(t, q.session)
		}
	}
	assert.Positive(t, refreshes, "the client fetched CAS tokens")
	resp, err := http.Get(srv.URL() + "/" + id.String() + "/resolve/dev/unet/w.safetensors")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode, "the branch is untouched")
	assert.Equal(t, files["unet/w.safetensors"], download(t, srv.URL(), id.String(), "refs%2Fpr%2F1", "unet/w.safetensors"))
}

// Cancelling a Xet upload in the middle stops it promptly with the
// context's error and commits nothing.
func TestXetUploadCancel(t *testing.T) {
	defer hub.SetXetXorbSize(256 << 10)()
	srv := startEmulator(t, "seed=1,rate=1,kinds=slow,endpoints=xet,slow=100ms")
	c, _ := newXetClient(t, srv, hub.TransferXet, nil)
	id := createRepo(t, c, "alice/xet-cancel")
	dir := writeFiles(t, map[string][]byte{"unet/w.safetensors": weightsLike(4<<20, 61)})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := c.UploadFolder(ctx, id, dir, hub.UploadOptions{XetCache: newShardCache(t)})
		done <- err
	}()
	require.Eventually(t, func() bool { return countXet(srv).xorbs >= 1 }, 30*time.Second, 5*time.Millisecond)
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(10 * time.Second):
		t.Fatal("the upload did not stop within 10 s of the cancel")
	}
	for _, r := range srv.Requests() {
		assert.NotEqual(t, hubemu.ClassCommit, r.Class, "nothing is committed")
		assert.False(t, r.Class == hubemu.ClassXet && r.Path == "/v1/shards", "no shard after the cancel")
	}
}

// refusingProxy sits in front of the emulator as a Hub that answers xet in
// the batch but hands out no CAS token: the action lacks the token headers
// and xet-write-token answers 403.
func refusingProxy(t *testing.T, srv *hubemu.Server) string {
	t.Helper()
	target, err := url.Parse(srv.URL())
	require.NoError(t, err)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ModifyResponse = func(resp *http.Response) error {
		if !strings.HasSuffix(resp.Request.URL.Path, "/info/lfs/objects/batch") {
			return nil
		}
		var body map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			return err
		}
		resp.Body.Close()
		objs, _ := body["objects"].([]any)
		for _, o := range objs {
			if up, ok := o.(map[string]any)["actions"].(map[string]any)["upload"].(map[string]any); ok {
				delete(up, "header")
			}
		}
		b, _ := json.Marshal(body)
		resp.Body = io.NopCloser(bytes.NewReader(b))
		resp.ContentLength = int64(len(b))
		resp.Header.Set("Content-Length", fmt.Sprint(len(b)))
		return nil
	}
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/xet-write-token/") {
			http.Error(w, `{"error": "Xet is not enabled for this repository"}`, http.StatusForbidden)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	return proxy.URL
}

// A Hub that answers xet but refuses the CAS token: auto uploads through
// Git LFS instead, xet fails with the refusal.
func TestXetTokenRefused(t *testing.T) {
	ctx := context.Background()
	srv := startEmulator(t, "")
	endpoint := refusingProxy(t, srv)
	files := map[string][]byte{"unet/w.safetensors": weightsLike(1<<20, 71)}
	dir := writeFiles(t, files)
	for _, tt := range []struct {
		transfer hub.Transfer
		wantErr  error
	}{{hub.TransferAuto, nil}, {hub.TransferXet, hub.ErrForbidden}} {
		t.Run(string(tt.transfer), func(t *testing.T) {
			var logs bytes.Buffer
			c, err := hub.NewClient(hub.Options{Endpoint: endpoint, Token: token, Transfer: tt.transfer,
				Retry: hub.RetryPolicy{MaxRetries: 1, BaseWait: time.Millisecond, MaxWait: time.Millisecond},
				Logf:  func(f string, a ...any) { fmt.Fprintf(&logs, f+"\n", a...) }})
			require.NoError(t, err)
			id := createRepo(t, c, "alice/refused-"+string(tt.transfer))
			_, err = c.UploadFolder(ctx, id, dir, hub.UploadOptions{XetCache: newShardCache(t)})
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err, "logs:\n%s", logs.String())
			assert.Contains(t, logs.String(), "uploading through Git LFS")
			assert.Equal(t, files["unet/w.safetensors"], download(t, srv.URL(), id.String(), "main", "unet/w.safetensors"))
		})
	}
}
