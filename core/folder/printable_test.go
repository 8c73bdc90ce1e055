package folder_test

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/folder"
)

func TestPrintable(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain tensor name", "down_blocks.0.attentions.1.proj_in.weight", "down_blocks.0.attentions.1.proj_in.weight"},
		{"plain path", "unet/diffusion_pytorch_model-00001-of-00002.safetensors", "unet/diffusion_pytorch_model-00001-of-00002.safetensors"},
		{"empty", "", ""},
		{"spaces and quotes inside", `my model's "best" weights`, `my model's "best" weights`},
		{"non-ASCII letters", "模型/权重.safetensors", "模型/权重.safetensors"},
		{"emoji with a zero-width joiner", "👩\u200d💻", "👩\u200d💻"},
		{"a literal backslash escape is not an escape", `a\x1b`, `a\x1b`},
		{"ESC and a forged line", "a\x1b[2Jb\nvalid", `"a\x1b[2Jb\nvalid"`},
		{"tab", "a\tb", `"a\tb"`},
		{"carriage return", "100%\rvalid", `"100%\rvalid"`},
		{"NUL", "a\x00b", `"a\x00b"`},
		{"DEL", "a\x7fb", `"a\x7fb"`},
		{"C1 CSI", "a\u009b2Jb", `"a\u009b2Jb"`},
		{"C1 next line", "a\u0085b", `"a\u0085b"`},
		{"right-to-left override", "evil\u202egpj.exe", `"evil\u202egpj.exe"`},
		{"left-to-right isolate", "a\u2066b\u2069", `"a\u2066b\u2069"`},
		{"right-to-left mark", "a\u200fb", `"a\u200fb"`},
		{"line separator", "a\u2028valid", `"a\u2028valid"`},
		{"invalid UTF-8", "bad\xffname", `"bad\xffname"`},
		{"truncated UTF-8", "bad\xe2\x80", `"bad\xe2\x80"`},
		{"a name that begins with a quote", `"valid"`, `"\"valid\""`},
		{"a quote and a backslash beside an ESC", "\"a\\\x1b", `"\"a\\\x1b"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := folder.Printable(tt.in)
			assert.Equal(t, tt.want, got, "Printable(%q)", tt.in)
			if got != tt.in {
				back, err := strconv.Unquote(got)
				require.NoError(t, err)
				assert.Equal(t, tt.in, back, "the escaped form reads back as the name")
			}
		})
	}
}

func TestPrintableText(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain message", `unet/x.safetensors: tensor "a\x1b": missing`, `unet/x.safetensors: tensor "a\x1b": missing`},
		{"ESC and newline", "x: tensor a\x1b[2J\nvalid", `x: tensor a\x1b[2J\nvalid`},
		{"tab and CR", "a\tb\rc", `a\tb\rc`},
		{"DEL and C1", "a\x7f\u009bb", `a\x7f\u009bb`},
		{"bidi", "a\u202eb\u2067c", `a\u202eb\u2067c`},
		{"invalid UTF-8", "a\xff\xe2\x80b", `a\xff\xe2\x80b`},
		{"quotes kept", "\"a\x1bb\"", `"a\x1bb"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, folder.PrintableText(tt.in), "PrintableText(%q)", tt.in)
		})
	}
}

func TestIsControl(t *testing.T) {
	tests := []struct {
		r    rune
		want bool
	}{
		{0x00, true}, {'\t', true}, {'\n', true}, {0x1b, true}, {0x1f, true}, {' ', false}, {'~', false},
		{0x7f, true}, {0x80, true}, {0x9f, true}, {0xa0, false}, {'é', false},
		{0x061b, false}, {0x061c, true}, {0x200d, false}, {0x200e, true}, {0x200f, true}, {0x2027, false},
		{0x2028, true}, {0x2029, true}, {0x202a, true}, {0x202e, true}, {0x202f, false},
		{0x2065, false}, {0x2066, true}, {0x2069, true}, {0x206a, false}, {utf8.RuneError, false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, folder.IsControl(tt.r), "IsControl(%U)", tt.r)
	}
}

// hasControl reports a control character or invalid UTF-8 in s.
func hasControl(s string) bool {
	if !utf8.ValidString(s) {
		return true
	}
	return strings.ContainsFunc(s, folder.IsControl)
}

// checkPrintable holds Printable's and PrintableText's contract for s.
func checkPrintable(t *testing.T, s string) {
	t.Helper()
	p := folder.Printable(s)
	if hasControl(p) {
		t.Fatalf("Printable(%q) = %q: holds a control character", s, p)
	}
	plain := !hasControl(s) && !strings.HasPrefix(s, `"`)
	if plain != (p == s) {
		t.Fatalf("Printable(%q) = %q; plain name: %v, unchanged: %v", s, p, plain, p == s)
	}
	if !plain {
		if back, err := strconv.Unquote(p); err != nil || back != s {
			t.Fatalf("Printable(%q) = %q, which unquotes to %q (%v)", s, p, back, err)
		}
	}
	pt := folder.PrintableText(s)
	if hasControl(pt) {
		t.Fatalf("PrintableText(%q) = %q: holds a control character", s, pt)
	}
	if !hasControl(s) && pt != s {
		t.Fatalf("PrintableText(%q) = %q: changed a clean text", s, pt)
	}
}

// Every rune and every byte alone and between letters, then random strings
// mixing plain and hostile characters: no output holds a control character,
// plain names come back unchanged, escaped ones unquote to the name.
func TestPrintableProperties(t *testing.T) {
	for r := rune(0); r <= utf8.MaxRune; r++ {
		if r == 0xd800 { // surrogates cannot be encoded; they are covered as bytes below
			r = 0xe000
		}
		checkPrintable(t, string(r))
		checkPrintable(t, "a"+string(r)+"b")
	}
	for b := 0; b < 256; b++ {
		checkPrintable(t, string([]byte{byte(b)}))
		checkPrintable(t, "a"+string([]byte{byte(b)})+"b")
	}
	alphabet := []string{"a", "Z", ".", "/", `"`, `\`, "'", " ", "é", "模", "👩", "\u200d", "\x1b", "\n", "\r", "\t",
		"\x00", "\x7f", "\u0085", "\u009b", "\u202e", "\u2066", "\u200f", "\u2028", "\xff", "\xe2", "\x80", "\xed\xa0\x80"}
	rng := rand.New(rand.NewPCG(11, 1))
	for range 20000 {
		var b strings.Builder
		for range rng.IntN(12) {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		checkPrintable(t, b.String())
	}
}

func TestReason(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope", "model_index.json")
	_, statErr := os.Stat(missing)
	require.Error(t, statErr)
	_, openErr := os.Open(missing)
	require.Error(t, openErr)
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"stat of a missing path", statErr, missing + ": no such file or folder"},
		{"wrapped open of a missing path", fmt.Errorf("stage: %w", openErr), "stage: " + missing + ": no such file or folder"},
		{"Windows' words", &fs.PathError{Op: "GetFileAttributesEx", Path: `C:\m`, Err: fs.ErrNotExist}, `C:\m: no such file or folder`},
		{"refused access", fmt.Errorf("save: %w", &fs.PathError{Op: "open", Path: "/m/x", Err: fs.ErrPermission}), "save: /m/x: permission denied"},
		{"another path error", &fs.PathError{Op: "read", Path: "/m/x", Err: io.ErrUnexpectedEOF}, "read /m/x: unexpected EOF"},
		{"not a path error", errors.New("hub: unauthorized"), "hub: unauthorized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, folder.Reason(tt.err))
		})
	}
}
