//go:build unix

package torchbin

import (
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/folder"
)

// A FIFO or device standing in for a checkpoint is refused without being
// opened for reading.
func TestOpenRefusesSpecialFiles(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "pytorch_model.bin")
	require.NoError(t, syscall.Mkfifo(fifo, 0o644))
	for _, p := range []string{fifo, "/dev/zero"} {
		_, err := Open(p)
		assert.ErrorIs(t, err, folder.ErrNotRegular, p)
	}
}
