package gui

import (
	"math"
	"path"
	"strconv"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"modelpub/core/pipeline"
	"modelpub/core/tensors"
)

// Node ids of the component tree. They are plain strings, cheap to build and
// stable for a given pipeline, so the tree can recycle its rows freely:
//
//	""              the tree's invisible root
//	"p"             the pipeline
//	"c/NAME"        a component ("c/" for a single-model folder)
//	"f/PATH"        a file of a component, PATH relative to the pipeline folder
//	"t/PATH/I"      tensor I (an index into the weight set's Tensors) of file PATH
const (
	pipelineNodeID  = "p"
	componentPrefix = "c/"
	filePrefix      = "f/"
	tensorPrefix    = "t/"
)

// componentID is the node id of component name.
func componentID(name string) string { return componentPrefix + name }

// fileID is the node id of a file, its path relative to the pipeline folder.
func fileID(rel string) string { return filePrefix + rel }

// tensorID is the node id of tensor i of the file with path rel.
func tensorID(rel string, i int) string { return tensorPrefix + rel + "/" + strconv.Itoa(i) }

// treeModel indexes a pipeline for the tree: every lookup by node id is a
// map access, built once per pipeline in one pass over its tensors. Tensor
// ids are only made when a file's branch is first opened.
type treeModel struct {
	p        *pipeline.Pipeline
	children map[string][]string // the root's, the pipeline's and each component's children
	comps    map[string]*pipeline.Component
	files    map[string]*fileNode
	// tensorIDs caches each opened file's children.
	tensorIDs map[string][]string
	// problems are the components Save and Publish cannot read, by node id.
	problems map[string]folderProblem
}

// fileNode is one file of a component.
type fileNode struct {
	comp *pipeline.Component
	file pipeline.File
	name string // bare name inside the component folder
	// set is the weight set the file holds tensors of, or indexes; nil for
	// any other file.
	set     *pipeline.WeightSet
	isIndex bool
	// tensors are indexes into set.Tensors, in file order.
	tensors []int
	bytes   int64            // tensor data bytes in this file
	dtypes  map[string]int64 // of those, bytes per dtype

	// Safetensors __metadata__, read on first selection.
	metaLoading bool
	metaLoaded  bool
	meta        tensors.Metadata
	metaErr     error
}

// newTreeModel indexes p; nil gives an empty tree.
func newTreeModel(p *pipeline.Pipeline) *treeModel {
	m := &treeModel{p: p, children: map[string][]string{}, comps: map[string]*pipeline.Component{},
		files: map[string]*fileNode{}, tensorIDs: map[string][]string{}, problems: map[string]folderProblem{}}
	if p == nil {
		return m
	}
	for _, fp := range folderProblems(p) {
		m.problems[componentID(fp.component)] = fp
	}
	m.children[""] = []string{pipelineNodeID}
	for _, c := range p.Components {
		cid := componentID(c.Name)
		m.children[pipelineNodeID] = append(m.children[pipelineNodeID], cid)
		m.comps[cid] = c
		byName := map[string]*fileNode{}
		for _, f := range c.Files {
			n := &fileNode{comp: c, file: f, name: path.Base(f.Path)}
			if strings.HasSuffix(f.Path, "/") {
				n.name = path.Base(strings.TrimSuffix(f.Path, "/")) + "/"
			}
			fid := fileID(f.Path)
			m.files[fid] = n
			m.children[cid] = append(m.children[cid], fid)
			byName[n.name] = n
		}
		for _, ws := range c.Weights {
			if n := byName[ws.Index]; ws.Index != "" && n != nil {
				n.set, n.isIndex = ws, true
			}
			for _, name := range ws.Files {
				if n := byName[name]; n != nil {
					n.set = ws
				}
			}
			for i, t := range ws.Tensors {
				n := byName[t.File]
				if n == nil || n.set != ws {
					continue
				}
				n.tensors = append(n.tensors, i)
				n.bytes += t.Size()
				if n.dtypes == nil {
					n.dtypes = map[string]int64{}
				}
				n.dtypes[t.DType.String()] += t.Size()
			}
		}
	}
	return m
}

// childIDs lists a node's children.
func (m *treeModel) childIDs(id string) []string {
	if n := m.files[id]; n != nil && strings.HasPrefix(id, filePrefix) {
		if ids, ok := m.tensorIDs[id]; ok {
			return ids
		}
		ids := make([]string, len(n.tensors))
		rel := strings.TrimPrefix(id, filePrefix)
		for k, i := range n.tensors {
			ids[k] = tensorID(rel, i)
		}
		m.tensorIDs[id] = ids
		return ids
	}
	return m.children[id]
}

// isBranch reports a node that has, or may have, children.
func (m *treeModel) isBranch(id string) bool {
	switch {
	case id == "" || id == pipelineNodeID:
		return true
	case strings.HasPrefix(id, componentPrefix):
		return len(m.children[id]) > 0
	case strings.HasPrefix(id, filePrefix):
		n := m.files[id]
		return n != nil && len(n.tensors) > 0
	}
	return false
}

// tensor finds a tensor node.
func (m *treeModel) tensor(id string) (*fileNode, pipeline.Tensor, bool) {
	rest, ok := strings.CutPrefix(id, tensorPrefix)
	slash := strings.LastIndexByte(rest, '/')
	if !ok || slash < 0 {
		return nil, pipeline.Tensor{}, false
	}
	n := m.files[fileID(rest[:slash])]
	i, err := strconv.Atoi(rest[slash+1:])
	if n == nil || n.set == nil || err != nil || i < 0 || i >= len(n.set.Tensors) {
		return nil, pipeline.Tensor{}, false
	}
	return n, n.set.Tensors[i], true
}

// tensorNode is the node id of the tensor called name of component: in
// file (a bare name in the component's folder) when given and found there;
// else in the component's weight set of variant, or its main weights. ""
// when there is no such tensor.
func (m *treeModel) tensorNode(component, variant, file, name string) string {
	if m.p == nil {
		return ""
	}
	c := m.p.Component(component)
	if c == nil {
		return ""
	}
	if file != "" {
		rel := path.Join(component, file)
		if n := m.files[fileID(rel)]; n != nil && n.set != nil {
			for _, i := range n.tensors {
				if n.set.Tensors[i].Name == name {
					return tensorID(rel, i)
				}
			}
		}
	}
	for _, ws := range []*pipeline.WeightSet{c.WeightSet(variant, ""), c.Main()} {
		if ws == nil {
			continue
		}
		for i, t := range ws.Tensors {
			if t.Name == name {
				return tensorID(path.Join(component, t.File), i)
			}
		}
	}
	return ""
}

// row is what a node's line in the tree shows.
func (m *treeModel) row(id string) (icon fyne.Resource, name, detail string) {
	switch {
	case id == pipelineNodeID:
		return theme.FolderOpenIcon(), path.Base(m.p.Dir), pipelineTitle(m.p) + " · " + formatSize(pipelineSize(m.p))
	case strings.HasPrefix(id, componentPrefix):
		c := m.comps[id]
		if c == nil {
			return theme.QuestionIcon(), id, ""
		}
		if fp, ok := m.problems[id]; ok {
			return theme.ErrorIcon(), componentLabel(m.p, c), problemSummary(c, fp)
		}
		return componentIcon(c), componentLabel(m.p, c), componentSummary(c)
	case strings.HasPrefix(id, filePrefix):
		n := m.files[id]
		if n == nil {
			return theme.QuestionIcon(), id, ""
		}
		return m.fileIcon(id, n), n.name, m.fileSummary(id, n)
	case strings.HasPrefix(id, tensorPrefix):
		_, t, ok := m.tensor(id)
		if !ok {
			return theme.QuestionIcon(), id, ""
		}
		return theme.GridIcon(), t.Name, t.DType.String() + " " + formatShape(t.Shape) + " · " + formatSize(t.Size())
	}
	return theme.QuestionIcon(), id, ""
}

func componentIcon(c *pipeline.Component) fyne.Resource {
	switch {
	case c.Null || c.Missing:
		return theme.ContentRemoveIcon()
	case c.Role == pipeline.RoleModel:
		return theme.StorageIcon()
	}
	return theme.FolderIcon()
}

// isProblem reports a node the tree marks as a problem: a component Save
// and Publish cannot read, or a weights file that cannot be read.
func (m *treeModel) isProblem(id string) bool {
	if _, ok := m.problems[id]; ok {
		return true
	}
	n := m.files[id]
	if n == nil || n.set == nil || n.set.Err == nil {
		return false
	}
	// The file the error names, or every file of the set when it names
	// none (a set whose index disagrees with its shards).
	text := n.set.Err.Error()
	if namesFile(text, n.name) {
		return true
	}
	names := append([]string{n.set.Index}, n.set.Files...)
	for _, f := range names {
		if f != "" && namesFile(text, f) {
			return false
		}
	}
	return true
}

// problemSummary is "UNet2DConditionModel · cannot be read · 3.44 GB".
func problemSummary(c *pipeline.Component, fp folderProblem) string {
	what := "cannot be read"
	if fp.err == nil {
		what = "no weights file"
	}
	return c.Class + " · " + what + " · " + formatSize(componentSize(c))
}

// componentSummary is "UNet2DConditionModel · 859.5M params · 3.44 GB".
func componentSummary(c *pipeline.Component) string {
	switch {
	case c.Null:
		return "not included ([null, null])"
	case c.Missing:
		return c.Class + " · folder missing"
	}
	parts := []string{c.Class}
	if ws := c.Main(); ws != nil && ws.Err == nil && ws.Parameters > 0 {
		parts = append(parts, pipeline.FormatParameters(ws.Parameters)+" params")
	}
	parts = append(parts, formatSize(componentSize(c)))
	return strings.Join(parts, " · ")
}

func (m *treeModel) fileIcon(id string, n *fileNode) fyne.Resource {
	switch {
	case m.isProblem(id):
		return theme.ErrorIcon()
	case strings.HasSuffix(n.file.Path, "/"):
		return theme.FolderIcon()
	case n.set != nil && !n.isIndex:
		return theme.FileApplicationIcon()
	case n.file.Kind == pipeline.KindConfig || n.file.Kind == pipeline.KindTokenizer || n.isIndex:
		return theme.FileTextIcon()
	}
	return theme.FileIcon()
}

// fileSummary is "3.44 GB · F32 100%" for weights, the size otherwise.
func (m *treeModel) fileSummary(id string, n *fileNode) string {
	s := formatSize(n.file.Size)
	switch {
	case n.file.LFSPointer:
		return s + " · Git LFS pointer"
	case n.isIndex:
		return s + " · index of " + plural(len(n.set.Files), "file", "files")
	case m.isProblem(id):
		return s + " · cannot be read"
	case n.set != nil && n.set.Err != nil:
		return s + " · its set cannot be read"
	case n.set != nil:
		return s + " · " + pipeline.DTypeMix(n.dtypes)
	}
	return s
}

// componentTree is the tree on the left of the window.
type componentTree struct {
	tree  *widget.Tree
	model *treeModel
	// onSelected is called with the selected node id, "" when none is.
	onSelected func(id string)
}

func newComponentTree() *componentTree {
	ct := &componentTree{model: newTreeModel(nil)}
	ct.tree = widget.NewTree(
		func(id widget.TreeNodeID) []widget.TreeNodeID { return ct.model.childIDs(id) },
		func(id widget.TreeNodeID) bool { return ct.model.isBranch(id) },
		func(bool) fyne.CanvasObject {
			name := widget.NewLabel("")
			name.Truncation = fyne.TextTruncateEllipsis
			return container.New(treeRowLayout{}, widget.NewIcon(nil), name, newFitText())
		},
		func(id widget.TreeNodeID, _ bool, o fyne.CanvasObject) {
			icon, name, detail := ct.model.row(id)
			objs := o.(*fyne.Container).Objects
			objs[0].(*widget.Icon).SetResource(icon)
			objs[1].(*widget.Label).SetText(name)
			colour := theme.ColorNamePlaceHolder
			if ct.model.isProblem(id) {
				colour = theme.ColorNameError
			}
			objs[2].(*fitText).set(detail, colour)
			o.Refresh() // a recycled row: lay it out again for its new texts
		},
	)
	ct.tree.OnSelected = func(id widget.TreeNodeID) {
		if ct.onSelected != nil {
			ct.onSelected(id)
		}
	}
	ct.tree.OnUnselected = func(widget.TreeNodeID) {
		if ct.onSelected != nil {
			ct.onSelected("")
		}
	}
	return ct
}

// setPipeline shows p with its components listed; nil empties the tree.
func (ct *componentTree) setPipeline(p *pipeline.Pipeline) {
	ct.tree.UnselectAll()
	ct.model = newTreeModel(p)
	ct.tree.CloseAllBranches()
	ct.tree.Refresh()
	if p != nil {
		ct.tree.OpenBranch(pipelineNodeID)
		ct.tree.ScrollToTop()
	}
}

// reveal opens the branches down to node id, opens id itself if it is a
// branch, selects it and scrolls to it. Unknown ids are ignored.
func (ct *componentTree) reveal(id string) {
	var path []string
	switch {
	case strings.HasPrefix(id, componentPrefix) && ct.model.comps[id] != nil:
	case strings.HasPrefix(id, filePrefix) && ct.model.files[id] != nil:
		path = append(path, componentID(ct.model.files[id].comp.Name))
	case strings.HasPrefix(id, tensorPrefix):
		n, _, ok := ct.model.tensor(id)
		if !ok {
			return
		}
		rest := strings.TrimPrefix(id, tensorPrefix)
		path = append(path, componentID(n.comp.Name), fileID(rest[:strings.LastIndexByte(rest, '/')]))
	case id == pipelineNodeID:
	default:
		return
	}
	for _, p := range append([]string{pipelineNodeID}, path...) {
		ct.tree.OpenBranch(p)
	}
	if ct.model.isBranch(id) {
		ct.tree.OpenBranch(id)
	}
	ct.tree.Select(id)
	ct.tree.ScrollTo(id)
}

// treeRowLayout lays a tree row out as an icon, the name and its details
// (a fitText) beside it. In a narrow column the details lose their last
// parts first (the size, the parameters), then the name and the class are
// cut with an ellipsis, the name never below a third of the row. The
// details pane shows everything whole.
type treeRowLayout struct{}

// textWidth is the width a label or secondary text needs to show s whole.
func textWidth(s string, style fyne.TextStyle) float32 {
	w := fyne.MeasureText(s, theme.TextSize(), style).Width
	return float32(math.Ceil(float64(w))) + 2*theme.InnerPadding() + 1
}

// MinSize implements fyne.Layout: an icon and a little text; the tree
// scrolls rather than grow.
func (treeRowLayout) MinSize(objs []fyne.CanvasObject) fyne.Size {
	icon, name := objs[0].MinSize(), objs[1].MinSize()
	return fyne.NewSize(icon.Width+theme.Padding()+name.Width, max(icon.Height, name.Height, objs[2].MinSize().Height))
}

// Layout implements fyne.Layout.
func (treeRowLayout) Layout(objs []fyne.CanvasObject, size fyne.Size) {
	icon := objs[0].MinSize()
	objs[0].Move(fyne.NewPos(0, (size.Height-icon.Height)/2))
	objs[0].Resize(icon)
	x := icon.Width + theme.Padding()
	avail := max(size.Width-x, 0)
	nameWidth := avail
	if l, ok := objs[1].(*widget.Label); ok {
		first := ""
		if f, ok := objs[2].(*fitText); ok {
			first, _, _ = strings.Cut(f.full, fitSeparator)
		}
		nameWidth = min(textWidth(l.Text, l.TextStyle), max(avail-textWidth(first, fyne.TextStyle{}), avail/3))
	}
	objs[1].Move(fyne.NewPos(x, 0))
	objs[1].Resize(fyne.NewSize(nameWidth, size.Height))
	x += nameWidth
	objs[2].Move(fyne.NewPos(x, (size.Height-objs[2].MinSize().Height)/2))
	objs[2].Resize(fyne.NewSize(max(size.Width-x, 0), objs[2].MinSize().Height))
}

// fitSeparator separates the parts of a row's details.
const fitSeparator = " · "

// fitText is a secondary text made of parts ("UNet2DConditionModel ·
// 859.5M params · 3.44 GB") that shows as many whole parts as its width
// holds, and cuts the first with an ellipsis only when even it does not
// fit.
type fitText struct {
	widget.RichText
	full string
}

func newFitText() *fitText {
	f := &fitText{}
	f.Scroll = fyne.ScrollNone // a zero RichText scrolls both ways, with a frame
	f.Segments = []widget.RichTextSegment{&widget.TextSegment{
		Style: widget.RichTextStyle{ColorName: theme.ColorNamePlaceHolder, Inline: true}}}
	f.Truncation = fyne.TextTruncateEllipsis
	f.ExtendBaseWidget(f)
	return f
}

// set shows text in colour.
func (f *fitText) set(text string, colour fyne.ThemeColorName) {
	seg := f.Segments[0].(*widget.TextSegment)
	if f.full == text && seg.Style.ColorName == colour {
		return
	}
	f.full = text
	seg.Style.ColorName = colour
	f.fit(f.Size().Width)
	f.Refresh()
}

// Resize implements fyne.Widget: the parts shown follow the width.
func (f *fitText) Resize(size fyne.Size) {
	if f.fit(size.Width) {
		f.Refresh()
	}
	f.RichText.Resize(size)
}

// fit chooses the parts shown in width; it reports a change.
func (f *fitText) fit(width float32) bool {
	text := f.full
	parts := strings.Split(f.full, fitSeparator)
	for n := len(parts) - 1; n > 0 && width > 0 && textWidth(text, fyne.TextStyle{}) > width; n-- {
		text = strings.Join(parts[:n], fitSeparator)
	}
	seg := f.Segments[0].(*widget.TextSegment)
	if seg.Text == text {
		return false
	}
	seg.Text = text
	return true
}

// rowsWidth is the width the tree needs to show the rows of the pipeline
// and its components whole: indentation, icon, name and details.
func (ct *componentTree) rowsWidth() float32 {
	if ct.model.p == nil {
		return 0
	}
	indent := theme.IconInlineSize() + theme.Padding() // a level, or the branch arrow
	var need float32
	measure := func(id string, depth int) {
		_, name, detail := ct.model.row(id)
		row := theme.IconInlineSize() + theme.Padding() + textWidth(name, fyne.TextStyle{}) + textWidth(detail, fyne.TextStyle{})
		need = max(need, float32(depth+1)*indent+row+4*theme.Padding())
	}
	measure(pipelineNodeID, 0)
	for _, id := range ct.model.childIDs(pipelineNodeID) {
		measure(id, 1)
	}
	return need
}
