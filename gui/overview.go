package gui

import (
	"fmt"
	"slices"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"modelpub/core/pipeline"
)

// overviewPanel is the Overview tab: the pipeline class and diffusers
// version, a table of components, the totals per dtype and the warnings of
// the inspection.
type overviewPanel struct {
	e       *env
	body    *fyne.Container
	content fyne.CanvasObject
	shown   overview
	// reload reads the open folder again (File ▸ Reload); the Problems
	// section offers it. nil hides the button.
	reload func()
	// reloadBtn is the Problems section's Reload button, for tests.
	reloadBtn *widget.Button
}

func newOverviewPanel(e *env) *overviewPanel {
	o := &overviewPanel{e: e, body: container.NewVBox()}
	o.content = container.NewScroll(container.NewPadded(o.body))
	o.SetPipeline(nil)
	return o
}

// Content implements panel.
func (o *overviewPanel) Content() fyne.CanvasObject { return o.content }

// SetPipeline implements panel.
func (o *overviewPanel) SetPipeline(p *pipeline.Pipeline) {
	o.shown = overviewOf(p)
	o.reloadBtn = nil
	if o.reload != nil && len(o.shown.problems) > 0 {
		o.reloadBtn = widget.NewButtonWithIcon("Reload the folder", theme.ViewRefreshIcon(), o.reload)
	}
	o.body.Objects = o.shown.objects(o.reloadBtn)
	o.body.Refresh()
}

// overview is what the Overview panel shows, as text.
type overview struct {
	title, subtitle string
	// components and dtypes are tables; their first row is the header.
	components [][]string
	dtypes     [][]string
	warnings   []pipeline.Warning
	// problems stop Save and Publish (folderProblems); leftOut names the
	// components the dtype totals leave out because of them.
	problems []folderProblem
	leftOut  string
	open     bool
}

func overviewOf(p *pipeline.Pipeline) overview {
	if p == nil {
		return overview{title: "No folder open", subtitle: "Open a Diffusers folder to see its components here."}
	}
	o := overview{title: pipelineTitle(p), open: true, problems: folderProblems(p)}
	for _, w := range p.Warnings {
		// An unreadable component's error is told under Problems.
		if w.Code == "unreadable-weights" && slices.ContainsFunc(o.problems, func(fp folderProblem) bool { return fp.component == w.Path }) {
			continue
		}
		o.warnings = append(o.warnings, w)
	}
	var facts []string
	if p.Index != nil {
		facts = append(facts, "diffusers "+orNone(p.Index.DiffusersVersion))
	}
	var params int64
	for _, c := range p.Components {
		if ws := c.Main(); ws != nil {
			params += ws.Parameters
		}
	}
	facts = append(facts, plural(len(p.Components), "component", "components"),
		formatSize(pipelineSize(p))+" on disk", pipeline.FormatParameters(params)+" parameters")
	o.subtitle = strings.Join(facts, " · ")

	o.components = [][]string{{"Component", "Class", "Parameters", "Size", "Variants"}}
	for _, c := range p.Components {
		row := []string{componentLabel(p, c), c.Class, "—", formatSize(componentSize(c)), "—"}
		switch {
		case c.Null:
			row[1], row[3] = "not included", "—"
		case c.Missing:
			row[3] = "missing"
		}
		if ws := c.Main(); ws != nil && ws.Err == nil && ws.Parameters > 0 {
			row[2] = pipeline.FormatParameters(ws.Parameters)
		}
		if len(unreadableSets(c)) > 0 {
			row[2] = "cannot be read"
		}
		if vs := c.Variants(); len(vs) > 0 {
			row[4] = strings.Join(vs, ", ")
		}
		o.components = append(o.components, row)
	}
	o.dtypes = dtypeTotals(p)
	var left []string
	for _, c := range p.Components {
		if sets := unreadableSets(c); len(sets) > 0 {
			var names []string
			for _, ws := range sets {
				names = append(names, lowerFirst(weightSetLabel(ws)))
			}
			left = append(left, componentLabel(p, c)+" ("+strings.Join(names, ", ")+")")
		}
	}
	if len(left) > 0 {
		o.leftOut = "Not counted: " + strings.Join(left, ", ") + ", which cannot be read."
	}
	return o
}

// dtypeTotals is a table of tensor bytes per dtype: one column for the main
// weights of every component, one per variant, and a total row.
func dtypeTotals(p *pipeline.Pipeline) [][]string {
	var variants []string
	for _, c := range p.Components {
		for _, v := range c.Variants() {
			if !slices.Contains(variants, v) {
				variants = append(variants, v)
			}
		}
	}
	slices.Sort(variants)
	sets := append([]string{""}, variants...)
	perSet := make([]map[string]int64, len(sets))
	all := map[string]int64{}
	for i, v := range sets {
		perSet[i] = map[string]int64{}
		for _, c := range p.Components {
			ws := c.WeightSet(v, "")
			if ws == nil {
				continue
			}
			for dt, n := range ws.DTypeBytes {
				perSet[i][dt] += n
				all[dt] += n
			}
		}
	}
	if len(all) == 0 {
		return nil
	}
	header := []string{"DType", "Main weights"}
	for _, v := range variants {
		header = append(header, v+" variant")
	}
	rows := [][]string{header}
	totals := make([]int64, len(sets))
	for _, dt := range pipeline.DTypesBySize(all) {
		row := []string{dt}
		for i := range sets {
			n, ok := perSet[i][dt]
			totals[i] += n
			if !ok {
				row = append(row, "—")
				continue
			}
			row = append(row, formatSize(n))
		}
		rows = append(rows, row)
	}
	total := []string{"Total"}
	for _, n := range totals {
		total = append(total, formatSize(n))
	}
	return append(rows, total)
}

// objects renders the overview; reload, if not nil, is offered under the
// problems.
func (o overview) objects(reload *widget.Button) []fyne.CanvasObject {
	title := widget.NewRichText(&widget.TextSegment{Text: o.title,
		Style: widget.RichTextStyle{SizeName: theme.SizeNameHeadingText, TextStyle: fyne.TextStyle{Bold: true}}})
	title.Wrapping = fyne.TextWrapWord
	sub := widget.NewLabel(o.subtitle)
	sub.Wrapping = fyne.TextWrapWord
	objs := []fyne.CanvasObject{title, sub}
	if !o.open {
		return objs
	}
	if len(o.problems) > 0 {
		objs = append(objs, sectionHeading(fmt.Sprintf("Problems (%d)", len(o.problems))))
		for _, fp := range o.problems {
			msg := widget.NewLabel(fp.long())
			msg.Wrapping = fyne.TextWrapWord
			msg.Importance = widget.DangerImportance
			icon := widget.NewIcon(theme.ErrorIcon())
			objs = append(objs, container.NewBorder(nil, nil, container.NewVBox(icon), nil, msg))
		}
		next := widget.NewLabel("Save locally and Publish are off until the folder is fixed: replace the damaged " +
			"files (download them again), then reload it (File ▸ Reload, F5).")
		next.Wrapping = fyne.TextWrapWord
		objs = append(objs, next)
		if reload != nil {
			objs = append(objs, container.NewHBox(reload))
		}
	}
	objs = append(objs, sectionHeading("Components"), textTable(o.components, 2, 3))
	if len(o.dtypes) > 0 || o.leftOut != "" {
		objs = append(objs, sectionHeading("Totals per dtype"))
	}
	if len(o.dtypes) > 0 {
		objs = append(objs, textTable(o.dtypes, 1, 2, 3, 4))
	}
	if o.leftOut != "" {
		note := widget.NewLabel(o.leftOut)
		note.Wrapping = fyne.TextWrapWord
		note.Importance = widget.WarningImportance
		objs = append(objs, note)
	}
	objs = append(objs, sectionHeading(fmt.Sprintf("Warnings (%d)", len(o.warnings))))
	if len(o.warnings) == 0 {
		objs = append(objs, widget.NewLabel("No warnings: the folder looks complete."))
	}
	for _, w := range o.warnings {
		msg := widget.NewLabel(w.Message)
		msg.Wrapping = fyne.TextWrapWord
		code := w.Code
		if w.Path != "" {
			code += " · " + w.Path
		}
		icon := widget.NewIcon(theme.WarningIcon())
		objs = append(objs, container.NewBorder(nil, nil, container.NewVBox(icon), nil,
			container.NewVBox(msg, secondaryText(code))))
	}
	return objs
}

func sectionHeading(s string) fyne.CanvasObject {
	return widget.NewRichText(&widget.TextSegment{Text: s,
		Style: widget.RichTextStyle{SizeName: theme.SizeNameSubHeadingText, TextStyle: fyne.TextStyle{Bold: true}}})
}

// textTable lays rows out in columns as wide as their widest cell; the
// first row is a bold header and the columns listed in right are aligned
// right (numbers).
func textTable(rows [][]string, right ...int) fyne.CanvasObject {
	cols := 0
	for _, r := range rows {
		cols = max(cols, len(r))
	}
	var cells []fyne.CanvasObject
	for i, r := range rows {
		for j := range cols {
			text := ""
			if j < len(r) {
				text = r[j]
			}
			l := widget.NewLabel(text)
			if i == 0 || (i == len(rows)-1 && r[0] == "Total") {
				l.TextStyle.Bold = true
			}
			if slices.Contains(right, j) {
				l.Alignment = fyne.TextAlignTrailing
			}
			cells = append(cells, l)
		}
	}
	return compact(container.New(&columnsLayout{cols: cols}, cells...))
}

// columnsLayout places objects row by row in cols columns, each as wide as
// its widest object, a gap apart and inset from the left by a gap too. The
// compact theme of the tables leaves
// little padding inside the cells, hence the gaps.
type columnsLayout struct{ cols int }

func (l *columnsLayout) gap() float32 { return 1.5 * theme.Padding() }

func (l *columnsLayout) widths(objs []fyne.CanvasObject) ([]float32, []float32) {
	w := make([]float32, l.cols)
	h := make([]float32, (len(objs)+l.cols-1)/l.cols)
	for i, o := range objs {
		m := o.MinSize()
		w[i%l.cols] = max(w[i%l.cols], m.Width)
		h[i/l.cols] = max(h[i/l.cols], m.Height)
	}
	return w, h
}

// MinSize implements fyne.Layout.
func (l *columnsLayout) MinSize(objs []fyne.CanvasObject) fyne.Size {
	w, h := l.widths(objs)
	s := fyne.NewSize(float32(len(w))*l.gap(), 0)
	for _, x := range w {
		s.Width += x
	}
	for _, y := range h {
		s.Height += y
	}
	return s
}

// Layout implements fyne.Layout.
func (l *columnsLayout) Layout(objs []fyne.CanvasObject, _ fyne.Size) {
	w, h := l.widths(objs)
	var y float32
	for r := range h {
		x := l.gap()
		for c := range l.cols {
			i := r*l.cols + c
			if i >= len(objs) {
				break
			}
			objs[i].Move(fyne.NewPos(x, y))
			objs[i].Resize(fyne.NewSize(w[c], h[r]))
			x += w[c] + l.gap()
		}
		y += h[r]
	}
}
