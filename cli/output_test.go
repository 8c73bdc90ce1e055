package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/folder"
	"modelpub/core/pipeline"
	"modelpub/core/tensors"
)

// hostileName would clear the screen and print a line of its own ("valid")
// if it reached a terminal raw.
const hostileName = "a\x1b[2Jb\nvalid"

// hostileFileName, escapedFileName: a file name as hostile as hostileName
// and how the commands print it. Windows file names cannot hold characters
// below U+0020, so there it is made of C1 controls, which they can: CSI
// (U+009B, ESC [ to an 8-bit terminal) and NEL (U+0085, a line break).
var hostileFileName, escapedFileName = func() (string, string) {
	if runtime.GOOS == "windows" {
		return "a\u009b2Jb\u0085valid", `a\u009b2Jb\u0085valid`
	}
	return hostileName, `a\x1b[2Jb\nvalid`
}()

// requireSafeOutput fails if out holds a control character other than
// newline (and the tabs of help texts), invalid UTF-8, or a line that
// starts with "valid" but for the one validate itself may print.
func requireSafeOutput(t *testing.T, out string) {
	t.Helper()
	require.True(t, utf8.ValidString(out), "invalid UTF-8 in %q", out)
	require.NotContains(t, out, "\x1b", "an ESC byte reached the output")
	for i, line := range strings.Split(out, "\n") {
		require.False(t, strings.ContainsFunc(line, func(r rune) bool { return r != '\t' && folder.IsControl(r) }),
			"line %d: control character in %q", i+1, line)
		require.False(t, strings.HasPrefix(strings.TrimSpace(line), "valid") && !strings.HasPrefix(line, "valid: "),
			"line %d is forged: %q", i+1, line)
	}
}

func TestSafeWriter(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		want   string
	}{
		{"plain text unchanged", []string{"unet  diffusers.UNet2DConditionModel  [model]\n\tx\n"}, "unet  diffusers.UNet2DConditionModel  [model]\n\tx\n"},
		{"ESC escaped, newline kept", []string{"a\x1b[2Jb\n"}, `a\x1b[2Jb` + "\n"},
		{"CRLF kept, a lone CR escaped", []string{"a\r\nb\rc\r"}, "a\r\n" + `b\rc\r`},
		{"DEL and C1 escaped", []string{"a\x7fb\u009bc\u0085"}, `a\x7fb\u009bc\u0085`},
		{"bidi override escaped", []string{"evil\u202egpj.exe"}, `evil\u202egpj.exe`},
		{"invalid UTF-8 escaped", []string{"bad\xff\n"}, `bad\xff` + "\n"},
		{"a rune split between writes kept", []string{"caf\xc3", "\xa9\n"}, "café\n"},
		{"a bidi override split between writes escaped", []string{"a\xe2\x80", "\xae", "b"}, `a\u202eb`},
		{"an incomplete rune at the end escaped by flush", []string{"ab\xe2\x80"}, `ab\xe2\x80`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := newSafeWriter(&buf)
			for _, s := range tt.writes {
				n, err := w.Write([]byte(s))
				require.NoError(t, err)
				require.Equal(t, len(s), n)
			}
			w.flush()
			assert.Equal(t, tt.want, buf.String())
		})
	}
}

func TestSafeWriterUnwraps(t *testing.T) {
	var buf bytes.Buffer
	w := newSafeWriter(&buf)
	assert.Same(t, w, newSafeWriter(w), "not wrapped twice")
	assert.Equal(t, &buf, rawWriter(w))
	assert.False(t, isTerminal(w))
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	require.NoError(t, err)
	defer null.Close()
	assert.True(t, isTerminal(newSafeWriter(null)), "a character device under the wrapper is seen (the progress bar draws on it)")
	bar := newProgressBar(newSafeWriter(null))
	assert.Equal(t, null, bar.w, "the progress bar writes its own \\r and erase-line raw")
}

// JSON output stays JSON with the exact names, and passes the wrapper
// unchanged: no character in it for a terminal to obey.
func TestJSONSafe(t *testing.T) {
	names := []string{hostileName, "del\x7f", "c1\u009b2J", "nel\u0085", "rlo\u202eexe", "lri\u2066", "rlm\u200f", "ls\u2028",
		"plain.weight", "模型", `quote"back\slash`}
	var pretty, lines bytes.Buffer
	require.NoError(t, printJSON(&pretty, names))
	b, err := marshalJSON(names)
	require.NoError(t, err)
	lines.Write(b)
	for _, out := range []string{pretty.String(), lines.String()} {
		requireSafeOutput(t, out)
		var back []string
		require.NoError(t, json.Unmarshal([]byte(out), &back), out)
		assert.Equal(t, names, back)

		var through bytes.Buffer
		w := newSafeWriter(&through)
		w.Write([]byte(out))
		w.flush()
		assert.Equal(t, out, through.String(), "the wrapper leaves safe JSON as it is")
	}
}

func TestPrintReportEscapesMessages(t *testing.T) {
	var out bytes.Buffer
	printReport(&out, &pipeline.Report{
		Problems: []pipeline.Finding{{Code: "tensor-data", Message: "unet: tensor " + hostileName + " differs"}},
		Warnings: []pipeline.Finding{{Code: "lossy-variant", Message: "x\u202e: " + hostileName}},
	})
	requireSafeOutput(t, out.String())
	assert.Equal(t, `problem: unet: tensor a\x1b[2Jb\nvalid differs`+"\n"+
		`warning: x\u202e: a\x1b[2Jb\nvalid`+"\n"+
		"1 problem found\n", out.String())
}

// writeHostilePipeline writes a pipeline whose names would drive the
// terminal: a tensor named hostileName, a file named after it, a root file
// with a right-to-left override.
func writeHostilePipeline(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "model_index.json"), []byte(`{
  "_class_name": "StableDiffusionPipeline",
  "_diffusers_version": "0.30.0\u001b]0;pwned\u0007",
  "unet": ["diffusers", "UNet2DConditionModel"]
}
`), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "notes\u202etxt.md"), []byte("hi"), 0o644))
	unet := filepath.Join(dir, "unet")
	require.NoError(t, os.MkdirAll(unet, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(unet, "config.json"), []byte(`{"_class_name": "UNet2DConditionModel"}`), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(unet, hostileFileName), []byte("x"), 0o644))
	_, err := tensors.WriteSharded(context.Background(), unet, []tensors.WriteTensor{
		{Name: "conv_in.weight", DType: tensors.F32, Shape: []int64{4}, Data: tensors.Bytes(make([]byte, 16))},
		{Name: hostileName, DType: tensors.F32, Shape: []int64{4}, Data: tensors.Bytes(make([]byte, 16))},
	}, tensors.ShardedOptions{MaxShardSize: 1 << 30, Base: "diffusion_pytorch_model"})
	require.NoError(t, err)
	return dir
}

func TestInspectHostileNames(t *testing.T) {
	dir := writeHostilePipeline(t)
	var stdout, stderr bytes.Buffer
	require.Equal(t, ExitOK, Run([]string{"inspect", dir, "--tensors"}, &stdout, &stderr), stderr.String())
	requireSafeOutput(t, stdout.String()+stderr.String())
	out := stdout.String()
	assert.Contains(t, out, `"a\x1b[2Jb\nvalid"`, "the tensor is listed, escaped")
	assert.Contains(t, out, `"0.30.0\x1b]0;pwned\a"`)
	assert.Contains(t, out, `"notes\u202etxt.md"`)
	assert.Contains(t, out, "conv_in.weight", "plain names as they are")

	stdout.Reset()
	require.Equal(t, ExitOK, Run([]string{"inspect", "--json", dir}, &stdout, &stderr), stderr.String())
	requireSafeOutput(t, stdout.String())
	var rep inspectReport
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &rep))
	assert.Equal(t, "0.30.0\x1b]0;pwned\a", rep.Diffusers)
	var names []string
	for _, c := range rep.Components {
		for _, w := range c.Weights {
			for _, sh := range w.Shards {
				for _, tn := range sh.Tensors {
					names = append(names, tn.Name)
				}
			}
		}
	}
	assert.ElementsMatch(t, []string{"conv_in.weight", hostileName}, names, "JSON keeps the exact names")
}

func TestSaveAndValidateHostileNames(t *testing.T) {
	src := writeHostilePipeline(t)
	dst := filepath.Join(t.TempDir(), "out")
	var stdout, stderr bytes.Buffer
	require.Equal(t, ExitOK, Run([]string{"save", src, dst}, &stdout, &stderr), stderr.String()+stdout.String())
	requireSafeOutput(t, stdout.String()+stderr.String())

	// Break the hostile tensor's bytes, and add a variant of a hostile name:
	// validate names both, escaped, each on its one line.
	p := filepath.Join(dst, "unet", "diffusion_pytorch_model.safetensors")
	data, err := os.ReadFile(p)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dst, "unet", "diffusion_pytorch_model."+hostileFileName+".safetensors"), data, 0o644))
	h, err := tensors.ReadHeaderFile(p)
	require.NoError(t, err)
	ti, ok := h.Tensor(hostileName)
	require.True(t, ok)
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	b[h.DataStart+ti.Begin]++
	require.NoError(t, os.WriteFile(p, b, 0o644))
	stdout.Reset()
	stderr.Reset()
	require.Equal(t, ExitProblems, Run([]string{"validate", dst, "--against", src}, &stdout, &stderr), stderr.String())
	requireSafeOutput(t, stdout.String()+stderr.String())
	assert.Contains(t, stdout.String(), `"a\x1b[2Jb\nvalid"`)
	assert.Contains(t, stdout.String(), "variant "+escapedFileName)
	assert.Contains(t, stdout.String(), "2 problems found")

	stdout.Reset()
	require.Equal(t, ExitProblems, Run([]string{"validate", "--json", dst, "--against", src}, &stdout, &stderr))
	requireSafeOutput(t, stdout.String())
	var rep pipeline.Report
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &rep))
	require.Len(t, rep.Problems, 2)
	assert.Contains(t, rep.Problems[0].Message+rep.Problems[1].Message, "variant "+hostileFileName, "JSON keeps the exact name")
}

// A card is a document: to a pipe or file its bytes go out as they are
// (a README.md's CRLF and anything else in its text), while its problems,
// printed as messages, are escaped.
func TestCardHostileReadme(t *testing.T) {
	dir := writePipeline(t)
	body := "# Model\r\nsee \x1b[1mthis\x1b[0m\r\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "README.md"), []byte("---\nlicense: mit\n---\n"+body), 0o644))
	var stdout, stderr bytes.Buffer
	require.Equal(t, ExitOK, Run([]string{"card", dir}, &stdout, &stderr), stderr.String())
	assert.Contains(t, stdout.String(), body, "the README's text byte for byte")

	require.NoError(t, os.WriteFile(filepath.Join(dir, "README.md"), []byte("---\nlicense: \"mit\\e[2J\\nvalid\"\n---\nx\n"), 0o644))
	stdout.Reset()
	stderr.Reset()
	require.Equal(t, ExitProblems, Run([]string{"card", dir}, &stdout, &stderr))
	requireSafeOutput(t, stderr.String())
	assert.Contains(t, stderr.String(), "nothing written")
	assert.Empty(t, stdout.String())
}

// What a Hub sends about a token is printed escaped too.
func TestPrintWhoamiHostileHub(t *testing.T) {
	var out bytes.Buffer
	printWhoami(&out, whoamiJSON{Endpoint: "http://127.0.0.1:1", User: "eve\x1b[2J", Fullname: "Eve\nvalid",
		Orgs:  []orgJSON{{Name: "org\u202e", Role: "admin\r"}},
		Token: tokenJSON{Name: "tok\x1b", Role: "write\x07", Masked: "hf_…wxyz"}})
	requireSafeOutput(t, out.String())
	assert.Contains(t, out.String(), `user:       "eve\x1b[2J"`)
	assert.Contains(t, out.String(), `full name:  "Eve\nvalid"`)
	assert.Contains(t, out.String(), `orgs:       "org\u202e" ("admin\r")`)
	assert.Contains(t, out.String(), `token:      "tok\x1b", role "write\a"`)
}

func TestLocalhubLogLineIsOneLine(t *testing.T) {
	var out bytes.Buffer
	l := &lockedWriter{w: &out}
	l.printf("%s %s %d", "GET", "/api/models/a\n200 OK valid\x1b[2J", 404)
	assert.Equal(t, `GET /api/models/a\n200 OK valid\x1b[2J 404`+"\n", out.String())
}
