package gui

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"modelpub/core/pipeline"
	"modelpub/core/tensors"
)

// maxShownFiles caps the bars drawn for one weight set: a tiny limit can
// plan a shard per tensor, and a thousand bars show nothing more than
// sixty-four do.
const maxShownFiles = 64

// quickSizes are the shard limits offered as buttons.
var quickSizes = []string{"2GB", "5GB", "10GB"}

// shardsPanel shows, per model component, the weights files the folder has
// and those Save would write at the chosen shard limit, re-planned as the
// limit or the variant changes.
type shardsPanel struct {
	e *env
	p *pipeline.Pipeline

	size    *widget.Entry
	quick   []*widget.Button // quickSizes, then Default
	sizeErr *widget.Label
	summary *widget.Label
	info    *widget.Label
	maps    *fyne.Container
	scroll  *container.Scroll
	tip     *tooltip
	content *fyne.Container

	// onTensor selects a tensor of the map in the component tree: the
	// component, the variant of the weight set, the file when it is one
	// the folder has ("" for a planned one) and the tensor's name.
	onTensor func(component, variant, file, tensor string)
	// selected is the tensor selected in the tree: its component and
	// name; its blocks are outlined in every plan shown.
	selComponent, selTensor string

	gen   int // counts plans asked for; a plan that comes back late is dropped
	plan  *pipeline.SavePlan
	shown []componentMap
}

// componentMap is what the panel shows for one component: a bar per file.
type componentMap struct {
	name             string
	current, planned []*shardBar
	scale            int64 // the bytes a bar's width stands for
}

func newShardsPanel(e *env) *shardsPanel {
	s := &shardsPanel{e: e}
	s.size = widget.NewEntry()
	s.size.SetPlaceHolder("Default")
	s.size.SetText(formatShardSize(e.choices.MaxShardSize))
	s.size.OnChanged = s.sizeTyped
	for _, q := range quickSizes {
		s.quick = append(s.quick, widget.NewButton(q, func() { s.size.SetText(q) }))
	}
	s.quick = append(s.quick, widget.NewButton("Default", func() { s.size.SetText("") }))
	s.sizeErr = widget.NewLabel("")
	s.sizeErr.Importance = widget.DangerImportance
	s.sizeErr.Wrapping = fyne.TextWrapWord
	s.sizeErr.Hide()
	s.summary = widget.NewLabel("")
	s.summary.Wrapping = fyne.TextWrapWord
	s.info = widget.NewLabel("")
	s.info.Truncation = fyne.TextTruncateEllipsis
	s.maps = container.NewVBox()

	buttons := container.NewHBox()
	for _, b := range s.quick {
		buttons.Add(b)
	}
	row := container.NewBorder(nil, nil, widget.NewLabel("Max shard size"), buttons, s.size)
	top := container.NewVBox(row, s.sizeErr, s.summary, s.info, widget.NewSeparator())
	s.scroll = container.NewVScroll(s.maps)
	s.tip = newTooltip()
	s.content = container.NewStack(container.NewBorder(top, nil, nil, nil, s.scroll), s.tip.layer)
	e.choices.onChange(s.choicesChanged)
	s.replan()
	return s
}

// Content implements panel.
func (s *shardsPanel) Content() fyne.CanvasObject { return s.content }

// SetPipeline implements panel.
func (s *shardsPanel) SetPipeline(p *pipeline.Pipeline) {
	s.p = p
	s.replan()
}

// sizeTyped applies a limit typed or chosen with a button: an empty entry
// is each library's default.
func (s *shardsPanel) sizeTyped(text string) {
	size, err := parseShardSize(text)
	if err != nil {
		s.sizeErr.SetText(err.Error())
		if !s.sizeErr.Visible() {
			s.sizeErr.Show()
			s.content.Refresh() // lay out the top again, a line taller
		}
		return
	}
	if s.sizeErr.Visible() {
		s.sizeErr.Hide()
		s.content.Refresh()
	}
	s.e.choices.set(size, s.e.choices.Variant)
}

// choicesChanged follows a limit or variant chosen here or elsewhere.
func (s *shardsPanel) choicesChanged() {
	if size, err := parseShardSize(s.size.Text); err != nil || size != s.e.choices.MaxShardSize {
		s.size.SetText(formatShardSize(s.e.choices.MaxShardSize))
	}
	s.replan()
}

// replan plans the current choices off the UI goroutine (Plan reads a
// header per weight set) and shows the result unless a newer plan was
// asked for meanwhile.
func (s *shardsPanel) replan() {
	s.gen++
	gen, p := s.gen, s.p
	opts := pipeline.SaveOptions{MaxShardSize: s.e.choices.MaxShardSize, Variant: s.e.choices.Variant}
	if p == nil {
		s.show(nil, nil, nil)
		return
	}
	s.e.spawn(func() {
		plan, err := pipeline.Plan(p, opts)
		s.e.do(func() {
			if gen == s.gen {
				s.show(p, plan, err)
			}
		})
	})
}

// show replaces the map with the one of plan.
func (s *shardsPanel) show(p *pipeline.Pipeline, plan *pipeline.SavePlan, err error) {
	s.plan, s.shown = plan, nil
	s.maps.RemoveAll()
	s.tip.hide()
	s.info.SetText("")
	s.summary.Importance = widget.MediumImportance
	switch {
	case p == nil:
		s.summary.SetText("Open a folder to see how its weights are sharded.")
		return
	case err != nil:
		s.summary.Importance = widget.DangerImportance
		s.summary.SetText("Cannot plan the shards: " + err.Error())
		return
	case len(plan.Components) == 0:
		s.summary.SetText("This folder has no model weights to shard.")
		return
	}
	files := 0
	for _, cp := range plan.Components {
		for _, sp := range cp.Sets {
			files += len(sp.Files)
		}
	}
	s.summary.SetText(fmt.Sprintf("Save writes %s of weights in %s, and copies %s of configs and other files unchanged.",
		tensors.FormatSize(plan.Bytes), countNoun(files, "file"), tensors.FormatSize(plan.CopyBytes)))
	s.info.SetText("Hover over a block to name its tensor; click it to select the tensor in the tree.")
	for i := range plan.Components {
		cp := &plan.Components[i]
		if c := p.Component(cp.Name); c != nil {
			s.maps.Add(s.section(c, cp))
		}
	}
	s.maps.Refresh()
	if s.selTensor != "" {
		s.showTensor(s.selComponent, s.selTensor) // a plan that came after the selection: scroll to it
	}
}

// section is the map of one component: its current layout beside the
// planned one, on the same scale, and the legend of module colours.
func (s *shardsPanel) section(c *pipeline.Component, cp *pipeline.ComponentPlan) fyne.CanvasObject {
	var current, planned []*pipeline.SetPlan
	for _, v := range pipeline.CurrentVariants(c) {
		if l := pipeline.CurrentLayout(c, v); l != nil {
			current = append(current, l)
		}
	}
	for i := range cp.Sets {
		planned = append(planned, &cp.Sets[i])
	}
	mods := newModules(tensorNames(append(current, planned...)...))
	var largest int64
	for _, sp := range append(current, planned...) {
		for _, f := range sp.Files {
			largest = max(largest, f.Size)
		}
	}
	scale := mapScale(largest, cp.MaxShardSize)
	m := componentMap{name: cp.Name, scale: scale}
	title := componentTitle(cp.Name)
	if c.Class != "" {
		title += "  ·  " + c.Class
	}
	limit := "limit " + formatLimit(cp.MaxShardSize)
	if s.e.choices.MaxShardSize == 0 {
		limit += fmt.Sprintf(" (the %s default)", c.Library)
	}
	head := widget.NewLabelWithStyle(title+"  ·  "+limit, fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	head.Wrapping = fyne.TextWrapWord
	grid := container.NewGridWithColumns(2,
		s.column("Current", cp.Name, current, scale, cp.MaxShardSize, mods, &m.current),
		s.column("Planned", cp.Name, planned, scale, cp.MaxShardSize, mods, &m.planned))
	s.shown = append(s.shown, m)
	legend := mods.legend(formatLimit(cp.MaxShardSize), cp.MaxShardSize > scale)
	return container.NewVBox(head, legend, grid, widget.NewSeparator())
}

// mapScale is the size a bar's full width stands for, given the largest
// file of a component and its shard limit: the limit when the largest file
// fills at least half of it, so the limit shows as a line at the end;
// otherwise (small files under the 10 GB default) a little more than the
// largest file, so every bar can be read, with the limit past the end.
func mapScale(largest, limit int64) int64 {
	switch {
	case largest <= 0:
		return max(limit, 1)
	case limit <= 0 || limit <= largest:
		return largest
	case largest >= limit/2:
		return limit
	}
	return largest + largest/8
}

// formatLimit writes a shard limit in one unit, as the limits are typed:
// "10 GB", "5 GB", "1.5 GB", "500 MB"; other sizes as formatSize.
func formatLimit(n int64) string {
	for _, u := range []struct {
		unit string
		size int64
	}{{"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}} {
		if n >= u.size && n%(u.size/10) == 0 {
			return strconv.FormatFloat(float64(n)/float64(u.size), 'f', -1, 64) + " " + u.unit
		}
	}
	return tensors.FormatSize(n)
}

// column lists the files of sets, a bar each.
func (s *shardsPanel) column(title, component string, sets []*pipeline.SetPlan, scale, limit int64, mods *modules, bars *[]*shardBar) fyne.CanvasObject {
	files, bytes := 0, int64(0)
	for _, sp := range sets {
		files += len(sp.Files)
		bytes += sp.Bytes
	}
	box := container.NewVBox(widget.NewLabelWithStyle(fmt.Sprintf("%s: %s in %s", title, tensors.FormatSize(bytes), countNoun(files, "file")),
		fyne.TextAlignLeading, fyne.TextStyle{Italic: true}))
	if len(sets) == 0 {
		box.Add(smallLabel("no weights"))
	}
	for _, sp := range sets {
		if sp.Variant != "" {
			what := sp.Variant + " variant"
			if sp.To != 0 {
				what += ", converted to " + sp.To.String()
			}
			box.Add(smallLabel(what))
		}
		for i, f := range sp.Files {
			if i == maxShownFiles {
				box.Add(smallLabel(fmt.Sprintf("… and %s more", countNoun(len(sp.Files)-i, "file"))))
				break
			}
			name := smallLabel(f.Name + "  ·  " + tensors.FormatSize(f.Size))
			name.Truncation = fyne.TextTruncateEllipsis
			bar := newShardBar(f, scale, limit, mods)
			bar.onHover = func(t *pipeline.PlannedTensor, at fyne.Position) {
				if t == nil {
					s.tip.hide()
					return
				}
				s.tip.show(describeTensor(component, f.Name, t), at)
			}
			file, variant := "", sp.Variant
			if title == "Current" {
				file = f.Name
			}
			bar.onTap = func(t *pipeline.PlannedTensor) {
				if s.onTensor != nil {
					s.onTensor(component, variant, file, t.Name)
				}
			}
			if component == s.selComponent {
				bar.selectTensor(s.selTensor)
			}
			*bars = append(*bars, bar)
			box.Add(name)
			box.Add(bar)
		}
		if sp.Index != "" {
			index := smallLabel("index " + sp.Index + "  ·  " + tensors.FormatSize(sp.IndexSize))
			index.Truncation = fyne.TextTruncateEllipsis
			box.Add(index)
		}
	}
	return box
}

// smallLabel is a label in the caption text size.
func smallLabel(text string) *widget.Label {
	l := widget.NewLabel(text)
	l.SizeName = theme.SizeNameCaptionText
	return l
}

// componentTitle names a component; a single-model folder's is "".
func componentTitle(name string) string {
	if name == "" {
		return "model"
	}
	return name
}

func countNoun(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return groupDigits(int64(n)) + " " + what + "s"
}

// parseShardSize reads the limit entry: empty is 0, each library's
// default; anything else as tensors.ParseSize.
func parseShardSize(text string) (int64, error) {
	if strings.TrimSpace(text) == "" {
		return 0, nil
	}
	return tensors.ParseSize(text)
}

// formatShardSize writes a limit so parseShardSize reads it back exactly.
func formatShardSize(n int64) string {
	switch {
	case n == 0:
		return ""
	case n%1_000_000_000 == 0:
		return strconv.FormatInt(n/1_000_000_000, 10) + "GB"
	case n%1_000_000 == 0:
		return strconv.FormatInt(n/1_000_000, 10) + "MB"
	case n%1_000 == 0:
		return strconv.FormatInt(n/1_000, 10) + "KB"
	}
	return strconv.FormatInt(n, 10)
}

// showTensor outlines the blocks of the tensor called name of component
// in the map, and scrolls the map to the first bar that has it; "" for the
// name outlines none.
func (s *shardsPanel) showTensor(component, name string) {
	s.selComponent, s.selTensor = component, name
	var first *shardBar
	for _, m := range s.shown {
		for _, b := range slices.Concat(m.current, m.planned) {
			want := ""
			if m.name == component {
				want = name
			}
			if b.selectTensor(want) && first == nil && want != "" {
				first = b
			}
		}
	}
	if first != nil {
		s.scrollTo(first)
	}
}

// scrollTo scrolls the map until bar is in sight.
func (s *shardsPanel) scrollTo(bar *shardBar) {
	at, ok := positionIn(s.maps, bar)
	if !ok {
		return
	}
	// A map just built is laid out, but the scroll has not yet taken its
	// new height, to which it clamps the offset.
	if min := s.maps.MinSize(); s.maps.Size().Height < min.Height {
		s.maps.Resize(fyne.NewSize(max(s.scroll.Size().Width, min.Width), min.Height))
	}
	view := s.scroll.Size().Height
	if at.Y >= s.scroll.Offset.Y && at.Y+bar.Size().Height <= s.scroll.Offset.Y+view {
		return
	}
	s.scroll.ScrollToOffset(fyne.NewPos(0, max(at.Y-view/3, 0)))
}

// positionIn is where target is inside root, found through the containers
// between them (a driver knows of new objects only once it has drawn them).
func positionIn(root fyne.CanvasObject, target fyne.CanvasObject) (fyne.Position, bool) {
	if root == target {
		return fyne.Position{}, true
	}
	c, ok := root.(*fyne.Container)
	if !ok {
		return fyne.Position{}, false
	}
	for _, o := range c.Objects {
		if p, ok := positionIn(o, target); ok {
			return o.Position().Add(p), true
		}
	}
	return fyne.Position{}, false
}

var _ panel = (*shardsPanel)(nil)
