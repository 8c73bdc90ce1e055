//go:build unix

package gui

import (
	"os"
	"path/filepath"
	"testing"

	"fyne.io/fyne/v2/test"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A folder with a link leading outside opens only after the user saw the
// links and chose "Open anyway"; then the link is followed for the session.
func TestOpenAsksAboutLinksOutsideTheFolder(t *testing.T) {
	u, w := newTestUI(t)
	dir, _ := writeSD15(t)
	secret := filepath.Join(t.TempDir(), "id_ed25519")
	require.NoError(t, os.WriteFile(secret, []byte("key"), 0o600))
	require.NoError(t, os.Symlink(secret, filepath.Join(dir, "tokenizer", "added_tokens.txt")))

	u.OpenPath(dir)
	assert.Nil(t, u.pipeline, "nothing opens before the user decides")
	text := dialogText(w)
	assert.Contains(t, text, "Links outside the folder")
	assert.Contains(t, text, "tokenizer/added_tokens.txt → "+secret)

	var open bool
	for _, b := range findButtons(w.Canvas().Overlays().Top()) {
		if b.Text == "Open anyway" {
			test.Tap(b)
			open = true
			break
		}
	}
	require.True(t, open, "the dialog offers Open anyway")
	require.NotNil(t, u.pipeline)
	assert.True(t, u.pipeline.Files().AllowsOutsideLinks())

	// A FIFO is never read, whatever the user trusts: an error, no offer.
	u2, w2 := newTestUI(t)
	dir2, _ := writeSD15(t)
	require.NoError(t, mkfifo(filepath.Join(dir2, "tokenizer", "merges.txt")))
	u2.OpenPath(dir2)
	assert.Nil(t, u2.pipeline)
	text = dialogText(w2)
	assert.Contains(t, text, "The folder holds files Modelpub will not read")
	assert.Contains(t, text, "FIFO")
	for _, b := range findButtons(w2.Canvas().Overlays().Top()) {
		assert.NotEqual(t, "Open anyway", b.Text)
	}
}
