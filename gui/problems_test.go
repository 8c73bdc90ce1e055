package gui

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/theme"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/pipeline/pipelinetest"
)

// unetFile is the UNet's main weights file in the test pipeline.
const unetFile = "unet/diffusion_pytorch_model.safetensors"

// breakUNet truncates the UNet's main weights of the pipeline in dir to
// half, as an interrupted download leaves them, and returns their bytes.
func breakUNet(t *testing.T, dir string) []byte {
	t.Helper()
	path := filepath.Join(dir, filepath.FromSlash(unetFile))
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, os.Truncate(path, int64(len(data)/2)))
	return data
}

// overlayText is the markup of the dialog on top of the window, "" if none.
func overlayText(w fyne.Window) string {
	if w.Canvas().Overlays().Top() == nil {
		return ""
	}
	return test.RenderObjectToMarkup(w.Canvas().Overlays().Top())
}

func TestBrokenComponentBlocksSaveAndPublish(t *testing.T) {
	u, w := newTestUI(t)
	saves, publishes := 0, 0
	u.onSave = func() { saves++ }
	u.onPublish = func() { publishes++ }
	dir, _ := writeSD15(t)
	good := breakUNet(t, dir)
	u.selectTab("Publish")

	u.OpenPath(dir)

	require.NotNil(t, u.pipeline)
	assert.Equal(t, "Overview", u.tabs.Selected().Text, "a folder with problems opens on the Overview")
	assert.Equal(t, "unet cannot be read", u.blocker())

	// The tree marks the component and its file.
	tm := u.tree.model
	icon, _, detail := tm.row("c/unet")
	assert.Equal(t, theme.ErrorIcon(), icon)
	assert.Contains(t, detail, "UNet2DConditionModel · cannot be read")
	assert.True(t, tm.isProblem("c/unet"))
	assert.True(t, tm.isProblem("f/"+unetFile))
	assert.False(t, tm.isProblem("c/vae"))
	assert.False(t, tm.isProblem("f/unet/diffusion_pytorch_model.fp16.safetensors"), "the fp16 file reads fine")

	// The Overview says what is wrong and what the totals leave out.
	o := u.panels[0].p.(*overviewPanel)
	require.Len(t, o.shown.problems, 1)
	assert.Contains(t, o.shown.problems[0].long(), "unet: its main weights cannot be read")
	assert.Contains(t, o.shown.leftOut, "unet (main weights)")
	markup := test.RenderObjectToMarkup(o.Content())
	assert.Contains(t, markup, "Problems (1)")
	assert.Contains(t, markup, "Not counted: unet (main weights), which cannot be read.")

	// Save locally and Publish are off, with the reason in sight.
	assert.True(t, u.saveBtn.Disabled())
	assert.True(t, menuItem(t, w, "Save locally…").Disabled)
	assert.True(t, menuItem(t, w, "Publish…").Disabled)
	assert.True(t, u.blocked.Visible())
	assert.Contains(t, u.blocked.Text, "Save and Publish are off: unet cannot be read")
	press(w, shortcutSave)
	assert.Contains(t, overlayText(w), "unet cannot be read", "the shortcut says why it does nothing")
	w.Canvas().Overlays().Top().Hide()
	press(w, shortcutPublish)
	assert.Contains(t, overlayText(w), "Cannot publish this folder")
	w.Canvas().Overlays().Top().Hide()
	assert.Zero(t, saves+publishes)

	// Fixed and reloaded with F5, the folder saves; the selection stays.
	u.tree.reveal("c/vae")
	require.NoError(t, os.WriteFile(filepath.Join(dir, filepath.FromSlash(unetFile)), good, 0o644))
	u.typedKey(&fyne.KeyEvent{Name: fyne.KeyF5})
	assert.Empty(t, u.blocker())
	assert.False(t, u.saveBtn.Disabled())
	assert.False(t, menuItem(t, w, "Save locally…").Disabled)
	assert.False(t, menuItem(t, w, "Publish…").Disabled)
	assert.False(t, tm == u.tree.model, "read again")
	assert.False(t, u.tree.model.isProblem("c/unet"))
	assert.Equal(t, "c/vae", u.selected, "the selection survives the reload")
	press(w, shortcutSave)
	assert.Equal(t, 1, saves)
}

func TestReloadMenuAndShortcut(t *testing.T) {
	u, w := newTestUI(t)
	reload := menuItem(t, w, "Reload")
	assert.True(t, reload.Disabled, "nothing to reload before a folder is open")
	assert.Equal(t, shortcutReload, reload.Shortcut)
	press(w, shortcutReload) // does nothing, and does not panic

	dir, _ := writeSD15(t)
	u.OpenPath(dir)
	first := u.pipeline
	assert.False(t, reload.Disabled)
	press(w, shortcutReload)
	require.NotNil(t, u.pipeline)
	assert.NotSame(t, first, u.pipeline, "Ctrl+R reads the folder again")
	second := u.pipeline
	reload.Action()
	assert.NotSame(t, second, u.pipeline, "and so does File ▸ Reload")
}

func TestBlockerOfAFolderWithoutProblems(t *testing.T) {
	u, _ := openSD15(t)
	assert.Empty(t, u.blocker())
	assert.Empty(t, folderProblems(nil))
	assert.Empty(t, u.panels[0].p.(*overviewPanel).shown.leftOut)
	assert.False(t, u.blocked.Visible())
}

// TestBrokenShardIsTheOneMarked: of a sharded set, the tree marks the
// shard that cannot be read, and the Overview names it by its path in the
// folder.
func TestBrokenShardIsTheOneMarked(t *testing.T) {
	u, _ := newTestUI(t)
	dir := filepath.Join(t.TempDir(), "sharded")
	_, err := pipelinetest.WriteSD15(context.Background(), dir, pipelinetest.Options{Scale: 0.001, Seed: 7, MaxShardSize: 1_000_000})
	require.NoError(t, err)
	shard := filepath.Join(dir, "unet", "diffusion_pytorch_model-00002-of-00004.safetensors")
	st, err := os.Stat(shard)
	require.NoError(t, err)
	require.NoError(t, os.Truncate(shard, st.Size()/2))

	u.OpenPath(dir)

	require.NotNil(t, u.pipeline)
	tm := u.tree.model
	assert.True(t, tm.isProblem("f/unet/diffusion_pytorch_model-00002-of-00004.safetensors"))
	for _, f := range []string{"diffusion_pytorch_model-00001-of-00004.safetensors", "diffusion_pytorch_model-00003-of-00004.safetensors",
		"diffusion_pytorch_model.safetensors.index.json"} {
		assert.False(t, tm.isProblem("f/unet/"+f), f)
	}
	_, _, detail := tm.row("f/unet/diffusion_pytorch_model-00001-of-00004.safetensors")
	assert.Contains(t, detail, "its set cannot be read")
	_, _, detail = tm.row("f/unet/diffusion_pytorch_model-00002-of-00004.safetensors")
	assert.True(t, strings.HasSuffix(detail, " · cannot be read"), detail)
	problems := folderProblems(u.pipeline)
	require.Len(t, problems, 1)
	long := problems[0].long()
	assert.Contains(t, long, ": unet/diffusion_pytorch_model-00002-of-00004.safetensors: ")
	assert.NotContains(t, long, dir, "paths in the folder are written from it")
}

func TestNamesFile(t *testing.T) {
	text := "/x/unet/diffusion_pytorch_model.safetensors.index.json: shard model-00002-of-00004.safetensors is missing"
	for name, want := range map[string]bool{
		"diffusion_pytorch_model.safetensors.index.json": true,
		"diffusion_pytorch_model.safetensors":            false, // only the start of the index's name
		"model-00002-of-00004.safetensors":               true,
		"model-00001-of-00004.safetensors":               false,
	} {
		assert.Equal(t, want, namesFile(text, name), name)
	}
}

// TestBrokenComponentDisablesPublish: the Publish panel's buttons are off
// too, with the reason where the target's problems show.
func TestBrokenComponentDisablesPublish(t *testing.T) {
	u, _ := newTestUI(t)
	dir, _ := writeSD15(t)
	good := breakUNet(t, dir)
	u.OpenPath(dir)
	pp := u.publisher
	assert.True(t, pp.publishBtn.Disabled())
	assert.True(t, pp.dryRunBtn.Disabled())
	assert.True(t, pp.targetHint.Visible())
	assert.Contains(t, pp.targetHint.Text, "Publish is off: unet cannot be read")

	require.NoError(t, os.WriteFile(filepath.Join(dir, filepath.FromSlash(unetFile)), good, 0o644))
	u.reload()
	assert.False(t, pp.dryRunBtn.Disabled(), "fixed and reloaded, the dry run may run")
	assert.NotContains(t, pp.targetHint.Text, "Publish is off")
}

// A file-system error reads the same on every OS and names the path
// inside the folder relative to it.
func TestRelativeTextWordsAMissingPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "model")
	_, statErr := os.Stat(filepath.Join(dir, "unet", "config.json"))
	require.Error(t, statErr)
	windows := &fs.PathError{Op: "GetFileAttributesEx", Path: filepath.Join(dir, "vae"), Err: fs.ErrNotExist}
	want := filepath.Join("unet", "config.json") + ": no such file or folder"
	assert.Equal(t, want, relativeText(statErr, dir))
	assert.Equal(t, "vae: no such file or folder", relativeText(windows, dir))
}
