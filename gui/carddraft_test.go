package gui

import (
	"crypto/sha256"
	"io/fs"
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
)

// treeSums hashes every file under dir, by path.
func treeSums(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	sums := map[string][32]byte{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		sums[rel] = sha256.Sum256(data)
		return nil
	}))
	return sums
}

// tapButton taps the button labelled text in the dialog on top of w.
func tapButton(t *testing.T, w fyne.Window, text string) {
	t.Helper()
	top := w.Canvas().Overlays().Top()
	require.NotNil(t, top, "no dialog to tap %q in", text)
	for _, b := range findButtons(top) {
		if b.Text == text {
			test.Tap(b)
			return
		}
	}
	t.Fatalf("no button %q in the dialog: %s", text, test.RenderObjectToMarkup(top))
}

// dialogButtons are the labels of the buttons of the dialog on top of w.
func dialogButtons(w fyne.Window) []string {
	var out []string
	if top := w.Canvas().Overlays().Top(); top != nil {
		for _, b := range findButtons(top) {
			out = append(out, b.Text)
		}
	}
	return out
}

// unwritableStore is a store whose folder cannot be made (it would be
// under a regular file), whoever runs the test, and the file in the way.
func unwritableStore(t *testing.T) (*drafts.Store, string) {
	t.Helper()
	blocker := filepath.Join(t.TempDir(), "config")
	require.NoError(t, os.WriteFile(blocker, nil, 0o600))
	return drafts.NewStore(filepath.Join(blocker, "modelpub", "cards")), blocker
}

// An edited card survives a restart: a new window over the same config
// dir shows the edit when the folder is opened again; Revert to generated
// drops it, and its file. The source folder is never written.
func TestCardEditsSurviveARestart(t *testing.T) {
	config := t.TempDir()
	store := drafts.NewStore(config)
	dir, _ := writeSD15(t)
	before := treeSums(t, dir)

	u, _ := newTestUIWith(t, nil, store)
	u.OpenPath(dir)
	require.NotNil(t, u.cards.card)
	u.cards.license.SetText("mit")
	u.cards.body.SetText("\n# Cats, by us\n")
	shown, err := u.cards.Readme()
	require.NoError(t, err)
	kept, err := os.ReadFile(store.Path(dir))
	require.NoError(t, err, "written on the edit")
	assert.Equal(t, string(shown), string(kept), "the draft is the card as shown")
	assert.Equal(t, "Your edits are kept for next time", u.cards.kept.Text)
	assert.True(t, u.cards.kept.Visible())

	// The restart: a new window, the same config dir.
	u2, w2 := newTestUIWith(t, nil, drafts.NewStore(config))
	u2.OpenPath(dir)
	require.NotNil(t, u2.cards.card)
	assert.Equal(t, "mit", u2.cards.license.Text)
	assert.Equal(t, "\n# Cats, by us\n", u2.cards.body.Text)
	got, err := u2.cards.Card()
	require.NoError(t, err)
	assert.Equal(t, "\n# Cats, by us\n", got.Body(), "what Publish sends")
	assert.True(t, strings.HasPrefix(u2.cards.kept.Text, "Your edits of "), u2.cards.kept.Text)
	assert.True(t, strings.HasSuffix(u2.cards.kept.Text, ", restored"), u2.cards.kept.Text)
	assert.False(t, u2.cards.generated, "an edited body no longer follows the choices")

	test.Tap(u2.cards.revert)
	require.Contains(t, topDialog(w2), "Revert to the generated card?")
	tapButton(t, w2, "Revert")
	assert.Equal(t, "", u2.cards.license.Text)
	assert.Contains(t, u2.cards.body.Text, "# sd15", "the generated body")
	assert.True(t, u2.cards.generated)
	assert.NoFileExists(t, store.Path(dir), "the draft is gone")
	assert.False(t, u2.cards.kept.Visible())
	entries, err := os.ReadDir(config)
	require.NoError(t, err)
	assert.Empty(t, entries)

	u3, _ := newTestUIWith(t, nil, drafts.NewStore(config))
	u3.OpenPath(dir)
	assert.Contains(t, u3.cards.body.Text, "# sd15", "reverted for good")
	assert.Equal(t, before, treeSums(t, dir), "the source folder is only read")
}

// With only the metadata edited, the draft keeps the metadata and the body
// stays the generated one: after a restart it follows the choices made
// then (here the variant), and bringing the metadata back removes the
// draft.
func TestCardDraftOfTheMetadataOnly(t *testing.T) {
	config := t.TempDir()
	p := jobPipeline(t, 7)
	c, _ := newTestCardPanelWithDrafts(t, config)
	c.SetPipeline(p)
	c.license.SetText("apache-2.0")
	d, err := drafts.NewStore(config).Load(p.Dir)
	require.NoError(t, err)
	assert.False(t, d.BodyEdited)

	c2, _ := newTestCardPanelWithDrafts(t, config)
	c2.e.choices.set(0, "fp16")
	c2.SetPipeline(p)
	assert.Equal(t, "apache-2.0", c2.license.Text, "the metadata is restored")
	assert.Contains(t, c2.body.Text, `variant="fp16"`, "the body is generated for today's choices")
	assert.True(t, c2.generated)
	c2.followRepo("studio/cats")
	assert.Contains(t, c2.body.Text, `"studio/cats"`)

	c2.license.SetText("")
	assert.NoFileExists(t, drafts.NewStore(config).Path(p.Dir), "the card is as loaded again: no draft")
	assert.False(t, c2.kept.Visible())
	assert.False(t, c2.hasEdits())
	test.Tap(c2.revert) // nothing to lose: reloads at once
	assert.Nil(t, c2.e.win.Canvas().Overlays().Top(), "no question without edits")
}

// Edits are written once the typing pauses, not on every keystroke, and a
// close writes the pending ones at once, without asking.
func TestCardDraftDebouncedAndFlushedOnClose(t *testing.T) {
	store := drafts.NewStore(t.TempDir())
	u, w := newTestUIWith(t, nil, store)
	dir, _ := writeSD15(t)
	u.OpenPath(dir)
	loop := newTestLoop()
	u.cards.drafts.debounce.delay = 50 * time.Millisecond
	u.cards.drafts.debounce.do = loop.do

	u.cards.body.SetText("\n# One\n")
	u.cards.body.SetText("\n# Two\n")
	assert.NoFileExists(t, store.Path(dir), "not written while typing")
	require.True(t, loop.runUntil(func() bool { return !u.cards.drafts.dirty }, 5*time.Second))
	d, err := store.Load(dir)
	require.NoError(t, err)
	assert.Contains(t, string(d.Card), "# Two")
	assert.True(t, d.BodyEdited)

	u.cards.drafts.debounce.delay = time.Hour
	u.cards.body.SetText("\n# Three\n")
	closed := 0
	u.quit = func() { u.confirmClose(func() { closed++ }) }
	press(w, shortcutQuit)
	assert.Equal(t, 1, closed, "closes without asking")
	assert.Empty(t, topDialog(w))
	d, err = store.Load(dir)
	require.NoError(t, err)
	assert.Contains(t, string(d.Card), "# Three", "the pending edit was written before closing")
}

// Quitting with edits that could not be stored asks: Cancel stays, Save
// draft tries again (and closes once it worked), Discard edits closes
// without them.
func TestQuitWithEditsThatCannotBeKeptAsks(t *testing.T) {
	store, blocker := unwritableStore(t)
	u, w := newTestUIWith(t, nil, store)
	dir, _ := writeSD15(t)
	u.OpenPath(dir)
	closed := 0
	u.quit = func() { u.confirmClose(func() { closed++ }) }

	u.cards.body.SetText("\n# Precious\n")
	warned := false
	for text, imp := range problemLabels(u.cards) {
		if strings.HasPrefix(text, "Your edits cannot be kept for next time") {
			warned = true
			assert.Equal(t, widget.WarningImportance, imp)
			assert.Contains(t, text, blocker, "the error names where")
		}
	}
	assert.True(t, warned, "the panel says at once that the edits are not kept: %v", problemLabels(u.cards))

	press(w, shortcutQuit)
	markup := topDialog(w)
	require.Contains(t, markup, "Keep your model card edits?")
	assert.Contains(t, markup, "Quitting now loses them")
	assert.Equal(t, []string{"Cancel", "Discard edits", "Save draft"}, dialogButtons(w))
	tapButton(t, w, "Cancel")
	assert.Equal(t, 0, closed)
	assert.Empty(t, topDialog(w))
	assert.Equal(t, "\n# Precious\n", u.cards.body.Text, "still there to copy")

	u.confirmClose(func() { closed++ }) // the window's close button
	tapButton(t, w, "Save draft")
	assert.Equal(t, 0, closed, "failed again")
	require.Contains(t, topDialog(w), "Keep your model card edits?", "and asks again")

	require.NoError(t, os.Remove(blocker)) // the user makes room
	tapButton(t, w, "Save draft")
	assert.Equal(t, 1, closed, "kept, then closed")
	d, err := store.Load(dir)
	require.NoError(t, err)
	assert.Contains(t, string(d.Card), "# Precious")

	// Discard: the edits are lost, on purpose.
	store2, _ := unwritableStore(t)
	u2, w2 := newTestUIWith(t, nil, store2)
	u2.OpenPath(dir)
	u2.cards.license.SetText("mit")
	closed = 0
	u2.confirmClose(func() { closed++ })
	tapButton(t, w2, "Discard edits")
	assert.Equal(t, 1, closed)
	u2.confirmClose(func() { closed++ })
	assert.Equal(t, 2, closed, "discarded: no question the second time")
}

// Without a config dir no draft can be kept: the first edit says so, and
// closing asks, offering no Save draft that cannot work.
func TestQuitWithoutAConfigDirAsks(t *testing.T) {
	u, w := newTestUIWith(t, nil, nil)
	dir, _ := writeSD15(t)
	u.OpenPath(dir)
	closed := 0

	u.confirmClose(func() { closed++ })
	assert.Equal(t, 1, closed, "no edits: nothing to ask")

	u.cards.body.SetText("\n# Mine\n")
	found := false
	for text := range problemLabels(u.cards) {
		found = found || strings.Contains(text, errNoDraftStore.Error())
	}
	assert.True(t, found, "%v", problemLabels(u.cards))
	u.confirmClose(func() { closed++ })
	assert.Equal(t, 1, closed)
	assert.Equal(t, []string{"Cancel", "Discard edits"}, dialogButtons(w))
}

// Opening another folder writes the edits of the one shown; edits that
// could not be written are held and shown again when their folder is
// opened again in the same run.
func TestCardDraftsWhenSwitchingFolders(t *testing.T) {
	store := drafts.NewStore(t.TempDir())
	u, _ := newTestUIWith(t, nil, store)
	a, _ := writeSD15(t)
	b, _ := writeSD15(t)
	u.OpenPath(a)
	u.cards.drafts.debounce.delay = time.Hour
	u.cards.body.SetText("\n# A\n")
	u.OpenPath(b)
	d, err := store.Load(a)
	require.NoError(t, err, "written on leaving")
	assert.Contains(t, string(d.Card), "# A")
	assert.NotContains(t, u.cards.body.Text, "# A")

	bad, blocker := unwritableStore(t)
	u2, w2 := newTestUIWith(t, nil, bad)
	u2.OpenPath(a)
	u2.cards.body.SetText("\n# Held\n")
	u2.OpenPath(b)
	assert.Contains(t, u2.cards.body.Text, "# sd15")
	u2.OpenPath(a)
	assert.Equal(t, "\n# Held\n", u2.cards.body.Text, "held in memory")
	u2.OpenPath(b)
	require.NoError(t, os.Remove(blocker))
	closed := 0
	u2.confirmClose(func() { closed++ })
	assert.Equal(t, 1, closed, "the held draft is written on close")
	assert.Empty(t, topDialog(w2))
	d, err = bad.Load(a)
	require.NoError(t, err)
	assert.Contains(t, string(d.Card), "# Held")
}

// A draft that cannot be read is reported, the folder's card shown, and
// the file left alone until the next edit.
func TestCardDraftUnreadable(t *testing.T) {
	config := t.TempDir()
	store := drafts.NewStore(config)
	p := jobPipeline(t, 7)
	require.NoError(t, store.Save(&drafts.Draft{Folder: p.Dir, Card: []byte("---\nlicense: [mit\n---\nbody\n"), BodyEdited: true}))

	c, _ := newTestCardPanelWithDrafts(t, config)
	c.SetPipeline(p)

	assert.Contains(t, c.body.Text, "# sd15")
	found := false
	for text, imp := range problemLabels(c) {
		if strings.Contains(text, "Your earlier edits of this card") {
			found = true
			assert.Contains(t, text, store.Path(p.Dir))
			assert.Equal(t, widget.WarningImportance, imp)
		}
	}
	assert.True(t, found, "%v", problemLabels(c))
	assert.FileExists(t, store.Path(p.Dir))
}

// Save locally writes the card as the Model card tab shows it into the
// saved folder as README.md, replacing the source's, byte for byte and
// with no temporary file left.
func TestSaveLocallyWritesTheCard(t *testing.T) {
	u, w := newTestUI(t)
	dir, _ := writeSD15(t)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "README.md"), []byte("# The source's own\n"), 0o644))
	dst := t.TempDir()
	u.saver.pick = func(start string, done func(string, error)) { done(dst, nil) }
	u.OpenPath(dir)
	u.cards.license.SetText("mit")
	u.cards.body.SetText("\n# Cats\n\nEdited in the app.\n")
	want, err := u.cards.Readme()
	require.NoError(t, err)

	press(w, shortcutSave)

	require.Contains(t, topDialog(w), "Saved to "+dst)
	assert.Contains(t, topDialog(w), "README.md is the model card as the Model card tab shows it.")
	got, err := os.ReadFile(filepath.Join(dst, "README.md"))
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got))
	c, err := card.Parse(got)
	require.NoError(t, err)
	assert.Equal(t, "mit", c.Metadata().License)
	src, err := os.ReadFile(filepath.Join(dir, "README.md"))
	require.NoError(t, err)
	assert.Equal(t, "# The source's own\n", string(src), "the source is only read")
	entries, err := os.ReadDir(dst)
	require.NoError(t, err)
	for _, e := range entries {
		assert.False(t, strings.HasPrefix(e.Name(), "."), "a temporary file is left: %s", e.Name())
	}

	// A card the Hub would refuse is written all the same, and the
	// summary says so.
	dismissDialogs(w)
	u.cards.license.SetText("not-a-license")
	dst2 := t.TempDir()
	u.saver.pick = func(start string, done func(string, error)) { done(dst2, nil) }
	press(w, shortcutSave)
	assert.Contains(t, topDialog(w), "The Hub would refuse its metadata")
	got, err = os.ReadFile(filepath.Join(dst2, "README.md"))
	require.NoError(t, err)
	assert.Contains(t, string(got), "license: not-a-license")
}

// A save with no card yet writes the one modelpub card writes for the
// saved folder.
func TestSaveJobWritesTheGeneratedCard(t *testing.T) {
	dst := t.TempDir()
	s, w := newTestSaveJob(t, dst)
	p := jobPipeline(t, 7)
	s.e.choices.set(0, "fp16")

	s.Run(p)

	assert.Contains(t, topDialog(w), "README.md is the generated model card.")
	got, err := os.ReadFile(filepath.Join(dst, "README.md"))
	require.NoError(t, err)
	require.NoError(t, os.Remove(filepath.Join(dst, "README.md")))
	saved, err := pipeline.Open(t.Context(), dst)
	require.NoError(t, err)
	want, _, err := card.ForFolder(saved, card.GenerateOptions{}) // what modelpub card does
	require.NoError(t, err)
	wantBytes, err := want.Bytes()
	require.NoError(t, err)
	assert.Equal(t, string(wantBytes), string(got))
	assert.Contains(t, string(got), `variant="fp16"`, "it describes the saved folder")
}

func TestWriteReadmeFails(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(dir, "README.md"), 0o755))
	note := writeReadme(t.Context(), dir, []byte("# x\n"), nil)
	assert.Contains(t, note, "The model card could not be written as README.md")
	assert.Contains(t, note, filepath.Join(dir, "README.md"))

	note = writeReadme(t.Context(), t.TempDir(), nil, nil)
	assert.Contains(t, note, "The model card could not be written", "no pipeline to generate it from")
}

// The drafts as the app runs them: loading and writing on goroutines of
// their own, results brought back through the UI loop.
func TestCardDraftsOffTheUIGoroutine(t *testing.T) {
	config := t.TempDir()
	dir, _ := writeSD15(t)
	run := func(edit func(u *UI)) *UI {
		u, _ := newTestUIWith(t, nil, drafts.NewStore(config))
		loop := newTestLoop()
		var running sync.WaitGroup
		t.Cleanup(running.Wait)
		u.e.spawn = func(f func()) {
			running.Add(1)
			go func() { defer running.Done(); f() }()
		}
		u.e.do = loop.do
		u.cards.drafts.debounce.delay = 20 * time.Millisecond
		u.cards.drafts.debounce.do = loop.do
		u.OpenPath(dir)
		require.True(t, loop.runUntil(func() bool { return u.cards.card != nil }, 20*time.Second))
		edit(u)
		require.True(t, loop.runUntil(func() bool { return !u.cards.drafts.dirty }, 5*time.Second), "written")
		return u
	}
	run(func(u *UI) {
		for _, s := range []string{"\n# A\n", "\n# AB\n", "\n# ABC\n"} {
			u.cards.body.SetText(s)
		}
	})
	u := run(func(u *UI) {
		assert.Equal(t, "\n# ABC\n", u.cards.body.Text, "restored after the restart")
		u.cards.license.SetText("mit")
	})
	d, err := drafts.NewStore(config).Load(dir)
	require.NoError(t, err)
	c, err := card.Parse(d.Card)
	require.NoError(t, err)
	assert.Equal(t, "mit", c.Metadata().License)
	assert.Equal(t, "\n# ABC\n", c.Body())
	assert.True(t, u.cards.kept.Visible())
}
