package pipeline

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/pipeline/pipelinetest"
)

// A component holding an index with its shards and a single file of the
// same weights is ambiguous: inspect warns, validate reports a problem
// naming the file each library loads, and save writes only that layout.
func TestAmbiguousLayouts(t *testing.T) {
	sharded := filepath.Join(t.TempDir(), "sharded")
	_, err := pipelinetest.WriteSD15(context.Background(), sharded, pipelinetest.Options{Scale: 0.001, Seed: 9, MaxShardSize: 200 << 10})
	require.NoError(t, err)
	single := filepath.Join(t.TempDir(), "single")
	_, err = pipelinetest.WriteSD15(context.Background(), single, pipelinetest.Options{Scale: 0.001, Seed: 10})
	require.NoError(t, err)
	// A stale single file beside unet's shards, and a stale index (with its
	// shards) beside text_encoder's single file.
	copyFile := func(from, to string) {
		b, err := os.ReadFile(from)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(to, b, 0o644))
	}
	copyFile(filepath.Join(single, "unet", "diffusion_pytorch_model.safetensors"), filepath.Join(sharded, "unet", "diffusion_pytorch_model.safetensors"))
	teSharded, err := filepath.Glob(filepath.Join(sharded, "text_encoder", "model*"))
	require.NoError(t, err)
	require.Greater(t, len(teSharded), 2, "text_encoder is sharded at this size")
	for _, f := range teSharded {
		copyFile(f, filepath.Join(single, "text_encoder", filepath.Base(f)))
	}

	p, err := Open(context.Background(), sharded)
	require.NoError(t, err)
	unet := p.Component("unet")
	require.Len(t, unet.Ambiguous(), 1)
	assert.Equal(t, "diffusion_pytorch_model.safetensors.index.json", unet.Main().Index, "diffusers loads the index first")
	var warned bool
	for _, w := range p.Warnings {
		if w.Code == "ambiguous-layout" && w.Path == "unet" {
			warned = true
			assert.Contains(t, w.Message, "diffusers loads unet/diffusion_pytorch_model.safetensors.index.json (with its shards) and ignores unet/diffusion_pytorch_model.safetensors")
		}
	}
	assert.True(t, warned, "inspect warns")
	r, err := Validate(context.Background(), p, ValidateOptions{})
	require.NoError(t, err)
	assert.False(t, r.OK())
	var codes []string
	for _, f := range r.Problems {
		codes = append(codes, f.Code)
	}
	assert.Equal(t, []string{"ambiguous-layout"}, codes)

	dst := filepath.Join(t.TempDir(), "out")
	_, err = Save(context.Background(), p, dst, SaveOptions{})
	require.NoError(t, err)
	out, err := Open(context.Background(), dst)
	require.NoError(t, err)
	assert.Empty(t, out.Component("unet").Ambiguous(), "save writes one layout")
	r, err = Validate(context.Background(), out, ValidateOptions{Against: p})
	require.NoError(t, err)
	assert.True(t, r.OK(), "%v", r.Problems)

	// transformers loads the single file first.
	q, err := Open(context.Background(), single)
	require.NoError(t, err)
	te := q.Component("text_encoder")
	require.Len(t, te.Ambiguous(), 1)
	assert.Equal(t, "", te.Main().Index, "transformers loads the single file first")
	assert.Equal(t, []string{"model.safetensors"}, te.Main().Files)
}
