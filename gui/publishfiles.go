package gui

import (
	"fyne.io/fyne/v2/widget"

	"modelpub/core/publish"
)

// fileColumns are the headings of the table of uploaded files.
var fileColumns = []string{"File", "Size", "Upload"}

func (pp *publishPanel) newFilesTable() *widget.Table {
	return newTextTable(fileColumns, []float32{300, 90, 70}, func(col int) bool { return col == 1 }, func() int { return len(pp.files) },
		func(row, col int) string { return fileCell(pp.files[row], col) })
}

// fileCell is the text of column col for an uploaded file.
func fileCell(f publish.FileInfo, col int) string {
	switch col {
	case 0:
		return f.Path
	case 1:
		return formatSize(f.Size)
	}
	if f.LFS {
		return "LFS"
	}
	return "regular"
}
