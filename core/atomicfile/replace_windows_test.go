package atomicfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// shortRetries makes replace give up after about 1.5 s (time enough for
// a loaded machine to run the goroutine that lets the file go).
func shortRetries(t *testing.T) {
	first, max, total := retryFirst, retryMax, retryFor
	retryFirst, retryMax, retryFor = 5*time.Millisecond, 100*time.Millisecond, 1500*time.Millisecond
	t.Cleanup(func() { retryFirst, retryMax, retryFor = first, max, total })
}

// A file held open elsewhere cannot be replaced on Windows (os.Open shares
// read and write, not delete). Commit waits for it to be let go.
func TestReplaceWaitsForAReaderToClose(t *testing.T) {
	shortRetries(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	require.NoError(t, os.WriteFile(path, []byte("old"), 0o644))
	r, err := os.Open(path)
	require.NoError(t, err)
	if err := replace(path, path+".probe"); err == nil {
		// Moving an open file away is refused on Windows; an emulation
		// that allows it cannot show the retry.
		r.Close()
		t.Skip("this Windows emulation (Wine) lets a file open without FILE_SHARE_DELETE be renamed")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(60 * time.Millisecond)
		r.Close()
	}()
	err = WriteFile(path, []byte("new"), 0o644)
	<-done
	require.NoError(t, err)
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "new", string(got))
	assert.Equal(t, []string{"f"}, names(t, dir))
}

func TestReplaceGivesUpOnAFileKeptOpen(t *testing.T) {
	shortRetries(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "model.safetensors")
	require.NoError(t, os.WriteFile(path, []byte("old"), 0o644))
	r, err := os.Open(path)
	require.NoError(t, err)
	defer r.Close()
	start := time.Now()
	err = WriteFile(path, []byte("new"), 0o644)
	if err == nil {
		t.Skip("this Windows emulation (Wine) lets a file open without FILE_SHARE_DELETE be replaced")
	}
	assert.Less(t, time.Since(start), 5*time.Second)
	require.ErrorIs(t, err, ErrInUse)
	assert.Contains(t, err.Error(), path)
	assert.Contains(t, err.Error(), "close it and try again")
	got, rerr := os.ReadFile(path)
	require.NoError(t, rerr)
	assert.Equal(t, "old", string(got), "the old file is kept")
	assert.Equal(t, []string{"model.safetensors"}, names(t, dir), "no temporary file left")
}

// Rename waits for a reader as Commit does, and gives up the same way.
func TestRenameWaitsForAReaderToClose(t *testing.T) {
	shortRetries(t)
	dir := t.TempDir()
	path, tmp := filepath.Join(dir, "f"), filepath.Join(dir, "tmp")
	require.NoError(t, os.WriteFile(path, []byte("old"), 0o644))
	require.NoError(t, os.WriteFile(tmp, []byte("new"), 0o644))
	r, err := os.Open(path)
	require.NoError(t, err)
	if err := replace(path, path+".probe"); err == nil {
		r.Close()
		t.Skip("this Windows emulation (Wine) lets a file open without FILE_SHARE_DELETE be renamed")
	}
	err = Rename(tmp, path)
	require.ErrorIs(t, err, ErrInUse, "kept open through every retry")
	got, rerr := os.ReadFile(path)
	require.NoError(t, rerr)
	assert.Equal(t, "old", string(got), "the old file is kept")

	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(60 * time.Millisecond)
		r.Close()
	}()
	err = Rename(tmp, path)
	<-done
	require.NoError(t, err)
	got, err = os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "new", string(got))
	assert.Equal(t, []string{"f"}, names(t, dir))
}

func TestReplaceLongPaths(t *testing.T) {
	dir := t.TempDir()
	long := dir
	for len(long) < 300 {
		long = filepath.Join(long, strings.Repeat("d", 40))
	}
	require.NoError(t, os.MkdirAll(long, 0o755))
	path := filepath.Join(long, "model.safetensors")
	require.Greater(t, len(path), 260)
	require.NoError(t, WriteFile(path, []byte("old"), 0o644))
	require.NoError(t, WriteFile(path, []byte("new"), 0o644))
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "new", string(got))
	assert.Equal(t, []string{"model.safetensors"}, names(t, long))
}

func TestLongPath(t *testing.T) {
	long := `C:\` + strings.Repeat(`d\`, 130) + "f"
	tests := map[string]string{
		`C:\short\f`:              `C:\short\f`,
		long:                      `\\?\` + long,
		`\\?\` + long:             `\\?\` + long,
		`\\srv\share\` + long[3:]: `\\?\UNC\srv\share\` + long[3:],
	}
	for in, want := range tests {
		assert.Equal(t, want, longPath(in), in)
	}
}
