package hub

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// makeFolder writes files (path → content) under a new temp folder.
func makeFolder(t *testing.T, files map[string][]byte) string {
	dir := t.TempDir()
	for p, b := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
		require.NoError(t, os.WriteFile(full, b, 0o644))
	}
	return dir
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

var folderFiles = map[string][]byte{
	"config.json":            []byte(`{"a":1}`),
	"README.md":              []byte("# model\n"),
	"empty.txt":              {},
	"unet/model.safetensors": randomBytes(1, 5500), // multipart with chunk 1000
	"vae/model.bin":          randomBytes(2, 700),  // basic
	".git/config":            []byte("skipped"),
}

func upload(t *testing.T, f *fakeHub, c *Client, dir string, opts UploadOptions) (*CommitInfo, error) {
	if opts.HashCache == nil {
		hc, err := OpenHashCache(filepath.Join(t.TempDir(), "hashes.json"))
		require.NoError(t, err)
		opts.HashCache = hc
	}
	return c.UploadFolder(context.Background(), RepoID{Namespace: "alice", Name: "m"}, dir, opts)
}

func TestUploadFolder(t *testing.T) {
	for _, sameOrigin := range []bool{false, true} {
		t.Run(fmt.Sprintf("sameOrigin=%v", sameOrigin), func(t *testing.T) {
			f := newFakeHub(t)
			f.addRepo("alice/m")
			f.chunkSize = 1000
			f.sameOrigin = sameOrigin
			f.withVerify = true
			dir := makeFolder(t, folderFiles)
			var mu sync.Mutex
			var events []Progress
			ci, err := upload(t, f, f.client(t), dir, UploadOptions{Progress: func(p Progress) {
				mu.Lock()
				events = append(events, p)
				mu.Unlock()
			}})
			require.NoError(t, err)
			assert.False(t, ci.NoChanges)
			assert.Equal(t, f.hub.URL+"/alice/m/commit/"+ci.OID, ci.URL)

			repo := f.repos["alice/m"]
			assert.Equal(t, ci.OID, repo.head)
			for p, b := range folderFiles {
				if strings.HasPrefix(p, ".git/") {
					assert.NotContains(t, repo.files, p)
					continue
				}
				got, ok := repo.files[p]
				require.True(t, ok, p)
				if got.lfsOID != "" {
					assert.Equal(t, b, f.lfs[got.lfsOID], p)
				} else {
					assert.Equal(t, b, got.content, p)
				}
			}
			assert.Equal(t, "", repo.files["empty.txt"].lfsOID, "an empty file is regular")
			assert.Equal(t, 6, len(f.partCalls))
			assert.Equal(t, 1, f.calls["complete"])
			assert.Equal(t, 1, f.calls["put"])
			assert.Equal(t, 2, f.calls["verify"])
			// The upload handlers never see the token, whatever their origin.
			assert.Empty(t, f.auth["put"])
			assert.Empty(t, f.auth["part"])
			assert.Empty(t, f.auth["complete"])
			assert.Len(t, f.auth["verify"], 2)
			assert.Equal(t, `{"name":"main"}`, f.batchBodies[0]["ref"])
			assert.Equal(t, repo.head != "", true)
			require.Len(t, f.commits, 1)
			assert.NotEmpty(t, f.commits[0].parent, "the commit names the head preupload saw")
			assert.Equal(t, "Upload folder using modelpub", f.commits[0].summary)

			// Progress: upload totals end at the LFS bytes, never above.
			var last Progress
			files := map[string]bool{}
			for _, e := range events {
				if e.Phase == "upload" {
					assert.LessOrEqual(t, e.Bytes, e.Total)
					last = e
					if e.FileDone {
						files[e.File] = true
						assert.Equal(t, e.FileSize, e.FileBytes)
					}
				}
			}
			assert.Equal(t, int64(6200), last.Total)
			assert.Equal(t, int64(6200), last.Bytes)
			assert.Equal(t, map[string]bool{"unet/model.safetensors": true, "vae/model.bin": true}, files)
			assert.Equal(t, "done", events[len(events)-1].Phase)
		})
	}
}

func TestUploadSkips(t *testing.T) {
	f := newFakeHub(t)
	f.addRepo("alice/m")
	f.chunkSize = 1000
	dir := makeFolder(t, folderFiles)
	c := f.client(t)
	first, err := upload(t, f, c, dir, UploadOptions{})
	require.NoError(t, err)

	t.Run("nothing changed", func(t *testing.T) {
		puts, parts, batches := f.count("put"), f.count("part"), f.count("batch")
		ci, err := upload(t, f, c, dir, UploadOptions{})
		require.NoError(t, err)
		assert.True(t, ci.NoChanges)
		assert.Equal(t, first.OID, ci.OID)
		assert.Equal(t, 1, f.count("commit"), "no commit when nothing changed")
		assert.Equal(t, batches, f.count("batch"), "no LFS batch for unchanged LFS files")
		assert.Equal(t, puts, f.count("put"))
		assert.Equal(t, parts, f.count("part"))
	})

	t.Run("one changed", func(t *testing.T) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"a":2}`), 0o644))
		ci, err := upload(t, f, c, dir, UploadOptions{})
		require.NoError(t, err)
		assert.False(t, ci.NoChanges)
		require.Len(t, f.commits, 2)
		assert.Equal(t, []string{"config.json"}, f.commits[1].paths)
	})

	t.Run("lfs object already stored", func(t *testing.T) {
		// A new path whose content the Hub already has: the batch answers
		// without actions, nothing is sent, the commit still names it.
		require.NoError(t, os.WriteFile(filepath.Join(dir, "copy.bin"), folderFiles["vae/model.bin"], 0o644))
		puts, parts, batches := f.count("put"), f.count("part"), f.count("batch")
		_, err := upload(t, f, c, dir, UploadOptions{})
		require.NoError(t, err)
		assert.Equal(t, batches+1, f.count("batch"))
		assert.Equal(t, puts, f.count("put"))
		assert.Equal(t, parts, f.count("part"))
		assert.Equal(t, []string{"copy.bin"}, f.commits[len(f.commits)-1].paths)
		assert.Equal(t, sha256hex(folderFiles["vae/model.bin"]), f.repos["alice/m"].files["copy.bin"].lfsOID)
	})

	t.Run("ignored", func(t *testing.T) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "ignored.txt"), []byte("x"), 0o644))
		ci, err := upload(t, f, c, dir, UploadOptions{})
		require.NoError(t, err)
		assert.True(t, ci.NoChanges)
	})
}

func TestUploadPartRetry(t *testing.T) {
	f := newFakeHub(t)
	f.addRepo("alice/m")
	f.chunkSize = 1000
	big := folderFiles["unet/model.safetensors"]
	oid := sha256hex(big)
	var mu sync.Mutex
	failed := map[string]int{}
	attempts := map[int]int{}
	f.setFault("part", func(w http.ResponseWriter, r *http.Request, n int) bool {
		mu.Lock()
		defer mu.Unlock()
		k, _ := strconv.Atoi(r.PathValue("n"))
		attempts[k]++
		if strings.HasSuffix(r.URL.Path, "/3") && failed["3"] < 2 {
			failed["3"]++
			// Read part of the body first so the client has counted it.
			buf := make([]byte, 100)
			r.Body.Read(buf)
			w.Header().Set("Retry-After", "0")
			hubError(w, http.StatusServiceUnavailable, "", "slow down")
			return true
		}
		if strings.HasSuffix(r.URL.Path, "/5") && failed["5"] < 1 {
			failed["5"]++
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
			return true
		}
		return false
	})
	f.setFault("complete", func(w http.ResponseWriter, r *http.Request, n int) bool {
		if n == 1 {
			hubError(w, http.StatusBadGateway, "", "bad gateway")
			return true
		}
		return false
	})
	dir := makeFolder(t, map[string][]byte{"model.safetensors": big})
	var maxBytes, lastBytes int64
	_, err := upload(t, f, f.client(t), dir, UploadOptions{Progress: func(p Progress) {
		if p.Phase == "upload" {
			maxBytes = max(maxBytes, p.Bytes)
			lastBytes = p.Bytes
		}
	}})
	require.NoError(t, err)
	// Only the failing parts were sent again, each on its own.
	assert.Equal(t, map[int]int{1: 1, 2: 1, 3: 3, 4: 1, 5: 2, 6: 1}, attempts)
	for i := 1; i <= 6; i++ {
		assert.Equal(t, 1, f.partCalls[fmt.Sprintf("%s/%d", oid, i)], "part %d stored once", i)
	}
	assert.Equal(t, 2, f.count("complete"))
	assert.Equal(t, big, f.lfs[oid])
	assert.Equal(t, int64(len(big)), lastBytes)
	assert.LessOrEqual(t, maxBytes, int64(len(big)), "a retried part does not push progress past 100%")
}

func TestCommitLostResponse(t *testing.T) {
	tests := []struct {
		name        string
		applyFirst  bool // the first commit lands before its answer is lost
		wantCommits int
		wantCalls   int
	}{
		{"landed, answer lost", true, 1, 1},
		{"not landed", false, 1, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeHub(t)
			f.addRepo("alice/m")
			f.setFault("commit", func(w http.ResponseWriter, r *http.Request, n int) bool {
				if n != 1 {
					return false
				}
				if tt.applyFirst {
					f.commit(httptest.NewRecorder(), r)
				}
				conn, _, _ := w.(http.Hijacker).Hijack()
				conn.Close()
				return true
			})
			dir := makeFolder(t, map[string][]byte{"a.txt": []byte("hello"), "w.bin": randomBytes(3, 300)})
			ci, err := upload(t, f, f.client(t), dir, UploadOptions{})
			require.NoError(t, err)
			assert.Len(t, f.commits, tt.wantCommits, "no duplicate commit")
			assert.Equal(t, tt.wantCalls, f.count("commit"))
			assert.Equal(t, f.repos["alice/m"].head, ci.OID)
		})
	}
	t.Run("5xx, head moved by someone else", func(t *testing.T) {
		f := newFakeHub(t)
		repo := f.addRepo("alice/m")
		f.setFault("commit", func(w http.ResponseWriter, r *http.Request, n int) bool {
			f.mu.Lock()
			repo.head = fakeSHA("other", n)
			f.mu.Unlock()
			hubError(w, http.StatusInternalServerError, "", "boom")
			return true
		})
		dir := makeFolder(t, map[string][]byte{"a.txt": []byte("hello")})
		_, err := upload(t, f, f.client(t), dir, UploadOptions{})
		assert.ErrorIs(t, err, ErrConflict)
		assert.Equal(t, 1, f.count("commit"))
	})
}

func TestUploadCancel(t *testing.T) {
	f := newFakeHub(t)
	f.addRepo("alice/m")
	f.chunkSize = 1000
	release := make(chan struct{})
	defer close(release)
	f.setFault("part", func(w http.ResponseWriter, r *http.Request, n int) bool {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		return true
	})
	dir := makeFolder(t, folderFiles)
	ctx, cancel := context.WithCancel(context.Background())
	hc, _ := OpenHashCache(filepath.Join(t.TempDir(), "h.json"))
	errc := make(chan error, 1)
	go func() {
		_, err := f.client(t).UploadFolder(ctx, RepoID{Namespace: "alice", Name: "m"}, dir, UploadOptions{HashCache: hc})
		errc <- err
	}()
	require.Eventually(t, func() bool { return f.count("part") > 0 }, 5*time.Second, time.Millisecond)
	start := time.Now()
	cancel()
	select {
	case err := <-errc:
		assert.ErrorIs(t, err, context.Canceled)
		assert.Less(t, time.Since(start), time.Second)
	case <-time.After(2 * time.Second):
		t.Fatal("UploadFolder did not return within a second of cancellation")
	}
	assert.Equal(t, 0, f.count("commit"))
}

func TestCancelDuringBackoff(t *testing.T) {
	f := newFakeHub(t)
	f.addRepo("alice/m")
	f.setFault("preupload", func(w http.ResponseWriter, r *http.Request, n int) bool {
		w.Header().Set("Retry-After", "30")
		hubError(w, http.StatusServiceUnavailable, "", "busy")
		return true
	})
	c := f.client(t, func(o *Options) { o.Sleep = nil })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	hc, _ := OpenHashCache(filepath.Join(t.TempDir(), "h.json"))
	start := time.Now()
	_, err := c.UploadFolder(ctx, RepoID{Namespace: "alice", Name: "m"}, makeFolder(t, map[string][]byte{"a.txt": []byte("x")}), UploadOptions{HashCache: hc})
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), time.Second, "a Retry-After wait stops when ctx is done")
	assert.Equal(t, 1, f.count("preupload"))
}

func TestHashCache(t *testing.T) {
	f := newFakeHub(t)
	f.addRepo("alice/m")
	dir := makeFolder(t, folderFiles)
	cachePath := filepath.Join(t.TempDir(), "sub", "hashes.json")
	var mu sync.Mutex
	reads := map[string]int{}
	hashReadHook = func(p string) { mu.Lock(); reads[filepath.Base(p)]++; mu.Unlock() }
	defer func() { hashReadHook = nil }()
	c := f.client(t)
	run := func() {
		hc, err := OpenHashCache(cachePath)
		require.NoError(t, err)
		_, err = upload(t, f, c, dir, UploadOptions{HashCache: hc})
		require.NoError(t, err)
	}
	run()
	assert.Equal(t, 1, reads["model.safetensors"])
	// A regular (git) file is read once per upload, for its sha1 and its
	// content together: never through the hashing pass.
	assert.Equal(t, 0, reads["config.json"])
	_, err := os.Stat(cachePath)
	require.NoError(t, err)

	run()
	assert.Equal(t, 1, reads["model.safetensors"], "an unchanged file is not hashed again")

	// A new mtime (same content) invalidates the entry.
	later := time.Now().Add(time.Hour)
	model := filepath.Join(dir, "unet", "model.safetensors")
	require.NoError(t, os.Chtimes(model, later, later))
	run()
	assert.Equal(t, 2, reads["model.safetensors"])
	run()
	assert.Equal(t, 2, reads["model.safetensors"])

	// Another file renamed over it, with the same size and mtime (a copy
	// that keeps times, then an atomic replace): a new file id (inode, or
	// Windows' volume serial and file index) invalidates the entry.
	old, err := os.ReadFile(model)
	require.NoError(t, err)
	other := filepath.Join(dir, "unet", "other.tmp")
	require.NoError(t, os.WriteFile(other, bytes.Repeat([]byte{'z'}, len(old)), 0o644))
	require.NoError(t, os.Chtimes(other, later, later))
	require.NoError(t, os.Rename(other, model))
	run()
	assert.Equal(t, 3, reads["model.safetensors"], "a file replaced with the same size and mtime is hashed again")
}

func TestHashes(t *testing.T) {
	dir := makeFolder(t, map[string][]byte{"a": []byte("hello\n")})
	h, err := hashFile(context.Background(), filepath.Join(dir, "a"), 6, true, true, nil)
	require.NoError(t, err)
	// git hash-object and sha256sum of "hello\n".
	assert.Equal(t, "ce013625030ba8dba906f756967f9e9ca394464a", h.SHA1)
	assert.Equal(t, "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03", h.SHA256)
	assert.Equal(t, "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391", GitBlobSHA1(nil))
}

// A failing run with a distinctive token: the token appears in no error,
// log line or progress event, even when the server echoes it back.
func TestTokenNeverInOutput(t *testing.T) {
	const token = "hf_ZZdistinctiveTOKEN0123456789"
	f := newFakeHub(t)
	f.token = token
	f.addRepo("alice/m")
	f.chunkSize = 1000
	echo := func(w http.ResponseWriter, r *http.Request, n int) bool {
		msg := "bad header " + r.Header.Get("Authorization")
		w.Header().Set("X-Request-Id", r.Header.Get("Authorization"))
		hubError(w, http.StatusInternalServerError, "", msg)
		return true
	}
	f.setFault("part", func(w http.ResponseWriter, r *http.Request, n int) bool {
		return n%2 == 1 && echo(w, r, n)
	})
	f.setFault("commit", echo)
	var out bytes.Buffer
	var mu sync.Mutex
	logf := func(format string, args ...any) {
		mu.Lock()
		fmt.Fprintf(&out, format+"\n", args...)
		mu.Unlock()
	}
	c := f.client(t, func(o *Options) { o.Logf = logf })
	dir := makeFolder(t, folderFiles)
	_, err := upload(t, f, c, dir, UploadOptions{Progress: func(p Progress) {
		mu.Lock()
		fmt.Fprintf(&out, "%+v\n", p)
		mu.Unlock()
	}})
	require.Error(t, err)
	fmt.Fprintf(&out, "%v\n%+v\n%#v\n", err, err, err)
	var he *Error
	if assert.ErrorAs(t, err, &he) {
		fmt.Fprintf(&out, "%+v\n", *he)
	}
	assert.NotContains(t, out.String(), token)
	assert.NotContains(t, out.String(), "ZZdistinctive")
	assert.Contains(t, out.String(), "hf_***", "the echoed token was scrubbed")
	// And the storage never saw it.
	assert.Empty(t, f.auth["part"])
	assert.Empty(t, f.auth["complete"])
}

func TestUploadFolderPR(t *testing.T) {
	f := newFakeHub(t)
	f.addRepo("alice/m")
	dir := makeFolder(t, map[string][]byte{"a.txt": []byte("x"), "w.bin": randomBytes(4, 100)})
	ci, err := upload(t, f, f.client(t), dir, UploadOptions{CreatePR: true, CommitMessage: "my PR"})
	require.NoError(t, err)
	assert.Equal(t, "refs/pr/1", ci.PRRevision)
	assert.Equal(t, f.hub.URL+"/alice/m/discussions/1", ci.PullRequestURL)
	assert.Equal(t, "", f.batchBodies[0]["ref"], "no ref in the LFS batch of a pull request")
	assert.Equal(t, "", f.commits[0].parent)
	assert.Equal(t, "my PR", f.commits[0].summary)
}

// Memory stays bounded while a large file streams from disk in parts.
func TestUploadMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("uploads 256 MiB")
	}
	f := newFakeHub(t)
	f.addRepo("alice/m")
	f.chunkSize = 8 << 20
	f.setFault("part", func(w http.ResponseWriter, r *http.Request, n int) bool {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("ETag", `"x"`)
		return true
	})
	f.setFault("complete", func(w http.ResponseWriter, r *http.Request, n int) bool {
		f.mu.Lock()
		f.lfs[strings.TrimPrefix(r.URL.Path, "/complete/")] = nil
		f.mu.Unlock()
		return true
	})
	dir := t.TempDir()
	fh, err := os.Create(filepath.Join(dir, "big.safetensors"))
	require.NoError(t, err)
	require.NoError(t, fh.Truncate(256<<20)) // sparse: no disk used
	require.NoError(t, fh.Close())

	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var m runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
		}
	}()
	_, err = upload(t, f, f.client(t), dir, UploadOptions{})
	close(stop)
	wg.Wait()
	require.NoError(t, err)
	grew := int64(peak.Load()) - int64(base.HeapInuse)
	t.Logf("heap grew by %d MiB at most", grew>>20)
	assert.Less(t, grew, int64(48<<20), "the file must not be held in memory")
	assert.Equal(t, 32, f.count("part"))
}
