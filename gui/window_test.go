package gui

import (
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewShowsHint(t *testing.T) {
	test.NewTempApp(t)
	u := New()
	w := test.NewTempWindow(t, u.Content)
	w.Resize(fyne.NewSize(800, 500))

	require.NotNil(t, u.Hint)
	assert.Contains(t, u.Hint.Text, "Diffusers model folders")
	assert.True(t, u.Hint.Visible())
	markup := test.RenderToMarkup(w.Canvas())
	assert.Contains(t, markup, "Modelpub")
	assert.Contains(t, markup, "Diffusers model folders")
}
