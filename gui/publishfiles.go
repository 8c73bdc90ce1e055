package gui

import (
	"fmt"
	"math"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"modelpub/core/publish"
)

// The Files table lists what the Hub holds for the target and, after a
// dry run or a publish, the plan: every path of the published layout and
// every file only on the Hub, each with a badge (new, changed, unchanged,
// will be deleted, only on the Hub): a new or changed file is sent whole,
// and the heading counts the bytes. It fills the lower part of the panel's
// right side, its File column as wide as the others leave; selecting a row
// shows the whole path, what is sent and why.

// The columns of the files table.
const (
	colChange = iota
	colPath
	colSize
	numFileColumns
)

// minPathWidth is the least width of the File column, which takes what
// the others leave; sizeWidth is the Size column's ("1023.99 MB").
const (
	minPathWidth = 150
	sizeWidth    = 84
)

// changeWidth is the width of the Change column: its widest badge, bold,
// and the label's padding.
func changeWidth() float32 {
	th := fyne.CurrentApp().Settings().Theme()
	w := fyne.MeasureText("Change", th.Size(theme.SizeNameText), fyne.TextStyle{Bold: true}).Width
	for _, c := range []publish.Change{publish.ChangeNew, publish.ChangeChanged, publish.ChangeUnchanged,
		publish.ChangeDeleted, publish.ChangeKept, publish.ChangeIgnored, publish.ChangeUnknown, changeOnHub} {
		text, _ := badge(c, false)
		w = max(w, fyne.MeasureText(text, th.Size(theme.SizeNameText), fyne.TextStyle{Bold: true}).Width)
	}
	return float32(math.Ceil(float64(w + 2*th.Size(theme.SizeNameInnerPadding) + 2)))
}

// changeOnHub is the badge of a file the Hub holds before any plan: it is
// not compared yet.
const changeOnHub publish.Change = ""

// fileRows are the table's rows: the plan when there is one for the chosen
// target, else the Hub's files.
func (pp *publishPanel) fileRows() []publish.PlanEntry {
	if pp.plan != nil {
		return pp.plan
	}
	if pp.remote == nil {
		return nil
	}
	rows := make([]publish.PlanEntry, len(pp.remote.Files))
	for i, f := range pp.remote.Files {
		rows[i] = publish.PlanEntry{Path: f.Path, Size: f.Size, LFS: f.LFSOID != "", Change: changeOnHub}
	}
	return rows
}

func (pp *publishPanel) newFilesTable() *widget.Table {
	t := widget.NewTableWithHeaders(
		func() (int, int) { return len(pp.rows), numFileColumns },
		func() fyne.CanvasObject { return newFileCell(fyne.TextStyle{}) },
		func(id widget.TableCellID, o fyne.CanvasObject) {
			l := fileCellLabel(o)
			if id.Row >= len(pp.rows) {
				l.SetText("")
				return
			}
			text, imp := fileCell(pp.rows[id.Row], id.Col, pp.planDone)
			l.Alignment = fyne.TextAlignLeading
			if id.Col == colSize {
				l.Alignment = fyne.TextAlignTrailing
			}
			bold := id.Col == colChange
			if l.Importance != imp || l.TextStyle.Bold != bold {
				l.Importance, l.TextStyle.Bold = imp, bold
				l.Refresh()
			}
			l.SetText(text)
		})
	t.ShowHeaderColumn = false
	t.CreateHeader = func() fyne.CanvasObject { return newFileCell(fyne.TextStyle{Bold: true}) }
	t.UpdateHeader = func(id widget.TableCellID, o fyne.CanvasObject) {
		if id.Col >= 0 {
			fileCellLabel(o).SetText(pp.fileHeading(id.Col))
		}
	}
	t.SetColumnWidth(colChange, changeWidth())
	t.SetColumnWidth(colSize, sizeWidth)
	t.SetColumnWidth(colPath, 300)
	t.OnSelected = func(id widget.TableCellID) {
		if id.Row >= 0 && id.Row < len(pp.rows) {
			pp.fileDetail.SetText(fileDetail(pp.rows[id.Row], pp.planDone))
		}
	}
	return t
}

// newFileCell is a cell of the files table: a label a line high (rows of
// text, not of buttons: half as tall, twice as many in sight), with its
// usual room on either side.
func newFileCell(style fyne.TextStyle) fyne.CanvasObject {
	l := widget.NewLabelWithStyle("", fyne.TextAlignLeading, style)
	l.Truncation = fyne.TextTruncateEllipsis
	side := theme.InnerPadding() * 3 / 4
	return compact(container.New(layout.NewCustomPaddedLayout(0, 0, side, side), l))
}

// fileCellLabel is the label of a newFileCell.
func fileCellLabel(o fyne.CanvasObject) *widget.Label {
	return o.(*container.ThemeOverride).Content.(*fyne.Container).Objects[0].(*widget.Label)
}

// fileHeading is the heading of column col.
func (pp *publishPanel) fileHeading(col int) string {
	switch col {
	case colChange:
		return "Change"
	case colPath:
		return "File"
	}
	return "Size"
}

// badge is the text and colour of a change; done says the publish is over
// (deleted, not "will be deleted").
func badge(c publish.Change, done bool) (string, widget.Importance) {
	switch c {
	case publish.ChangeNew:
		return "new", widget.SuccessImportance
	case publish.ChangeChanged:
		return "changed", widget.WarningImportance
	case publish.ChangeUnchanged:
		return "unchanged", widget.LowImportance
	case publish.ChangeDeleted:
		if done {
			return "deleted", widget.DangerImportance
		}
		return "will be deleted", widget.DangerImportance
	case publish.ChangeKept:
		return "only on the Hub", widget.HighImportance
	case publish.ChangeIgnored:
		return "ignored", widget.LowImportance
	case publish.ChangeUnknown:
		return "not compared", widget.MediumImportance
	case changeOnHub:
		return "on the Hub", widget.MediumImportance
	}
	return string(c), widget.MediumImportance
}

// fileCell is the text and colour of column col for row e.
func fileCell(e publish.PlanEntry, col int, done bool) (string, widget.Importance) {
	switch col {
	case colChange:
		return badge(e.Change, done)
	case colPath:
		return e.Path, widget.MediumImportance
	}
	return formatSize(e.Size), widget.MediumImportance
}

// fileDetail says all about a row: the whole path, its size, how it is
// stored, what is sent and why.
func fileDetail(e publish.PlanEntry, done bool) string {
	what, _ := badge(e.Change, done)
	stored := "a regular file"
	if e.LFS {
		stored = "an LFS file"
	}
	s := fmt.Sprintf("%s: %s, %s, %s", e.Path, what, formatSize(e.Size), stored)
	switch e.Change {
	case publish.ChangeNew, publish.ChangeChanged, publish.ChangeUnknown:
		switch {
		case done && e.Bytes == 0:
			s += "; not sent: the Hub already stored its content"
		case done:
			s += "; " + formatSize(e.Bytes) + " sent"
		default:
			s += "; " + formatSize(e.Bytes) + " to send"
		}
	}
	if e.Why != "" {
		s += ": " + appWords(e.Why)
	}
	return s + "."
}

// flagWords turns the command line's words in core/publish's texts into
// the panel's.
var flagWords = strings.NewReplacer(
	"--no-delete", "“Delete nothing”",
	"--delete-extra", "“Delete other files on the Hub”")

// appWords says s with the panel's words for the command line's options.
func appWords(s string) string { return flagWords.Replace(s) }

// planText counts a plan for people: "1.28 KB to send: 1 new, 0 changed,
// 18 unchanged, 6 will be deleted, 1 only on the Hub (kept)".
func planText(s publish.Summary) string {
	if s.Unknown > 0 {
		return fmt.Sprintf("%s (%s) to send: not compared with the Hub, as no account is logged in",
			plural(s.Unknown, "file", "files"), formatSize(s.Bytes))
	}
	parts := []string{fmt.Sprintf("%d new", s.New), fmt.Sprintf("%d changed", s.Changed),
		fmt.Sprintf("%d unchanged", s.Unchanged), fmt.Sprintf("%d will be deleted", s.Deleted)}
	if s.Kept > 0 {
		parts = append(parts, fmt.Sprintf("%d only on the Hub (kept)", s.Kept))
	}
	if s.Ignored > 0 {
		parts = append(parts, fmt.Sprintf("%d ignored by the repository's .gitignore", s.Ignored))
	}
	return formatSize(s.Bytes) + " to send: " + strings.Join(parts, ", ")
}

// showFiles fills the table and says what it shows.
func (pp *publishPanel) showFiles() {
	pp.rows = pp.fileRows()
	pp.table.UnselectAll()
	pp.fileDetail.SetText("")
	pp.table.Refresh()
	pp.table.ScrollToTop()
	pp.filesText.SetText(pp.filesSummary())
}

// filesSummary says in a line what the table shows.
func (pp *publishPanel) filesSummary() string {
	switch {
	case pp.plan != nil && pp.planDone:
		return "published: " + pp.planSummary.String()
	case pp.plan != nil:
		return "plan: " + planText(pp.planSummary)
	case pp.remote != nil && !pp.remote.Exists:
		return "none on the Hub yet: every file is new"
	case pp.remote != nil:
		var size int64
		for _, f := range pp.remote.Files {
			size += f.Size
		}
		return fmt.Sprintf("on the Hub (%s): %s, %s; Dry run compares them with the folder",
			pp.remote.Base, plural(len(pp.remote.Files), "file", "files"), formatSize(size))
	}
	return "Dry run lists them"
}

// fillWidth lays out the files table over the whole of its container, its
// File column as wide as the other columns and the dividers leave.
type fillWidth struct {
	t      *widget.Table
	change float32 // the Change column's width
	path   float32 // the File column's width, as last set
}

func (f *fillWidth) Layout(objects []fyne.CanvasObject, size fyne.Size) {
	w := size.Width - float32(numFileColumns)*f.t.Theme().Size(theme.SizeNamePadding) - f.change - sizeWidth
	f.path = max(w, minPathWidth)
	f.t.SetColumnWidth(colPath, f.path)
	for _, o := range objects {
		o.Move(fyne.NewPos(0, 0))
		o.Resize(size)
	}
}

func (f *fillWidth) MinSize([]fyne.CanvasObject) fyne.Size { return f.t.MinSize() }
