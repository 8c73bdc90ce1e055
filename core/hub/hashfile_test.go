package hub

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// HashFile gives the hashes UploadFolder compares, stores them where
// UploadFolder looks (through a symbolic link too), and an upload after it
// reads no file again.
func TestHashFileFeedsTheUpload(t *testing.T) {
	f := newFakeHub(t)
	f.addRepo("alice/m")
	src := makeFolder(t, folderFiles)
	// The folder is a view of links, as core/publish uploads it, where
	// links can be made.
	dir := t.TempDir()
	if symlinksWork(t) {
		for p := range folderFiles {
			require.NoError(t, os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755))
			require.NoError(t, os.Symlink(filepath.Join(src, p), filepath.Join(dir, p)))
		}
	} else {
		t.Log("no symbolic links here (Wine 8.0's CreateSymbolicLink reports success and makes none): the files themselves are hashed")
		dir = src
	}
	hc, err := OpenHashCache(filepath.Join(t.TempDir(), "hashes.json"))
	require.NoError(t, err)
	var mu sync.Mutex
	reads := map[string]int{}
	hashReadHook = func(p string) { mu.Lock(); reads[filepath.Base(p)]++; mu.Unlock() }
	defer func() { hashReadHook = nil }()

	tests := []struct {
		path    string
		lfs     bool
		content []byte
	}{
		{"unet/model.safetensors", true, folderFiles["unet/model.safetensors"]},
		{"config.json", false, folderFiles["config.json"]},
		{"empty.txt", false, folderFiles["empty.txt"]},
	}
	for _, tt := range tests {
		h, err := HashFile(context.Background(), hc, filepath.Join(dir, tt.path), tt.lfs, nil)
		require.NoError(t, err)
		assert.Equal(t, sha256hex(tt.content), h.SHA256, tt.path)
		assert.Equal(t, GitBlobSHA1(tt.content), h.SHA1, tt.path)
		again, err := HashFile(context.Background(), nil, filepath.Join(dir, tt.path), tt.lfs, nil)
		require.NoError(t, err)
		assert.Equal(t, h, again, "without a cache: the same hashes")
	}
	_, err = HashFile(context.Background(), hc, dir, false, nil)
	assert.Error(t, err, "a folder")
	_, err = HashFile(context.Background(), hc, filepath.Join(dir, "missing"), false, nil)
	assert.Error(t, err)

	before := map[string]int{}
	for k, v := range reads {
		before[k] = v
	}
	_, err = upload(t, f, f.client(t), dir, UploadOptions{HashCache: hc})
	require.NoError(t, err)
	for _, tt := range tests {
		assert.Equal(t, before[filepath.Base(tt.path)], reads[filepath.Base(tt.path)], "%s hashed again by the upload", tt.path)
	}
}

// symlinksWork says whether a symbolic link made here can be followed.
func symlinksWork(t *testing.T) bool {
	t.Helper()
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	require.NoError(t, os.WriteFile(target, []byte("x"), 0o644))
	if err := os.Symlink(target, filepath.Join(dir, "link")); err != nil {
		return false
	}
	_, err := os.Stat(filepath.Join(dir, "link"))
	return err == nil
}
