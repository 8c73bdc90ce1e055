package gui

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2/widget"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/pipeline"
	"modelpub/core/pipeline/pipelinetest"
	"modelpub/core/tensors"
)

func openSD15(t *testing.T) (*UI, *pipelinetest.Manifest) {
	t.Helper()
	u, _ := newTestUI(t)
	dir, m := writeSD15(t)
	u.OpenPath(dir)
	require.NotNil(t, u.pipeline)
	return u, m
}

func TestTreeStructure(t *testing.T) {
	u, m := openSD15(t)
	tm := u.tree.model

	assert.Equal(t, []string{pipelineNodeID}, tm.childIDs(""))
	assert.Equal(t, []string{"c/feature_extractor", "c/safety_checker", "c/scheduler", "c/text_encoder",
		"c/tokenizer", "c/unet", "c/vae"}, tm.childIDs(pipelineNodeID), "components in model_index.json order")
	assert.True(t, u.tree.tree.IsBranchOpen(pipelineNodeID), "the components show at once")

	assert.False(t, tm.isBranch("c/safety_checker"), "a [null, null] component has nothing inside")
	_, _, detail := tm.row("c/safety_checker")
	assert.Equal(t, "not included ([null, null])", detail)

	unet := tm.childIDs("c/unet")
	main := "f/unet/diffusion_pytorch_model.safetensors"
	fp16 := "f/unet/diffusion_pytorch_model.fp16.safetensors"
	assert.ElementsMatch(t, []string{"f/unet/config.json", main, fp16}, unet)
	assert.False(t, tm.isBranch("f/unet/config.json"))
	require.True(t, tm.isBranch(main))

	specs := specsByName(m.Components[pipelinetest.UNet].Specs)
	ids := tm.childIDs(main)
	require.Len(t, ids, len(specs))
	var end int64
	for _, id := range ids {
		_, tensor, ok := tm.tensor(id)
		require.True(t, ok, id)
		assert.Equal(t, specs[tensor.Name].Shape, tensor.Shape, tensor.Name)
		assert.Equal(t, end, tensor.Begin, "tensors in file order")
		end = tensor.End
	}
	assert.Equal(t, "t/unet/diffusion_pytorch_model.safetensors/0", ids[0])
	assert.Len(t, tm.childIDs(fp16), len(specs))
	assert.Same(t, &ids[0], &tm.childIDs(main)[0], "tensor ids are made once per file")

	for _, bad := range []string{"t/unet/diffusion_pytorch_model.safetensors/99999", "t/nope/0", "t/x", "f/nope", "c/nope"} {
		icon, name, _ := tm.row(bad)
		assert.NotNil(t, icon)
		assert.Equal(t, bad, name, "an unknown id shows as itself")
		assert.Equal(t, noSelection, tm.details(bad))
	}
}

func TestTreeRows(t *testing.T) {
	u, m := openSD15(t)
	tm := u.tree.model

	_, name, detail := tm.row(pipelineNodeID)
	assert.Equal(t, "sd15", name)
	assert.True(t, strings.HasPrefix(detail, "StableDiffusionPipeline · "), detail)

	_, name, detail = tm.row("c/unet")
	assert.Equal(t, "unet", name)
	params := m.Components[pipelinetest.UNet].Parameters
	assert.Equal(t, fmt.Sprintf("UNet2DConditionModel · %s params · %s", pipeline.FormatParameters(params),
		formatSize(m.Components[pipelinetest.UNet].Bytes)), detail)

	_, name, detail = tm.row("f/text_encoder/model.safetensors")
	assert.Equal(t, "model.safetensors", name)
	assert.Contains(t, detail, "F32 ")
	assert.Contains(t, detail, "I64 <1%", "the position ids are a sliver of the text encoder")

	_, first, ok := tm.tensor("t/vae/diffusion_pytorch_model.safetensors/0")
	require.True(t, ok)
	spec := specsByName(m.Components[pipelinetest.VAE].Specs)[first.Name]
	_, name, detail = tm.row("t/vae/diffusion_pytorch_model.safetensors/0")
	assert.Equal(t, spec.Name, name)
	assert.Equal(t, fmt.Sprintf("F32 %s · %s", formatShape(spec.Shape), formatSize(spec.NumElements()*4)), detail)
}

func TestTreeSelectionShowsDetails(t *testing.T) {
	u, m := openSD15(t)
	unet := m.Components[pipelinetest.UNet]

	u.tree.tree.Select("c/unet")
	d := u.details.shown
	assert.Equal(t, "unet", d.title)
	assert.Equal(t, "UNet2DConditionModel", d.value("Class"))
	assert.Equal(t, "diffusers", d.value("Library"))
	assert.Equal(t, "model", d.value("Role"))
	assert.Equal(t, "fp16", d.value("Variants"))
	assert.Equal(t, fmt.Sprintf("%d tensors · %s params · %s in 1 file", len(unet.Specs), pipeline.FormatParameters(unet.Parameters),
		formatSize(unet.DataBytes)), d.value("Main weights"))
	assert.Equal(t, "F32 "+formatSize(unet.DataBytes), d.value("Main weights dtypes"))
	assert.Equal(t, "F16 "+formatSize(unet.DataBytes/2), d.value("fp16 variant dtypes"))
	assert.Equal(t, "UNet2DConditionModel", labelAfter(t, u.details, "Class"), "the pane renders the rows")

	u.tree.tree.Select("f/unet/diffusion_pytorch_model.fp16.safetensors")
	d = u.details.shown
	assert.Equal(t, "diffusion_pytorch_model.fp16.safetensors", d.title)
	assert.Equal(t, "fp16 variant", d.value("Weight set"))
	assert.Equal(t, fmt.Sprint(len(unet.Specs)), d.value("Tensors"))
	assert.Equal(t, "F16 100%", d.value("DTypes"))
	assert.NotEqual(t, "reading…", d.value("Metadata"), "the header is read when the file is selected")
	assert.NotContains(t, d.value("Metadata"), "cannot be read")

	id := "t/unet/diffusion_pytorch_model.safetensors/3"
	_, tensor, ok := u.tree.model.tensor(id)
	require.True(t, ok)
	u.tree.tree.Select(id)
	d = u.details.shown
	spec := specsByName(unet.Specs)[tensor.Name]
	assert.Equal(t, spec.Name, d.title)
	assert.Equal(t, "F32", d.value("DType"))
	assert.Equal(t, formatShape(spec.Shape), d.value("Shape"))
	assert.Equal(t, fmt.Sprint(spec.NumElements()), d.value("Elements"))
	assert.Equal(t, fmt.Sprintf("%d – %d in the data section", tensor.Begin, tensor.End), d.value("Offsets"))
	assert.Equal(t, "unet/diffusion_pytorch_model.safetensors", d.value("File"))
	assert.Equal(t, "Main weights", d.value("Weight set"))

	u.tree.tree.Select(pipelineNodeID)
	d = u.details.shown
	assert.Equal(t, "StableDiffusionPipeline", d.value("Pipeline"))
	assert.Equal(t, "0.6.0", d.value("Diffusers version"))
	assert.Equal(t, "7", d.value("Components"))

	u.tree.tree.UnselectAll()
	assert.Equal(t, noSelection, u.details.shown)
}

func specsByName(specs []pipelinetest.Spec) map[string]pipelinetest.Spec {
	m := map[string]pipelinetest.Spec{}
	for _, s := range specs {
		m[s.Name] = s
	}
	return m
}

// labelAfter returns the text of the value label beside key in the pane.
func labelAfter(t *testing.T, v *detailsView, key string) string {
	t.Helper()
	objs := v.form.Objects
	for i := 0; i+1 < len(objs); i += 2 {
		if objs[i].(*widget.Label).Text == key {
			return objs[i+1].(*widget.Label).Text
		}
	}
	t.Fatalf("no row %q in the details pane", key)
	return ""
}

func TestReveal(t *testing.T) {
	u, _ := newTestUI(t)
	dir, _ := writeSD15(t)
	id := "t/unet/diffusion_pytorch_model.fp16.safetensors/5"
	u.revealOnOpen = id
	u.OpenPath(dir)

	assert.True(t, u.tree.tree.IsBranchOpen("c/unet"))
	assert.True(t, u.tree.tree.IsBranchOpen("f/unet/diffusion_pytorch_model.fp16.safetensors"))
	assert.False(t, u.tree.tree.IsBranchOpen("c/vae"))
	assert.Equal(t, id, u.selected)
	assert.Equal(t, "F16", u.details.shown.value("DType"))

	u.tree.reveal("c/vae")
	assert.True(t, u.tree.tree.IsBranchOpen("c/vae"), "a branch shows its children")
	assert.Equal(t, "c/vae", u.selected)
	u.tree.reveal("t/nope/1")
	assert.Equal(t, "c/vae", u.selected, "an unknown id changes nothing")
}

func TestMetadataArrivesLater(t *testing.T) {
	u, _ := openSD15(t)
	var queued []func()
	u.e.spawn = func(f func()) { queued = append(queued, f) }
	id := "f/vae/diffusion_pytorch_model.safetensors"

	u.tree.tree.Select(id)
	assert.Equal(t, "reading…", u.details.shown.value("Metadata"))
	u.tree.tree.Select("c/vae")
	u.tree.tree.Select(id)
	require.Len(t, queued, 1, "the header is read once")
	queued[0]()
	assert.NotEqual(t, "reading…", u.details.shown.value("Metadata"))
}

func TestNewTreeModelNil(t *testing.T) {
	m := newTreeModel(nil)
	assert.Empty(t, m.childIDs(""))
	assert.Equal(t, noSelection, m.details("p"))
}

// TestLargeComponentIndexing indexes a component with ten times the tensors
// of an SD-XL UNet: linear work takes milliseconds, quadratic would not.
func TestLargeComponentIndexing(t *testing.T) {
	const n = 20000
	ws := &pipeline.WeightSet{Variant: "", Format: "safetensors", Files: []string{"a.safetensors", "b.safetensors"},
		DTypeBytes: map[string]int64{}}
	for i := range n {
		f := ws.Files[i%2]
		ws.Tensors = append(ws.Tensors, pipeline.Tensor{File: f, TensorInfo: tensors.TensorInfo{
			Name: fmt.Sprint("down_blocks.", i, ".weight"), DType: tensors.F16, Shape: []int64{4, 4}, Begin: 0, End: 32}})
	}
	c := &pipeline.Component{Name: "unet", Class: "UNet2DConditionModel", Library: "diffusers", Role: pipeline.RoleModel,
		Files:   []pipeline.File{{Path: "unet/a.safetensors", Kind: pipeline.KindWeights}, {Path: "unet/b.safetensors", Kind: pipeline.KindWeights}},
		Weights: []*pipeline.WeightSet{ws}}
	p := &pipeline.Pipeline{Dir: filepath.Join("x", "big"), Components: []*pipeline.Component{c}}

	start := time.Now()
	m := newTreeModel(p)
	ids := m.childIDs("f/unet/b.safetensors")
	for _, id := range ids {
		m.row(id)
	}
	elapsed := time.Since(start)
	require.Len(t, ids, n/2)
	_, tensor, ok := m.tensor(ids[len(ids)-1])
	require.True(t, ok)
	assert.Equal(t, fmt.Sprint("down_blocks.", n-1, ".weight"), tensor.Name)
	assert.Less(t, elapsed, time.Second, "indexing and showing %d tensors must stay fast", n)
}

func TestFormatHelpers(t *testing.T) {
	assert.Equal(t, "[]", formatShape(nil))
	assert.Equal(t, "[320, 4, 3, 3]", formatShape([]int64{320, 4, 3, 3}))
	assert.Equal(t, "1 file", plural(1, "file", "files"))
	assert.Equal(t, "0 files", plural(0, "file", "files"))
}

// value returns the value of the first row called key, "" if none is.
func (s detailSection) value(key string) string {
	for _, r := range s.rows {
		if r.key == key {
			return r.value
		}
	}
	return ""
}
