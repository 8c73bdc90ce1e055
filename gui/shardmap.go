package gui

import (
	"fmt"
	"image/color"
	"slices"
	"sort"
	"strconv"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"modelpub/core/pipeline"
	"modelpub/core/tensors"
)

// This file holds the shard map: one shardBar per weights file, its tensors
// drawn as blocks coloured by module, and the legend that names the colours.

// wrapperModules are top-level names that only wrap the real modules
// (text_model.encoder, vision_model.embeddings, encoder.down_blocks): a
// tensor under one of them takes its module from the first two segments.
var wrapperModules = map[string]bool{
	"text_model": true, "vision_model": true, "encoder": true, "decoder": true,
	"model": true, "transformer": true, "text_projection_model": true,
}

// moduleOf names the module a tensor belongs to, for colouring: the first
// segment of its name (down_blocks, mid_block, conv_in), or the first two
// under a wrapper (text_model.encoder, encoder.down_blocks).
func moduleOf(tensor string) string {
	first, rest, ok := strings.Cut(tensor, ".")
	if !ok || !wrapperModules[first] {
		return first
	}
	second, _, more := strings.Cut(rest, ".")
	if !more {
		return first // encoder.weight: the wrapper's own tensor
	}
	if _, err := strconv.Atoi(second); err == nil {
		return first // model.0.weight: a numbered list
	}
	return first + "." + second
}

// modulePalette are mid-tone fills that stand out on the light and the
// dark theme alike, as Fyne's own primary colours do (the first eight are
// those, in an order that keeps neighbours apart); modules past the twelfth
// reuse them, paler.
var modulePalette = []color.NRGBA{
	{R: 0x29, G: 0x6f, B: 0xf6, A: 0xff}, // blue
	{R: 0xff, G: 0x98, B: 0x00, A: 0xff}, // orange
	{R: 0x8b, G: 0xc3, B: 0x4a, A: 0xff}, // green
	{R: 0x9c, G: 0x27, B: 0xb0, A: 0xff}, // purple
	{R: 0xff, G: 0xeb, B: 0x3b, A: 0xff}, // yellow
	{R: 0xf4, G: 0x43, B: 0x36, A: 0xff}, // red
	{R: 0x79, G: 0x55, B: 0x48, A: 0xff}, // brown
	{R: 0x9e, G: 0x9e, B: 0x9e, A: 0xff}, // grey
	{R: 0x00, G: 0x96, B: 0x88, A: 0xff}, // teal
	{R: 0xe9, G: 0x1e, B: 0x63, A: 0xff}, // pink
	{R: 0x3f, G: 0x51, B: 0xb5, A: 0xff}, // indigo
	{R: 0xcd, G: 0xdc, B: 0x39, A: 0xff}, // lime
}

// modules gives each module of a component a stable colour: the modules
// are sorted by name, so the same module has the same colour in the
// current and planned layouts and across re-plans.
type modules struct {
	names []string
	index map[string]int
}

func newModules(tensorNames []string) *modules {
	m := &modules{index: map[string]int{}}
	for _, n := range tensorNames {
		mod := moduleOf(n)
		if _, ok := m.index[mod]; !ok {
			m.index[mod] = 0
			m.names = append(m.names, mod)
		}
	}
	sort.Strings(m.names)
	for i, n := range m.names {
		m.index[n] = i
	}
	return m
}

// of returns the module index of a tensor, adding its module if new.
func (m *modules) of(tensor string) int {
	mod := moduleOf(tensor)
	i, ok := m.index[mod]
	if !ok {
		i = len(m.names)
		m.index[mod] = i
		m.names = append(m.names, mod)
	}
	return i
}

// color is the colour of module i.
func (m *modules) color(i int) color.Color {
	c := modulePalette[i%len(modulePalette)]
	if i >= len(modulePalette) {
		c.A = 0x99
	}
	return c
}

// legend shows a swatch and the name of every module, then the mark of
// the shard limit: a line in the text colour, unlike any module's, and the
// limit, said to be off the scale when the bars are drawn against a
// smaller size (offScale).
func (m *modules) legend(limit string, offScale bool) fyne.CanvasObject {
	items := make([]fyne.CanvasObject, 0, len(m.names)+1)
	var cell fyne.Size
	for i, n := range m.names {
		sw := canvas.NewRectangle(m.color(i))
		sw.SetMinSize(fyne.NewSquareSize(theme.IconInlineSize()))
		sw.CornerRadius = 2
		l := widget.NewLabel(n)
		l.SizeName = theme.SizeNameCaptionText
		items = append(items, container.NewHBox(container.NewCenter(sw), l))
		cell = cell.Max(items[len(items)-1].MinSize())
	}
	if limit != "" {
		text := "limit " + limit
		if offScale {
			text += " (past the end)"
		}
		l := widget.NewLabel(text)
		l.SizeName = theme.SizeNameCaptionText
		items = append(items, container.NewHBox(newLimitSwatch(offScale), l))
		cell = cell.Max(items[len(items)-1].MinSize())
	}
	return container.NewGridWrap(cell, items...)
}

// limitSwatch draws the limit's mark for the legend: the line a bar shows
// at the limit, or the break a bar shows at its end when the limit is past
// it.
type limitSwatch struct {
	widget.BaseWidget
	offScale bool
}

func newLimitSwatch(offScale bool) *limitSwatch {
	s := &limitSwatch{offScale: offScale}
	s.ExtendBaseWidget(s)
	return s
}

// CreateRenderer implements fyne.Widget.
func (s *limitSwatch) CreateRenderer() fyne.WidgetRenderer {
	r := &limitSwatchRenderer{s: s, lines: []*canvas.Line{canvas.NewLine(color.Transparent)}}
	if s.offScale {
		r.lines = append(r.lines, canvas.NewLine(color.Transparent))
	}
	for _, l := range r.lines {
		l.StrokeWidth = 2
		r.objects = append(r.objects, l)
	}
	r.Refresh()
	return r
}

type limitSwatchRenderer struct {
	s       *limitSwatch
	lines   []*canvas.Line
	objects []fyne.CanvasObject
}

func (r *limitSwatchRenderer) Destroy()                     {}
func (r *limitSwatchRenderer) Objects() []fyne.CanvasObject { return r.objects }
func (r *limitSwatchRenderer) MinSize() fyne.Size           { return fyne.NewSquareSize(theme.IconInlineSize()) }

func (r *limitSwatchRenderer) Layout(size fyne.Size) {
	x, h := size.Width/2, size.Height
	if !r.s.offScale {
		r.lines[0].Position1, r.lines[0].Position2 = fyne.NewPos(x, 0), fyne.NewPos(x, h)
		return
	}
	for i, l := range r.lines {
		dx := float32(i*5) - 2.5
		l.Position1, l.Position2 = fyne.NewPos(x+dx-2, h*0.8), fyne.NewPos(x+dx+2, h*0.2)
	}
}

func (r *limitSwatchRenderer) Refresh() {
	for _, l := range r.lines {
		l.StrokeColor = theme.Color(theme.ColorNameForeground)
		l.Refresh()
	}
	r.Layout(r.s.Size())
}

// The least widths of the outlines of a tensor under the pointer and of
// the tensor selected in the tree, so that a tensor of a few bytes shows.
const (
	highlightMinWidth = 3
	selectionMinWidth = 8
)

// minBlockWidth is the width under which a tensor block joins its
// neighbours of the same module: thousands of sub-pixel rectangles would
// cost drawing time and show nothing.
const minBlockWidth = 2

// shardBar draws one weights file: a track whose full width stands for
// scale bytes, the file's tensors as blocks coloured by module in the order
// of their bytes, and a mark at the shard limit: a line across the track
// when the limit is within it, a break at its end when the limit is past
// it. Hovering over a block calls onHover with the tensor under the pointer
// and where the pointer is on the canvas, leaving the bar calls it with nil;
// tapping a block calls onTap. A bar is built for one plan and never
// changes: a new plan makes new bars, so the rectangles are created once
// and Layout only places them.
type shardBar struct {
	widget.BaseWidget
	file    pipeline.PlannedFile
	scale   int64 // bytes the full width stands for
	limit   int64 // the shard limit
	mods    *modules
	mod     []int // module index of each tensor
	onHover func(t *pipeline.PlannedTensor, at fyne.Position)
	onTap   func(t *pipeline.PlannedTensor)

	picked    int // the tensor under the pointer, -1 for none
	selected  int // the tensor selected in the tree, -1 for none
	highlight *canvas.Rectangle
	selection *canvas.Rectangle
}

func newShardBar(file pipeline.PlannedFile, scale, limit int64, mods *modules) *shardBar {
	b := &shardBar{file: file, scale: max(scale, 1), limit: limit, mods: mods, picked: -1, selected: -1}
	b.mod = make([]int, len(file.Tensors))
	for i, t := range file.Tensors {
		b.mod[i] = mods.of(t.Name)
	}
	b.ExtendBaseWidget(b)
	return b
}

// offScale reports a limit past the end of the track.
func (b *shardBar) offScale() bool { return b.limit > b.scale }

// selectTensor marks the tensor called name, or none when the bar has no
// such tensor; it reports whether the bar has it.
func (b *shardBar) selectTensor(name string) bool {
	i := slices.IndexFunc(b.file.Tensors, func(t pipeline.PlannedTensor) bool { return t.Name == name })
	if i != b.selected {
		b.selected = i
		b.placeMark(b.selection, b.selected, selectionMinWidth)
	}
	return i >= 0
}

// CreateRenderer implements fyne.Widget.
func (b *shardBar) CreateRenderer() fyne.WidgetRenderer {
	r := &shardBarRenderer{bar: b, track: canvas.NewRectangle(color.Transparent), mark: canvas.NewLine(color.Transparent)}
	r.track.CornerRadius = 2
	r.blocks = make([]*canvas.Rectangle, len(b.file.Tensors))
	r.objects = append(r.objects, r.track)
	for i := range r.blocks {
		r.blocks[i] = canvas.NewRectangle(color.Transparent)
		r.blocks[i].Hide()
		r.objects = append(r.objects, r.blocks[i])
	}
	b.highlight = canvas.NewRectangle(color.Transparent)
	b.highlight.StrokeWidth = 1.5
	b.highlight.Hide()
	b.selection = canvas.NewRectangle(color.Transparent)
	b.selection.StrokeWidth = 3
	b.selection.Hide()
	r.mark.StrokeWidth = 2
	r.objects = append(r.objects, r.mark)
	for i := range r.breaks {
		r.breaks[i] = canvas.NewLine(color.Transparent)
		r.breaks[i].StrokeWidth = 2
		r.objects = append(r.objects, r.breaks[i])
	}
	r.objects = append(r.objects, b.selection, b.highlight)
	r.applyTheme()
	return r
}

// x converts a byte offset of the file to a position in a bar w wide.
func (b *shardBar) x(off int64, w float32) float32 {
	return float32(float64(off) / float64(b.scale) * float64(w))
}

// tensorAt returns the tensor whose bytes are under position x, or -1.
func (b *shardBar) tensorAt(x float32) int {
	w := b.Size().Width
	if w <= 0 || len(b.file.Tensors) == 0 {
		return -1
	}
	off := int64(float64(x) / float64(w) * float64(b.scale))
	ts := b.file.Tensors
	i := sort.Search(len(ts), func(i int) bool { return ts[i].Offset+ts[i].Bytes > off })
	switch {
	case i == len(ts):
		// Past the last byte: the last tensor when the pointer is still
		// within a pixel of it (it may be narrower than one).
		if last := ts[len(ts)-1]; x-b.x(last.Offset+last.Bytes, w) <= 1 {
			return len(ts) - 1
		}
		return -1
	case off < ts[i].Offset && i == 0:
		return 0 // the header: name the first tensor
	}
	return i
}

// hover makes the tensor under the pointer the picked one and names it
// at the pointer.
func (b *shardBar) hover(e *fyne.PointEvent) int {
	i := b.tensorAt(e.Position.X)
	if i != b.picked {
		b.picked = i
		b.placeMark(b.highlight, b.picked, highlightMinWidth)
	}
	if b.onHover != nil {
		if i >= 0 {
			b.onHover(&b.file.Tensors[i], e.AbsolutePosition)
		} else {
			b.onHover(nil, e.AbsolutePosition)
		}
	}
	return i
}

// placeMark outlines tensor i with mark, at least minWidth wide, or hides
// it for -1.
func (b *shardBar) placeMark(mark *canvas.Rectangle, i int, minWidth float32) {
	if mark == nil {
		return
	}
	if i < 0 {
		mark.Hide()
		return
	}
	t := b.file.Tensors[i]
	w := b.Size().Width
	x0, x1 := b.x(t.Offset, w), b.x(t.Offset+t.Bytes, w)
	if x1-x0 < minWidth { // keep a sub-pixel tensor visible
		c := (x0 + x1) / 2
		x0, x1 = c-minWidth/2, c+minWidth/2
	}
	mark.Move(fyne.NewPos(x0, 0))
	mark.Resize(fyne.NewSize(x1-x0, b.Size().Height))
	mark.Show()
	mark.Refresh()
}

// Tapped names the tensor under the pointer (touch screens have no hover)
// and selects it.
func (b *shardBar) Tapped(e *fyne.PointEvent) {
	if i := b.hover(e); i >= 0 && b.onTap != nil {
		b.onTap(&b.file.Tensors[i])
	}
}

// MouseIn implements desktop.Hoverable.
func (b *shardBar) MouseIn(e *desktop.MouseEvent) { b.hover(&e.PointEvent) }

// MouseMoved implements desktop.Hoverable.
func (b *shardBar) MouseMoved(e *desktop.MouseEvent) { b.hover(&e.PointEvent) }

// MouseOut implements desktop.Hoverable.
func (b *shardBar) MouseOut() {
	b.picked = -1
	b.placeMark(b.highlight, -1, 0)
	if b.onHover != nil {
		b.onHover(nil, fyne.Position{})
	}
}

type shardBarRenderer struct {
	bar     *shardBar
	track   *canvas.Rectangle
	blocks  []*canvas.Rectangle
	mark    *canvas.Line    // the limit, within the track
	breaks  [2]*canvas.Line // the limit, past the track's end
	objects []fyne.CanvasObject
}

func (r *shardBarRenderer) Destroy() {}

func (r *shardBarRenderer) Objects() []fyne.CanvasObject { return r.objects }

func (r *shardBarRenderer) MinSize() fyne.Size {
	return fyne.NewSize(theme.IconInlineSize()*4, theme.IconInlineSize())
}

// Layout places the blocks: each tensor from its first to its last byte,
// with a one-pixel gap after it when it is wide enough to show one, and
// runs of narrow tensors of the same module merged into one block.
func (r *shardBarRenderer) Layout(size fyne.Size) {
	b := r.bar
	r.track.Resize(size)
	w, h := size.Width, size.Height
	used := 0
	var start, end float32
	mod := -1
	flush := func() {
		if mod < 0 {
			return
		}
		rect := r.blocks[used]
		width := end - start
		if width >= 3 {
			width-- // the gap that shows where a tensor ends
		}
		rect.FillColor = b.mods.color(mod)
		rect.Move(fyne.NewPos(start, 0))
		rect.Resize(fyne.NewSize(max(width, 1), h))
		rect.Show()
		used++
	}
	for i, t := range b.file.Tensors {
		x0, x1 := b.x(t.Offset, w), b.x(t.Offset+t.Bytes, w)
		if mod == b.mod[i] && (end-start < minBlockWidth || x1-x0 < minBlockWidth) {
			end = x1
			continue
		}
		flush()
		start, end, mod = x0, x1, b.mod[i]
	}
	flush()
	for _, rect := range r.blocks[used:] {
		rect.Hide()
	}
	switch {
	case b.limit > 0 && b.limit <= b.scale:
		x := min(b.x(b.limit, w), w-1)
		r.mark.Position1 = fyne.NewPos(x, -3)
		r.mark.Position2 = fyne.NewPos(x, h+3)
		r.mark.Show()
		r.hideBreaks()
	case b.offScale():
		r.mark.Hide()
		// Two slanted strokes at the end: the track goes on, to the limit.
		for i, l := range r.breaks {
			x := w - 10 + float32(i*5)
			l.Position1, l.Position2 = fyne.NewPos(x-2, h+2), fyne.NewPos(x+2, -2)
			l.Show()
		}
	default:
		r.mark.Hide()
		r.hideBreaks()
	}
	b.placeMark(b.selection, b.selected, selectionMinWidth)
	b.placeMark(b.highlight, b.picked, highlightMinWidth)
}

func (r *shardBarRenderer) hideBreaks() {
	for _, l := range r.breaks {
		l.Hide()
	}
}

// applyTheme colours the track, the marks and the outlines. The limit's
// marks take the text colour, which no module has.
func (r *shardBarRenderer) applyTheme() {
	r.track.FillColor = theme.Color(theme.ColorNameInputBackground)
	fg := theme.Color(theme.ColorNameForeground)
	r.mark.StrokeColor = fg
	for _, l := range r.breaks {
		l.StrokeColor = fg
	}
	r.bar.highlight.StrokeColor = fg
	r.bar.selection.StrokeColor = fg
}

// Refresh re-reads the theme's colours.
func (r *shardBarRenderer) Refresh() {
	r.applyTheme()
	r.Layout(r.bar.Size())
	for _, o := range r.objects {
		if o.Visible() {
			canvas.Refresh(o)
		}
	}
}

// describeTensor names a tensor under the pointer: its name, then its
// dtype, shape, size and file.
func describeTensor(component, file string, t *pipeline.PlannedTensor) []string {
	dims := make([]string, len(t.Shape))
	for i, d := range t.Shape {
		dims[i] = strconv.FormatInt(d, 10)
	}
	where := file
	if component != "" {
		where = component + "/" + file
	}
	return []string{t.Name, fmt.Sprintf("%s [%s]  ·  %s  ·  in %s", t.DType, strings.Join(dims, ", "), tensors.FormatSize(t.Bytes), where)}
}

// tensorNames lists the tensor names of sets, each once.
func tensorNames(sets ...*pipeline.SetPlan) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range sets {
		if s == nil {
			continue
		}
		for _, f := range s.Files {
			for _, t := range f.Tensors {
				if !seen[t.Name] {
					seen[t.Name] = true
					out = append(out, t.Name)
				}
			}
		}
	}
	return slices.Clip(out)
}

var (
	_ fyne.Tappable     = (*shardBar)(nil)
	_ desktop.Hoverable = (*shardBar)(nil)
)
