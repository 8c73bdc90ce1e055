package cli

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/cli/preinit"
	"modelpub/core/tensors"
)

// The findings of issue 15's afternoon of real use, on the command line.

func runCmd(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = Run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// main decides between the window and a command before cli registers its
// commands (preinit); every command must be known there.
func TestPreinitKnowsEveryCommand(t *testing.T) {
	for name := range commands {
		assert.True(t, preinit.IsCommand(name), "add %q to preinit.Commands", name)
		assert.True(t, IsCommand(name))
	}
	for _, name := range []string{"help", "-h", "--help"} {
		assert.True(t, IsCommand(name))
		assert.True(t, preinit.IsCommand(name))
	}
	assert.False(t, IsCommand("./folder"))
}

func TestUnknownCommandOrPath(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-folder")
	tests := []struct {
		arg, want, notWant string
	}{
		{missing, missing + ": no such file or folder", "unknown command"},
		{"./folder", "./folder: no such file or folder", "commands:"},
		{"model.safetensors", "model.safetensors: no such file or folder", "commands:"},
		{"inspekt", `unknown command "inspekt"`, "no such file"},
	}
	for _, tt := range tests {
		code, out, errb := runCmd(tt.arg)
		assert.Equal(t, ExitUsage, code)
		assert.Empty(t, out)
		assert.Contains(t, errb, tt.want)
		assert.NotContains(t, errb, tt.notWant)
	}

	// Several paths (a launcher's %F), one missing: that one is named.
	code, _, errb := runCmd(t.TempDir(), missing)
	assert.Equal(t, ExitUsage, code)
	assert.Equal(t, "modelpub: "+missing+": no such file or folder (and no command of that name; see modelpub help)\n", errb)
}

func TestHelpDocumentsPath(t *testing.T) {
	code, out, _ := runCmd("help")
	require.Equal(t, ExitOK, code)
	assert.Contains(t, out, "  modelpub PATH            open the desktop app on the Diffusers folder PATH\n")
	assert.Contains(t, out, "(a file inside one opens its folder)")
	assert.Contains(t, out, "no window, no display needed")
}

// inspect, validate, card and save take a file inside a folder, as the
// app does, and say which folder they opened.
func TestFileArgumentOpensItsFolder(t *testing.T) {
	dir := writePipeline(t)
	shard := filepath.Join(dir, "unet", "diffusion_pytorch_model-00001-of-00002.safetensors")
	note := "is in the folder " + dir + "; opening that\n"

	code, out, errb := runCmd("inspect", shard)
	require.Equal(t, ExitOK, code, errb)
	assert.True(t, strings.HasPrefix(out, dir+"  StableDiffusionPipeline"), out)
	assert.Equal(t, "modelpub inspect: "+shard+" "+note, errb)

	code, out, errb = runCmd("validate", filepath.Join(dir, "model_index.json"))
	assert.Equal(t, ExitOK, code, errb+out)
	assert.Contains(t, errb, "modelpub validate: ")
	assert.Contains(t, errb, note)

	code, out, errb = runCmd("card", filepath.Join(dir, "scheduler"))
	assert.Equal(t, ExitOK, code, errb)
	assert.Contains(t, out, "StableDiffusionPipeline")
	assert.Contains(t, errb, "modelpub card: "+filepath.Join(dir, "scheduler")+" "+note, "a folder without config.json opens its pipeline")

	dst := filepath.Join(t.TempDir(), "out")
	code, out, errb = runCmd("save", shard, dst, "--no-validate")
	require.Equal(t, ExitOK, code, errb)
	assert.FileExists(t, filepath.Join(dst, "model_index.json"), "the whole pipeline was saved")
	assert.Contains(t, errb, note)

	// A model folder inside a pipeline stays a single model.
	code, out, errb = runCmd("inspect", filepath.Join(dir, "unet"))
	require.Equal(t, ExitOK, code, errb)
	assert.Empty(t, errb)
	assert.Contains(t, out, "single model")

	// A folder given as it is prints no note.
	code, _, errb = runCmd("inspect", dir)
	require.Equal(t, ExitOK, code)
	assert.Empty(t, errb)
}

// A shard the index names but the folder lacks is said so, by name, never
// as a raw stat error.
func TestMissingShard(t *testing.T) {
	dir := writePipeline(t)
	require.NoError(t, os.Remove(filepath.Join(dir, "unet", "diffusion_pytorch_model-00002-of-00002.safetensors")))
	const want = "unet/diffusion_pytorch_model-00002-of-00002.safetensors is missing: diffusion_pytorch_model.safetensors.index.json names it"

	code, out, errb := runCmd("inspect", dir)
	require.Equal(t, ExitOK, code, errb)
	assert.Contains(t, out, "main weights, safetensors: cannot be read: "+want+"\n")
	assert.Contains(t, out, "\n1 warning\n  - "+want+"\n")

	code, out, errb = runCmd("validate", dir)
	assert.Equal(t, ExitProblems, code, errb)
	assert.Equal(t, "problem: "+want+"\n1 problem found\n", out)

	code, _, errb = runCmd("save", dir, filepath.Join(t.TempDir(), "out"))
	assert.Equal(t, ExitUsage, code)
	assert.Contains(t, errb, want)
	for _, s := range []string{out, errb} {
		assert.NotContains(t, s, "stat ")
		assert.NotContains(t, s, "no such file or directory")
	}

	p, err := openFlag(newFlagSet("inspect", &bytes.Buffer{}))(context.Background(), dir)
	require.NoError(t, err)
	for _, c := range p.Components {
		if c.Name == "unet" {
			assert.True(t, errors.Is(c.Main().Err, tensors.ErrMissingShard), "%v", c.Main().Err)
			assert.True(t, errors.Is(c.Main().Err, os.ErrNotExist))
		}
	}
}

// writeOverflowPipeline writes a one-component pipeline whose float32
// weights hold values float16 cannot.
func writeOverflowPipeline(t *testing.T) string {
	t.Helper()
	dir := writePipeline(t)
	unet := filepath.Join(dir, "unet")
	entries, err := os.ReadDir(unet)
	require.NoError(t, err)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "diffusion_pytorch_model") {
			require.NoError(t, os.Remove(filepath.Join(unet, e.Name())))
		}
	}
	big := make([]byte, 16)
	for i := 0; i < 4; i++ {
		binary.LittleEndian.PutUint32(big[4*i:], math.Float32bits(1e6))
	}
	_, err = tensors.WriteSharded(context.Background(), unet, []tensors.WriteTensor{
		{Name: "conv_in.weight", DType: tensors.F32, Shape: []int64{4}, Data: tensors.Bytes(big)},
	}, tensors.ShardedOptions{Base: "diffusion_pytorch_model"})
	require.NoError(t, err)
	return dir
}

// Each value a variant loses is reported once, in one wording.
func TestSaveReportsOverflowOnce(t *testing.T) {
	src := writeOverflowPipeline(t)
	for _, args := range [][]string{{}, {"--no-validate"}} {
		dst := filepath.Join(t.TempDir(), "out")
		code, out, errb := runCmd(append([]string{"save", src, dst, "--variant", "fp16"}, args...)...)
		require.Equal(t, ExitOK, code, errb+out)
		assert.Equal(t, 1, strings.Count(out, "overflowed"), "%v: %s", args, out)
		assert.Contains(t, out, `tensor "conv_in.weight": 4 values overflowed to ±inf and 0 non-zero values became zero`)
	}
}

func TestCountWords(t *testing.T) {
	assert.Equal(t, "1 problem", count(1, "problem", ""))
	assert.Equal(t, "0 problems", count(0, "problem", ""))
	assert.Equal(t, "2 problems", count(2, "problem", ""))
	assert.Equal(t, "3 entries", count(3, "entry", "entries"))

	code, out, _ := runCmd("inspect", writeOverflowPipeline(t))
	require.Equal(t, ExitOK, code)
	assert.Contains(t, out, ": 1 tensor, 4 parameters")
}

func TestErrText(t *testing.T) {
	tests := []struct{ err, want string }{
		{"auth: no Hub token for x", "no Hub token for x"},
		{"publish: check: hub: whoami: unauthorized", "check: hub: whoami: unauthorized"},
		{"hub: whoami: unauthorized", "whoami: unauthorized"},
		{"pipeline: tensors: bad header", "bad header"},
		{"unet: auth: kept", "unet: auth: kept"},
		{"a\x1b[2Jb", `a\x1b[2Jb`},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, errText(errors.New(tt.err)))
	}
}
