package hub

import (
	"bytes"
	"context"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var aliceM = RepoID{Namespace: "alice", Name: "m"}

// countingOpen is an Open that counts its calls.
func countingOpen(b []byte, n *atomic.Int32) func() (Content, error) {
	return func() (Content, error) {
		n.Add(1)
		return nopCloser{bytes.NewReader(b)}, nil
	}
}

func TestUploadSendsWhileFilesAreStillAdded(t *testing.T) {
	f := newFakeHub(t)
	f.addRepo("alice/m")
	first, second := randomBytes(11, 3000), randomBytes(12, 2000)
	u, err := f.client(t).StartUpload(context.Background(), aliceM, UploadOptions{HashCache: noCache(t)})
	require.NoError(t, err)
	defer u.Abort()
	require.NoError(t, u.Add(bytesAddition("a.safetensors", first)))
	// The first file reaches the Hub's storage before the second exists.
	require.Eventually(t, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.lfs[sha256hex(first)] != nil
	}, 5*time.Second, 5*time.Millisecond, "the first file is uploaded before Commit")
	assert.Empty(t, f.commits, "nothing is committed before Commit")
	require.NoError(t, u.Add(bytesAddition("b.safetensors", second)))
	require.NoError(t, u.Add(bytesAddition("README.md", []byte("# m\n"))))
	ci, err := u.Commit(context.Background(), nil)
	require.NoError(t, err)
	require.Len(t, f.commits, 1, "one commit holds every file")
	assert.ElementsMatch(t, []string{"a.safetensors", "b.safetensors", "README.md"}, f.commits[0].paths)
	assert.Equal(t, second, f.lfs[sha256hex(second)])
	n, sent := ci.Upload.Count(FileSent)
	assert.Equal(t, 3, n)
	assert.Equal(t, int64(5004), sent)
	assert.GreaterOrEqual(t, len(f.preBatches), 2, "files added later are preuploaded in their own batch")
}

func TestUploadUsesKnownHashesAndSample(t *testing.T) {
	f := newFakeHub(t)
	f.addRepo("alice/m")
	big, small := randomBytes(21, 4000), []byte(`{"a": 1}`)
	var bigOpens, smallOpens atomic.Int32
	_, err := f.client(t).UploadFiles(context.Background(), aliceM, []Addition{
		{Path: "unet/model.safetensors", Size: int64(len(big)), Open: countingOpen(big, &bigOpens),
			Hashes: Hashes{SHA256: sha256hex(big)}, Sample: big[:512]},
		{Path: "unet/config.json", Size: int64(len(small)), Open: countingOpen(small, &smallOpens),
			Hashes: Hashes{SHA256: sha256hex(small)}, Sample: small},
	}, UploadOptions{HashCache: noCache(t)})
	require.NoError(t, err)
	assert.Equal(t, int32(1), bigOpens.Load(), "an LFS file with a known sha256 and sample is read only to be sent")
	assert.Equal(t, int32(1), smallOpens.Load(), "a regular file is read once: hash and commit content together")
	assert.Equal(t, big, f.lfs[sha256hex(big)])
	assert.Equal(t, small, f.repos["alice/m"].files["unet/config.json"].content)
}

func TestUploadRefusesARegularFileThatChanged(t *testing.T) {
	f := newFakeHub(t)
	f.addRepo("alice/m")
	b := []byte(`{"a": 1}`)
	_, err := f.client(t).UploadFiles(context.Background(), aliceM, []Addition{
		{Path: "config.json", Size: int64(len(b)), Open: countingOpen(b, new(atomic.Int32)), Hashes: Hashes{SHA256: sha256hex([]byte("other"))}},
	}, UploadOptions{HashCache: noCache(t)})
	require.ErrorContains(t, err, "config.json changed since it was written")
	assert.Empty(t, f.commits)
}

func TestUploadFailureCommitsNothing(t *testing.T) {
	f := newFakeHub(t)
	f.addRepo("alice/m")
	f.setFault("put", func(w http.ResponseWriter, r *http.Request, n int) bool {
		hubError(w, http.StatusForbidden, "", "no")
		return true
	})
	c := f.client(t, func(o *Options) { o.Sleep = nil })
	u, err := c.StartUpload(context.Background(), aliceM, UploadOptions{HashCache: noCache(t)})
	require.NoError(t, err)
	require.NoError(t, u.Add(bytesAddition("a.safetensors", randomBytes(31, 900))))
	require.NoError(t, u.Add(bytesAddition("README.md", []byte("# m\n"))))
	_, err = u.Commit(context.Background(), nil)
	require.Error(t, err)
	assert.Empty(t, f.commits, "a failed upload commits nothing")
	assert.Error(t, u.Add(bytesAddition("c.txt", []byte("late"))), "an upload that failed takes no more files")
}

func TestUploadAbortStopsEverything(t *testing.T) {
	f := newFakeHub(t)
	f.addRepo("alice/m")
	block := make(chan struct{})
	f.setFault("preupload", func(w http.ResponseWriter, r *http.Request, n int) bool {
		select {
		case <-block:
		case <-r.Context().Done():
		}
		hubError(w, http.StatusServiceUnavailable, "", "busy")
		return true
	})
	defer close(block)
	u, err := f.client(t).StartUpload(context.Background(), aliceM, UploadOptions{HashCache: noCache(t)})
	require.NoError(t, err)
	require.NoError(t, u.Add(bytesAddition("a.txt", []byte("a"))))
	done := make(chan struct{})
	go func() { u.Abort(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Abort did not return while a request was in flight")
	}
	assert.Empty(t, f.commits)
}

func TestUploadRefusesRepeatedPaths(t *testing.T) {
	f := newFakeHub(t)
	f.addRepo("alice/m")
	_, err := f.client(t).UploadFiles(context.Background(), aliceM, []Addition{
		bytesAddition("a.txt", []byte("1")), bytesAddition("./a.txt", []byte("2")),
	}, UploadOptions{HashCache: noCache(t)})
	var he *Error
	require.ErrorAs(t, err, &he)
	assert.ErrorIs(t, err, ErrBadRequest)
	assert.Contains(t, err.Error(), `"a.txt" is added twice`)
}

func noCache(t *testing.T) *HashCache {
	hc, err := OpenHashCache(filepath.Join(t.TempDir(), "hashes.json"))
	require.NoError(t, err)
	return hc
}

func bytesAddition(path string, b []byte) Addition {
	return Addition{Path: path, Size: int64(len(b)), Bytes: b}
}
