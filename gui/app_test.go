package gui

import (
	"path/filepath"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/storage"
	"fyne.io/fyne/v2/test"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/card"
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

// Closing the window while a job runs asks first; confirming cancels the
// job and closes once it has stopped; with nothing running it just closes.
func TestCloseAsksDuringAJob(t *testing.T) {
	u, w := newTestUI(t)
	closed := 0
	u.confirmClose(func() { closed++ })
	assert.Equal(t, 1, closed, "nothing running: closes at once")

	u.publisher.running = true // as during a publish
	u.confirmClose(func() { closed++ })
	assert.Equal(t, 1, closed, "asks first")
	require.Contains(t, topDialog(w), "Stop and quit?")
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
