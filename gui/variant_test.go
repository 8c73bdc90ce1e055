package gui

import (
	"context"
	"encoding/binary"
	"math"
	"path/filepath"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/pipeline"
	"modelpub/core/pipeline/pipelinetest"
	"modelpub/core/tensors"
)

// newTestVariantPanel shows a variant panel in a test window.
func newTestVariantPanel(t *testing.T) (*variantPanel, fyne.Window) {
	t.Helper()
	test.NewTempApp(t)
	e := panelTestEnv()
	v := newVariantPanel(e)
	w := test.NewTempWindow(t, v.Content())
	e.win = w
	w.Resize(fyne.NewSize(1000, 700))
	return v, w
}

// plantedPipeline is the synthetic SD-1.5 with the VAE's quant_conv.weight
// (64 values) rewritten to 1e5 and 1e-9 in turn: 32 fp16 overflows and 32
// underflows, worse than the UNet's conv_out.bias (2 and 2).
func plantedPipeline(t *testing.T) *pipeline.Pipeline {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "sd15")
	_, err := pipelinetest.WriteSD15(context.Background(), dir, pipelinetest.Options{Scale: 0.001, Seed: 7})
	require.NoError(t, err)
	path := filepath.Join(dir, "vae", "diffusion_pytorch_model.safetensors")
	f, err := tensors.Open(path)
	require.NoError(t, err)
	var ws []tensors.WriteTensor
	for _, ti := range f.Header.Tensors {
		w := tensors.WriteTensor{Name: ti.Name, DType: ti.DType, Shape: ti.Shape, Data: f.TensorSource(ti)}
		if ti.Name == "quant_conv.weight" {
			b := make([]byte, ti.Size())
			for i := 0; i < len(b); i += 4 {
				v := float32(1e5)
				if i/4%2 == 1 {
					v = 1e-9
				}
				binary.LittleEndian.PutUint32(b[i:], math.Float32bits(v))
			}
			w.Data = tensors.Bytes(b)
		}
		ws = append(ws, w)
	}
	_, err = tensors.WriteFile(context.Background(), path, ws, nil, tensors.WriteOptions{})
	f.Close()
	require.NoError(t, err)
	p, err := pipeline.Open(context.Background(), dir)
	require.NoError(t, err)
	return p
}

func TestVariantPanelChoosesTheVariant(t *testing.T) {
	v, _ := newTestVariantPanel(t)
	p := panelTestPipeline(t, pipelinetest.Options{Seed: 7})
	v.SetPipeline(p)
	assert.Equal(t, variantNone, v.choice.Selected)
	assert.True(t, v.scanBtn.Disabled(), "nothing to scan without a variant")
	plan, err := pipeline.Plan(p, pipeline.SaveOptions{})
	require.NoError(t, err)
	assert.Contains(t, v.sizes.Text, tensors.FormatSize(plan.Total()))

	v.choice.SetSelected("fp16")
	assert.Equal(t, "fp16", v.e.choices.Variant)
	after, err := pipeline.Plan(p, pipeline.SaveOptions{Variant: "fp16"})
	require.NoError(t, err)
	assert.Contains(t, v.sizes.Text, tensors.FormatSize(plan.Total())+" without the variant")
	assert.Contains(t, v.sizes.Text, tensors.FormatSize(after.Total())+" with fp16")
	assert.False(t, v.scanBtn.Disabled())

	v.e.choices.set(1_000_000, "bf16") // chosen elsewhere
	assert.Equal(t, "bf16", v.choice.Selected)
	after, err = pipeline.Plan(p, pipeline.SaveOptions{MaxShardSize: 1_000_000, Variant: "bf16"})
	require.NoError(t, err)
	assert.Contains(t, v.sizes.Text, tensors.FormatSize(after.Total())+" with bf16")

	v.choice.SetSelected(variantNone)
	assert.Empty(t, v.e.choices.Variant)
	assert.Equal(t, int64(1_000_000), v.e.choices.MaxShardSize, "the shard size is kept")
}

func TestVariantPanelSaysTheFolderHasTheVariant(t *testing.T) {
	v, _ := newTestVariantPanel(t)
	v.SetPipeline(panelTestPipeline(t, pipelinetest.Options{Seed: 7,
		FP16Variant: []string{pipelinetest.UNet, pipelinetest.TextEncoder, pipelinetest.VAE}}))
	assert.True(t, v.present.Visible())
	assert.Contains(t, v.present.Text, "already has fp16 weights for every model: they are carried over")
	v.choice.SetSelected("fp16")
	assert.Contains(t, v.present.Text, "Save converts them again")

	v.SetPipeline(panelTestPipeline(t, pipelinetest.Options{Seed: 7, FP16Variant: []string{pipelinetest.VAE}}))
	assert.Contains(t, v.present.Text, "fp16 weights for vae:")
	v.SetPipeline(panelTestPipeline(t, pipelinetest.Options{Seed: 7}))
	assert.False(t, v.present.Visible())
}

func TestVariantPanelScanListsTheWorstFirst(t *testing.T) {
	v, _ := newTestVariantPanel(t)
	p := plantedPipeline(t)
	v.SetPipeline(p)
	v.choice.SetSelected("fp16")
	dos := 0
	do := v.e.do
	v.e.do = func(f func()) { dos++; do(f) }
	start := time.Now()
	test.Tap(v.scanBtn)
	elapsed := time.Since(start)

	require.NotNil(t, v.result)
	assert.Equal(t, 2, len(v.rows))
	assert.Equal(t, "quant_conv.weight", v.rows[0].Tensor)
	assert.Equal(t, []string{"vae", "quant_conv.weight", "32", "32", "100%"}, lossRow(v, 0))
	assert.Equal(t, []string{"unet", pipelinetest.FP16UnsafeTensor, "2", "2", "100%"}, lossRow(v, 1))
	assert.Contains(t, v.status.Text, "turns 34 values into ±Inf and 34 values into 0, in 2 tensors of")
	assert.True(t, v.table.Visible())
	assert.False(t, v.bar.Visible())
	assert.False(t, v.scanBtn.Disabled(), "a scan can run again")
	assert.True(t, v.cancel.Disabled())
	// One update at the start, at most one per 100 ms, the end and the sizes.
	assert.LessOrEqual(t, dos, 3+int(elapsed/progressInterval), "progress reaches the UI at most ten times a second")

	v.choice.SetSelected("bf16")
	assert.Nil(t, v.result, "a scan for another variant is dropped")
	assert.False(t, v.table.Visible())
	test.Tap(v.scanBtn)
	assert.Contains(t, v.status.Text, "Nothing is lost")
	assert.False(t, v.table.Visible())
}

func lossRow(v *variantPanel, row int) []string {
	var out []string
	for col := range lossColumns {
		out = append(out, lossCell(v.rows[row], col))
	}
	return out
}

func TestVariantPanelCancel(t *testing.T) {
	v, _ := newTestVariantPanel(t)
	v.SetPipeline(plantedPipeline(t))
	v.choice.SetSelected("fp16")
	// The first progress update stands for the user pressing Cancel while
	// the scan runs.
	do := v.e.do
	tapped := false
	v.e.do = func(f func()) {
		do(f)
		if v.scanning && !tapped {
			tapped = true
			assert.False(t, v.cancel.Disabled())
			test.Tap(v.cancel)
		}
	}
	test.Tap(v.scanBtn)
	require.True(t, tapped)
	assert.Equal(t, "Scan cancelled.", v.status.Text)
	assert.Nil(t, v.result)
	assert.False(t, v.scanning)
	assert.False(t, v.bar.Visible())
	assert.False(t, v.scanBtn.Disabled())
}

// TestVariantPanelGolden keeps the markup of the panel. To regenerate after
// an intended change: run the test, check testdata/failed/variant_*.xml and
// move it over testdata/variant_*.xml.
func TestVariantPanelGolden(t *testing.T) {
	v, w := newTestVariantPanel(t)
	test.AssertRendersToMarkup(t, "variant_empty.xml", w.Canvas())
	v.SetPipeline(plantedPipeline(t))
	v.choice.SetSelected("fp16")
	test.Tap(v.scanBtn)
	test.AssertRendersToMarkup(t, "variant_scanned.xml", w.Canvas())
}
