package gui

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"modelpub/core/card"
	"modelpub/core/drafts"
	"modelpub/core/folder"
	"modelpub/core/pipeline"
	"modelpub/core/publish"
)

// previewDelay is how long the preview waits after a keystroke in the
// body before it renders the Markdown again.
const previewDelay = 300 * time.Millisecond

// noPipelineTag is the pipeline tag choice that sets none.
const noPipelineTag = "(none)"

// errNoCard is Card's answer before a folder is open.
var errNoCard = errors.New("gui: no model card: open a folder first")

// cardPanel edits the model card (README.md) that Publish uploads and Save
// locally writes: a form for the metadata the Hub reads, a Markdown editor
// for the body beside a live preview, and the problems the Hub would
// refuse, shown under the form as they appear. Edits are kept per folder
// in the user's config dir (cardDrafts) and shown again when the folder is
// opened again, until Revert to generated drops them.
type cardPanel struct {
	e *env
	p *pipeline.Pipeline

	// card is the card being edited; nil before a folder is open. The form
	// and the editor write into it as they change.
	card *card.Card
	// base is the card as loaded from the folder, before any draft: with
	// the same metadata and an unedited body the card needs no draft.
	base *card.Card
	// generated says the body is still the one card.Generate wrote, so it
	// follows the repository chosen in Publish (followRepo).
	generated bool
	// bodyEdited says the user typed in the body (here, or in the draft
	// shown).
	bodyEdited bool
	// restored is when the draft shown was saved; zero once edited again,
	// or when none was.
	restored time.Time
	drafts   *cardDrafts
	// refreshGen counts refreshes of the generated body; a late one is dropped.
	refreshGen int
	// repoID is the repository Publish targets, "" when unknown; the
	// generated title and loading snippet name it.
	repoID string
	// note says what happened to the folder's own README.md, if anything.
	note string

	license     *widget.SelectEntry
	licenseName *widget.Entry
	licenseRow  *widget.Label // the label of licenseName, hidden with it
	baseModel   *widget.Entry
	pipelineTag *widget.Select
	tags        *widget.Entry
	language    *widget.Entry
	problems    *fyne.Container // one red (error) or yellow (warning) label per problem
	revert      *widget.Button
	kept        *widget.Label // says the edits are kept, or restored
	body        *widget.Entry
	fit         *editorFit // widens the editor to its longest word
	preview     *markdownView
	form        *fyne.Container
	main        fyne.CanvasObject
	empty       fyne.CanvasObject
	content     *fyne.Container

	filling  bool // the form is being filled from the card: its OnChanged are ignored
	loadGen  int  // counts card loads; a stale one is dropped
	debounce *debouncer
}

func newCardPanel(e *env) *cardPanel {
	c := &cardPanel{e: e, debounce: &debouncer{delay: previewDelay, do: e.do}, drafts: newCardDrafts(e)}
	c.drafts.snapshot = c.snapshot
	c.drafts.changed = c.showDrafts
	if e.choices != nil {
		e.choices.onChange(c.refreshGenerated)
	}

	c.license = widget.NewSelectEntry(licenseOptions(""))
	c.license.PlaceHolder = "type to find a license id, e.g. apache-2.0"
	c.license.OnChanged = func(text string) {
		c.license.SetOptions(licenseOptions(text)) // the list under the arrow: what matches
		c.formChanged()
	}
	c.licenseName = widget.NewEntry()
	c.licenseName.PlaceHolder = "a short id for the license, e.g. my-license-1.0"
	c.licenseName.OnChanged = func(string) { c.formChanged() }
	c.licenseRow = widget.NewLabel("License name")
	c.baseModel = widget.NewEntry()
	c.baseModel.PlaceHolder = "repo id of the model this one derives from, e.g. stable-diffusion-v1-5/stable-diffusion-v1-5"
	c.baseModel.OnChanged = func(string) { c.formChanged() }
	c.pipelineTag = widget.NewSelect(append([]string{noPipelineTag}, card.Tasks()...), func(string) { c.formChanged() })
	c.tags = widget.NewEntry()
	c.tags.PlaceHolder = "comma-separated, e.g. diffusers, text-to-image"
	c.tags.OnChanged = func(string) { c.formChanged() }
	c.language = widget.NewEntry()
	c.language.PlaceHolder = "comma-separated ISO 639-1 codes, e.g. en"
	c.language.OnChanged = func(string) { c.formChanged() }
	c.form = container.New(layout.NewFormLayout(),
		widget.NewLabel("License"), c.license,
		c.licenseRow, c.licenseName,
		widget.NewLabel("Base model"), c.baseModel,
		widget.NewLabel("Pipeline tag"), c.pipelineTag,
		widget.NewLabel("Tags"), c.tags,
		widget.NewLabel("Language"), c.language)
	c.problems = container.NewVBox()
	c.revert = widget.NewButtonWithIcon("Revert to generated…", theme.ViewRefreshIcon(), c.confirmRevert)
	c.kept = widget.NewLabel("")
	c.kept.Importance = widget.LowImportance
	c.kept.Hide()

	c.body = widget.NewMultiLineEntry()
	c.body.Wrapping = fyne.TextWrapWord
	c.body.TextStyle = fyne.TextStyle{Monospace: true}
	c.body.OnChanged = c.bodyChanged
	c.preview = newMarkdownView()

	heading := func(s string) *widget.Label {
		return widget.NewLabelWithStyle(s, fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	}
	top := container.NewVBox(
		container.NewBorder(nil, nil, heading("Metadata"), container.NewHBox(c.kept, c.revert)),
		c.form, c.problems)
	editor := container.NewBorder(heading("Markdown"), nil, nil, nil, c.body)
	preview := container.NewBorder(heading("Preview"), nil, nil, nil, container.NewVScroll(c.preview.box))
	split := container.NewHSplit(editor, preview)
	c.fit = &editorFit{split: split, body: c.body}
	c.main = container.NewBorder(top, nil, nil, nil, container.New(c.fit, split))
	hint := widget.NewLabelWithStyle("Open a folder to write its model card.\n"+
		"The card is generated from the folder (and its README.md, if it has one), then yours to edit.",
		fyne.TextAlignCenter, fyne.TextStyle{})
	c.empty = container.NewCenter(hint)
	c.content = container.NewStack(c.empty, c.main)
	c.show()
	return c
}

// Content implements panel.
func (c *cardPanel) Content() fyne.CanvasObject { return c.content }

// SetPipeline implements panel. The card of a folder is its draft, if the
// user edited it before (in this run or an earlier one), or else the one
// generated from the folder; showing the same folder again keeps the
// edits. The edits of the folder shown before are written to its draft
// first.
func (c *cardPanel) SetPipeline(p *pipeline.Pipeline) {
	same := p != nil && c.p != nil && p.Dir == c.p.Dir && c.card != nil
	if same {
		c.p = p
		return
	}
	if c.p != nil && c.card != nil {
		c.drafts.leave()
	}
	c.p = p
	c.loadGen++
	c.card, c.base, c.note, c.restored = nil, nil, "", time.Time{}
	c.drafts.reset(false)
	c.show()
	if p != nil {
		c.load(true)
	}
}

// Card returns a copy of the card as edited, for Publish; an error wrapping
// publish.ErrCard names what the Hub would refuse in it.
func (c *cardPanel) Card() (*card.Card, error) {
	if c.card == nil {
		return nil, errNoCard
	}
	if problems := c.card.Validate(); len(problems) > 0 {
		msgs := make([]string, len(problems))
		for i, p := range problems {
			msgs[i] = problemText(p)
		}
		return nil, fmt.Errorf("%w: %s", publish.ErrCard, strings.Join(msgs, "; "))
	}
	data, err := c.card.Bytes()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", publish.ErrCard, err)
	}
	// A copy read back from the bytes: the job reads it on another
	// goroutine while this one may go on editing.
	return card.Parse(data)
}

// followRepo names the repository Publish targets in the generated title
// and loading snippet, as long as the body is still the generated one.
func (c *cardPanel) followRepo(id string) {
	if id == c.repoID {
		return
	}
	c.repoID = id
	c.refreshGenerated()
}

// genOptions are what the card is generated with: the target repository
// and the variant chosen in the Variant tab, which the published folder
// will have.
func (c *cardPanel) genOptions() card.GenerateOptions {
	o := card.GenerateOptions{RepoID: c.repoID}
	if c.e.choices != nil {
		o.Variant = c.e.choices.Variant
	}
	return o
}

// refreshGenerated writes the body again from the folder, the repository
// and the chosen variant, as long as it is still the generated one (never
// over the user's edits). Planning a variant reads headers, so it runs off
// the UI goroutine.
func (c *cardPanel) refreshGenerated() {
	if c.card == nil || !c.generated || c.p == nil {
		return
	}
	c.refreshGen++
	gen, p, opts := c.refreshGen, c.p, c.genOptions()
	c.e.spawn(func() {
		body := card.Generate(p, opts).Body()
		c.e.do(func() {
			if gen != c.refreshGen || p != c.p || c.card == nil || !c.generated || body == c.card.Body() {
				return
			}
			c.card.SetBody(body)
			c.filling = true
			c.body.SetText(body)
			c.filling = false
			c.schedulePreview()
		})
	})
}

// load reads the card off the UI goroutine (the folder's README.md, the
// draft) and shows it; with useDraft false the draft is left out.
func (c *cardPanel) load(useDraft bool) {
	gen, p, opts, store := c.loadGen, c.p, c.genOptions(), c.drafts.store
	var held *drafts.Draft
	if useDraft {
		held = c.drafts.takeHeld(p.Dir)
	}
	c.e.spawn(func() {
		l := loadCard(p, opts)
		if useDraft {
			l.restore(store, held, p.Dir)
		}
		c.e.do(func() {
			if gen != c.loadGen {
				if held != nil {
					c.drafts.hold(p.Dir, held) // still not written: keep it for the next load
				}
				return
			}
			c.card, c.base, c.generated, c.bodyEdited, c.note = l.card, l.base, l.generated, l.bodyEdited, l.note
			c.restored = l.restored
			c.drafts.reset(l.draft)
			if held != nil {
				c.drafts.edited() // the edits that could not be written: try again
			}
			c.show()
		})
	})
}

// loadedCard is what load shows.
type loadedCard struct {
	card       *card.Card // the card to show
	base       *card.Card // the card loaded from the folder
	generated  bool       // the body is the generated one
	bodyEdited bool       // the body is the one the user typed (a draft's)
	note       string     // why the README.md or the draft was not used, if one was not
	draft      bool       // card is the folder's draft
	restored   time.Time  // when that draft was saved
}

// loadCard generates the card of p and merges the folder's README.md into
// it: the README's keys, comments and body win, the generated metadata
// fills in what it lacks, as modelpub card does. A README.md that cannot
// be read leaves the generated card, with a note saying why.
func loadCard(p *pipeline.Pipeline, opts card.GenerateOptions) loadedCard {
	c, generated, err := card.ForFolder(p, opts)
	l := loadedCard{card: c, generated: generated}
	switch {
	case err == nil:
	case errors.As(err, new(*card.YAMLError)), errors.Is(err, card.ErrInvalidYAML):
		l.generated = true
		l.note = fmt.Sprintf("The folder's README.md has metadata that cannot be read (%v): this card is "+
			"generated. Fix the README.md and press Revert to generated, or edit this card.", err)
	default:
		l.generated = true
		l.note = fmt.Sprintf("The folder's README.md cannot be read (%v): this card is generated.", err)
	}
	l.base = c
	if data, err := c.Bytes(); err == nil {
		if cp, err := card.Parse(data); err == nil {
			l.card = cp // the one shown is edited; base stays as loaded
		}
	}
	return l
}

// restore puts the folder's draft in place of the loaded card: held, a
// draft that could not be written yet, or else the one in store. The
// draft's metadata is used, and its body if the user edited it (else the
// body just loaded, which follows the folder and the choices).
func (l *loadedCard) restore(store *drafts.Store, held *drafts.Draft, dir string) {
	d := held
	if d == nil {
		if store == nil {
			return
		}
		var err error
		d, err = store.Load(dir)
		switch {
		case errors.Is(err, drafts.ErrNoDraft):
			return
		case err != nil:
			l.note = fmt.Sprintf("Your earlier edits of this card cannot be read (%v): the card is loaded "+
				"from the folder. Your next edit replaces them.", err)
			return
		}
	}
	dc, err := card.Parse(d.Card)
	if err != nil {
		l.note = fmt.Sprintf("Your earlier edits of this card cannot be read (%v): the card is loaded from "+
			"the folder. Your next edit replaces them.", err)
		if store != nil && held == nil {
			l.note = fmt.Sprintf("Your earlier edits of this card, kept in %s, cannot be read (%v): the card "+
				"is loaded from the folder. Your next edit replaces them.", store.Path(dir), err)
		}
		return
	}
	if d.BodyEdited {
		l.generated = false
	} else {
		dc.SetBody(l.card.Body())
	}
	l.card, l.bodyEdited, l.draft, l.restored, l.note = dc, d.BodyEdited, true, d.Saved, ""
}

// snapshot is the draft of the card shown (see cardDrafts.snapshot): nil
// when its metadata is the loaded card's and its body was not edited.
func (c *cardPanel) snapshot() (string, *drafts.Draft, error) {
	if c.p == nil || c.card == nil {
		return "", nil, errNoCard
	}
	if !c.bodyEdited && c.base != nil && sameMetadata(c.card.Metadata(), c.base.Metadata()) {
		return c.p.Dir, nil, nil
	}
	data, err := c.card.Bytes()
	if err != nil {
		return c.p.Dir, nil, err
	}
	return c.p.Dir, &drafts.Draft{Folder: c.p.Dir, Card: data, BodyEdited: c.bodyEdited}, nil
}

func sameMetadata(a, b card.Metadata) bool {
	return a.LibraryName == b.LibraryName && a.PipelineTag == b.PipelineTag && a.License == b.License &&
		a.LicenseName == b.LicenseName && a.LicenseLink == b.LicenseLink && slices.Equal(a.BaseModel, b.BaseModel) &&
		slices.Equal(a.Tags, b.Tags) && slices.Equal(a.Language, b.Language)
}

// Readme is the card as the tab shows it, as README.md, for Save locally;
// nil before the card is loaded.
func (c *cardPanel) Readme() ([]byte, error) {
	if c.card == nil {
		return nil, nil
	}
	return c.card.Bytes()
}

// hasEdits says the card shown differs from the one loaded from the
// folder: edited, or restored from a draft.
func (c *cardPanel) hasEdits() bool {
	return c.drafts.dirty || c.drafts.exists || c.drafts.err != nil
}

// confirmRevert asks before dropping the edits for the card loaded from
// the folder; with no edits it loads it again at once (say, after the
// folder's README.md was fixed).
func (c *cardPanel) confirmRevert() {
	if c.p == nil {
		return
	}
	if !c.hasEdits() {
		c.revertCard()
		return
	}
	d := dialog.NewConfirm("Revert to the generated card?",
		"This drops your edits of the metadata and the body, also the copy kept for next time, and shows "+
			"the card generated from the folder (merged with its README.md, if it has one).", func(ok bool) {
			if ok {
				c.revertCard()
			}
		}, c.e.win)
	d.SetConfirmText("Revert")
	d.SetConfirmImportance(widget.DangerImportance)
	d.Show()
}

// revertCard drops the edits and their draft, and loads the card from the
// folder again.
func (c *cardPanel) revertCard() {
	if c.p == nil {
		return
	}
	if err := c.drafts.drop(c.p.Dir); err != nil {
		c.e.showProblem("Your earlier edits could not be removed", folder.Reason(err),
			"They will be shown again the next time this folder is opened: revert again then.")
	}
	c.loadGen++
	c.load(false)
}

// showDrafts says whether the edits are kept (and since when, for a
// restored draft), and shows a write that failed with the problems.
func (c *cardPanel) showDrafts() {
	switch {
	case c.card == nil || c.drafts.err != nil || (!c.drafts.exists && !c.drafts.dirty):
		c.kept.Hide()
	case !c.restored.IsZero() && !c.drafts.dirty:
		c.kept.SetText("Your edits of " + c.restored.Local().Format("2 Jan 2006 15:04") + ", restored")
		c.kept.Show()
	default:
		c.kept.SetText("Your edits are kept for next time")
		c.kept.Show()
	}
	c.showProblems()
}

// confirmKeep runs next once the card's edits are kept: pending ones are
// written now. When they cannot be, it asks first: try again (Save draft),
// lose them (Discard), or stay (Cancel).
func (c *cardPanel) confirmKeep(next func()) {
	err := c.drafts.flushAll()
	if err == nil {
		next()
		return
	}
	name := "this card"
	if c.p != nil {
		name = "the model card of " + filepath.Base(c.p.Dir)
	}
	text := widget.NewLabel(fmt.Sprintf("Your edits of %s could not be kept for next time:\n\n%v\n\n"+
		"Quitting now loses them. Cancel, then copy the text, or use Save locally: it writes the card as "+
		"README.md into the saved folder.", name, err))
	text.Wrapping = fyne.TextWrapWord
	d := dialog.NewCustomWithoutButtons("Keep your model card edits?", text, c.e.win)
	cancel := widget.NewButton("Cancel", func() { d.Hide() })
	discard := widget.NewButton("Discard edits", func() {
		d.Hide()
		c.drafts.discard()
		next()
	})
	discard.Importance = widget.DangerImportance
	retry := widget.NewButton("Save draft", func() {
		d.Hide()
		c.confirmKeep(next)
	})
	retry.Importance = widget.HighImportance
	buttons := []fyne.CanvasObject{cancel, discard}
	if c.drafts.store != nil {
		buttons = append(buttons, retry)
	}
	d.SetButtons(buttons)
	width := min(560, c.e.win.Canvas().Size().Width*0.9)
	text.Resize(fyne.NewSize(width, text.MinSize().Height))
	d.Resize(fyne.NewSize(width, d.MinSize().Height))
	d.Show()
}

// show brings every widget up to date with c.card.
func (c *cardPanel) show() {
	c.showDrafts()
	if c.card == nil {
		c.main.Hide()
		c.empty.Show()
		c.revert.Disable()
		return
	}
	c.empty.Hide()
	c.main.Show()
	c.revert.Enable()
	m := c.card.Metadata()
	c.filling = true
	c.license.SetText(m.License)
	c.licenseName.SetText(m.LicenseName)
	c.baseModel.SetText(strings.Join(m.BaseModel, ", "))
	tag := m.PipelineTag
	if tag == "" {
		tag = noPipelineTag
	}
	if !slices.Contains(c.pipelineTag.Options, tag) {
		c.pipelineTag.Options = append(c.pipelineTag.Options, tag) // unknown to the Hub: Validate says so
	}
	c.pipelineTag.SetSelected(tag)
	c.tags.SetText(strings.Join(m.Tags, ", "))
	c.language.SetText(strings.Join(m.Language, ", "))
	c.body.SetText(c.card.Body())
	c.filling = false
	c.showLicenseName()
	c.showProblems()
	c.debounce.cancel()
	c.renderPreview()
}

// formChanged writes the form into the card's metadata.
func (c *cardPanel) formChanged() {
	if c.filling || c.card == nil {
		return
	}
	m := c.card.Metadata()
	m.License = strings.TrimSpace(c.license.Text)
	m.LicenseName = strings.TrimSpace(c.licenseName.Text)
	m.BaseModel = splitList(c.baseModel.Text)
	m.PipelineTag = c.pipelineTag.Selected
	if m.PipelineTag == noPipelineTag {
		m.PipelineTag = ""
	}
	m.Tags = splitList(c.tags.Text)
	m.Language = splitList(c.language.Text)
	c.card.SetMetadata(m)
	c.restored = time.Time{}
	c.drafts.edited()
	c.showLicenseName()
	c.showProblems()
}

// bodyChanged writes the editor into the card's body.
func (c *cardPanel) bodyChanged(s string) {
	if c.fit != nil {
		c.fit.update()
	}
	if c.filling || c.card == nil {
		return
	}
	c.card.SetBody(s)
	c.generated, c.bodyEdited = false, true
	c.restored = time.Time{}
	c.drafts.edited()
	c.schedulePreview()
}

// showLicenseName shows the license_name row for an "other" license, or
// when the card has one anyway.
func (c *cardPanel) showLicenseName() {
	show := strings.TrimSpace(c.license.Text) == "other" || c.licenseName.Text != ""
	if show == c.licenseName.Visible() {
		return
	}
	if show {
		c.licenseRow.Show()
		c.licenseName.Show()
	} else {
		c.licenseRow.Hide()
		c.licenseName.Hide()
	}
	c.form.Refresh()
}

// showProblems lists what the Hub would refuse (red) and what is probably
// a mistake (yellow), each under the name of its field.
func (c *cardPanel) showProblems() {
	var objs []fyne.CanvasObject
	add := func(text string, imp widget.Importance) {
		l := widget.NewLabel(text)
		l.Wrapping = fyne.TextWrapWord
		l.Importance = imp
		objs = append(objs, l)
	}
	if c.note != "" {
		add(c.note, widget.WarningImportance)
	}
	if c.drafts.err != nil {
		add(fmt.Sprintf("Your edits cannot be kept for next time (%v). Quitting asks before they are lost.",
			c.drafts.err), widget.WarningImportance)
	}
	if c.card != nil {
		for _, p := range c.card.Validate() {
			add(problemText(p), widget.DangerImportance)
		}
		for _, p := range c.card.Warnings() {
			add(problemText(p)+" (the Hub accepts this)", widget.WarningImportance)
		}
	}
	c.problems.Objects = objs
	c.problems.Refresh()
	c.main.Refresh() // the form's height changed: lay the editor out again
}

// fieldNames are the form's names of the metadata keys it edits.
var fieldNames = map[string]string{
	"license": "License", "license_name": "License name", "base_model": "Base model",
	"pipeline_tag": "Pipeline tag", "tags": "Tags", "language": "Language",
}

// problemText is "License: "foo" is not a license id …": the problem under
// the name of the form's field, never a line of the front matter the form
// hides; a key the form does not edit is named as the key.
func problemText(p card.Problem) string {
	where, ok := fieldNames[p.Key]
	switch {
	case ok:
	case p.Key == "":
		where = "Metadata"
	default:
		where = "Metadata key " + p.Key
	}
	return where + ": " + p.Message
}

// maxLicenseOptions caps the licenses listed under the license field: a
// list to choose from, not a page to scroll.
const maxLicenseOptions = 12

// popularLicenses are listed under an empty license field (or one holding
// a license id already), the most used for diffusion models first.
var popularLicenses = []string{"apache-2.0", "mit", "creativeml-openrail-m", "openrail++", "openrail",
	"cc-by-4.0", "cc-by-sa-4.0", "cc-by-nc-4.0", "cc-by-nc-sa-4.0", "bigscience-openrail-m", "other"}

// licenseOptions lists the licenses offered under the license field as
// text is typed, at most maxLicenseOptions: the ids holding the text,
// those starting with it first; while it is empty or already an id, the
// popular ones (after the ids starting with it: gpl, gpl-2.0, gpl-3.0).
func licenseOptions(text string) []string {
	t := strings.ToLower(strings.TrimSpace(text))
	var prefix, inside []string
	for _, l := range card.Licenses() {
		switch {
		case t == "":
		case l == t:
			prefix = append([]string{l}, prefix...)
		case strings.HasPrefix(l, t):
			prefix = append(prefix, l)
		case strings.Contains(l, t):
			inside = append(inside, l)
		}
	}
	out := append(prefix, inside...)
	if t == "" || card.IsLicense(t) {
		out = prefix
		for _, l := range popularLicenses {
			if card.IsLicense(l) && !slices.Contains(out, l) {
				out = append(out, l)
			}
		}
	}
	return out[:min(len(out), maxLicenseOptions)]
}

// splitList splits a comma-separated entry into its trimmed, non-empty
// items.
func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// schedulePreview renders the preview once the typing pauses.
func (c *cardPanel) schedulePreview() { c.debounce.call(c.renderPreview) }

// renderPreview shows the card's body as rich text.
func (c *cardPanel) renderPreview() {
	body := ""
	if c.card != nil {
		body = c.card.Body()
	}
	c.preview.Segments = previewSegments(body)
	c.preview.Refresh()
}

// markdownView shows rendered Markdown segments: text wrapped at spaces to
// the width, and code blocks never wrapped (code broken in the middle of
// an identifier reads wrong) but scrolled sideways when wider.
type markdownView struct {
	// Segments are what is shown, as widget.NewRichTextFromMarkdown
	// parses them; Refresh shows them.
	Segments []widget.RichTextSegment
	box      *fyne.Container
}

func newMarkdownView() *markdownView {
	return &markdownView{box: container.NewVBox()}
}

// Refresh shows Segments: a wrapped rich text per run of text segments, a
// sideways-scrolled unwrapped one per code block.
func (m *markdownView) Refresh() {
	var objs []fyne.CanvasObject
	var run []widget.RichTextSegment
	flush := func() {
		if len(run) > 0 {
			rt := widget.NewRichText(run...)
			rt.Wrapping = fyne.TextWrapWord
			objs = append(objs, rt)
			run = nil
		}
	}
	for _, s := range m.Segments {
		if ts, ok := s.(*widget.TextSegment); ok && ts.Style == widget.RichTextStyleCodeBlock {
			flush()
			code := widget.NewRichText(ts)
			code.Wrapping = fyne.TextWrapOff
			objs = append(objs, container.NewHScroll(code))
			continue
		}
		run = append(run, s)
	}
	flush()
	m.box.Objects = objs
	m.box.Refresh()
}

// previewSegments renders Markdown for the preview. Fyne's Markdown widget
// would show a YAML front matter as text, load every image link with a
// synchronous HTTP GET on the UI goroutine, and run the rows of a table
// together: the front matter is dropped, images become their alt text, and
// tables become lists.
func previewSegments(markdown string) []widget.RichTextSegment {
	src := listTables(replaceImages(stripFrontMatter(markdown)))
	// NewRichTextFromMarkdown only parses; nothing is drawn (or loaded)
	// until a widget shows the segments.
	return dropImages(widget.NewRichTextFromMarkdown(src).Segments)
}

// stripFrontMatter removes a leading "---" … "---" block.
func stripFrontMatter(s string) string {
	rest := strings.TrimLeft(strings.TrimPrefix(s, "\ufeff"), "\r\n")
	if !strings.HasPrefix(rest, "---\n") && !strings.HasPrefix(rest, "---\r\n") {
		return s
	}
	lines := strings.SplitAfter(rest, "\n")
	for i := 1; i < len(lines); i++ {
		if strings.TrimRight(lines[i], "\r\n") == "---" {
			return strings.Join(lines[i+1:], "")
		}
	}
	return s // never closed: not a front matter
}

// inlineImage is a Markdown image, ![alt](destination "title") or
// ![alt][ref]; group 1 is the alt text.
var inlineImage = regexp.MustCompile(`!\[([^\]]*)\](\([^)]*\)|\[[^\]]*\])`)

// replaceImages writes every image as its alt text in italics, outside
// code blocks.
func replaceImages(s string) string {
	lines := strings.SplitAfter(s, "\n")
	fenced := false
	for i, l := range lines {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "```") || strings.HasPrefix(t, "~~~") {
			fenced = !fenced
			continue
		}
		if fenced || strings.HasPrefix(l, "    ") || strings.HasPrefix(l, "\t") {
			continue
		}
		lines[i] = inlineImage.ReplaceAllStringFunc(l, func(m string) string {
			alt := strings.Trim(strings.TrimSpace(inlineImage.FindStringSubmatch(m)[1]), "*_")
			if alt == "" {
				alt = "image"
			}
			return "*" + alt + "*"
		})
	}
	return strings.Join(lines, "")
}

// listTables writes each GitHub-style table (a header row, a delimiter row
// of dashes, body rows) as a list, one item per row naming each cell by its
// column, as Fyne does not draw tables and runs their rows together.
func listTables(s string) string {
	lines := strings.SplitAfter(s, "\n")
	var b strings.Builder
	fenced := false
	for i := 0; i < len(lines); i++ {
		t := strings.TrimSpace(lines[i])
		if strings.HasPrefix(t, "```") || strings.HasPrefix(t, "~~~") {
			fenced = !fenced
		}
		if fenced || !isTableRow(t) || i+1 >= len(lines) || !isDelimiterRow(strings.TrimSpace(lines[i+1])) {
			b.WriteString(lines[i])
			continue
		}
		header := tableCells(lines[i])
		for i += 2; i < len(lines) && isTableRow(strings.TrimSpace(lines[i])); i++ {
			b.WriteString(tableItem(header, tableCells(lines[i])))
		}
		i--
		b.WriteString("\n")
	}
	return b.String()
}

// tableCells splits a table row into its trimmed cells.
func tableCells(line string) []string {
	t := strings.TrimSpace(line)
	t = strings.TrimSuffix(strings.TrimPrefix(t, "|"), "|")
	cells := strings.Split(t, "|")
	for i, c := range cells {
		cells[i] = strings.TrimSpace(c)
	}
	return cells
}

// tableItem is "- first cell · Column: cell · …\n". (Bold would split
// a name like feature_extractor: Fyne joins the text nodes of emphasis
// with spaces.)
func tableItem(header, row []string) string {
	var parts []string
	for c, cell := range row {
		switch {
		case c == 0 && cell != "":
			parts = append(parts, cell)
		case c > 0 && c < len(header) && header[c] != "":
			parts = append(parts, header[c]+": "+cell)
		case c > 0:
			parts = append(parts, cell)
		}
	}
	return "- " + strings.Join(parts, " · ") + "\n"
}

func isTableRow(t string) bool { return strings.HasPrefix(t, "|") }

var delimiterRow = regexp.MustCompile(`^\|?(\s*:?-+:?\s*\|)+\s*(:?-+:?\s*)?$`)

func isDelimiterRow(t string) bool { return delimiterRow.MatchString(t) }

// dropImages replaces any image segment left (an image form replaceImages
// does not know) with its title in italics, so the preview never loads a
// URL. Links become text in the link colour: Fyne wraps the text after an
// inline hyperlink one letter per line.
func dropImages(segs []widget.RichTextSegment) []widget.RichTextSegment {
	out := segs[:0]
	for _, s := range segs {
		switch v := s.(type) {
		case *widget.ImageSegment:
			text := v.Title
			if text == "" {
				text = "image"
			}
			out = append(out, &widget.TextSegment{Style: widget.RichTextStyleEmphasis, Text: text})
			continue
		case *widget.HyperlinkSegment:
			out = append(out, &widget.TextSegment{Text: v.Text,
				Style: widget.RichTextStyle{Inline: true, ColorName: theme.ColorNameHyperlink}})
			continue
		case *widget.ListSegment:
			v.Items = dropImages(v.Items)
		case *widget.ParagraphSegment:
			v.Texts = dropImages(v.Texts)
		}
		out = append(out, s)
	}
	return out
}

// debouncer runs a function once calls to it pause for delay. call runs on
// the UI goroutine, and so does the function, through do; a delay of 0
// runs it at once (tests).
type debouncer struct {
	delay time.Duration
	do    func(func())
	gen   int // counts calls; only the latest call's timer runs its function
	timer *time.Timer
}

func (d *debouncer) call(f func()) {
	d.gen++
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	if d.delay <= 0 {
		f()
		return
	}
	gen := d.gen
	d.timer = time.AfterFunc(d.delay, func() {
		d.do(func() {
			if gen == d.gen {
				f()
			}
		})
	})
}

// cancel drops a pending call.
func (d *debouncer) cancel() {
	d.gen++
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
}

var _ panel = (*cardPanel)(nil)

// maxEditorShare is the most of the card panel's width editorFit gives the
// Markdown editor, and minPreviewWidth the least it leaves the preview.
const (
	maxEditorShare  = 0.65
	minPreviewWidth = 360
)

// editorFit lays out the editor-preview split, widening the editor (up to
// maxEditorShare, leaving the preview minPreviewWidth) to the longest word of the body plus its margins. The
// editor wraps at spaces (TextWrapWord), and Fyne cuts a word only when it
// is longer than a line: a URL of the card then stays whole on its line
// rather than being cut mid-word. A word longer still is cut at the line's
// end, as it must be when the editor wraps.
type editorFit struct {
	split *container.Split
	body  *widget.Entry
	width float32 // the width last laid out
}

// MinSize implements fyne.Layout.
func (l *editorFit) MinSize(objs []fyne.CanvasObject) fyne.Size { return objs[0].MinSize() }

// Layout implements fyne.Layout.
func (l *editorFit) Layout(objs []fyne.CanvasObject, size fyne.Size) {
	l.width = size.Width
	objs[0].Move(fyne.NewPos(0, 0))
	objs[0].Resize(size)
	l.update()
}

// update widens the editor, if its body now holds a longer word.
func (l *editorFit) update() {
	if share := l.share(); share > l.split.Offset {
		l.split.SetOffset(share)
	}
}

// share is the part of the width the editor needs for its longest word,
// at most maxEditorShare and what leaves the preview minPreviewWidth.
func (l *editorFit) share() float64 {
	if l.width <= 0 {
		return 0
	}
	word := longestWord(l.body.Text)
	if word == "" {
		return 0
	}
	// The entry's border and inner padding on both sides, its scroll bar,
	// and the split's divider.
	margin := 2*theme.InnerPadding() + 2*theme.InputBorderSize() + theme.ScrollBarSize() + 2*theme.Padding() + theme.SeparatorThicknessSize()
	need := fyne.MeasureText(word, theme.TextSize(), l.body.TextStyle).Width + margin
	return max(0, min(float64(need/l.width), maxEditorShare, float64((l.width-minPreviewWidth)/l.width)))
}

// longestWord is the longest run of s without white space, by runes.
func longestWord(s string) string {
	best, bestN, start, n := "", 0, -1, 0
	for i, r := range s {
		if unicode.IsSpace(r) {
			if start >= 0 && n > bestN {
				best, bestN = s[start:i], n
			}
			start, n = -1, 0
			continue
		}
		if start < 0 {
			start = i
		}
		n++
	}
	if start >= 0 && n > bestN {
		best = s[start:]
	}
	return best
}
