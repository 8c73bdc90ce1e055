package gui

import (
	"fmt"
	"path/filepath"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"modelpub/core/pipeline"
	"modelpub/core/tensors"
)

// The details pane sits under the panel tabs and describes the node
// selected in the component tree.

// detailRow is one "key: value" line of the details pane.
type detailRow struct{ key, value string }

// detailSection is what the details pane shows for one node.
type detailSection struct {
	title string
	rows  []detailRow
}

// noSelection is shown while no node is selected.
var noSelection = detailSection{title: "Details",
	rows: []detailRow{{"", "Select the pipeline, a component, a file or a tensor in the tree to see its details here."}}}

// details describes node id.
func (m *treeModel) details(id string) detailSection {
	switch {
	case m.p == nil || id == "":
		return noSelection
	case id == pipelineNodeID:
		return m.pipelineDetails()
	case strings.HasPrefix(id, componentPrefix):
		if c := m.comps[id]; c != nil {
			return m.componentDetails(c)
		}
	case strings.HasPrefix(id, filePrefix):
		if n := m.files[id]; n != nil {
			return fileDetails(n)
		}
	case strings.HasPrefix(id, tensorPrefix):
		if n, t, ok := m.tensor(id); ok {
			return m.tensorDetails(n, t)
		}
	}
	return noSelection
}

func (m *treeModel) pipelineDetails() detailSection {
	p := m.p
	s := detailSection{title: filepath.Base(p.Dir)}
	s.add("Pipeline", pipelineTitle(p))
	if p.Index != nil {
		if p.Index.CustomModule != "" {
			s.add("Custom module", p.Index.CustomModule)
		}
		s.add("Diffusers version", orNone(p.Index.DiffusersVersion))
	}
	s.add("Folder", p.Dir)
	s.add("Components", fmt.Sprint(len(p.Components)))
	s.add("Size on disk", formatSize(pipelineSize(p)))
	var params int64
	for _, c := range p.Components {
		if ws := c.Main(); ws != nil {
			params += ws.Parameters
		}
	}
	s.add("Parameters", pipeline.FormatParameters(params)+" in the main weights")
	for _, f := range p.RootFiles {
		s.add("Root file", f.Path+" ("+formatSize(f.Size)+", "+string(f.Kind)+")")
	}
	for _, u := range p.Unlisted {
		s.add("Unlisted folder", u)
	}
	s.add("Warnings", fmt.Sprint(len(p.Warnings)))
	return s
}

func (m *treeModel) componentDetails(c *pipeline.Component) detailSection {
	s := detailSection{title: componentLabel(m.p, c)}
	switch {
	case c.Null:
		s.add("Class", "not included: model_index.json lists it as [null, null]")
		return s
	case c.Missing:
		s.add("Class", c.Library+"."+c.Class)
		s.add("Folder", "missing")
		return s
	}
	s.add("Class", orNone(c.Class))
	s.add("Library", orNone(c.Library))
	s.add("Role", string(c.Role))
	s.add("Files", plural(len(c.Files), "file", "files")+", "+formatSize(componentSize(c)))
	s.add("Variants", orNone(strings.Join(c.Variants(), ", ")))
	for _, ws := range c.Weights {
		label := weightSetLabel(ws)
		if ws.Err != nil {
			s.add(label, "cannot be read: "+ws.Err.Error())
			continue
		}
		s.add(label, fmt.Sprintf("%s · %s params · %s in %s", plural(len(ws.Tensors), "tensor", "tensors"),
			pipeline.FormatParameters(ws.Parameters), formatSize(ws.DataBytes), plural(len(ws.Files), "file", "files")))
		var parts []string
		for _, dt := range pipeline.DTypesBySize(ws.DTypeBytes) {
			parts = append(parts, dt+" "+formatSize(ws.DTypeBytes[dt]))
		}
		s.add(label+" dtypes", orNone(strings.Join(parts, ", ")))
	}
	return s
}

// weightSetLabel is "Main weights", "fp16 variant", "Main weights (.bin)".
func weightSetLabel(ws *pipeline.WeightSet) string {
	label := "Main weights"
	if ws.Variant != "" {
		label = ws.Variant + " variant"
	}
	if ws.Format != "safetensors" {
		label += " (." + ws.Format + ")"
	}
	return label
}

func fileDetails(n *fileNode) detailSection {
	s := detailSection{title: n.name}
	s.add("Path", n.file.Path)
	s.add("Size", fmt.Sprintf("%s (%d bytes)", formatSize(n.file.Size), n.file.Size))
	s.add("Kind", string(n.file.Kind))
	if n.file.LFSPointer {
		s.add("Git LFS", "this is a pointer, not the file: run \"git lfs pull\" in the folder")
	}
	if n.set == nil {
		return s
	}
	set := weightSetLabel(n.set)
	if n.isIndex {
		s.add("Index of", set+": "+strings.Join(n.set.Files, ", "))
		return s
	}
	if len(n.set.Files) > 1 {
		for i, f := range n.set.Files {
			if f == n.name {
				set += fmt.Sprintf(", shard %d of %d", i+1, len(n.set.Files))
			}
		}
	}
	s.add("Weight set", set)
	if n.set.Err != nil {
		s.add("Error", n.set.Err.Error())
		return s
	}
	s.add("Tensors", fmt.Sprint(len(n.tensors)))
	s.add("Tensor data", formatSize(n.bytes))
	s.add("DTypes", pipeline.DTypeMix(n.dtypes))
	if n.set.Format == "safetensors" {
		s.add("Metadata", fileMetadata(n))
	}
	return s
}

// fileMetadata is the __metadata__ of a safetensors file, once read.
func fileMetadata(n *fileNode) string {
	switch {
	case !n.metaLoaded:
		return "reading…"
	case n.metaErr != nil:
		return "cannot be read: " + n.metaErr.Error()
	case len(n.meta) == 0:
		return "none"
	}
	parts := make([]string, len(n.meta))
	for i, e := range n.meta {
		parts[i] = e.Key + " = " + e.Value
	}
	return strings.Join(parts, "\n")
}

func (m *treeModel) tensorDetails(n *fileNode, t pipeline.Tensor) detailSection {
	s := detailSection{title: t.Name}
	s.add("DType", t.DType.String())
	s.add("Shape", formatShape(t.Shape))
	s.add("Elements", fmt.Sprint(t.NumElements()))
	s.add("Bytes", fmt.Sprintf("%s (%d bytes)", formatSize(t.Size()), t.Size()))
	s.add("Offsets", fmt.Sprintf("%d – %d in the data section", t.Begin, t.End))
	s.add("File", n.file.Path)
	s.add("Component", componentLabel(m.p, n.comp))
	s.add("Weight set", weightSetLabel(n.set))
	return s
}

// loadMetadata reads the header of file node id off the UI goroutine, then
// shows its __metadata__ if the node is still selected.
func (u *UI) loadMetadata(id string, n *fileNode) {
	if n.metaLoading || n.metaLoaded {
		return
	}
	n.metaLoading = true
	path := filepath.Join(u.pipeline.Dir, filepath.FromSlash(n.file.Path))
	u.e.spawn(func() {
		h, err := tensors.ReadHeaderFile(path)
		u.e.do(func() {
			n.metaLoading, n.metaLoaded, n.metaErr = false, true, err
			if err == nil {
				n.meta = h.Metadata
			}
			if u.selected == id && u.tree.model.files[id] == n {
				u.details.show(u.tree.model.details(id))
			}
		})
	})
}

func (s *detailSection) add(key, value string) { s.rows = append(s.rows, detailRow{key, value}) }

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// detailsView shows a detailSection.
type detailsView struct {
	title   *widget.Label
	close   *widget.Button // hides the pane until the next selection
	form    *fyne.Container
	themed  *container.ThemeOverride
	content fyne.CanvasObject
	shown   detailSection
}

// newDetailsView builds the pane; its close button calls hide.
func newDetailsView(hide func()) *detailsView {
	v := &detailsView{title: widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}),
		form: container.New(layout.NewFormLayout())}
	v.title.Truncation = fyne.TextTruncateEllipsis
	v.close = widget.NewButtonWithIcon("", theme.ContentClearIcon(), hide)
	v.close.Importance = widget.LowImportance
	v.themed = compact(v.form)
	v.content = container.NewBorder(container.NewBorder(nil, nil, nil, v.close, v.title), nil, nil, nil,
		container.NewVScroll(v.themed))
	v.show(noSelection)
	return v
}

func (v *detailsView) show(s detailSection) {
	v.shown = s
	v.title.SetText(s.title)
	objs := make([]fyne.CanvasObject, 0, 2*len(s.rows))
	for _, r := range s.rows {
		key := widget.NewLabelWithStyle(r.key, fyne.TextAlignTrailing, fyne.TextStyle{Bold: true})
		val := widget.NewLabel(r.value)
		val.Wrapping = fyne.TextWrapWord
		val.Selectable = true
		objs = append(objs, key, val)
	}
	v.form.Objects = objs
	v.themed.Refresh()
}
