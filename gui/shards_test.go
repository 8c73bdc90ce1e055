package gui

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/fyne/v2/test"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/pipeline"
	"modelpub/core/pipeline/pipelinetest"
)

// panelTestEnv is an env whose spawn and do run the work at once, on the
// test's goroutine.
func panelTestEnv() *env {
	run := func(f func()) { f() }
	return &env{spawn: run, do: run, choices: &choices{}}
}

// panelTestPipeline writes a synthetic SD-1.5 (Scale 0.001: a 3.4 MB UNet,
// a 490 KB text encoder and a 330 KB VAE, all F32) and opens it.
func panelTestPipeline(t *testing.T, opts pipelinetest.Options) *pipeline.Pipeline {
	t.Helper()
	opts.Scale = 0.001
	dir := filepath.Join(t.TempDir(), "sd15")
	_, err := pipelinetest.WriteSD15(context.Background(), dir, opts)
	require.NoError(t, err)
	p, err := pipeline.Open(context.Background(), dir)
	require.NoError(t, err)
	return p
}

// newTestShardsPanel shows a shards panel in a test window.
func newTestShardsPanel(t *testing.T) (*shardsPanel, fyne.Window) {
	t.Helper()
	test.NewTempApp(t)
	e := panelTestEnv()
	s := newShardsPanel(e)
	w := test.NewTempWindow(t, s.Content())
	e.win = w
	w.Resize(fyne.NewSize(1000, 800))
	return s, w
}

// shownFiles lists the file names of the bars shown for a component.
func shownFiles(s *shardsPanel, component string, planned bool) []string {
	var out []string
	for _, m := range s.shown {
		if m.name != component {
			continue
		}
		bars := m.current
		if planned {
			bars = m.planned
		}
		for _, b := range bars {
			out = append(out, b.file.Name)
		}
	}
	return out
}

// planFiles lists the weights files pipeline.Plan gives for a component.
func planFiles(t *testing.T, p *pipeline.Pipeline, opts pipeline.SaveOptions, component string) []string {
	t.Helper()
	plan, err := pipeline.Plan(p, opts)
	require.NoError(t, err)
	var out []string
	for _, sp := range plan.Component(component).Sets {
		for _, f := range sp.Files {
			out = append(out, f.Name)
		}
	}
	return out
}

func TestShardsPanelReplansAsTheSizeIsTyped(t *testing.T) {
	s, _ := newTestShardsPanel(t)
	p := panelTestPipeline(t, pipelinetest.Options{Seed: 7})
	s.SetPipeline(p)

	assert.Equal(t, []string{"diffusion_pytorch_model.safetensors"}, shownFiles(s, "unet", false))
	assert.Equal(t, []string{"diffusion_pytorch_model.safetensors"}, shownFiles(s, "unet", true), "the 10 GB default keeps one file")

	test.Type(s.size, "1MB")
	assert.Equal(t, int64(1_000_000), s.e.choices.MaxShardSize)
	want := planFiles(t, p, pipeline.SaveOptions{MaxShardSize: 1_000_000}, "unet")
	assert.Len(t, want, 4)
	assert.Equal(t, want, shownFiles(s, "unet", true))
	assert.Equal(t, planFiles(t, p, pipeline.SaveOptions{MaxShardSize: 1_000_000}, "text_encoder"), shownFiles(s, "text_encoder", true))
	assert.Equal(t, []string{"diffusion_pytorch_model.safetensors"}, shownFiles(s, "unet", false), "the current layout stays")
	assert.False(t, s.sizeErr.Visible())

	s.size.SetText("0.5 MiB")
	assert.Equal(t, int64(1<<19), s.e.choices.MaxShardSize)
	assert.Equal(t, planFiles(t, p, pipeline.SaveOptions{MaxShardSize: 1 << 19}, "unet"), shownFiles(s, "unet", true))
}

func TestShardsPanelRejectsAnInvalidSize(t *testing.T) {
	s, _ := newTestShardsPanel(t)
	s.SetPipeline(panelTestPipeline(t, pipelinetest.Options{Seed: 7}))
	s.size.SetText("1MB")
	before := shownFiles(s, "unet", true)
	plan := s.plan

	s.size.SetText("1.5 bananas")
	assert.True(t, s.sizeErr.Visible())
	assert.Contains(t, s.sizeErr.Text, "invalid size")
	assert.Equal(t, int64(1_000_000), s.e.choices.MaxShardSize, "the choice is unchanged")
	assert.Same(t, plan, s.plan, "no re-plan")
	assert.Equal(t, before, shownFiles(s, "unet", true))

	s.size.SetText("2MB")
	assert.False(t, s.sizeErr.Visible())
	assert.Equal(t, int64(2_000_000), s.e.choices.MaxShardSize)
}

func TestShardsPanelQuickChoices(t *testing.T) {
	s, _ := newTestShardsPanel(t)
	s.SetPipeline(panelTestPipeline(t, pipelinetest.Options{Seed: 7}))
	for i, want := range []int64{2e9, 5e9, 10e9} {
		test.Tap(s.quick[i])
		assert.Equal(t, want, s.e.choices.MaxShardSize)
		assert.Equal(t, quickSizes[i], s.size.Text)
		assert.Equal(t, want, s.plan.MaxShardSize)
	}
	test.Tap(s.quick[len(s.quick)-1])
	assert.Zero(t, s.e.choices.MaxShardSize)
	assert.Empty(t, s.size.Text)
	assert.Equal(t, pipeline.TransformersMaxShardSize, s.plan.Component("text_encoder").MaxShardSize, "each library's default")
}

// TestShardsPanelFollowsChoices: a variant chosen elsewhere adds its files
// to the plan; a limit set elsewhere shows in the entry.
func TestShardsPanelFollowsChoices(t *testing.T) {
	s, _ := newTestShardsPanel(t)
	p := panelTestPipeline(t, pipelinetest.Options{Seed: 7})
	s.SetPipeline(p)
	s.e.choices.set(1_000_000, "fp16")
	assert.Equal(t, "1MB", s.size.Text)
	files := shownFiles(s, "unet", true)
	assert.Equal(t, planFiles(t, p, pipeline.SaveOptions{MaxShardSize: 1_000_000, Variant: "fp16"}, "unet"), files)
	assert.Contains(t, files, "diffusion_pytorch_model.fp16-00001-of-00002.safetensors")

	s.SetPipeline(nil)
	assert.Empty(t, s.shown)
	assert.Contains(t, s.summary.Text, "Open a folder")
}

func TestShardsPanelNamesTheTensorUnderThePointer(t *testing.T) {
	s, w := newTestShardsPanel(t)
	s.SetPipeline(panelTestPipeline(t, pipelinetest.Options{Seed: 7}))
	s.size.SetText("1MB")
	bar := s.shown[1].planned[0] // unet, first shard
	require.Equal(t, "unet", s.shown[1].name)
	require.Positive(t, bar.Size().Width)
	var tapped []string
	s.onTensor = func(component, variant, file, tensor string) {
		tapped = append(tapped, component+"|"+variant+"|"+file+"|"+tensor)
	}
	// The largest tensor of the shard, under the pointer in its middle.
	big := bar.file.Tensors[0]
	for _, tn := range bar.file.Tensors {
		if tn.Bytes > big.Bytes {
			big = tn
		}
	}
	barAt := fyne.CurrentApp().Driver().AbsolutePositionForObject(bar)
	at := fyne.NewPos(bar.x(big.Offset+big.Bytes/2, bar.Size().Width), 4)
	bar.MouseIn(&desktop.MouseEvent{PointEvent: fyne.PointEvent{Position: at, AbsolutePosition: barAt.Add(at)}})
	text := s.tip.shownText()
	assert.Contains(t, text, big.Name)
	assert.Contains(t, text, "unet/"+bar.file.Name)
	assert.Contains(t, text, big.DType.String())
	assert.True(t, bar.highlight.Visible())
	assert.Empty(t, tapped, "hovering selects nothing")

	// The tip is beside the pointer, not at the top of the panel.
	at = fyne.NewPos(3, 4)
	bar.MouseMoved(&desktop.MouseEvent{PointEvent: fyne.PointEvent{Position: at, AbsolutePosition: barAt.Add(at)}})
	assert.Contains(t, s.tip.shownText(), bar.file.Tensors[0].Name)
	tipAt := fyne.CurrentApp().Driver().AbsolutePositionForObject(s.tip.box)
	assert.Equal(t, barAt.Add(at).Add(tipOffset), tipAt)
	assert.LessOrEqual(t, tipAt.X+s.tip.box.Size().Width, w.Canvas().Size().Width, "inside the window")

	bar.MouseOut()
	assert.False(t, bar.highlight.Visible())
	assert.Empty(t, s.tip.shownText(), "leaving the bar hides the tip")

	test.TapAt(bar, fyne.NewPos(bar.x(big.Offset+big.Bytes/2, bar.Size().Width), 4))
	assert.Equal(t, []string{"unet|||" + big.Name}, tapped, "a click selects a planned tensor by its name")
	current := s.shown[1].current[0]
	first := current.file.Tensors[0]
	test.TapAt(current, fyne.NewPos(current.x(first.Offset+first.Bytes/2, current.Size().Width), 4))
	assert.Equal(t, "unet||"+current.file.Name+"|"+first.Name, tapped[1], "and a current one in its file")
}

// TestShardBarMergesTinyBlocks: a thousand tensors in a bar a few hundred
// pixels wide are drawn as a few rectangles, and every tensor can still be
// named.
func TestShardBarMergesTinyBlocks(t *testing.T) {
	test.NewTempApp(t)
	f := pipeline.PlannedFile{Name: "x.safetensors"}
	off := int64(8)
	for i := range 1000 {
		name := "down_blocks.0.w"
		if i >= 500 {
			name = "up_blocks.0.w"
		}
		name += string(rune('a'+i%26)) + string(rune('a'+i/26))
		f.Tensors = append(f.Tensors, pipeline.PlannedTensor{Name: name, Offset: off, Bytes: 100})
		off += 100
	}
	f.Size = off
	var picked string
	bar := newShardBar(f, off, off, newModules(tensorNames(&pipeline.SetPlan{Files: []pipeline.PlannedFile{f}})))
	bar.onTap = func(t *pipeline.PlannedTensor) { picked = t.Name }
	w := test.NewTempWindow(t, bar)
	w.Resize(fyne.NewSize(300, 40))
	visible := 0
	for _, o := range test.WidgetRenderer(bar).Objects() {
		if o.Visible() {
			visible++
		}
	}
	assert.LessOrEqual(t, visible, 2+2, "the track and one block per module")
	test.TapAt(bar, fyne.NewPos(bar.x(f.Tensors[700].Offset+50, bar.Size().Width), 2))
	assert.Equal(t, f.Tensors[700].Name, picked)
}

func TestModuleOf(t *testing.T) {
	for name, want := range map[string]string{
		"down_blocks.0.resnets.0.conv1.weight":           "down_blocks",
		"mid_block.attentions.0.proj_in.weight":          "mid_block",
		"conv_in.bias":                                   "conv_in",
		"time_embedding.linear_1.weight":                 "time_embedding",
		"text_model.encoder.layers.0.mlp.fc1.weight":     "text_model.encoder",
		"text_model.final_layer_norm.weight":             "text_model.final_layer_norm",
		"encoder.down_blocks.0.resnets.0.conv1.weight":   "encoder.down_blocks",
		"decoder.conv_out.bias":                          "decoder.conv_out",
		"quant_conv.weight":                              "quant_conv",
		"model.0.weight":                                 "model",
		"encoder.weight":                                 "encoder",
		"logit_scale":                                    "logit_scale",
		"vision_model.encoder.layers.3.self_attn.q.bias": "vision_model.encoder",
	} {
		assert.Equal(t, want, moduleOf(name), name)
	}
}

func TestFormatShardSize(t *testing.T) {
	for _, n := range []int64{0, 2e9, 5e9, 1_500_000_000, 500_000, 1 << 19, 123} {
		got, err := parseShardSize(formatShardSize(n))
		require.NoError(t, err)
		assert.Equal(t, n, got, formatShardSize(n))
	}
}

// TestShardsPanelGolden keeps the markup of the panel. To regenerate after
// an intended change: run the test, check testdata/failed/shards_*.xml and
// move it over testdata/shards_*.xml.
func TestShardsPanelGolden(t *testing.T) {
	s, w := newTestShardsPanel(t)
	test.AssertRendersToMarkup(t, "shards_empty.xml", w.Canvas())

	s.SetPipeline(panelTestPipeline(t, pipelinetest.Options{Seed: 7, FP16Variant: []string{pipelinetest.VAE}}))
	s.size.SetText("1MB")
	s.size.SetText("1MBx")
	test.TapAt(s.shown[1].planned[0], fyne.NewPos(20, 4))
	test.AssertRendersToMarkup(t, "shards_planned.xml", w.Canvas())
}

// TestTooltipStaysInside: by an edge of its layer, the tip goes to the
// pointer's other side.
func TestTooltipStaysInside(t *testing.T) {
	test.NewTempApp(t)
	tip := newTooltip()
	w := test.NewTempWindow(t, tip.layer)
	w.SetPadded(false)
	w.Resize(fyne.NewSize(400, 300))
	lines := []string{"down_blocks.0.attentions.0.proj_in.weight", "F32 [320, 320]  ·  410 KB  ·  in unet/x.safetensors"}

	origin := fyne.CurrentApp().Driver().AbsolutePositionForObject(tip.layer)
	tip.show(lines, origin.Add(fyne.NewPos(20, 30)))
	assert.Equal(t, strings.Join(lines, "\n"), tip.shownText())
	assert.Equal(t, fyne.NewPos(20, 30).Add(tipOffset), tip.box.Position())

	tip.show(lines, origin.Add(fyne.NewPos(380, 290)))
	p, size := tip.box.Position(), tip.box.Size()
	assert.LessOrEqual(t, p.X+size.Width, float32(380), "left of the pointer")
	assert.LessOrEqual(t, p.Y+size.Height, float32(290), "above the pointer")
	assert.GreaterOrEqual(t, p.X, float32(0))

	tip.hide()
	assert.Empty(t, tip.shownText())
}

// shownText is the tip's text, its lines joined by newlines; "" while
// hidden.
func (t *tooltip) shownText() string {
	if !t.box.Visible() {
		return ""
	}
	lines := make([]string, len(t.lines.Objects))
	for i, o := range t.lines.Objects {
		lines[i] = o.(*canvas.Text).Text
	}
	return strings.Join(lines, "\n")
}
