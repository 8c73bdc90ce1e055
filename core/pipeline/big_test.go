package pipeline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/tensors"
	"modelpub/internal/costtest"
)

// Big but legal inputs: a model of hundreds of thousands of tiny tensors,
// whose header is tens of megabytes. Opening, planning, saving and
// validating it must take memory proportional to the header and time
// linear in the tensors.

// writeManyTensors writes a single-model folder (config.json and one
// safetensors file) of n one-element F32 tensors, and returns the size of
// the file's header.
func writeManyTensors(t testing.TB, dir string, n int) int64 {
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"),
		[]byte(`{"_class_name": "UNet2DConditionModel", "_diffusers_version": "0.30.0"}`), 0o644))
	data := make([]byte, 4*n)
	ws := make([]tensors.WriteTensor, n)
	for i := range ws {
		data[4*i+3] = byte(i) // small F32 values: the fp16 variant is exact
		ws[i] = tensors.WriteTensor{Name: fmt.Sprintf("blocks.%d.layers.%d.weight", i/1000, i%1000),
			DType: tensors.F32, Shape: []int64{1}, Data: tensors.Bytes(data[4*i : 4*i+4])}
	}
	l, err := tensors.WriteFile(context.Background(), filepath.Join(dir, "diffusion_pytorch_model.safetensors"), ws, nil, tensors.WriteOptions{})
	require.NoError(t, err)
	return int64(len(l.Header))
}

// openSaveValidate is what modelpub save does, with the plan the window's
// Shards panel makes first: open, plan, save (into shards of maxShard bytes
// and a variant, if given), open the result and validate it against the
// source.
func openSaveValidate(t testing.TB, src, dst string, opts SaveOptions) *Report {
	ctx := context.Background()
	p, err := Open(ctx, src)
	require.NoError(t, err)
	plan, err := Plan(p, opts)
	require.NoError(t, err)
	require.NotEmpty(t, plan.Components)
	plan = nil
	_, err = Save(ctx, p, dst, opts)
	require.NoError(t, err)
	d, err := Open(ctx, dst)
	require.NoError(t, err)
	r, err := Validate(ctx, d, ValidateOptions{Against: p})
	require.NoError(t, err)
	require.True(t, r.OK(), "%+v", r.Problems)
	return r
}

// TestSaveLinearTime opens, plans, saves (resharded, with an fp16 variant)
// and validates models of n and 4n tensors: linear work takes 4 to 6 times
// as long (bigger tables miss the caches more), a quadratic step 16 times.
func TestSaveLinearTime(t *testing.T) {
	if raceEnabled || testing.Short() {
		t.Skip("timing; slow under -race")
	}
	const n = 10_000
	dir := t.TempDir()
	writeManyTensors(t, filepath.Join(dir, "small"), n)
	writeManyTensors(t, filepath.Join(dir, "large"), 4*n)
	run := 0
	measure := func(src string, tensors int) time.Duration {
		return costtest.CPUTime(t, func() {
			run++
			r := openSaveValidate(t, src, filepath.Join(dir, fmt.Sprint("out", run)),
				SaveOptions{MaxShardSize: int64(tensors), Variant: "fp16"})
			require.Equal(t, 2*tensors, r.Tensors)
		})
	}
	small := measure(filepath.Join(dir, "small"), n)
	large := measure(filepath.Join(dir, "large"), 4*n)
	t.Logf("%d tensors %v, %d tensors %v (%.1fx)", n, small, 4*n, large, float64(large)/float64(small))
	assert.Less(t, large, 8*small+20*time.Millisecond, "4 times the tensors take %.1f times as long", float64(large)/float64(small))
}

// TestSaveBigHeaderMemory saves a model of 300,000 tensors (a 25 MB header)
// into four shards and an index, and validates the result, in a process of
// its own: its peak RSS stays under 8 times the header plus 100 MB. (A
// 94 MB header took 1.97 GB to save before.)
func TestSaveBigHeaderMemory(t *testing.T) {
	if src := costtest.ChildInput(); src != "" {
		openSaveValidate(t, src, filepath.Join(filepath.Dir(src), "out"), SaveOptions{MaxShardSize: 300_000})
		costtest.ReportPeakRSS(t)
		return
	}
	if raceEnabled || testing.Short() {
		t.Skip("memory is not measurable under -race")
	}
	costtest.PeakRSS(t) // skip where there is no /proc
	src := filepath.Join(t.TempDir(), "model")
	header := writeManyTensors(t, src, 300_000)
	rss := costtest.ChildPeakRSS(t, src)
	t.Logf("header %d MB, peak RSS %d MB", header>>20, rss>>20)
	assert.LessOrEqual(t, rss, 8*header+100<<20, "peak RSS %d MB for a header of %d MB", rss>>20, header>>20)
}
