package gui

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/storage"
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

// showFyneFolderDialog is Fyne's folder picker, drawn inside win and sized
// to it, starting at start when that is a folder. done gets the chosen
// path, "" when cancelled, or the dialog's error.
func showFyneFolderDialog(win fyne.Window, start, confirm string, done func(path string, err error)) {
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
