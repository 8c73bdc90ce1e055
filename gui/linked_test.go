package gui

import (
	"strings"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/pipeline"
	"modelpub/core/pipeline/pipelinetest"
)

// mapOf returns the shard map shown for a component.
func mapOf(t *testing.T, s *shardsPanel, component string) componentMap {
	t.Helper()
	for _, m := range s.shown {
		if m.name == component {
			return m
		}
	}
	t.Fatalf("no map for %s", component)
	return componentMap{}
}

// tapTensor clicks tensor i of a bar in its middle.
func tapTensor(b *shardBar, i int) {
	tn := b.file.Tensors[i]
	test.TapAt(b, fyne.NewPos(b.x(tn.Offset+tn.Bytes/2, b.Size().Width), b.Size().Height/2))
}

// selectedTensor is the name of the tensor selected in the tree.
func selectedTensor(t *testing.T, u *UI) string {
	t.Helper()
	_, tn, ok := u.tree.model.tensor(u.selected)
	require.True(t, ok, "a tensor is selected, not %q", u.selected)
	return tn.Name
}

// TestShardMapAndTreeAreLinked: a click on a block selects its tensor in
// the tree; a tensor selected in the tree is outlined in every bar that
// holds it, in the current and the planned layouts.
func TestShardMapAndTreeAreLinked(t *testing.T) {
	u, _ := openSD15(t)
	u.selectTab("Shards")
	unet := mapOf(t, u.shardMap, "unet")
	current := unet.current[0]
	require.Equal(t, "diffusion_pytorch_model.safetensors", current.file.Name)

	// Map → tree.
	tapTensor(current, 5)
	name := current.file.Tensors[5].Name
	assert.Equal(t, name, selectedTensor(t, u))
	assert.True(t, strings.HasPrefix(u.selected, "t/unet/diffusion_pytorch_model.safetensors/"), u.selected)
	assert.Equal(t, name, u.details.shown.title, "the details show it")
	assert.True(t, current.selection.Visible(), "the block is outlined")
	planned := unet.planned[0]
	require.Equal(t, name, planned.file.Tensors[planned.selected].Name, "and in the planned file")
	assert.True(t, planned.selection.Visible())

	// Tree → map.
	vae := mapOf(t, u.shardMap, "vae")
	other := vae.current[0].file.Tensors[3].Name
	id := u.tree.model.tensorNode("vae", "", "diffusion_pytorch_model.safetensors", other)
	require.NotEmpty(t, id)
	u.tree.reveal(id)
	assert.Equal(t, other, vae.current[0].file.Tensors[vae.current[0].selected].Name)
	assert.True(t, vae.current[0].selection.Visible())
	d := fyne.CurrentApp().Driver()
	y := d.AbsolutePositionForObject(vae.current[0]).Y - d.AbsolutePositionForObject(u.shardMap.scroll).Y
	assert.True(t, y >= 0 && y+vae.current[0].Size().Height <= u.shardMap.scroll.Size().Height,
		"the map scrolls to the bar (%v in a view %v high)", y, u.shardMap.scroll.Size().Height)
	assert.False(t, current.selection.Visible(), "the UNet's outline goes")
	assert.Equal(t, -1, current.selected)

	// A file selected: no tensor outlined.
	u.tree.reveal("f/vae/config.json")
	assert.False(t, vae.current[0].selection.Visible())

	// A planned variant's block selects the tensor in the folder's own
	// variant file.
	u.e.choices.set(1_000_000, "fp16")
	unet = mapOf(t, u.shardMap, "unet")
	var fp16 *shardBar
	for _, b := range unet.planned {
		if strings.Contains(b.file.Name, ".fp16") {
			fp16 = b
			break
		}
	}
	require.NotNil(t, fp16)
	tapTensor(fp16, 0)
	assert.Equal(t, fp16.file.Tensors[0].Name, selectedTensor(t, u))
	assert.True(t, strings.HasPrefix(u.selected, "t/unet/diffusion_pytorch_model.fp16.safetensors/"), u.selected)
	assert.True(t, fp16.selection.Visible(), "a new plan keeps the selection outlined")
}

// TestVariantScanAndTreeAreLinked: a row of the scan selects its tensor in
// the tree, and a tensor selected in the tree selects its row.
func TestVariantScanAndTreeAreLinked(t *testing.T) {
	u, _ := openSD15(t)
	u.e.choices.set(0, "fp16")
	u.selectTab("Variant")
	v := u.variants
	v.startScan()
	require.NotEmpty(t, v.rows, "the test pipeline has values fp16 cannot hold")
	row := v.rows[0]

	v.table.Select(widget.TableCellID{Row: 0, Col: 1})
	assert.Equal(t, row.Tensor, selectedTensor(t, u))
	assert.True(t, strings.HasPrefix(u.selected, "t/"+row.Component+"/"), u.selected)
	assert.Equal(t, 0, v.selectedRow)

	u.tree.reveal("c/vae")
	assert.Equal(t, -1, v.selectedRow, "another node unselects the row")

	id := u.tree.model.tensorNode(row.Component, "", "", row.Tensor)
	u.tree.reveal(id)
	assert.Equal(t, 0, v.selectedRow, "the tree selects the row")
	assert.Equal(t, id, u.selected, "and the row does not select again")
}

func TestTensorNode(t *testing.T) {
	u, _ := openSD15(t)
	tm := u.tree.model
	main := tm.tensorNode("unet", "", "", "conv_in.weight")
	require.NotEmpty(t, main)
	assert.True(t, strings.HasPrefix(main, "t/unet/diffusion_pytorch_model.safetensors/"))
	fp16 := tm.tensorNode("unet", "fp16", "", "conv_in.weight")
	assert.True(t, strings.HasPrefix(fp16, "t/unet/diffusion_pytorch_model.fp16.safetensors/"), fp16)
	assert.Equal(t, fp16, tm.tensorNode("unet", "", "diffusion_pytorch_model.fp16.safetensors", "conv_in.weight"))
	assert.Equal(t, main, tm.tensorNode("unet", "bf16", "", "conv_in.weight"), "a planned variant reads the main weights")
	for _, bad := range [][2]string{{"unet", "nope"}, {"nope", "conv_in.weight"}} {
		assert.Empty(t, tm.tensorNode(bad[0], "", "", bad[1]))
	}
}

// TestShardMapAtTheDefaultSize: under the 10 GB default, bars are drawn
// against the largest file, so small files can be read, and the limit is
// marked past their end and named in the legend.
func TestShardMapAtTheDefaultSize(t *testing.T) {
	s, w := newTestShardsPanel(t)
	s.SetPipeline(panelTestPipeline(t, pipelinetest.Options{Seed: 7, FP16Variant: []string{pipelinetest.UNet}}))
	require.Len(t, s.shown, 3)
	for _, m := range s.shown {
		var largest *shardBar
		for _, b := range append(m.current, m.planned...) {
			if largest == nil || b.file.Size > largest.file.Size {
				largest = b
			}
			assert.True(t, b.offScale(), "%s: the limit is past the end", m.name)
		}
		width := largest.Size().Width
		assert.GreaterOrEqual(t, largest.x(largest.file.Size, width), 0.85*width, "%s: the largest file fills its bar", m.name)
	}
	markup := test.RenderToMarkup(w.Canvas())
	assert.Contains(t, markup, "limit 10 GB (the diffusers default)")
	assert.Contains(t, markup, "limit 5 GB (the transformers default)")
	assert.Contains(t, markup, "limit 10 GB (past the end)")
	assertGolden(t, "shards_default.xml", w.Canvas())
}

func TestMapScale(t *testing.T) {
	for _, tt := range []struct {
		largest, limit, want int64
	}{
		{800, 10_000, 900},       // small files: against the largest, the limit past the end
		{6_000, 10_000, 10_000},  // the largest fills half the limit or more: against the limit
		{12_000, 10_000, 12_000}, // a file over the limit (one big tensor): the limit inside
		{0, 10_000, 10_000},
		{800, 0, 800},
	} {
		assert.Equal(t, tt.want, mapScale(tt.largest, tt.limit), "%d of %d", tt.largest, tt.limit)
	}
}

func TestFormatLimit(t *testing.T) {
	for n, want := range map[int64]string{
		10e9: "10 GB", 5e9: "5 GB", 1_500_000_000: "1.5 GB", 500e6: "500 MB", 2e12: "2 TB",
		50_000: "50 KB", 1 << 30: "1.07 GB", 123: "123 B",
	} {
		assert.Equal(t, want, formatLimit(n), n)
	}
}

// TestLimitMarkIsNotAModuleColour: the limit's line has the text colour,
// which is none of the module colours, in the dark and the light theme.
func TestLimitMarkIsNotAModuleColour(t *testing.T) {
	for _, variant := range []fyne.ThemeVariant{theme.VariantDark, theme.VariantLight} {
		fg := theme.DefaultTheme().Color(theme.ColorNameForeground, variant)
		r1, g1, b1, _ := fg.RGBA()
		for i := range 2 * len(modulePalette) {
			c := (&modules{}).color(i)
			r2, g2, b2, _ := c.RGBA()
			assert.False(t, r1 == r2 && g1 == g2 && b1 == b2, "module colour %d is the limit's", i)
		}
	}
	test.NewTempApp(t)
	f := pipeline.PlannedFile{Name: "x", Size: 100, Tensors: []pipeline.PlannedTensor{{Name: "a.w", Offset: 8, Bytes: 92}}}
	bar := newShardBar(f, 200, 150, newModules([]string{"a.w"}))
	test.NewTempWindow(t, bar).Resize(fyne.NewSize(300, 40))
	r := test.WidgetRenderer(bar).(*shardBarRenderer)
	assert.True(t, r.mark.Visible())
	assert.Equal(t, theme.Color(theme.ColorNameForeground), r.mark.StrokeColor)
}

// TestShardMapFitsItsWidth: long file and index names are cut, so the map
// is as wide as the panel and no column runs under its edge.
func TestShardMapFitsItsWidth(t *testing.T) {
	s, w := newTestShardsPanel(t)
	w.Resize(fyne.NewSize(700, 700))
	s.SetPipeline(panelTestPipeline(t, pipelinetest.Options{Seed: 7, MaxShardSize: 1_000_000, FP16Variant: []string{pipelinetest.UNet}}))
	require.Contains(t, test.RenderToMarkup(w.Canvas()), "index diffusion_pytorch_model")
	assert.LessOrEqual(t, s.maps.MinSize().Width, s.scroll.Size().Width)
	unet := mapOf(t, s, "unet")
	for _, b := range append(unet.current, unet.planned...) {
		right := fyne.CurrentApp().Driver().AbsolutePositionForObject(b).X + b.Size().Width
		assert.LessOrEqual(t, right, w.Canvas().Size().Width, b.file.Name)
	}
}

// TestShardMapScrollsToASelectionMadeBeforeItsPlan: the window selects a
// tensor (MODELPUB_SELECT, a click in the tree) before the plan, made off
// the UI goroutine, arrives; the map shows it outlined and in sight then.
func TestShardMapScrollsToASelectionMadeBeforeItsPlan(t *testing.T) {
	u, w := newTestUI(t)
	w.Resize(fyne.NewSize(1200, 760))
	dir, _ := writeSD15(t)
	var queued []func()
	u.e.spawn = func(f func()) { queued = append(queued, f) }
	u.selectTab("Shards")
	u.revealOnOpen = "t/vae/diffusion_pytorch_model.safetensors/3"
	u.OpenPath(dir)
	for len(queued) > 0 {
		f := queued[0]
		queued = queued[1:]
		f()
	}
	require.Equal(t, "t/vae/diffusion_pytorch_model.safetensors/3", u.selected)
	bar := mapOf(t, u.shardMap, "vae").current[0]
	assert.True(t, bar.selection.Visible())
	at, ok := positionIn(u.shardMap.maps, bar)
	require.True(t, ok)
	s := u.shardMap.scroll
	assert.Positive(t, s.Offset.Y, "scrolled")
	assert.True(t, at.Y >= s.Offset.Y && at.Y+bar.Size().Height <= s.Offset.Y+s.Size().Height, "the bar is in sight")
}
