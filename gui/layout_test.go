package gui

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/publish"
)

// windowWidth is the width the window takes once the desktop driver has
// fitted it to its content: a GLFW window grows to its content's minimum
// size, where the test driver keeps the size it was given.
func windowWidth(w fyne.Window) float32 {
	return max(w.Canvas().Size().Width, w.Content().MinSize().Width+2*theme.Padding())
}

// longName is a folder name of 240 characters without a space, so that no
// text holding it can be wrapped at a space.
var longName = strings.Repeat("very-long-folder-name_", 11)[:240]

// TestLongErrorsDoNotWidenTheWindow opens a folder whose path is hundreds
// of characters long and whose UNet cannot be read, so that its error
// (which names the path) shows in the header, the tree, the Overview, the
// details pane and the Shards and Variant panels, and checks on every tab
// that the window does not grow.
func TestLongErrorsDoNotWidenTheWindow(t *testing.T) {
	u, w := newTestUI(t)
	sd15, _ := writeSD15(t)
	u.OpenPath(sd15)
	require.NotNil(t, u.pipeline)
	before := windowWidth(w)
	require.Equal(t, float32(1000), before, "the window fits its content before")

	dir := filepath.Join(t.TempDir(), longName, longName)
	require.NoError(t, os.MkdirAll(filepath.Dir(dir), 0o755))
	require.NoError(t, os.Rename(sd15, dir))
	breakUNet(t, dir)
	u.OpenPath(dir)
	require.NotNil(t, u.pipeline)
	require.NotEmpty(t, u.blocker())
	u.e.choices.set(0, "fp16") // the Variant panel plans, and fails with the error
	u.tree.reveal("f/" + unetFile)
	require.Contains(t, u.details.shown.value("Error"), longName, "the details name the file")

	require.Contains(t, u.panels[1].p.(*shardsPanel).summary.Text, longName, "the Shards panel says why it cannot plan")
	require.Contains(t, u.panels[2].p.(*variantPanel).sizes.Text, longName, "and so does the Variant panel")
	for _, np := range u.panels {
		u.selectTab(np.title)
		assert.LessOrEqual(t, windowWidth(w), before, "the %s tab widens the window", np.title)
	}
	u.save()
	assert.Contains(t, overlayText(w), "cannot be read")
	assert.LessOrEqual(t, windowWidth(w), before, "the dialog fits in the window")
}

// TestLongPublishErrorDoesNotWidenTheWindow: a publish that fails with
// an error of 2,000 characters on one line, without a space (a path in a
// path), shows it in Progress cut to the column, and whole in Details…;
// neither the panel nor the dialogs widen the window.
func TestLongPublishErrorDoesNotWidenTheWindow(t *testing.T) {
	u, w := newTestUI(t)
	dir, _ := writeSD15(t)
	u.OpenPath(dir)
	require.NotNil(t, u.pipeline)
	u.selectTab("Publish")
	before := windowWidth(w)
	require.Equal(t, float32(1000), before, "the window fits its content before")

	pp := u.publisher
	long := "stage: " + strings.Repeat("/very-long-folder-name", 100)[:1993]
	require.Len(t, long, 2000)
	pp.runJob = func(context.Context, publish.Options) (*publish.Result, error) { return nil, errors.New(long) }
	pp.DryRun()

	require.False(t, pp.Busy())
	require.True(t, pp.failureBox.Visible(), "the error shows in Progress")
	assert.Equal(t, long, pp.failure.Text)
	assert.Less(t, pp.failure.MinSize().Width, float32(100), "cut to the column, never wider")
	assert.Contains(t, overlayText(w), "Publishing failed")
	assert.LessOrEqual(t, windowWidth(w), before, "the error dialog fits in the window")
	dismissDialogs(w)
	assert.LessOrEqual(t, windowWidth(w), before, "the Publish panel does not widen the window")

	test.Tap(pp.failureBox.Objects[1].(*widget.Button)) // Details…
	require.NotNil(t, pp.detailsDialog)
	assert.Contains(t, overlayText(w), "Publishing failed: details")
	assert.Equal(t, long, detailsText(t, w), "the whole error, one click away")
	assert.LessOrEqual(t, windowWidth(w), before, "and so does its whole text")
	dismissDialogs(w)

	for _, np := range u.panels {
		u.selectTab(np.title)
		assert.LessOrEqual(t, windowWidth(w), before, "the %s tab widens the window", np.title)
	}
}

// detailsText is the text of the selectable label of the dialog on top.
func detailsText(t *testing.T, w fyne.Window) string {
	t.Helper()
	var found []string
	walkObjects(w.Canvas().Overlays().Top(), func(o fyne.CanvasObject) {
		if l, ok := o.(*widget.Label); ok && l.Selectable {
			found = append(found, l.Text)
		}
	})
	require.Len(t, found, 1)
	return found[0]
}

// TestCappedWidth: a line that cannot be wrapped or cut in a panel is
// clipped at the window's edge; the panel never asks for more width.
func TestCappedWidth(t *testing.T) {
	test.NewTempApp(t)
	long := widget.NewLabel(strings.Repeat("x", 3000))
	require.Greater(t, long.MinSize().Width, float32(maxPanelMinWidth))
	capped := cappedWidth(long)
	assert.Equal(t, float32(maxPanelMinWidth), capped.MinSize().Width)
	assert.Equal(t, long.MinSize().Height, capped.MinSize().Height)
	capped.Resize(fyne.NewSize(300, 40))
	assert.Equal(t, fyne.NewSize(300, 40), long.Size())

	short := widget.NewLabel("short")
	assert.Equal(t, short.MinSize(), cappedWidth(short).MinSize())
}

// treeRowTexts renders the rows of the tree and returns the text of each.
func treeRowTexts(t *testing.T, u *UI) []string {
	t.Helper()
	var rows []string
	for _, line := range strings.Split(test.RenderObjectToMarkup(u.tree.tree), "\n") {
		line = strings.TrimSpace(line)
		if i := strings.Index(line, ">"); strings.HasPrefix(line, "<text") && i > 0 {
			rows = append(rows, strings.TrimSuffix(line[i+1:], "</text>"))
		}
	}
	return rows
}

// TestTreeShowsClassNamesWhole: the tree's column is wide enough for the
// names and classes of the pipeline and its components: nothing is cut
// with an ellipsis; the parameter counts and sizes go first when the
// column is narrow.
func TestTreeShowsClassNamesWhole(t *testing.T) {
	u, _ := openSD15(t)
	texts := strings.Join(treeRowTexts(t, u), "\n")
	for _, want := range []string{"sd15", "StableDiffusionPipeline", "feature_extractor", "CLIPImageProcessor",
		"text_encoder", "CLIPTextModel", "unet", "UNet2DConditionModel", "vae", "AutoencoderKL"} {
		assert.Contains(t, texts, want)
	}
	assert.NotContains(t, texts, "…", "no row is cut")
	assert.LessOrEqual(t, u.main.Offset, maxTreeShare, "the panels keep most of the window")
}

// TestTreeRowFits: a row's details lose their last parts before anything
// is cut; a name wider than the column is cut with an ellipsis, and keeps
// at least a third of the row.
func TestTreeRowFits(t *testing.T) {
	test.NewTempApp(t)
	name := widget.NewLabel("unet")
	name.Truncation = fyne.TextTruncateEllipsis
	detail := newFitText()
	detail.set("UNet2DConditionModel · 859.5M params · 3.44 GB", theme.ColorNamePlaceHolder)
	objs := []fyne.CanvasObject{widget.NewIcon(theme.FolderIcon()), name, detail}
	row := container.New(treeRowLayout{}, objs...)
	shown := func() string { return detail.Segments[0].(*widget.TextSegment).Text }

	// rowWidth is the width of a row showing the name and details whole.
	rowWidth := func(details string) float32 {
		return theme.IconInlineSize() + theme.Padding() + textWidth("unet", fyne.TextStyle{}) + textWidth(details, fyne.TextStyle{})
	}
	row.Resize(fyne.NewSize(600, 36))
	assert.Equal(t, "UNet2DConditionModel · 859.5M params · 3.44 GB", shown())
	assert.Equal(t, textWidth("unet", fyne.TextStyle{}), name.Size().Width, "a short name whole")
	row.Resize(fyne.NewSize(rowWidth("UNet2DConditionModel · 859.5M params · 3.44 GB")-1, 36))
	assert.Equal(t, "UNet2DConditionModel · 859.5M params", shown())
	row.Resize(fyne.NewSize(rowWidth("UNet2DConditionModel · 859.5M params")-1, 36))
	assert.Equal(t, "UNet2DConditionModel", shown())
	row.Resize(fyne.NewSize(rowWidth("UNet2DConditionModel")-10, 36))
	assert.Equal(t, "UNet2DConditionModel", shown(), "the class is cut with an ellipsis, no sooner")
	assert.Equal(t, textWidth("unet", fyne.TextStyle{}), name.Size().Width, "the name stays whole")
	row.Resize(fyne.NewSize(600, 36))
	assert.Equal(t, "UNet2DConditionModel · 859.5M params · 3.44 GB", shown(), "wider again, all of it")

	name.SetText(longName)
	row.Resize(fyne.NewSize(400, 36))
	avail := 400 - theme.IconInlineSize() - theme.Padding()
	assert.Equal(t, max(avail-textWidth("UNet2DConditionModel", fyne.TextStyle{}), avail/3), name.Size().Width)
	assert.Equal(t, float32(400), detail.Position().X+detail.Size().Width)
	assert.Less(t, row.MinSize().Width, float32(100), "the tree scrolls rather than grows")
}

// TestDetailsPaneShowsWhereItHelps: hidden until a node is selected, shown
// under the Overview, Shards and Variant tabs, never under Model card and
// Publish; its close button hides it until the next selection.
func TestDetailsPaneShowsWhereItHelps(t *testing.T) {
	u, _ := openSD15(t)
	assert.False(t, u.details.content.Visible(), "nothing selected")

	u.tree.reveal("c/unet")
	assert.True(t, u.details.content.Visible())
	cardHeight := func() float32 { return u.cards.Content().Size().Height }
	for _, tab := range []string{"Shards", "Variant", "Model card", "Publish", "Overview"} {
		u.selectTab(tab)
		assert.Equal(t, tab != "Model card" && tab != "Publish", u.details.content.Visible(), tab)
	}
	u.selectTab("Model card")
	withoutPane := cardHeight()
	u.selectTab("Overview")

	test.Tap(u.details.close)
	assert.False(t, u.details.content.Visible(), "closed")
	u.selectTab("Shards")
	assert.False(t, u.details.content.Visible(), "closed stays closed")
	u.tree.reveal("c/vae")
	assert.True(t, u.details.content.Visible(), "a new selection opens it again")
	assert.Equal(t, "vae", u.details.shown.title)

	u.selectTab("Model card")
	assert.Equal(t, withoutPane, cardHeight())
	assert.Greater(t, cardHeight(), u.tabs.Size().Height*0.8, "the card editor gets the room")
}

// TestHeaderPathIsOneClickAway: the folder's path in the header is cut to
// fit; clicking it selects the pipeline, whose details give it whole.
func TestHeaderPathIsOneClickAway(t *testing.T) {
	u, _ := openSD15(t)
	assert.Less(t, u.folder.MinSize().Width, float32(100), "the path is cut to fit")
	test.Tap(u.folder)
	assert.Equal(t, pipelineNodeID, u.selected)
	assert.Equal(t, u.pipeline.Dir, u.details.shown.value("Folder"))
	assert.True(t, u.details.content.Visible())
}

// TestWrapVBox: when the column narrows, a wrapped label gets the height
// of its text at the new width, and what follows moves down; a plain VBox
// asks the label its height at the old width and lets the next object
// cover its last lines (the "from keyring." under the Target heading).
func TestWrapVBox(t *testing.T) {
	test.NewTempApp(t)
	for _, tt := range []struct {
		name string
		box  func(objs ...fyne.CanvasObject) *fyne.Container
		ok   bool
	}{
		{"wrapVBox", func(objs ...fyne.CanvasObject) *fyne.Container { return container.New(wrapVBox{}, objs...) }, true},
		{"VBox", container.NewVBox, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			text := widget.NewLabel(strings.Repeat("Logged in as alice: token role write, from keyring. ", 6))
			text.Wrapping = fyne.TextWrapWord
			heading := widget.NewLabel("Target")
			hidden := widget.NewLabel("hidden")
			hidden.Hide()
			box := tt.box(text, hidden, heading)
			box.Resize(fyne.NewSize(600, 400))
			box.Resize(fyne.NewSize(250, 400))
			fits := text.Size().Height >= text.MinSize().Height &&
				heading.Position().Y >= text.Position().Y+text.Size().Height
			assert.Equal(t, tt.ok, fits, "label %v (needs %v), heading at %v", text.Size(), text.MinSize(), heading.Position())
		})
	}
	assert.Equal(t, float32(0), wrapVBox{}.MinSize(nil).Height)
}
