package gui

// The tests build the window with Fyne's headless test driver: no display,
// no GLFW window. Work the UI would run on another goroutine runs
// synchronously (env.spawn and env.do call their function directly), since
// the test driver's fyne.Do is not serialised with the test goroutine.
//
// Golden markup lives in testdata/*.xml. After an intended change of a view,
// regenerate the goldens with
//
//	go test ./gui/ -run Golden -update
//
// and review the diff. Without -update a mismatch fails the test and Fyne
// writes what was rendered to testdata/failed/ (git-ignored).

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/zalando/go-keyring"

	"modelpub/core/auth"
	"modelpub/core/drafts"
	"modelpub/core/pipeline"
	"modelpub/core/pipeline/pipelinetest"
	"modelpub/internal/ostest"
)

var update = flag.Bool("update", false, "rewrite the golden markup in testdata/")

// assertGolden compares the canvas with testdata/name, or rewrites it with
// -update.
func assertGolden(t *testing.T, name string, c fyne.Canvas) {
	t.Helper()
	if *update {
		path := filepath.Join("testdata", name)
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, []byte(test.RenderToMarkup(c)), 0o644))
		return
	}
	test.AssertRendersToMarkup(t, name, c)
}

// now runs f on the calling goroutine: env.spawn and env.do in tests.
func now(f func()) { f() }

// newTestUI builds the window in a test window of 1000×700 with an
// in-memory preferences store. The native folder picker fails the test if
// called.
func newTestUI(t *testing.T) (*UI, fyne.Window) {
	t.Helper()
	return newTestUIWithHub(t, nil)
}

// newTestUIWithHub is newTestUI with the Publish panel talking to hc (nil:
// an unreachable Hub with an empty mock keyring).
func newTestUIWithHub(t *testing.T, hc *hubConfig) (*UI, fyne.Window) {
	t.Helper()
	return newTestUIWith(t, hc, drafts.NewStore(t.TempDir()))
}

// newTestUIWith is newTestUIWithHub keeping the model-card drafts in
// store (nil: none can be kept); they are written at once, on the test
// goroutine.
func newTestUIWith(t *testing.T, hc *hubConfig, store *drafts.Store) (*UI, fyne.Window) {
	t.Helper()
	a := test.NewTempApp(t)
	w := test.NewTempWindow(t, widget.NewLabel(""))
	w.Resize(fyne.NewSize(1000, 700))
	// No real keyring, environment or Hub: the Publish panel's account
	// check meets an empty mock keyring and finds no token.
	keyring.MockInit()
	if hc == nil {
		hc = &hubConfig{Endpoint: "http://127.0.0.1:1", Keyring: auth.OSKeyring(),
			Getenv: func(string) string { return "" }, Home: t.TempDir(), CacheDir: t.TempDir()}
	}
	u := newUI(&env{win: w, spawn: now, do: now, choices: &choices{}, prefs: a.Preferences(), hub: hc, drafts: store})
	u.cards.debounce.delay = 0           // the preview renders at once, on the test goroutine
	u.cards.drafts.debounce.delay = 0    // and so are drafts written
	u.publisher.remoteDebounce.delay = 0 // and the Hub read
	u.browse = func(string, string) (string, error) {
		t.Error("the native folder picker must not run in tests")
		return "", errPickCancelled
	}
	return u, w
}

// sd15Options describe the synthetic pipeline of the tests: tiny, with an
// fp16 variant of the UNet only, so the inspection has a warning to show.
var sd15Options = pipelinetest.Options{Scale: 0.001, Seed: 7, FP16Variant: []string{pipelinetest.UNet}}

// sd15 is the synthetic pipeline, written once per test run (random
// values are slow to make under -race) into sd15Dir; no test changes it.
var (
	sd15Once     sync.Once
	sd15Dir      string
	sd15Manifest *pipelinetest.Manifest
	sd15Err      error
)

func TestMain(m *testing.M) {
	// The app keeps checkpoint hashes in the user cache: the tests keep
	// theirs in a folder of their own.
	code := ostest.RunWithTempCache(m)
	if sd15Dir != "" {
		os.RemoveAll(filepath.Dir(sd15Dir))
	}
	os.Exit(code)
}

// writeSD15 returns a copy of the synthetic pipeline in a new temporary
// folder called sd15, and what it holds.
func writeSD15(t *testing.T) (string, *pipelinetest.Manifest) {
	t.Helper()
	sd15Once.Do(func() {
		tmp, err := os.MkdirTemp("", "gui-test-")
		if err != nil {
			sd15Err = err
			return
		}
		sd15Dir = filepath.Join(tmp, "sd15")
		sd15Manifest, sd15Err = pipelinetest.WriteSD15(context.Background(), sd15Dir, sd15Options)
	})
	require.NoError(t, sd15Err)
	dir := filepath.Join(t.TempDir(), "sd15")
	require.NoError(t, os.CopyFS(dir, os.DirFS(sd15Dir)))
	return dir, sd15Manifest
}

// press types a shortcut on the window's canvas.
func press(w fyne.Window, s fyne.Shortcut) {
	w.Canvas().(fyne.Shortcutable).TypedShortcut(s)
}

// menuItem finds a main menu item by label, in menus and submenus.
func menuItem(t *testing.T, w fyne.Window, label string) *fyne.MenuItem {
	t.Helper()
	var find func(items []*fyne.MenuItem) *fyne.MenuItem
	find = func(items []*fyne.MenuItem) *fyne.MenuItem {
		for _, it := range items {
			if it.Label == label {
				return it
			}
			if it.ChildMenu != nil {
				if f := find(it.ChildMenu.Items); f != nil {
					return f
				}
			}
		}
		return nil
	}
	require.NotNil(t, w.MainMenu())
	for _, m := range w.MainMenu().Items {
		if it := find(m.Items); it != nil {
			return it
		}
	}
	t.Fatalf("no menu item %q", label)
	return nil
}

func TestWelcomeGolden(t *testing.T) {
	u, w := newTestUI(t)

	assert.True(t, u.welcome.content.Visible())
	assert.False(t, u.main.Visible())
	assert.Equal(t, "Modelpub", w.Title())
	assert.Equal(t, "No folder open", u.folder.Text)
	assert.False(t, u.welcome.heading.Visible(), "no recent folders yet, so no heading")
	assertGolden(t, "welcome.xml", w.Canvas())
}

func TestOpenShowsFolderInFrame(t *testing.T) {
	u, w := newTestUI(t)
	dir, _ := writeSD15(t)

	u.OpenPath(dir)

	require.NotNil(t, u.pipeline)
	assert.False(t, u.welcome.content.Visible())
	assert.True(t, u.main.Visible())
	assert.Equal(t, "Modelpub — sd15", w.Title())
	assert.Equal(t, shortPath(dir), u.folder.Text)
	assert.False(t, u.status.Visible(), "the opening status hides once open")
	var titles []string
	for _, it := range u.tabs.Items {
		titles = append(titles, it.Text)
	}
	assert.Equal(t, []string{"Overview", "Shards", "Variant", "Model card", "Publish"}, titles)
	assert.Equal(t, "Overview", u.tabs.Selected().Text)
	assert.Equal(t, noSelection, u.details.shown)
}

// recordingPanel counts SetPipeline calls.
type recordingPanel struct {
	got []string
}

func (r *recordingPanel) Content() fyne.CanvasObject { return widget.NewLabel("test") }

func (r *recordingPanel) SetPipeline(p *pipeline.Pipeline) {
	name := "<nil>"
	if p != nil {
		name = filepath.Base(p.Dir)
	}
	r.got = append(r.got, name)
}

func TestOpenSetsEveryPanel(t *testing.T) {
	u, _ := newTestUI(t)
	rec := &recordingPanel{}
	u.panels = append(u.panels, namedPanel{"Test", nil, rec})
	dir, _ := writeSD15(t)

	u.OpenPath(dir)
	u.OpenPath(filepath.Join(t.TempDir(), "missing"))

	assert.Equal(t, []string{"sd15"}, rec.got, "a failed open leaves the panels alone")
	assert.Equal(t, "StableDiffusionPipeline", u.panels[0].p.(*overviewPanel).shown.title)
}

func TestShortcutsAndMenu(t *testing.T) {
	u, w := newTestUI(t)
	dir, _ := writeSD15(t)
	var saves, publishes int
	u.onSave = func() { saves++ }
	u.onPublish = func() { publishes++ }
	u.refresh()
	save, pub := menuItem(t, w, "Save locally…"), menuItem(t, w, "Publish…")

	assert.True(t, save.Disabled, "nothing to save before a folder is open")
	assert.True(t, pub.Disabled)
	press(w, shortcutSave)
	press(w, shortcutPublish)
	assert.Equal(t, 0, saves+publishes, "the shortcuts do nothing without a folder")

	var browsed []string
	u.browse = func(_, start string) (string, error) {
		browsed = append(browsed, start)
		return dir, nil
	}
	press(w, shortcutOpen)
	require.Len(t, browsed, 1, "Ctrl+O shows the folder picker")
	require.NotNil(t, u.pipeline)
	assert.Equal(t, dir, u.pipeline.Dir)

	assert.False(t, save.Disabled)
	assert.False(t, pub.Disabled)
	press(w, shortcutSave)
	press(w, shortcutPublish)
	press(w, shortcutPublishKeypad)
	assert.Equal(t, 1, saves)
	assert.Equal(t, 2, publishes)
	save.Action()
	assert.Equal(t, 2, saves, "the menu item runs the same hook")

	assert.Equal(t, shortcutOpen, menuItem(t, w, "Open…").Shortcut, "the menu shows and handles Ctrl+O")
}

func TestShortcutNames(t *testing.T) {
	// The menu shows these and the window matches typed keys by them.
	for s, want := range map[fyne.Shortcut]string{
		shortcutOpen:    "CustomDesktop:Control+O",
		shortcutSave:    "CustomDesktop:Control+S",
		shortcutPublish: "CustomDesktop:Control+Return",
	} {
		assert.Equal(t, want, s.ShortcutName())
	}
}

func TestQuitAndAbout(t *testing.T) {
	u, w := newTestUI(t)
	quits := 0
	u.quit = func() { quits++ }

	menuItem(t, w, "Quit").Action()
	press(w, shortcutQuit)
	assert.Equal(t, 2, quits)

	menuItem(t, w, "About Modelpub").Action()
	require.NotNil(t, w.Canvas().Overlays().Top())
	assert.Contains(t, test.RenderToMarkup(w.Canvas()), "Diffusers model folders")
}

func TestTabSelection(t *testing.T) {
	u, _ := newTestUI(t)
	assert.True(t, u.selectTab("Variant"))
	assert.Equal(t, "Variant", u.tabs.Selected().Text)
	assert.False(t, u.selectTab("Nope"))
	assert.Equal(t, "Variant", u.tabs.Selected().Text)
}

func TestOpeningState(t *testing.T) {
	u, _ := newTestUI(t)
	var queued []func()
	u.e.spawn = func(f func()) { queued = append(queued, f) }
	dir, _ := writeSD15(t)

	u.OpenPath(dir)

	assert.True(t, u.status.Visible())
	assert.Equal(t, "Opening sd15…", u.status.Text)
	assert.True(t, u.welcome.opening.Visible())
	assert.True(t, strings.HasPrefix(u.welcome.opening.Text, "Opening "))
	require.Len(t, queued, 1)
	queued[0]()
	assert.False(t, u.status.Visible())
	assert.False(t, u.welcome.opening.Visible())
	assert.NotNil(t, u.pipeline)
}

// TestThemeColoursOnly renders the welcome view and the busiest view, and
// checks every colour comes from the theme, so light and dark themes both
// stay readable.
func TestThemeColoursOnly(t *testing.T) {
	u, w := newTestUI(t)
	dir, _ := writeSD15(t)
	welcome := test.RenderToMarkup(w.Canvas())
	u.revealOnOpen = "t/unet/diffusion_pytorch_model.safetensors/1"
	u.OpenPath(dir)
	open := test.RenderToMarkup(w.Canvas())
	require.Contains(t, open, "UNet2DConditionModel")
	for _, markup := range []string{welcome, open} {
		for _, attr := range []string{`color="rgba(`, `fillColor="rgba(`, `strokeColor="rgba(`} {
			assert.NotContains(t, markup, attr, "a hard-coded colour")
		}
	}
	assert.Contains(t, open, `color="placeholder"`, "secondary text uses the theme's placeholder colour")
}
