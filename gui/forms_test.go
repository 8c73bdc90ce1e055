package gui

import (
	"strings"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/card"
)

func TestProblemTextNamesTheField(t *testing.T) {
	for _, tt := range []struct {
		p    card.Problem
		want string
	}{
		{card.Problem{Key: "license", Line: 9, Message: `"foo" is not a license id the Hub knows`}, `License: "foo" is not a license id the Hub knows`},
		{card.Problem{Key: "base_model", Line: 3, Message: "x"}, "Base model: x"},
		{card.Problem{Key: "pipeline_tag", Message: "x"}, "Pipeline tag: x"},
		{card.Problem{Key: "library_name", Line: 2, Message: "x"}, "Metadata key library_name: x"},
		{card.Problem{Line: 1, Message: "x"}, "Metadata: x"},
	} {
		assert.Equal(t, tt.want, problemText(tt.p))
	}
}

// TestLicenseListFilters: the list under the license field holds what
// matches the text typed, a short list, never the Hub's whole list.
func TestLicenseListFilters(t *testing.T) {
	all := card.Licenses()
	require.Greater(t, len(all), 40, "the Hub knows many licenses")
	for _, text := range []string{"", "apache-2.0", "c", "cc-by", "CC-BY-NC", "openrail", "gpl", "zzz"} {
		got := licenseOptions(text)
		assert.LessOrEqual(t, len(got), maxLicenseOptions, text)
		for _, l := range got {
			assert.True(t, card.IsLicense(l), l)
			if text != "" && !card.IsLicense(strings.ToLower(text)) {
				assert.Contains(t, l, strings.ToLower(text), "only what matches %q", text)
			}
		}
	}
	assert.Contains(t, licenseOptions(""), "apache-2.0")
	assert.Contains(t, licenseOptions(""), "other")
	open := licenseOptions("open")
	require.Len(t, open, 7)
	for i, l := range open {
		assert.Equal(t, i < 4, strings.HasPrefix(l, "open"), "ids starting with the text first, then those holding it: %v", open)
	}
	assert.Empty(t, licenseOptions("zzz"))
	assert.Equal(t, []string{"gpl", "gpl-2.0", "gpl-3.0", "apache-2.0"}, licenseOptions("gpl")[:4],
		"an id typed whole first, those it starts, then the popular ones")

	c, _ := newTestCardPanel(t)
	c.SetPipeline(jobPipeline(t, 7))
	test.Type(c.license, "gpl-")
	c.license.ActionItem.(*widget.Button).OnTapped()
	menu := test.RenderObjectToMarkup(c.e.win.Canvas().Overlays().Top())
	assert.Contains(t, menu, "gpl-3.0")
	assert.NotContains(t, menu, "apache-2.0", "the list under the arrow is filtered")
}

// TestPreviewKeepsCodeWhole: a code block is never wrapped in the middle of
// an identifier; it scrolls sideways instead, while text wraps.
func TestPreviewKeepsCodeWhole(t *testing.T) {
	c, w := newTestCardPanel(t)
	c.SetPipeline(jobPipeline(t, 7))
	long := `pipe = StableDiffusionPipeline.from_pretrained("some-namespace/a-rather-long-repository-name", torch_dtype=torch.float16, variant="fp16")`
	c.body.SetText("# Title\n\n" + strings.Repeat("Some words to wrap. ", 40) + "\n\n```python\n" + long + "\n```\n")
	w.Resize(fyne.NewSize(700, 700))

	var code *widget.RichText
	var texts int
	for _, o := range c.preview.box.Objects {
		switch v := o.(type) {
		case *container.Scroll:
			require.Equal(t, container.ScrollHorizontalOnly, v.Direction)
			code = v.Content.(*widget.RichText)
		case *widget.RichText:
			texts++
			assert.Equal(t, fyne.TextWrapWord, v.Wrapping)
		}
	}
	require.NotNil(t, code, "the code block is shown apart")
	assert.Equal(t, fyne.TextWrapOff, code.Wrapping)
	assert.Equal(t, long, code.String())
	assert.Greater(t, code.MinSize().Width, c.preview.box.Size().Width, "wider than the column: it scrolls")
	assert.Positive(t, texts)
	assert.Contains(t, previewText(c), long)
}

// TestSavePickerTitle: the folder picker of Save locally says what it is
// for, the native one and Fyne's alike.
func TestSavePickerTitle(t *testing.T) {
	u, w := newTestUI(t)
	dir, _ := writeSD15(t)
	u.OpenPath(dir)
	var titles []string
	u.browse = func(title, _ string) (string, error) {
		titles = append(titles, title)
		return "", errPickCancelled
	}
	press(w, shortcutSave)
	assert.Equal(t, []string{"Save to folder"}, titles)

	u.browse = nil // no native picker: Fyne's
	press(w, shortcutSave)
	top := overlayText(w)
	assert.Contains(t, top, "Save to folder")
	assert.NotContains(t, top, "Open Folder")
}

// TestEditorKeepsURLsWhole: the Markdown editor wraps at spaces, and is
// widened (up to maxEditorShare of the panel, leaving the preview
// minPreviewWidth) to the longest word of the body, so a URL is not cut
// mid-word when the panel has room for it.
func TestEditorKeepsURLsWhole(t *testing.T) {
	c, w := newTestCardPanel(t)
	c.SetPipeline(jobPipeline(t, 7))
	w.Resize(fyne.NewSize(1100, 700))
	assert.Equal(t, fyne.TextWrapWord, c.body.Wrapping)
	url := "https://huggingface.co/stable-diffusion-v1-5/stable-diffusion-v1-5/tree/main"
	c.body.SetText("# Title\n\nSee " + url + " for the configuration of every component.\n")
	w.Resize(fyne.NewSize(1100, 701))

	rows := editorRows(c)
	assert.Contains(t, rows, url, "the URL on one row of its own: %q", rows)
	editorWidth := c.body.Size().Width
	assert.Greater(t, editorWidth, fyne.MeasureText(url, theme.TextSize(), c.body.TextStyle).Width)
	assert.LessOrEqual(t, float64(editorWidth), maxEditorShare*float64(c.fit.width)+1)

	// A word longer than the room is cut at the line's end: the editor
	// never takes more than its share.
	c.body.SetText(strings.Repeat("x", 2000))
	assert.LessOrEqual(t, float64(c.body.Size().Width), maxEditorShare*float64(c.fit.width)+1)
	assert.GreaterOrEqual(t, c.preview.box.Size().Width, float32(minPreviewWidth)-4*theme.Padding()-theme.ScrollBarSize())
	assert.Equal(t, "", longestWord(" \n\t"))
	assert.Equal(t, "bbb", longestWord("a bbb cc"))
}

// editorRows is the text of each row the editor shows.
func editorRows(c *cardPanel) []string {
	var rows []string
	for _, line := range strings.Split(test.RenderObjectToMarkup(c.body), "\n") {
		line = strings.TrimSpace(line)
		if i := strings.Index(line, ">"); strings.HasPrefix(line, "<text") && i > 0 {
			rows = append(rows, strings.TrimSuffix(line[i+1:], "</text>"))
		}
	}
	return rows
}
