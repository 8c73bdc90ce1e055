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

	"modelpub/core/card"
	"modelpub/core/pipeline/pipelinetest"
)

// writeSD15 writes a tiny SD-1.5 folder with an fp16 UNet.
func writeSD15(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "sd15")
	_, err := pipelinetest.WriteSD15(context.Background(), dir, pipelinetest.Options{Scale: 0.001, Seed: 1,
		FP16Variant: []string{pipelinetest.UNet}})
	require.NoError(t, err)
	return dir
}

func runCardCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Run(append([]string{"card"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func TestCardCommand(t *testing.T) {
	dir := writeSD15(t)
	code, stdout, stderr := runCardCmd(t, dir, "--repo", "someone/sd15", "--license", "creativeml-openrail-m",
		"--base-model", "stable-diffusion-v1-5/stable-diffusion-v1-5")
	require.Equal(t, ExitOK, code, stderr)
	assert.Empty(t, stderr)
	c, err := card.Parse([]byte(stdout))
	require.NoError(t, err)
	assert.Equal(t, card.Metadata{LibraryName: "diffusers", PipelineTag: "text-to-image", License: "creativeml-openrail-m",
		BaseModel: []string{"stable-diffusion-v1-5/stable-diffusion-v1-5"},
		Tags:      []string{"diffusers", "safetensors", "StableDiffusionPipeline", "text-to-image"}}, c.Metadata())
	assert.Contains(t, c.Body(), `DiffusionPipeline.from_pretrained("someone/sd15", variant="fp16", torch_dtype=torch.float16)`)
	_, err = os.Stat(filepath.Join(dir, "README.md"))
	assert.ErrorIs(t, err, os.ErrNotExist, "stdout only")

	// --out writes the same bytes, through a temporary file.
	outDir := t.TempDir()
	out := filepath.Join(outDir, "CARD.md")
	code, stdout2, stderr := runCardCmd(t, "--out", out, dir, "--repo", "someone/sd15", "--license", "creativeml-openrail-m",
		"--base-model", "stable-diffusion-v1-5/stable-diffusion-v1-5")
	require.Equal(t, ExitOK, code, stderr)
	assert.Empty(t, stdout2)
	assert.Contains(t, stderr, "wrote "+out)
	data, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Equal(t, stdout, string(data))
	entries, err := os.ReadDir(outDir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file left")
}

// A bad value of a flag is blamed on the flag, not on a README.md the
// folder does not have, nor on the YAML key it would become.
func TestCardCommandInvalidLicense(t *testing.T) {
	dir := writeSD15(t)
	out := filepath.Join(t.TempDir(), "README.md")
	code, stdout, stderr := runCardCmd(t, dir, "--license", "foo", "--out", out)
	assert.Equal(t, ExitUsage, code)
	assert.Empty(t, stdout)
	assert.Equal(t, `modelpub card: --license "foo" is not a license id the Hub knows (they are listed at `+
		card.LicensesURL+"); for another license, use --license other --license-name NAME\n", stderr)
	_, err := os.Stat(out)
	assert.ErrorIs(t, err, os.ErrNotExist, "nothing written")

	code, _, stderr = runCardCmd(t, dir, "--license", "MIT")
	assert.Equal(t, ExitUsage, code)
	assert.Contains(t, stderr, `did you mean --license mit?`)

	code, _, stderr = runCardCmd(t, dir, "--base-model", "a/b/c/d")
	assert.Equal(t, ExitProblems, code)
	assert.Contains(t, stderr, "modelpub card: --base-model: is not a repo id")
	for _, s := range []string{"README.md", "base_model", "line "} {
		assert.NotContains(t, stderr, s)
	}
	assert.Contains(t, stderr, "modelpub card: 1 problem; nothing written")
}

func TestCardCommandMergesREADME(t *testing.T) {
	dir := writeSD15(t)
	readme := filepath.Join(dir, "README.md")
	own := "---\n# my settings\ntags:\n- mine  # keep\nwidget:\n- text: a cat\nlicense: mit\n---\n\n# My model\n\nMy own words.\n"
	require.NoError(t, os.WriteFile(readme, []byte(own), 0o644))

	code, stdout, stderr := runCardCmd(t, dir, "--repo", "me/m")
	require.Equal(t, ExitOK, code, stderr)
	data, err := os.ReadFile(readme)
	require.NoError(t, err)
	assert.Equal(t, own, string(data), "DIR/README.md is not written unless --out names it")
	want := "---\n# my settings\ntags:\n- mine # keep\n- diffusers\n- safetensors\n- StableDiffusionPipeline\n- text-to-image\n" +
		"widget:\n- text: a cat\nlicense: mit\nlibrary_name: diffusers\npipeline_tag: text-to-image\n---\n\n# My model\n\nMy own words.\n"
	assert.Equal(t, want, stdout)

	code, _, stderr = runCardCmd(t, dir, "--repo", "me/m", "--out", readme)
	require.Equal(t, ExitOK, code, stderr)
	data, err = os.ReadFile(readme)
	require.NoError(t, err)
	assert.Equal(t, want, string(data))

	// Run again: nothing to add, the file stays the same.
	code, stdout, stderr = runCardCmd(t, dir, "--repo", "me/m")
	require.Equal(t, ExitOK, code, stderr)
	assert.Equal(t, want, stdout)
}

func TestCardCommandBadREADME(t *testing.T) {
	dir := writeSD15(t)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "README.md"), []byte("---\nlicense: mit\ntags: [a\n---\n"), 0o644))
	code, stdout, stderr := runCardCmd(t, dir)
	assert.Equal(t, ExitProblems, code)
	assert.Empty(t, stdout)
	assert.Contains(t, stderr, filepath.Join(dir, "README.md")+": line 3: invalid metadata", "names the file read")

	require.NoError(t, os.WriteFile(filepath.Join(dir, "README.md"), []byte("---\ntags:\n- 12\n---\nbody\n"), 0o644))
	code, _, stderr = runCardCmd(t, dir)
	assert.Equal(t, ExitProblems, code)
	assert.Contains(t, stderr, "modelpub card: "+filepath.Join(dir, "README.md")+": tags: 12 is a number",
		"names the folder's README.md and the key, not a line of the merged card")
}

func TestCardCommandWarnings(t *testing.T) {
	dir := writeSD15(t)
	code, stdout, stderr := runCardCmd(t, dir, "--license", "other", "--license-name", "My License")
	assert.Equal(t, ExitOK, code, stderr)
	assert.Contains(t, stderr, `modelpub card: warning: --license-name: "My License" should be a short lowercase id`)
	assert.Contains(t, stdout, "license_name: My License\n")
}

func TestCardCommandUsage(t *testing.T) {
	dir := writeSD15(t)
	tests := []struct {
		name string
		args []string
		msg  string
	}{
		{"no folder", nil, "usage: modelpub card DIR"},
		{"two folders", []string{dir, dir}, "usage: modelpub card DIR"},
		{"unknown flag", []string{dir, "--nope"}, "flag provided but not defined"},
		{"bad repo", []string{dir, "--repo", "a/b/c/d"}, "--repo:"},
		{"repo without namespace", []string{dir, "--repo", "name"}, "with its namespace"},
		{"dataset repo", []string{dir, "--repo", "datasets/a/b"}, "model repo id"},
		{"other without a name", []string{dir, "--license", "other"}, "needs --license-name"},
		{"name without other", []string{dir, "--license", "mit", "--license-name", "x"}, "is for --license other"},
		{"not a pipeline", []string{t.TempDir()}, "not a Diffusers pipeline"},
		{"missing folder", []string{filepath.Join(dir, "nope")}, "no such file"},
		{"out is a folder", []string{dir, "--out", t.TempDir()}, "is a folder"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCardCmd(t, tt.args...)
			assert.Equal(t, ExitUsage, code, stderr)
			assert.Empty(t, stdout)
			assert.Contains(t, stderr, tt.msg)
		})
	}
}

func TestCardHelp(t *testing.T) {
	var out, errb bytes.Buffer
	require.Equal(t, ExitOK, Run([]string{"help", "card"}, &out, &errb))
	assert.True(t, strings.HasPrefix(out.String(), "usage: modelpub card DIR [--license ID]"))
	assert.Contains(t, out.String(), "Exit status: 0 written, 1 the card has problems")
	out.Reset()
	require.Equal(t, ExitOK, Run([]string{"help"}, &out, &errb))
	assert.Contains(t, out.String(), "  card         write the model card (README.md) for a Diffusers folder\n")
}
