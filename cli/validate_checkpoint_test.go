package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// validate --against a single-file checkpoint proves a converted folder is
// exactly the checkpoint's mapping, and names a tensor whose bytes differ.
func TestValidateAgainstACheckpoint(t *testing.T) {
	dir := t.TempDir()
	src := writeSD15Checkpoint(t, dir)
	out := filepath.Join(dir, "out")
	var stdout, stderr bytes.Buffer
	require.Equal(t, ExitOK, Run([]string{"convert", src, out, "--no-verify"}, &stdout, &stderr), stderr.String())

	stdout.Reset()
	stderr.Reset()
	require.Equal(t, ExitOK, Run([]string{"validate", out, "--against", src}, &stdout, &stderr), stdout.String()+stderr.String())
	assert.Contains(t, stdout.String(), "valid: ")
	assert.Contains(t, stdout.String(), "match the source")

	// Flip the last byte of the VAE's weights: the check names it.
	vae := filepath.Join(out, "vae", "diffusion_pytorch_model.safetensors")
	b, err := os.ReadFile(vae)
	require.NoError(t, err)
	b[len(b)-1] ^= 0x40
	require.NoError(t, os.WriteFile(vae, b, 0o644))
	stdout.Reset()
	stderr.Reset()
	assert.Equal(t, ExitProblems, Run([]string{"validate", out, "--against", src}, &stdout, &stderr), stdout.String()+stderr.String())
	assert.Contains(t, stdout.String(), "problem: ")
	assert.Contains(t, stdout.String(), "vae")
}
