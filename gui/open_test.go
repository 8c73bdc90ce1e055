package gui

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/storage"
	"fyne.io/fyne/v2/test"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/pipeline"
)

func TestOpenPathInsidePipeline(t *testing.T) {
	dir, _ := writeSD15(t)
	u, _ := newTestUI(t)
	for _, rel := range []string{
		".",
		"model_index.json",
		"unet",
		"unet/diffusion_pytorch_model.safetensors",
		"unet/diffusion_pytorch_model.fp16.safetensors",
		"tokenizer/vocab.json",
		"scheduler",
	} {
		u.setPipeline(nil)
		u.OpenPath(filepath.Join(dir, rel))
		require.NotNil(t, u.pipeline, rel)
		assert.Equal(t, dir, u.pipeline.Dir, rel)
		assert.Equal(t, "StableDiffusionPipeline", u.pipeline.Index.ClassName, rel)
	}
}

func TestOpenSingleModelFolder(t *testing.T) {
	src, _ := writeSD15(t)
	model := filepath.Join(t.TempDir(), "my-unet")
	require.NoError(t, os.CopyFS(model, os.DirFS(filepath.Join(src, "unet"))))
	u, _ := newTestUI(t)

	u.OpenPath(filepath.Join(model, "diffusion_pytorch_model.safetensors"))

	require.NotNil(t, u.pipeline)
	assert.Equal(t, model, u.pipeline.Dir)
	assert.Nil(t, u.pipeline.Index)
	assert.Equal(t, "Single model (UNet2DConditionModel)", u.panels[0].p.(*overviewPanel).shown.title)
	assert.Equal(t, []string{"c/"}, u.tree.model.childIDs(pipelineNodeID))
	_, name, _ := u.tree.model.row("c/")
	assert.Equal(t, "my-unet", name, "a single model's component is named after its folder")
}

// dialogText is the markup of the dialog on top of the window, "" if none.
func dialogText(w fyne.Window) string {
	top := w.Canvas().Overlays().Top()
	if top == nil {
		return ""
	}
	return test.RenderObjectToMarkup(top)
}

func TestNotPipelineShowsDialog(t *testing.T) {
	u, w := newTestUI(t)
	empty := filepath.Join(t.TempDir(), "downloads")
	require.NoError(t, os.Mkdir(empty, 0o755))

	u.OpenPath(empty)

	assert.Nil(t, u.pipeline)
	text := dialogText(w)
	require.NotEmpty(t, text, "a dialog must say what is wrong")
	assert.Contains(t, text, "Not a Diffusers folder")
	assert.Contains(t, text, "downloads is not a Diffusers folder: it has no model_index.json")
	assert.Contains(t, text, "Choose the folder that holds model_index.json")
	assert.Empty(t, u.recentFolders(), "a folder that did not open is not remembered")
	assert.True(t, u.welcome.content.Visible())
}

func TestFailedOpenKeepsCurrentPipeline(t *testing.T) {
	u, w := newTestUI(t)
	dir, _ := writeSD15(t)
	u.OpenPath(dir)
	broken := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(broken, "model_index.json"), []byte(`{"unet": [1, 2]}`), 0o644))

	u.OpenPath(broken)

	require.NotNil(t, u.pipeline)
	assert.Equal(t, dir, u.pipeline.Dir)
	assert.True(t, u.main.Visible())
	assert.Contains(t, dialogText(w), "model_index.json cannot be used")
}

func TestDescribeOpenError(t *testing.T) {
	tests := []struct {
		err         error
		title, next string
	}{
		{fmt.Errorf("x: %w: it is a file", pipeline.ErrNotPipeline), "Not a Diffusers folder", "Choose the folder that holds model_index.json"},
		{fmt.Errorf("%w: _class_name is missing", pipeline.ErrModelIndex), "model_index.json cannot be used", "Fix model_index.json"},
		{fmt.Errorf("x: %w: \"vae\"", pipeline.ErrMissingComponent), "A component is missing", "download the missing component folder again"},
		{&fs.PathError{Op: "stat", Path: "/m", Err: fs.ErrNotExist}, "Folder not found", "Choose it again with File ▸ Open…"},
		{&fs.PathError{Op: "open", Path: "/m", Err: fs.ErrPermission}, "Permission denied", "Check the folder's permissions"},
		{errors.New("disk on fire"), "Cannot open the folder", "disk on fire"},
	}
	for _, tt := range tests {
		title, msg := describeOpenError("/m", tt.err)
		assert.Equal(t, tt.title, title, "describeOpenError(%v)", tt.err)
		assert.Contains(t, msg, tt.next, "describeOpenError(%v)", tt.err)
	}
}

func TestRecentFolders(t *testing.T) {
	u, _ := newTestUI(t)
	prefs := fyne.CurrentApp().Preferences()
	var dirs []string
	for i := range 10 {
		d := filepath.Join(t.TempDir(), fmt.Sprint("m", i))
		require.NoError(t, os.Mkdir(d, 0o755))
		dirs = append(dirs, d)
	}
	gone := filepath.Join(t.TempDir(), "gone")
	prefs.SetStringList(prefRecentFolders, []string{dirs[0], gone, dirs[1], dirs[0]})
	assert.Equal(t, []string{dirs[0], dirs[1]}, u.recentFolders(), "missing folders and duplicates are dropped")

	for _, d := range dirs {
		u.rememberFolder(d)
	}
	want := []string{dirs[9], dirs[8], dirs[7], dirs[6], dirs[5], dirs[4], dirs[3], dirs[2]}
	assert.Equal(t, want, prefs.StringList(prefRecentFolders), "most recent first, at most 8")
	u.rememberFolder(dirs[5])
	assert.Equal(t, dirs[5], prefs.StringList(prefRecentFolders)[0])
	assert.Len(t, prefs.StringList(prefRecentFolders), 8)
}

func TestRecentFoldersOpenAndPersist(t *testing.T) {
	u, w := newTestUI(t)
	a, _ := writeSD15(t)
	b, _ := writeSD15(t)
	prefs := fyne.CurrentApp().Preferences()

	u.OpenPath(filepath.Join(a, "unet"))
	u.OpenPath(b)
	assert.Equal(t, []string{b, a}, prefs.StringList(prefRecentFolders), "the pipeline folder is remembered, not the path given")

	recent := menuItem(t, w, "Open Recent").ChildMenu.Items
	require.Len(t, recent, 2)
	assert.Equal(t, shortPath(b), recent[0].Label)
	recent[1].Action()
	assert.Equal(t, a, u.pipeline.Dir)
	assert.Equal(t, []string{a, b}, prefs.StringList(prefRecentFolders))

	// The welcome view of the next start lists them as buttons.
	u2, _ := newTestUI(t)
	u2.e.prefs.SetStringList(prefRecentFolders, []string{a, b})
	u2.refresh()
	require.Len(t, u2.welcome.buttons, 2)
	assert.True(t, u2.welcome.heading.Visible())
	test.Tap(u2.welcome.buttons[1])
	require.NotNil(t, u2.pipeline)
	assert.Equal(t, b, u2.pipeline.Dir)
}

func TestRecentFolderGoneIsForgotten(t *testing.T) {
	u, w := newTestUI(t)
	gone := filepath.Join(t.TempDir(), "gone")
	u.e.prefs.SetStringList(prefRecentFolders, []string{gone})

	u.OpenPath(gone)

	assert.Empty(t, u.e.prefs.StringList(prefRecentFolders))
	assert.Contains(t, dialogText(w), "Folder not found")
}

func TestOpenCancelsPrevious(t *testing.T) {
	u, _ := newTestUI(t)
	var queued []func()
	u.e.spawn = func(f func()) { queued = append(queued, f) }
	var ctxs []context.Context
	u.openPipeline = func(ctx context.Context, dir string, opts pipeline.OpenOptions) (*pipeline.Pipeline, error) {
		ctxs = append(ctxs, ctx)
		return pipeline.OpenWith(ctx, dir, opts)
	}
	a, _ := writeSD15(t)
	b, _ := writeSD15(t)

	u.OpenPath(a)
	u.OpenPath(b)
	require.Len(t, queued, 2)
	queued[1]() // b finishes first
	queued[0]() // a then sees a cancelled context, and its result is dropped

	require.Len(t, ctxs, 2)
	assert.ErrorIs(t, ctxs[0].Err(), context.Canceled, "opening b cancels a")
	require.NotNil(t, u.pipeline)
	assert.Equal(t, b, u.pipeline.Dir)
	assert.Nil(t, u.e.win.Canvas().Overlays().Top(), "a cancelled open shows no error")
	assert.False(t, u.opening.busy())
}

func TestOpenPanicBecomesDialog(t *testing.T) {
	u, w := newTestUI(t)
	u.openPipeline = func(context.Context, string, pipeline.OpenOptions) (*pipeline.Pipeline, error) {
		panic("index out of range")
	}

	u.OpenPath(t.TempDir())

	assert.Nil(t, u.pipeline)
	assert.False(t, u.opening.busy())
	text := dialogText(w)
	assert.Contains(t, text, "Cannot open the folder")
	assert.Contains(t, text, "index out of range")
}

func TestDropOpensPipeline(t *testing.T) {
	u, _ := newTestUI(t)
	dir, _ := writeSD15(t)

	u.dropped(fyne.NewPos(10, 10), []fyne.URI{storage.NewURI("https://example.com/x"),
		storage.NewFileURI(filepath.Join(dir, "vae", "diffusion_pytorch_model.safetensors"))})

	require.NotNil(t, u.pipeline)
	assert.Equal(t, dir, u.pipeline.Dir)
}

func TestFolderPicker(t *testing.T) {
	dir, _ := writeSD15(t)
	tests := []struct {
		name       string
		browse     func(string, string) (string, error)
		wantOpen   bool
		wantDialog bool
	}{
		{"chosen", func(string, string) (string, error) { return dir, nil }, true, false},
		{"cancelled", func(string, string) (string, error) { return "", errPickCancelled }, false, false},
		{"panics without GTK", func(string, string) (string, error) { panic("gtk initialisation failed") }, false, true},
		{"fails", func(string, string) (string, error) { return "", errors.New("no portal") }, false, true},
		{"none", nil, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, w := newTestUI(t)
			u.browse = tt.browse
			menuItem(t, w, "Open…").Action()
			assert.Equal(t, tt.wantOpen, u.pipeline != nil)
			top := w.Canvas().Overlays().Top()
			if !tt.wantDialog {
				assert.Nil(t, top)
				return
			}
			require.NotNil(t, top, "Fyne's folder dialog is the fallback")
			assert.Contains(t, test.RenderObjectToMarkup(top), "Open", "the fallback is a folder dialog")
		})
	}
}

func TestNativeBrowseWithoutDisplayIsRecovered(t *testing.T) {
	if os.Getenv("DISPLAY") != "" || os.Getenv("WAYLAND_DISPLAY") != "" {
		t.Skip("a display is available: the native picker would open")
	}
	_, err := nativeBrowse(titleOpen, "")
	assert.ErrorIs(t, err, errNoNativePicker)
}
