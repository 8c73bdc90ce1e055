//go:build unix

package folder_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/folder"
)

func write(t *testing.T, path, data string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(data), 0o644))
}

// hostile builds a model folder whose tokenizer reaches a secret outside it
// and holds special files.
func hostile(t *testing.T) (dir, secret string) {
	base := t.TempDir()
	secret = filepath.Join(base, "id_ed25519")
	write(t, secret, "PRIVATE KEY")
	dir = filepath.Join(base, "model")
	write(t, filepath.Join(dir, "model_index.json"), "{}")
	write(t, filepath.Join(dir, "tokenizer", "vocab.json"), "{}")
	require.NoError(t, os.Symlink(secret, filepath.Join(dir, "tokenizer", "added_tokens.txt")))
	require.NoError(t, os.Symlink("vocab.json", filepath.Join(dir, "tokenizer", "same.json")))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "unet"), 0o755))
	require.NoError(t, syscall.Mkfifo(filepath.Join(dir, "unet", "fifo.safetensors"), 0o644))
	require.NoError(t, os.Symlink("/dev/zero", filepath.Join(dir, "unet", "config.json")))
	require.NoError(t, os.Symlink("gone.json", filepath.Join(dir, "unet", "dangling.json")))
	return dir, secret
}

// noHang fails the test if fn blocks (a FIFO opened for reading would).
func noHang(t *testing.T, fn func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("blocked: a special file was opened for reading")
		return nil
	}
}

func TestRootRefusesWhatLeavesTheFolder(t *testing.T) {
	dir, secret := hostile(t)
	r, err := folder.New(dir, folder.Options{})
	require.NoError(t, err)

	_, err = r.ReadFile("tokenizer/added_tokens.txt", 0)
	var fe *folder.Error
	require.ErrorAs(t, err, &fe)
	assert.ErrorIs(t, err, folder.ErrOutsideLink)
	assert.Equal(t, filepath.Join(dir, "tokenizer", "added_tokens.txt"), fe.Path)
	assert.Equal(t, secret, fe.Target)
	assert.Contains(t, err.Error(), "added_tokens.txt")
	assert.Contains(t, err.Error(), secret)
	assert.NotContains(t, err.Error(), "PRIVATE")

	b, err := r.ReadFile("tokenizer/same.json", 0)
	require.NoError(t, err, "a link inside the folder is followed")
	assert.Equal(t, "{}", string(b))

	err = noHang(t, func() error { _, err := r.Open("unet/fifo.safetensors"); return err })
	assert.ErrorIs(t, err, folder.ErrNotRegular)
	assert.Contains(t, err.Error(), "FIFO")

	_, err = r.ReadFile("unet/config.json", 0)
	assert.ErrorIs(t, err, folder.ErrOutsideLink, "/dev/zero is outside the folder")

	_, err = r.ReadFile("../id_ed25519", 0)
	assert.ErrorIs(t, err, folder.ErrOutside)
	_, err = r.Open(secret)
	assert.ErrorIs(t, err, folder.ErrOutside)

	_, err = r.ReadDir("tokenizer")
	assert.ErrorIs(t, err, folder.ErrOutsideLink, "a listing names the bad link rather than skipping it")

	problems, err := r.Problems(context.Background())
	require.NoError(t, err)
	var paths []string
	for _, p := range problems {
		rel, _ := filepath.Rel(dir, p.Path)
		paths = append(paths, rel)
	}
	assert.ElementsMatch(t, []string{"tokenizer/added_tokens.txt", "unet/fifo.safetensors", "unet/config.json", "unet/dangling.json"}, paths)
	for _, p := range problems {
		if filepath.Base(p.Path) == "dangling.json" {
			assert.ErrorIs(t, p, folder.ErrBrokenLink)
			assert.Contains(t, p.Error(), "symbolic link to gone.json, which does not exist")
		}
	}
}

func TestRootAllowOutsideLinksStillRefusesSpecialFiles(t *testing.T) {
	dir, _ := hostile(t)
	r, err := folder.New(dir, folder.Options{AllowOutsideLinks: true})
	require.NoError(t, err)
	b, err := r.ReadFile("tokenizer/added_tokens.txt", 0)
	require.NoError(t, err)
	assert.Equal(t, "PRIVATE KEY", string(b))
	_, err = r.ReadFile("unet/config.json", 0)
	assert.ErrorIs(t, err, folder.ErrNotRegular, "/dev/zero is a device, never read")
	assert.Contains(t, err.Error(), "device")
}

// The Hugging Face cache keeps a snapshot's files as links into ../../blobs:
// opening a snapshot must keep working.
func TestRootFollowsTheHuggingFaceCacheLayout(t *testing.T) {
	cache := t.TempDir()
	repo := filepath.Join(cache, "hub", "models--org--name")
	write(t, filepath.Join(repo, "blobs", "abc123"), `{"_class_name":"UNet2DConditionModel"}`)
	snap := filepath.Join(repo, "snapshots", "0123abcd")
	require.NoError(t, os.MkdirAll(filepath.Join(snap, "unet"), 0o755))
	require.NoError(t, os.Symlink("../../../blobs/abc123", filepath.Join(snap, "unet", "config.json")))
	write(t, filepath.Join(cache, "elsewhere"), "secret")
	require.NoError(t, os.Symlink("../../../../../elsewhere", filepath.Join(snap, "unet", "leak.txt")))

	assert.Equal(t, repo, folder.CacheRepo(snap))
	assert.Equal(t, repo, folder.CacheRepo(filepath.Join(snap, "unet")))
	assert.Empty(t, folder.CacheRepo(filepath.Join(cache, "snapshots", "x")))

	for _, root := range []string{snap, filepath.Join(snap, "unet")} {
		r, err := folder.New(root, folder.Options{})
		require.NoError(t, err)
		b, err := r.ReadFile(filepath.Join(snap, "unet", "config.json"), 0)
		require.NoError(t, err)
		assert.Contains(t, string(b), "UNet2DConditionModel")
		_, err = r.ReadFile(filepath.Join(snap, "unet", "leak.txt"), 0)
		assert.ErrorIs(t, err, folder.ErrOutsideLink, "only the cache repo itself is allowed")
	}
}

// A sparse 6 GB JSON file is refused from its size, without reading it.
func TestReadFileCapsSizeBeforeReading(t *testing.T) {
	path := filepath.Join(t.TempDir(), "model_index.json")
	f, err := os.Create(path)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(6<<30))
	require.NoError(t, f.Close())

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = folder.ReadFile(path, 0)
	runtime.ReadMemStats(&after)
	var fe *folder.Error
	require.ErrorAs(t, err, &fe)
	assert.ErrorIs(t, err, folder.ErrTooLarge)
	assert.Contains(t, err.Error(), "6.4 GB")
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(1<<20), "nothing of the file was read")

	small := filepath.Join(t.TempDir(), "a.json")
	write(t, small, "12345")
	_, err = folder.ReadFile(small, 4)
	assert.ErrorIs(t, err, folder.ErrTooLarge)
	b, err := folder.ReadFile(small, 5)
	require.NoError(t, err)
	assert.Equal(t, "12345", string(b))
}

func TestOpenRegularNeverBlocks(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "p")
	require.NoError(t, syscall.Mkfifo(fifo, 0o644))
	for _, p := range []string{fifo, "/dev/zero", dir} {
		err := noHang(t, func() error { _, err := folder.OpenRegular(p); return err })
		assert.ErrorIs(t, err, folder.ErrNotRegular, p)
		_, err = folder.ReadFile(p, 0)
		assert.ErrorIs(t, err, folder.ErrNotRegular, p)
	}
	_, err := folder.OpenRegular(filepath.Join(dir, "missing"))
	assert.True(t, errors.Is(err, os.ErrNotExist))
}

func TestWalkFollowsInsideLinksOnceAndStopsOnBadOnes(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a", "x.json"), "1")
	require.NoError(t, os.Symlink("a", filepath.Join(dir, "b")))          // a folder link inside
	require.NoError(t, os.Symlink("..", filepath.Join(dir, "a", "loop"))) // a cycle
	write(t, filepath.Join(dir, ".git", "HEAD"), "ref")
	r, err := folder.New(dir, folder.Options{})
	require.NoError(t, err)
	var got []string
	require.NoError(t, r.Walk(context.Background(), func(rel string, e folder.Entry) error {
		got = append(got, rel)
		return nil
	}))
	assert.Equal(t, []string{"a", "a/loop", "a/x.json", "b"}, got)

	require.NoError(t, os.Symlink("/etc", filepath.Join(dir, "c")))
	err = r.Walk(context.Background(), func(string, folder.Entry) error { return nil })
	assert.ErrorIs(t, err, folder.ErrOutsideLink)
}

// A link's name and target come from the folder: they are printed escaped.
func TestErrorsEscapeNames(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.Symlink("/tmp/\x1b[2Jvalid", filepath.Join(dir, "a\nb")))
	r, err := folder.New(dir, folder.Options{})
	require.NoError(t, err)
	problems, err := r.Problems(context.Background())
	require.NoError(t, err)
	require.Len(t, problems, 1)
	msg := problems[0].Error()
	assert.NotContains(t, msg, "\x1b")
	assert.NotContains(t, msg, "\n")
	assert.Contains(t, msg, `\x1b[2Jvalid`)
}
