package gui

import (
	"context"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/test"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/pipeline"
	"modelpub/core/pipeline/pipelinetest"
)

func TestOverviewContent(t *testing.T) {
	dir, m := writeSD15(t)
	p, err := pipeline.Open(context.Background(), dir)
	require.NoError(t, err)

	o := overviewOf(p)

	assert.Equal(t, "StableDiffusionPipeline", o.title)
	assert.Contains(t, o.subtitle, "diffusers 0.6.0 · 7 components · ")
	require.Len(t, o.components, 8)
	assert.Equal(t, []string{"Component", "Class", "Parameters", "Size", "Variants"}, o.components[0])
	unet := m.Components[pipelinetest.UNet]
	assert.Equal(t, []string{"unet", "UNet2DConditionModel", pipeline.FormatParameters(unet.Parameters), formatSize(unet.Bytes), "fp16"},
		o.components[6])
	assert.Equal(t, []string{"safety_checker", "not included", "—", "—", "—"}, o.components[2])
	assert.Equal(t, "—", o.components[3][2], "the scheduler has no parameters")

	require.Len(t, o.dtypes, 5)
	assert.Equal(t, []string{"DType", "Main weights", "fp16 variant"}, o.dtypes[0])
	assert.Equal(t, "F32", o.dtypes[1][0])
	assert.Equal(t, formatSize(unet.DataBytes/2), o.dtypes[2][2], "F16 of the fp16 UNet")
	assert.Equal(t, "—", o.dtypes[2][1], "no F16 in the main weights")
	assert.Equal(t, "Total", o.dtypes[4][0])

	require.NotEmpty(t, o.warnings)
	assert.Equal(t, "partial-variant", o.warnings[0].Code)
}

func TestOverviewEmpty(t *testing.T) {
	test.NewTempApp(t)
	o := newOverviewPanel(&env{})
	assert.Equal(t, "No folder open", o.shown.title)
	assert.Len(t, o.body.Objects, 2, "a title and a hint, no tables")
}

func TestOverviewGolden(t *testing.T) {
	test.NewTempApp(t)
	dir, _ := writeSD15(t)
	p, err := pipeline.Open(context.Background(), dir)
	require.NoError(t, err)
	o := newOverviewPanel(&env{})
	w := test.NewTempWindow(t, o.Content())
	w.Resize(fyne.NewSize(760, 900))

	o.SetPipeline(p)

	assertGolden(t, "overview.xml", w.Canvas())
}

func TestColumnsLayout(t *testing.T) {
	test.NewTempApp(t)
	table := textTable([][]string{{"a", "bbbbbbbbbbbb"}, {"cccccccccccccccc", "d"}}, 1)
	min := table.MinSize()
	table.Resize(fyne.NewSize(min.Width+50, min.Height))
	objs := table.(*container.ThemeOverride).Content.(*fyne.Container).Objects
	require.Len(t, objs, 4)
	assert.Equal(t, objs[0].Size().Width, objs[2].Size().Width, "a column is as wide as its widest cell")
	assert.Equal(t, objs[2].MinSize().Width, objs[0].Size().Width)
	assert.Equal(t, objs[1].Position().X, objs[3].Position().X)
	assert.Equal(t, min.Width, objs[1].Position().X+objs[1].Size().Width, "the table keeps its width")
	assert.Greater(t, objs[1].Position().X, objs[0].Position().X+objs[0].Size().Width, "columns do not touch")
	assert.Equal(t, objs[0].Size().Height, objs[2].Position().Y)
}
