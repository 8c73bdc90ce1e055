//go:build unix

package convert

import (
	"context"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/folder"
)

// A FIFO given as the checkpoint is refused without being opened for
// reading (which would block until a writer comes).
func TestConvertRefusesAFIFO(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "model.ckpt")
	require.NoError(t, syscall.Mkfifo(fifo, 0o644))
	_, err := Convert(context.Background(), fifo, filepath.Join(dir, "out"), Options{})
	require.ErrorIs(t, err, folder.ErrNotRegular)
	assert.NoDirExists(t, filepath.Join(dir, "out"))
}
