package gui

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/fyne/v2/storage"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

// newTextTable is a read-only table of truncated labels under bold column
// headings: rows() rows, cell(row, col) their text, the columns for which
// right(col) holds aligned right (numbers), widths the column widths.
func newTextTable(columns []string, widths []float32, right func(col int) bool, rows func() int, cell func(row, col int) string) *widget.Table {
	t := widget.NewTableWithHeaders(
		func() (int, int) { return rows(), len(columns) },
		func() fyne.CanvasObject {
			l := widget.NewLabel("")
			l.Truncation = fyne.TextTruncateEllipsis
			return l
		},
		func(id widget.TableCellID, o fyne.CanvasObject) {
			l := o.(*widget.Label)
			l.Alignment = fyne.TextAlignLeading
			if right(id.Col) {
				l.Alignment = fyne.TextAlignTrailing
			}
			l.SetText(cell(id.Row, id.Col))
		})
	t.ShowHeaderColumn = false
	t.CreateHeader = func() fyne.CanvasObject {
		return widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	}
	t.UpdateHeader = func(id widget.TableCellID, o fyne.CanvasObject) {
		if id.Col >= 0 {
			o.(*widget.Label).SetText(columns[id.Col])
		}
	}
	for i, w := range widths {
		t.SetColumnWidth(i, w)
	}
	return t
}

// showFyneFolderDialog is Fyne's folder picker titled title, drawn inside
// win and sized to it, starting at start when that is a folder; confirm
// names its button ("" keeps Fyne's). done gets the chosen path, "" when
// cancelled, or the dialog's error.
func showFyneFolderDialog(win fyne.Window, title, start, confirm string, done func(path string, err error)) {
	d := dialog.NewFolderOpen(func(lu fyne.ListableURI, err error) {
		switch {
		case err != nil:
			done("", err)
		case lu == nil:
			done("", nil)
		default:
			done(lu.Path(), nil)
		}
	}, win)
	d.SetTitleText(title)
	if confirm != "" {
		d.SetConfirmText(confirm)
	}
	if start != "" {
		if l, err := storage.ListerForURI(storage.NewFileURI(start)); err == nil {
			d.SetLocation(l)
		}
	}
	size := win.Canvas().Size()
	d.Resize(fyne.NewSize(max(size.Width*0.9, 600), max(size.Height*0.9, 450)))
	d.Show()
}

// tapLabel is a one-line label cut with an ellipsis to the width it gets,
// that runs onTapped when clicked: a long path or message whose full text
// is one click away.
type tapLabel struct {
	widget.Label
	onTapped func()
}

func newTapLabel(text string, onTapped func()) *tapLabel {
	l := &tapLabel{onTapped: onTapped}
	l.Text = text
	l.Truncation = fyne.TextTruncateEllipsis
	l.ExtendBaseWidget(l)
	return l
}

// Tapped implements fyne.Tappable.
func (l *tapLabel) Tapped(*fyne.PointEvent) {
	if l.onTapped != nil {
		l.onTapped()
	}
}

// Cursor implements desktop.Cursorable: a hand, as over a link.
func (l *tapLabel) Cursor() desktop.Cursor { return desktop.PointerCursor }

// maxPanelMinWidth is the most a panel may ask of the window's width. A
// panel lays out what it shows in the width it is given; a line it cannot
// wrap or cut (a bug) is clipped at the window's edge rather than pushing
// the window past the screen, and the other panels and the tree keep their
// room.
const maxPanelMinWidth = 560

// cappedWidth reports at most maxPanelMinWidth as o's minimum width, and
// gives o all the room it gets.
func cappedWidth(o fyne.CanvasObject) fyne.CanvasObject {
	return container.New(cappedWidthLayout{}, o)
}

type cappedWidthLayout struct{}

// MinSize implements fyne.Layout.
func (cappedWidthLayout) MinSize(objs []fyne.CanvasObject) fyne.Size {
	var s fyne.Size
	for _, o := range objs {
		if o.Visible() {
			s = s.Max(o.MinSize())
		}
	}
	s.Width = min(s.Width, maxPanelMinWidth)
	return s
}

// Layout implements fyne.Layout.
func (cappedWidthLayout) Layout(objs []fyne.CanvasObject, size fyne.Size) {
	for _, o := range objs {
		o.Move(fyne.NewPos(0, 0))
		o.Resize(size)
	}
}

// wrapVBox lays out objects one under the other, as container.NewVBox
// does, but gives each the height it needs at the width it gets. A wrapped
// label asks for the height of its text at its current width; a VBox asks
// before it resizes, so a label that gets narrower (a longer text beside
// it, a moved split) is left too short and the next object covers its
// last line. wrapVBox resizes each object to its width first, then asks.
type wrapVBox struct{}

// MinSize implements fyne.Layout.
func (wrapVBox) MinSize(objs []fyne.CanvasObject) fyne.Size {
	var s fyne.Size
	n := 0
	for _, o := range objs {
		if !o.Visible() {
			continue
		}
		m := o.MinSize()
		s.Width = max(s.Width, m.Width)
		s.Height += m.Height
		n++
	}
	if n > 1 {
		s.Height += float32(n-1) * theme.Padding()
	}
	return s
}

// Layout implements fyne.Layout.
func (wrapVBox) Layout(objs []fyne.CanvasObject, size fyne.Size) {
	y := float32(0)
	for _, o := range objs {
		if !o.Visible() {
			continue
		}
		if o.Size().Width != size.Width {
			o.Resize(fyne.NewSize(size.Width, o.MinSize().Height))
		}
		h := o.MinSize().Height
		o.Move(fyne.NewPos(0, y))
		o.Resize(fyne.NewSize(size.Width, h))
		y += h + theme.Padding()
	}
}
