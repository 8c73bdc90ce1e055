package gui

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/card"
	"modelpub/core/drafts"
	"modelpub/core/pipeline"
	"modelpub/core/pipeline/pipelinetest"
	"modelpub/core/publish"
)

// The tests of the Model card panel, the Publish panel and the save job run
// their background work synchronously (env.spawn and env.do call their
// function directly), except where a test needs the job to run while the
// UI goroutine goes on (Cancel): it then uses a testLoop, which queues
// env.do's functions for the test goroutine, as the real driver queues
// them for the main goroutine.
//
// Golden markup: testdata/card_*.xml and testdata/publish_*.xml. After an
// intended change of a panel, rewrite them with
//
//	go test ./gui/ -run 'Golden' -update
//
// (or move the files Fyne writes to testdata/failed/ over them) and review
// the diff.

// jobPipelines caches the synthetic pipelines of these tests per seed:
// random values are slow to make under -race.
var jobPipelines sync.Map // seed → *jobPipelineEntry

type jobPipelineEntry struct {
	once sync.Once
	dir  string
	err  error
}

// jobPipeline returns a fresh copy of a small synthetic SD-1.5 (Scale
// 0.001, no variant) in a temporary folder called sd15, opened.
func jobPipeline(t *testing.T, seed int64) *pipeline.Pipeline {
	t.Helper()
	v, _ := jobPipelines.LoadOrStore(seed, &jobPipelineEntry{})
	ent := v.(*jobPipelineEntry)
	ent.once.Do(func() {
		tmp, err := os.MkdirTemp("", "gui-job-test-")
		if err != nil {
			ent.err = err
			return
		}
		ent.dir = filepath.Join(tmp, "sd15")
		_, ent.err = pipelinetest.WriteSD15(context.Background(), ent.dir, pipelinetest.Options{Scale: 0.001, Seed: seed})
	})
	require.NoError(t, ent.err)
	dir := filepath.Join(t.TempDir(), "sd15")
	require.NoError(t, os.CopyFS(dir, os.DirFS(ent.dir)))
	p, err := pipeline.Open(context.Background(), dir)
	require.NoError(t, err)
	return p
}

// jobTestEnv is an env whose background work runs synchronously.
func jobTestEnv() *env {
	run := func(f func()) { f() }
	return &env{spawn: run, do: run, choices: &choices{}}
}

// testLoop stands for the UI goroutine in a test whose jobs run on their
// own goroutines: do queues f, and runUntil runs the queue on the test's
// goroutine.
type testLoop struct {
	mu    sync.Mutex
	queue []func()
	wake  chan struct{}
}

func newTestLoop() *testLoop { return &testLoop{wake: make(chan struct{}, 1)} }

func (l *testLoop) do(f func()) {
	l.mu.Lock()
	l.queue = append(l.queue, f)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// runUntil runs queued functions until cond holds, or timeout passes; it
// reports whether cond held.
func (l *testLoop) runUntil(cond func() bool, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		l.mu.Lock()
		q := l.queue
		l.queue = nil
		l.mu.Unlock()
		for _, f := range q {
			f()
		}
		if cond() {
			return true
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		select {
		case <-l.wake:
		case <-time.After(min(left, 20*time.Millisecond)):
		}
	}
}

// newTestCardPanel shows a card panel in a test window, keeping its
// drafts in a temporary folder.
func newTestCardPanel(t *testing.T) (*cardPanel, fyne.Window) {
	t.Helper()
	return newTestCardPanelWithDrafts(t, t.TempDir())
}

// newTestCardPanelWithDrafts is newTestCardPanel keeping its drafts in
// dir; the preview and the drafts are written at once, on the test
// goroutine.
func newTestCardPanelWithDrafts(t *testing.T, dir string) (*cardPanel, fyne.Window) {
	t.Helper()
	test.NewTempApp(t)
	e := jobTestEnv()
	e.drafts = drafts.NewStore(dir)
	c := newCardPanel(e)
	c.debounce.delay = 0
	c.drafts.debounce.delay = 0
	w := test.NewTempWindow(t, c.Content())
	e.win = w
	w.Resize(fyne.NewSize(1000, 700))
	return c, w
}

// previewText is the text of the preview's segments.
func previewText(c *cardPanel) string {
	var b strings.Builder
	var walk func([]widget.RichTextSegment)
	walk = func(segs []widget.RichTextSegment) {
		for _, s := range segs {
			switch v := s.(type) {
			case *widget.ListSegment:
				walk(v.Items)
			case *widget.ParagraphSegment:
				walk(v.Texts)
			default:
				b.WriteString(s.Textual())
				b.WriteString("\n")
			}
		}
	}
	walk(c.preview.Segments)
	return b.String()
}

// problemLabels are the texts of the labels under the form, with their
// importance.
func problemLabels(c *cardPanel) map[string]widget.Importance {
	out := map[string]widget.Importance{}
	for _, o := range c.problems.Objects {
		l := o.(*widget.Label)
		out[l.Text] = l.Importance
	}
	return out
}

func TestCardPanelGeneratesOnSetPipeline(t *testing.T) {
	c, _ := newTestCardPanel(t)
	assert.False(t, c.main.Visible(), "nothing to edit before a folder is open")
	_, err := c.Card()
	assert.ErrorIs(t, err, errNoCard)

	c.SetPipeline(jobPipeline(t, 7))

	require.NotNil(t, c.card)
	assert.True(t, c.main.Visible())
	got, err := c.Card()
	require.NoError(t, err)
	m := got.Metadata()
	assert.Equal(t, "diffusers", m.LibraryName)
	assert.Equal(t, card.TextToImage, m.PipelineTag)
	assert.Equal(t, card.TextToImage, c.pipelineTag.Selected)
	assert.Contains(t, c.tags.Text, "StableDiffusionPipeline")
	assert.Empty(t, c.license.Text)
	assert.False(t, c.licenseName.Visible(), "license_name only for an \"other\" license")
	assert.Contains(t, c.body.Text, "# sd15")
	assert.Empty(t, problemLabels(c))

	text := previewText(c)
	assert.Contains(t, text, "sd15")
	assert.NotContains(t, text, "library_name", "the preview has no front matter")
	assert.NotContains(t, text, "pipeline_tag")
	assert.Contains(t, text, "\nunet\n · Class: \nUNet2DConditionModel\n · Parameters: ", "tables are shown as lists")
}

func TestCardPanelInvalidLicense(t *testing.T) {
	c, _ := newTestCardPanel(t)
	c.SetPipeline(jobPipeline(t, 7))

	c.license.SetText("not-a-license")

	problems := problemLabels(c)
	require.Len(t, problems, 1)
	for text, imp := range problems {
		assert.True(t, strings.HasPrefix(text, "License: "), "named by the form's field: %s", text)
		assert.NotContains(t, text, "line", "no line of a front matter the form hides")
		assert.Contains(t, text, "not-a-license")
		assert.Equal(t, widget.DangerImportance, imp, "shown in red")
	}
	_, err := c.Card()
	assert.ErrorIs(t, err, publish.ErrCard)
	assert.Contains(t, err.Error(), "not-a-license")

	c.license.SetText("other")
	assert.True(t, c.licenseName.Visible(), "an \"other\" license asks for its name")
	test.Type(c.licenseName, "my-license")
	got, err := c.Card()
	require.NoError(t, err)
	assert.Equal(t, "other", got.Metadata().License)
	assert.Equal(t, "my-license", got.Metadata().LicenseName)
	for text, imp := range problemLabels(c) {
		assert.NotEqual(t, widget.DangerImportance, imp, text)
	}

	c.licenseName.SetText("")
	c.license.SetText("apache-2.0")
	assert.Empty(t, problemLabels(c))
	assert.False(t, c.licenseName.Visible())
	got, err = c.Card()
	require.NoError(t, err)
	assert.Equal(t, "apache-2.0", got.Metadata().License)
	assert.Empty(t, got.Metadata().LicenseName)
}

func TestCardPanelFormEditsMetadata(t *testing.T) {
	c, _ := newTestCardPanel(t)
	c.SetPipeline(jobPipeline(t, 7))

	c.baseModel.SetText("stable-diffusion-v1-5/stable-diffusion-v1-5")
	c.tags.SetText("diffusers, art , ,lora")
	c.language.SetText("en, fr")
	c.pipelineTag.SetSelected(card.ImageToImage)

	got, err := c.Card()
	require.NoError(t, err)
	m := got.Metadata()
	assert.Equal(t, []string{"stable-diffusion-v1-5/stable-diffusion-v1-5"}, m.BaseModel)
	assert.Equal(t, []string{"diffusers", "art", "lora"}, m.Tags)
	assert.Equal(t, []string{"en", "fr"}, m.Language)
	assert.Equal(t, card.ImageToImage, m.PipelineTag)

	c.pipelineTag.SetSelected(noPipelineTag)
	got, err = c.Card()
	require.NoError(t, err)
	assert.Empty(t, got.Metadata().PipelineTag)
	_, has := got.Get("pipeline_tag")
	assert.False(t, has, "no pipeline tag removes the key")
}

func TestCardPanelBodyEdit(t *testing.T) {
	c, _ := newTestCardPanel(t)
	c.SetPipeline(jobPipeline(t, 7))
	body := "\n# My model\n\nIt draws cats. ![a cat](https://example.com/cat.png)\n\n" +
		"```\n![kept](in/code.png)\n```\n"

	c.body.SetText(body)

	got, err := c.Card()
	require.NoError(t, err)
	assert.Equal(t, body, got.Body())
	assert.Equal(t, "diffusers", got.Metadata().LibraryName, "the metadata stays")
	text := previewText(c)
	assert.Contains(t, text, "My model")
	assert.Contains(t, text, "\na cat\n", "an image shows as its alt text")
	assert.NotContains(t, text, "example.com")
	assert.Contains(t, text, "![kept](in/code.png)", "code is left alone")
	for _, s := range c.preview.Segments {
		_, isImage := s.(*widget.ImageSegment)
		assert.False(t, isImage, "the preview loads no image")
	}
}

func TestCardPanelPreviewIsDebounced(t *testing.T) {
	c, _ := newTestCardPanel(t)
	c.SetPipeline(jobPipeline(t, 7))
	loop := newTestLoop()
	c.debounce.delay = 50 * time.Millisecond
	c.debounce.do = loop.do

	c.body.SetText("\n# One\n")
	c.body.SetText("\n# Two\n")
	assert.NotContains(t, previewText(c), "Two", "not rendered while typing")

	require.True(t, loop.runUntil(func() bool { return strings.Contains(previewText(c), "Two") }, 5*time.Second))
	assert.NotContains(t, previewText(c), "One")
}

func TestCardPanelMergesReadmeAndKeepsEdits(t *testing.T) {
	c, w := newTestCardPanel(t)
	p := jobPipeline(t, 7)
	readme := "---\nlicense: mit\n# the studio's own key\nwidget:\n- text: a cat\n---\n\n# Our model\n\nHand-written.\n"
	require.NoError(t, os.WriteFile(filepath.Join(p.Dir, "README.md"), []byte(readme), 0o644))

	c.SetPipeline(p)

	got, err := c.Card()
	require.NoError(t, err)
	m := got.Metadata()
	assert.Equal(t, "mit", m.License, "the README's license")
	assert.Equal(t, "diffusers", m.LibraryName, "generated metadata fills in")
	assert.Equal(t, card.TextToImage, m.PipelineTag)
	_, has := got.Get("widget")
	assert.True(t, has, "unknown keys are kept")
	assert.Equal(t, "\n# Our model\n\nHand-written.\n", got.Body(), "the README's body")
	assert.False(t, c.generated)

	c.license.SetText("apache-2.0")
	c.body.SetText("\n# Edited\n")
	c.SetPipeline(p) // the same folder again, say after switching tabs
	got, err = c.Card()
	require.NoError(t, err)
	assert.Equal(t, "apache-2.0", got.Metadata().License, "edits are kept")
	assert.Equal(t, "\n# Edited\n", got.Body())

	test.Tap(c.revert)
	confirm := w.Canvas().Overlays().Top()
	require.NotNil(t, confirm, "Revert to generated asks first")
	assert.Contains(t, test.RenderObjectToMarkup(confirm), "drops your edits")
	c.revertCard() // what confirming does
	got, err = c.Card()
	require.NoError(t, err)
	assert.Equal(t, "mit", got.Metadata().License)
	assert.Equal(t, "\n# Our model\n\nHand-written.\n", got.Body())
}

func TestCardPanelBrokenReadme(t *testing.T) {
	c, _ := newTestCardPanel(t)
	p := jobPipeline(t, 7)
	require.NoError(t, os.WriteFile(filepath.Join(p.Dir, "README.md"), []byte("---\nlicense: [mit\n---\nbody\n"), 0o644))

	c.SetPipeline(p)

	got, err := c.Card()
	require.NoError(t, err, "the generated card is used")
	assert.Equal(t, "diffusers", got.Metadata().LibraryName)
	found := false
	for text, imp := range problemLabels(c) {
		if strings.Contains(text, "README.md has metadata that cannot be read") {
			found = true
			assert.Equal(t, widget.WarningImportance, imp)
		}
	}
	assert.True(t, found, "the panel says why the README.md was not used")
}

func TestCardPanelFollowsTheRepository(t *testing.T) {
	c, _ := newTestCardPanel(t)
	c.SetPipeline(jobPipeline(t, 7))
	require.True(t, c.generated)

	c.followRepo("studio/cats")
	assert.Contains(t, c.card.Body(), `"studio/cats"`, "the loading snippet names the repository")
	assert.Contains(t, c.body.Text, `"studio/cats"`)

	c.body.SetText(c.body.Text + "\nMore.\n")
	c.followRepo("alice/cats")
	assert.NotContains(t, c.card.Body(), "alice/cats", "an edited body is the user's")
}

func TestPreviewMarkdown(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"front matter", "---\nlicense: mit\n---\n# Title\n", "# Title\n"},
		{"front matter CRLF", "---\r\nlicense: mit\r\n---\r\n# Title\r\n", "# Title\r\n"},
		{"unclosed", "---\nlicense: mit\n# Title\n", "---\nlicense: mit\n# Title\n"},
		{"none", "# Title\n---\n", "# Title\n---\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := stripFrontMatter(tt.in); got != tt.want {
				t.Errorf("stripFrontMatter(%q) = %q; want %q", tt.in, got, tt.want)
			}
		})
	}

	assert.Equal(t, "see *a b* and *image* or *ref*\n",
		replaceImages("see ![ a b ](x.png \"t\") and ![](y.png) or ![ref][1]\n"))
	assert.Equal(t, "    ![code](x.png)\n", replaceImages("    ![code](x.png)\n"))

	table := "Intro\n\n| Name | Size |\n| --- | ---: |\n| `unet` | 2 MB |\n|  | 1 |\n\nAfter | not a table\n"
	assert.Equal(t, "Intro\n\n- `unet` · Size: 2 MB\n- Size: 1\n\n\nAfter | not a table\n", listTables(table))
	assert.Equal(t, "| just a pipe line\n", listTables("| just a pipe line\n"))

	segs := previewSegments("* ![in a list](https://example.com/x.png)\n\n![ref][r]\n\n[r]: https://example.com/y.png\n")
	var walk func([]widget.RichTextSegment)
	walk = func(segs []widget.RichTextSegment) {
		for _, s := range segs {
			switch v := s.(type) {
			case *widget.ImageSegment:
				t.Errorf("an image segment is left: %v", v.Source)
			case *widget.ListSegment:
				walk(v.Items)
			case *widget.ParagraphSegment:
				walk(v.Texts)
			}
		}
	}
	walk(segs)
}

func TestDropImages(t *testing.T) {
	img := &widget.ImageSegment{Title: "logo"}
	list := &widget.ListSegment{Items: []widget.RichTextSegment{&widget.ParagraphSegment{
		Texts: []widget.RichTextSegment{&widget.ImageSegment{}}}}}
	out := dropImages([]widget.RichTextSegment{img, list})
	require.Len(t, out, 2)
	assert.Equal(t, "logo", out[0].Textual())
	assert.Equal(t, "image", list.Items[0].(*widget.ParagraphSegment).Texts[0].Textual())
}

// TestCardPanelGolden keeps the markup of the panel, empty and with a
// generated card whose license is wrong. To regenerate after an intended
// change: go test ./gui/ -run CardPanelGolden -update, and review the diff.
func TestCardPanelGolden(t *testing.T) {
	c, w := newTestCardPanel(t)
	assertGolden(t, "card_empty.xml", w.Canvas())
	c.SetPipeline(jobPipeline(t, 7))
	c.license.SetText("MIT")
	assertGolden(t, "card_generated.xml", w.Canvas())
}
