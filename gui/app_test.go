package gui

import (
	"path/filepath"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/storage"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/card"
	"modelpub/core/hub/hubemu"
	"modelpub/core/publish"
)

// The whole window as a user drives it: open a folder the way a drop does,
// pick a node, choose the shard size and the fp16 variant, edit the card,
// publish with a token in the (mock) keyring, and find on the emulator what
// the window said it published.
func TestWindowEndToEnd(t *testing.T) {
	srv := startTestHub(t)
	u, w := newTestUIWithHub(t, testHubConfig(t, srv.URL()))
	storeToken(t, srv.URL(), aliceToken)
	dir, _ := writeSD15(t)

	u.dropped(fyne.NewPos(10, 10), []fyne.URI{storage.NewFileURI(filepath.Join(dir, "unet", "config.json"))})
	require.NotNil(t, u.pipeline, "a file dropped inside a pipeline opens the pipeline")
	assert.Equal(t, dir, u.pipeline.Dir)
	u.tree.tree.Select("c/unet")
	assert.Equal(t, "c/unet", u.selected)

	shards := u.panels[1].p.(*shardsPanel)
	shards.size.SetText("1MB")
	assert.EqualValues(t, 1_000_000, u.e.choices.MaxShardSize)
	require.NotNil(t, shards.plan)
	unet := shards.plan.Component("unet")
	require.NotNil(t, unet)
	assert.Greater(t, len(unet.Sets[0].Files), 1, "the UNet splits at 1MB")

	variant := u.panels[2].p.(*variantPanel)
	variant.choice.SetSelected("fp16")
	assert.Equal(t, "fp16", u.e.choices.Variant)
	require.Len(t, shards.plan.Component("unet").Sets, 2, "the planned layout gains the variant")
	assert.Contains(t, u.cards.card.Body(), `variant="fp16"`, "the generated card describes the chosen variant")

	u.cards.license.SetText("mit")
	u.publisher.repoName.SetText("window-e2e")
	require.NotNil(t, u.publisher.account, "logged in from the keyring")

	u.onPublish()
	require.Empty(t, topDialog(w), "no error dialog")
	for _, s := range publish.Steps {
		assert.Equal(t, stepDone, stateOf(u.publisher, s), s)
	}
	assert.Contains(t, u.publisher.link.Text, srv.URL()+"/alice/window-e2e/commit/")
	files := remoteFiles(t, srv, "alice/window-e2e", "main")
	assert.Contains(t, files, "unet/diffusion_pytorch_model.safetensors.index.fp16.json")
	assert.Contains(t, files, "unet/diffusion_pytorch_model.safetensors.index.json")
	c, err := card.Parse(download(t, srv, "alice/window-e2e", "main", "README.md"))
	require.NoError(t, err)
	assert.Equal(t, "mit", c.Metadata().License)
	assert.Equal(t, "diffusers", c.Metadata().LibraryName)
	assert.Contains(t, c.Body(), `variant="fp16", torch_dtype=torch.float16`)

	// The user's own text is never rewritten by a later choice.
	u.cards.body.SetText("# Mine\n")
	variant.choice.SetSelected("bf16")
	assert.Equal(t, "# Mine\n", u.cards.card.Body())
}

// Closing the window while a publish runs asks first; confirming cancels
// the job and closes the window once it has stopped; with nothing running
// it closes at once.
func TestCloseDuringPublish(t *testing.T) {
	srv := startTestHub(t)
	u, w := newTestUIWithHub(t, testHubConfig(t, srv.URL()))
	storeToken(t, srv.URL(), aliceToken)
	closed := 0
	u.confirmClose(func() { closed++ })
	require.Equal(t, 1, closed, "nothing running: closes at once")

	loop := newTestLoop()
	var running sync.WaitGroup // the job's goroutines, so the test ends after them
	u.e.spawn = func(f func()) {
		running.Add(1)
		go func() { defer running.Done(); f() }()
	}
	u.e.do = loop.do
	t.Cleanup(running.Wait)
	faults, err := hubemu.ParseFaults("seed=1,rate=1,kinds=slow,endpoints=lfs-upload+xet,slow=3s") // the upload, through Git LFS or Xet
	require.NoError(t, err)
	srv.SetFaults(faults)

	dir, _ := writeSD15(t)
	u.OpenPath(dir)
	require.True(t, loop.runUntil(func() bool { return u.pipeline != nil && u.publisher.account != nil }, 20*time.Second))
	u.onPublish()
	require.True(t, loop.runUntil(func() bool { return u.publisher.shown.phase == "upload" }, 60*time.Second), "the upload starts")

	u.confirmClose(func() { closed++ })
	require.Contains(t, topDialog(w), "Stop and quit?")
	assert.Equal(t, 1, closed, "asks first")
	for _, b := range findButtons(w.Canvas().Overlays().Top()) {
		if b.Text == "Yes" {
			test.Tap(b)
		}
	}
	start := time.Now()
	require.True(t, loop.runUntil(func() bool { return closed == 2 }, 5*time.Second), "closed once the job stopped")
	assert.Less(t, time.Since(start), 1500*time.Millisecond, "the job stops within about a second")
	assert.False(t, u.publisher.Busy())
	for _, r := range srv.Requests() {
		assert.NotEqual(t, hubemu.ClassCommit, r.Class, "cancelled before the commit")
	}
}

// findButtons lists the buttons under o.
func findButtons(o fyne.CanvasObject) []*widget.Button {
	var out []*widget.Button
	var walk func(fyne.CanvasObject)
	walk = func(o fyne.CanvasObject) {
		switch v := o.(type) {
		case *widget.Button:
			out = append(out, v)
		case *fyne.Container:
			for _, c := range v.Objects {
				walk(c)
			}
		case fyne.Widget:
			for _, c := range test.WidgetRenderer(v).Objects() {
				walk(c)
			}
		}
	}
	walk(o)
	return out
}

// Save locally is a button in the header too, offered once a folder is
// open, and runs the same hook as File ▸ Save locally… and Ctrl+S.
func TestSaveButton(t *testing.T) {
	u, _ := newTestUI(t)
	assert.True(t, u.saveBtn.Disabled(), "nothing to save before a folder is open")
	saved := 0
	u.onSave = func() { saved++ }
	dir, _ := writeSD15(t)
	u.OpenPath(dir)
	require.False(t, u.saveBtn.Disabled())
	test.Tap(u.saveBtn)
	assert.Equal(t, 1, saved)
}
