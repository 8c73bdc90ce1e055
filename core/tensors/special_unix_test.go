//go:build unix

package tensors

import (
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/folder"
)

// A FIFO or device standing in for a weights or index file is refused
// without being opened for reading: nothing hangs, nothing reads forever.
func TestSpecialFilesAreRefused(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "model.safetensors")
	require.NoError(t, syscall.Mkfifo(fifo, 0o644))
	for _, p := range []string{fifo, "/dev/zero"} {
		_, err := Open(p)
		assert.ErrorIs(t, err, folder.ErrNotRegular, p)
		_, err = ReadHeaderFile(p)
		assert.ErrorIs(t, err, folder.ErrNotRegular, p)
		_, err = OpenShardedSet(p)
		assert.ErrorIs(t, err, folder.ErrNotRegular, p)
	}
}
