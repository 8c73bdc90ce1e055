package gui

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"modelpub/core/card"
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

// cardPanel edits the model card (README.md) that Publish uploads: a form
// for the metadata the Hub reads, a Markdown editor for the body beside a
// live preview, and the problems the Hub would refuse, shown under the
// form as they appear.
type cardPanel struct {
	e *env
	p *pipeline.Pipeline

	// card is the card being edited; nil before a folder is open. The form
	// and the editor write into it as they change.
	card *card.Card
	// generated says the body is still the one card.Generate wrote, so it
	// follows the repository chosen in Publish (followRepo).
	generated bool
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
	regenerate  *widget.Button
	body        *widget.Entry
	preview     *widget.RichText
	form        *fyne.Container
	main        fyne.CanvasObject
	empty       fyne.CanvasObject
	content     *fyne.Container

	filling  bool // the form is being filled from the card: its OnChanged are ignored
	loadGen  int  // counts card loads; a stale one is dropped
	debounce *debouncer
}

func newCardPanel(e *env) *cardPanel {
	c := &cardPanel{e: e, debounce: &debouncer{delay: previewDelay, do: e.do}}
	if e.choices != nil {
		e.choices.onChange(c.refreshGenerated)
	}

	c.license = widget.NewSelectEntry(card.Licenses())
	c.license.PlaceHolder = "a license id, e.g. apache-2.0"
	c.license.OnChanged = func(string) { c.formChanged() }
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
	c.regenerate = widget.NewButtonWithIcon("Regenerate…", theme.ViewRefreshIcon(), c.confirmRegenerate)

	c.body = widget.NewMultiLineEntry()
	c.body.Wrapping = fyne.TextWrapWord
	c.body.TextStyle = fyne.TextStyle{Monospace: true}
	c.body.OnChanged = c.bodyChanged
	c.preview = widget.NewRichText()
	c.preview.Wrapping = fyne.TextWrapWord

	heading := func(s string) *widget.Label {
		return widget.NewLabelWithStyle(s, fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	}
	top := container.NewVBox(
		container.NewBorder(nil, nil, heading("Metadata"), c.regenerate),
		c.form, c.problems)
	editor := container.NewBorder(heading("Markdown"), nil, nil, nil, c.body)
	preview := container.NewBorder(heading("Preview"), nil, nil, nil, container.NewVScroll(c.preview))
	split := container.NewHSplit(editor, preview)
	c.main = container.NewBorder(top, nil, nil, nil, split)
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

// SetPipeline implements panel. The card is generated for a folder the
// first time it is shown; showing the same folder again keeps the edits.
func (c *cardPanel) SetPipeline(p *pipeline.Pipeline) {
	same := p != nil && c.p != nil && p.Dir == c.p.Dir && c.card != nil
	c.p = p
	if same {
		return
	}
	c.loadGen++
	c.card, c.note = nil, ""
	c.show()
	if p != nil {
		c.load()
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

// load generates the card off the UI goroutine (it reads README.md) and
// shows it.
func (c *cardPanel) load() {
	gen, p, opts := c.loadGen, c.p, c.genOptions()
	c.e.spawn(func() {
		cd, generated, note := loadCard(p, opts)
		c.e.do(func() {
			if gen == c.loadGen {
				c.card, c.generated, c.note = cd, generated, note
				c.show()
			}
		})
	})
}

// loadCard generates the card of p and merges the folder's README.md into
// it: the README's keys, comments and body win, the generated metadata
// fills in what it lacks. generated says the body is the generated one;
// note says why the README.md was not used, if it was not.
func loadCard(p *pipeline.Pipeline, opts card.GenerateOptions) (c *card.Card, generated bool, note string) {
	c, generated, err := card.ForFolder(p, opts)
	switch {
	case err == nil:
		return c, generated, ""
	case errors.As(err, new(*card.YAMLError)), errors.Is(err, card.ErrInvalidYAML):
		return c, true, fmt.Sprintf("The folder's README.md has metadata that cannot be read (%v): this card is "+
			"generated. Fix the README.md and press Regenerate, or edit this card.", err)
	}
	return c, true, fmt.Sprintf("The folder's README.md cannot be read (%v): this card is generated.", err)
}

// confirmRegenerate asks before replacing the edits with a new card.
func (c *cardPanel) confirmRegenerate() {
	if c.p == nil {
		return
	}
	d := dialog.NewConfirm("Regenerate the model card?",
		"This replaces your edits of the metadata and the body with a card generated from the folder "+
			"(merged with its README.md, if it has one).", func(ok bool) {
			if ok {
				c.regenerateCard()
			}
		}, c.e.win)
	d.SetConfirmText("Regenerate")
	d.SetConfirmImportance(widget.DangerImportance)
	d.Show()
}

// regenerateCard drops the edits and loads the card again.
func (c *cardPanel) regenerateCard() {
	if c.p == nil {
		return
	}
	c.loadGen++
	c.load()
}

// show brings every widget up to date with c.card.
func (c *cardPanel) show() {
	if c.card == nil {
		c.main.Hide()
		c.empty.Show()
		c.regenerate.Disable()
		return
	}
	c.empty.Hide()
	c.main.Show()
	c.regenerate.Enable()
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
	c.showLicenseName()
	c.showProblems()
}

// bodyChanged writes the editor into the card's body.
func (c *cardPanel) bodyChanged(s string) {
	if c.filling || c.card == nil {
		return
	}
	c.card.SetBody(s)
	c.generated = false
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
// a mistake (yellow), with the key and the line of README.md.
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

// problemText is "license, line 3: … ".
func problemText(p card.Problem) string {
	where := p.Key
	if where == "" {
		where = "metadata"
	}
	if p.Line > 0 {
		where += fmt.Sprintf(", line %d", p.Line)
	}
	return where + ": " + p.Message
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
