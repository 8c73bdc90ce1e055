package gui

import (
	"image/color"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
)

// tooltip is a line of text shown beside the pointer, over a view: layer
// is stacked on top of the view (container.NewStack) and holds the tip,
// placed where show is told. It is drawn with canvas objects only, so it
// never takes the pointer's events from the view under it.
type tooltip struct {
	layer *fyne.Container
	box   *fyne.Container
	bg    *canvas.Rectangle
	lines *fyne.Container // a canvas.Text per line
}

// tipOffset is how far from the pointer the tip is drawn: below and to the
// right, clear of the pointer's arrow.
var tipOffset = fyne.NewPos(14, 18)

func newTooltip() *tooltip {
	t := &tooltip{bg: canvas.NewRectangle(color.Transparent), lines: container.NewVBox()}
	t.bg.CornerRadius = theme.InputRadiusSize()
	t.bg.StrokeWidth = 1
	t.box = container.NewStack(t.bg, container.NewPadded(t.lines))
	t.box.Hide()
	t.layer = container.NewWithoutLayout(t.box)
	return t
}

// show shows lines of text beside the pointer at position at on the
// canvas, the first in bold; the tip stays inside the layer, on the
// pointer's other side near an edge.
func (t *tooltip) show(lines []string, at fyne.Position) {
	t.bg.FillColor = theme.Color(theme.ColorNameOverlayBackground)
	t.bg.StrokeColor = theme.Color(theme.ColorNameInputBorder)
	objs := make([]fyne.CanvasObject, len(lines))
	for i, l := range lines {
		text := canvas.NewText(l, theme.Color(theme.ColorNameForeground))
		text.TextSize = theme.CaptionTextSize()
		text.TextStyle.Bold = i == 0
		objs[i] = text
	}
	t.lines.Objects = objs
	t.lines.Refresh()
	size := t.box.MinSize()
	origin := fyne.Position{}
	if d := fyne.CurrentApp().Driver(); d.CanvasForObject(t.layer) != nil {
		origin = d.AbsolutePositionForObject(t.layer)
	}
	p := at.Subtract(origin)
	room := t.layer.Size()
	x, y := p.X+tipOffset.X, p.Y+tipOffset.Y
	if x+size.Width > room.Width {
		x = p.X - size.Width - tipOffset.X/2
		if x < 0 { // fits on neither side: against the right edge
			x = max(room.Width-size.Width, 0)
		}
	}
	if y+size.Height > room.Height {
		y = max(p.Y-size.Height-tipOffset.Y/2, 0)
	}
	t.box.Move(fyne.NewPos(x, y))
	t.box.Resize(size)
	t.box.Show()
	t.box.Refresh()
}

// hide hides the tip.
func (t *tooltip) hide() {
	if t.box.Visible() {
		t.box.Hide()
	}
}
