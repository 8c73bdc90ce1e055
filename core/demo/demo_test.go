package demo

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/card"
	"modelpub/core/pipeline"
)

// testScale keeps the tests fast: a few MB.
const testScale = 0.002

func TestWriteMakesAPipelineWithItsCard(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "sd15-demo")
	var last, total atomic.Int64
	res, err := Write(context.Background(), dir, testScale, func(done, tot int64) {
		last.Store(done)
		total.Store(tot)
	})
	require.NoError(t, err)

	assert.Equal(t, dir, res.Dir)
	assert.Positive(t, total.Load())
	assert.Equal(t, total.Load(), last.Load(), "the progress reaches its total")
	p, err := pipeline.Open(context.Background(), dir)
	require.NoError(t, err)
	assert.Equal(t, "StableDiffusionPipeline", p.Index.ClassName)
	for _, c := range []string{"unet", "vae", "text_encoder"} {
		require.NotNil(t, p.Component(c).Main(), c)
		assert.NoError(t, p.Component(c).Main().Err, c)
	}
	data, err := os.ReadFile(filepath.Join(dir, card.FileName))
	require.NoError(t, err)
	c, err := card.Parse(data)
	require.NoError(t, err)
	assert.Equal(t, License, c.Metadata().License)
	assert.True(t, strings.HasPrefix(c.Body(), Notice), "the card says it is a demo")
	assert.Contains(t, c.Body(), "# sd15-demo", "titled by its folder's name, not the staging one's")
	assert.Empty(t, c.Validate())

	var files int
	var bytes int64
	require.NoError(t, filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			info, _ := d.Info()
			files++
			bytes += info.Size()
		}
		return err
	}))
	assert.Equal(t, files, res.Files)
	assert.Equal(t, bytes, res.Bytes)
	entries, err := os.ReadDir(parent)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "nothing left beside it")
}

func TestWriteIsDeterministic(t *testing.T) {
	a, b := filepath.Join(t.TempDir(), "a", "demo"), filepath.Join(t.TempDir(), "b", "demo")
	_, err := Write(context.Background(), a, testScale, nil)
	require.NoError(t, err)
	_, err = Write(context.Background(), b, testScale, nil)
	require.NoError(t, err)
	for _, f := range []string{"unet/diffusion_pytorch_model.safetensors", card.FileName} {
		x, err := os.ReadFile(filepath.Join(a, f))
		require.NoError(t, err)
		y, err := os.ReadFile(filepath.Join(b, f))
		require.NoError(t, err)
		assert.Equal(t, x, y, f)
	}
}

func TestWriteRefusesAndLeavesNothing(t *testing.T) {
	parent := t.TempDir()
	full := filepath.Join(parent, "full")
	require.NoError(t, os.MkdirAll(full, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(full, "keep.txt"), []byte("mine"), 0o644))
	_, err := Write(context.Background(), full, testScale, nil)
	assert.ErrorIs(t, err, ErrDirNotEmpty)
	kept, err := os.ReadFile(filepath.Join(full, "keep.txt"))
	require.NoError(t, err)
	assert.Equal(t, "mine", string(kept))

	_, err = Write(context.Background(), filepath.Join(parent, "x"), 2, nil)
	assert.ErrorContains(t, err, "scale")

	ctx, cancel := context.WithCancel(context.Background())
	var once atomic.Bool
	_, err = Write(ctx, filepath.Join(parent, "cancelled"), testScale, func(int64, int64) {
		if once.CompareAndSwap(false, true) {
			cancel()
		}
	})
	assert.ErrorIs(t, err, context.Canceled)

	empty := filepath.Join(parent, "empty")
	require.NoError(t, os.Mkdir(empty, 0o755))
	_, err = Write(context.Background(), empty, testScale, nil)
	require.NoError(t, err, "an empty folder is filled")

	entries, err := os.ReadDir(parent)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	assert.ElementsMatch(t, []string{"full", "empty"}, names, "no partial folder, no staging left")
}
