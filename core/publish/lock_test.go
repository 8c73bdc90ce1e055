package publish

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The lock is a real one on Linux, macOS and Windows: a second handle on
// the lock file is refused until the first lets go.
func TestLockFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	open := func() *os.File {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
		require.NoError(t, err)
		t.Cleanup(func() { f.Close() })
		return f
	}
	a, b := open(), open()
	require.NoError(t, lockFile(a))
	assert.ErrorIs(t, lockFile(b), errLocked, "held by a")
	unlockFile(a)
	require.NoError(t, lockFile(b), "a let go")
	assert.ErrorIs(t, lockFile(a), errLocked, "held by b")
	unlockFile(b)
	require.NoError(t, b.Close())
	require.NoError(t, lockFile(a), "closing the handle lets go too")
	unlockFile(a)
}

func TestLockSource(t *testing.T) {
	cache := t.TempDir()
	src := t.TempDir()
	unlock, err := lockSource(cache, src)
	require.NoError(t, err)
	_, err = lockSource(cache, src)
	require.ErrorIs(t, err, ErrBusy)
	assert.Contains(t, err.Error(), src)
	other, err := lockSource(cache, t.TempDir())
	require.NoError(t, err, "another folder has its own lock")
	other()
	unlock()
	unlock, err = lockSource(cache, src)
	require.NoError(t, err)
	unlock()
}
