package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/pipeline"
	"modelpub/core/tensors"
)

func TestSaveAndValidateCommands(t *testing.T) {
	src := writePipeline(t)
	dst := filepath.Join(t.TempDir(), "out")
	var stdout, stderr bytes.Buffer
	code := Run([]string{"save", src, dst, "--variant", "fp16", "--max-shard-size", "1GB"}, &stdout, &stderr)
	require.Equal(t, ExitOK, code, stderr.String()+stdout.String())
	assert.Contains(t, stdout.String(), "saved "+dst)
	assert.Contains(t, stdout.String(), "valid: ")
	_, err := os.Stat(filepath.Join(dst, "unet", "diffusion_pytorch_model.fp16.safetensors"))
	require.NoError(t, err, "one shard at 1GB: the plain variant name")
	_, err = os.Stat(filepath.Join(dst, "unet", "diffusion_pytorch_model.safetensors.index.json"))
	assert.ErrorIs(t, err, os.ErrNotExist, "no stale index beside the single file")

	stdout.Reset()
	assert.Equal(t, ExitOK, Run([]string{"validate", dst, "--against", src}, &stdout, &stderr), stdout.String())

	// Break one tensor byte: validate names it and exits 1.
	p := filepath.Join(dst, "unet", "diffusion_pytorch_model.safetensors")
	h, err := tensors.ReadHeaderFile(p)
	require.NoError(t, err)
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	b[h.DataStart]++
	require.NoError(t, os.WriteFile(p, b, 0o644))
	stdout.Reset()
	assert.Equal(t, ExitProblems, Run([]string{"validate", dst, "--against", src}, &stdout, &stderr))
	assert.Contains(t, stdout.String(), "is not bit-identical to the source")

	stderr.Reset()
	assert.Equal(t, ExitUsage, Run([]string{"save", src, dst}, &stdout, &stderr), "DST is not empty")
	assert.Contains(t, stderr.String(), "--overwrite")
	stderr.Reset()
	assert.Equal(t, ExitUsage, Run([]string{"validate", filepath.Join(t.TempDir(), "none")}, &stdout, &stderr))
}

// A save stopped half-way (here: cancelled through the same core call the
// command makes) is resumed by running the command again.
func TestSaveCommandResumes(t *testing.T) {
	src := writePipeline(t)
	dst := filepath.Join(t.TempDir(), "out")
	p, err := pipeline.Open(context.Background(), src)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err = pipeline.Save(ctx, p, dst, pipeline.SaveOptions{Variant: "fp16", Resume: true,
		Progress: func(pr pipeline.Progress) {
			if strings.HasPrefix(pr.File, "unet/") {
				cancel()
			}
		}})
	require.ErrorIs(t, err, context.Canceled)

	var stdout, stderr bytes.Buffer
	code := Run([]string{"save", src, dst, "--variant", "fp16"}, &stdout, &stderr)
	require.Equal(t, ExitOK, code, stderr.String()+stdout.String())
	assert.Contains(t, stdout.String(), "resumed: ")
	assert.Contains(t, stdout.String(), "valid: ")
	assert.NoDirExists(t, pipeline.PartialDir(dst))
}
