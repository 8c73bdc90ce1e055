package pipeline

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/pipeline/pipelinetest"
)

// writeTestSD15 writes a tiny synthetic SD-1.5 folder named sd15.
func writeTestSD15(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "sd15")
	_, err := pipelinetest.WriteSD15(context.Background(), dir, pipelinetest.Options{Scale: 0.001, Seed: 7})
	require.NoError(t, err)
	return dir
}

func openTestSD15(t *testing.T) *Pipeline {
	t.Helper()
	p, err := Open(context.Background(), writeTestSD15(t))
	require.NoError(t, err)
	return p
}

func TestFindRoot(t *testing.T) {
	dir := writeTestSD15(t)
	plain := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(plain, "notes.txt"), []byte("hi"), 0o644))
	tests := []struct{ path, want string }{
		{dir, dir},
		{filepath.Join(dir, "vae", "config.json"), dir},
		{filepath.Join(dir, "text_encoder"), dir},
		{plain, plain},
		{filepath.Join(plain, "notes.txt"), plain},
	}
	for _, tt := range tests {
		got, err := FindRoot(tt.path)
		assert.NoError(t, err)
		assert.Equal(t, tt.want, got, "FindRoot(%q)", tt.path)
	}
	_, err := FindRoot(filepath.Join(plain, "gone"))
	assert.ErrorIs(t, err, fs.ErrNotExist)
}

func TestSaveDestination(t *testing.T) {
	p := openTestSD15(t)
	parent := filepath.Dir(p.Dir)
	for _, tt := range []struct {
		chosen, variant, want string
	}{
		{filepath.Join(parent, "new"), "", filepath.Join(parent, "new")},
		{parent, "", filepath.Join(parent, "sd15-2")},
		{parent, "fp16", filepath.Join(parent, "sd15-fp16")},
	} {
		got, err := SaveDestination(p, tt.chosen, tt.variant)
		require.NoError(t, err)
		assert.Equal(t, tt.want, got)
	}
	_, err := SaveDestination(p, p.Dir, "")
	assert.ErrorIs(t, err, ErrInsideSource)
}
