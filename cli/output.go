package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"unicode/utf8"

	"modelpub/core/folder"
)

// Names printed by the commands come from untrusted files (a safetensors
// header, an index, a pickle, a folder listing). Each printer passes names
// through folder.Printable and whole messages through safeText; on top of
// that, Run wraps stdout and stderr in a safeWriter, so a control character
// that slipped through is escaped rather than obeyed by the terminal.
// --json output is escaped by jsonSafe and passes the wrapper unchanged.

// safeText is v's text (an error, a warning) on one line, with any control
// character escaped (folder.PrintableText).
func safeText(v any) string { return folder.PrintableText(fmt.Sprint(v)) }

// safeWriter escapes control characters (folder.IsControl) and invalid
// UTF-8 on their way to w, Go-style (\x1b, \u202e, \xff), except newline,
// tab and the CR of a CRLF. A UTF-8 sequence split between two writes is
// held back until the next write or flush, so it is never escaped by
// mistake. It is safe for concurrent use.
type safeWriter struct {
	mu    sync.Mutex
	w     io.Writer
	carry []byte // the incomplete UTF-8 sequence that ended the last write
}

// newSafeWriter wraps w, unless it is a safeWriter already.
func newSafeWriter(w io.Writer) *safeWriter {
	if s, ok := w.(*safeWriter); ok {
		return s
	}
	return &safeWriter{w: w}
}

func (s *safeWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	buf := p
	if len(s.carry) > 0 {
		buf = append(s.carry, p...)
		s.carry = nil
	}
	if cut := incompleteTail(buf); cut < len(buf) {
		s.carry = append([]byte(nil), buf[cut:]...)
		buf = buf[:cut]
	}
	if _, err := s.w.Write(escapeText(buf)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// flush writes (escaped) what an incomplete UTF-8 sequence left behind.
func (s *safeWriter) flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.carry) > 0 {
		s.w.Write(escapeText(s.carry))
		s.carry = nil
	}
}

// incompleteTail returns where a UTF-8 sequence that b ends in the middle
// of begins, or len(b).
func incompleteTail(b []byte) int {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax+1; i-- {
		if utf8.RuneStart(b[i]) {
			if b[i] >= utf8.RuneSelf && !utf8.FullRune(b[i:]) {
				return i
			}
			break
		}
	}
	return len(b)
}

// escapeText escapes b's control characters but newlines, tabs and the CR
// of a CRLF, by folder.PrintableText on the runs between them.
func escapeText(b []byte) []byte {
	out := make([]byte, 0, len(b))
	start := 0
	for i := 0; i < len(b); i++ {
		keep := b[i] == '\n' || b[i] == '\t' || (b[i] == '\r' && i+1 < len(b) && b[i+1] == '\n')
		if keep {
			out = append(out, folder.PrintableText(string(b[start:i]))...)
			out = append(out, b[i])
			start = i + 1
		}
	}
	return append(out, folder.PrintableText(string(b[start:]))...)
}

// rawWriter is the writer under a safeWriter, for output whose control
// characters are Modelpub's own (the progress bar's \r and erase-line) or
// a document that must stay byte for byte (a model card sent to a file).
func rawWriter(w io.Writer) io.Writer {
	if s, ok := w.(*safeWriter); ok {
		return s.w
	}
	return w
}

// isTerminal reports whether w (or the writer a safeWriter wraps) is a
// terminal.
func isTerminal(w io.Writer) bool {
	f, ok := rawWriter(w).(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// printJSON writes v as indented JSON, terminal-safe (see jsonSafe).
func printJSON(w io.Writer, v any) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := w.Write(jsonSafe(b.Bytes()))
	return err
}

// marshalJSON is json.Marshal, terminal-safe (see jsonSafe).
func marshalJSON(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return jsonSafe(b), nil
}

// jsonSafe escapes, as \uXXXX, the control characters encoding/json leaves
// raw inside strings (DEL, C1 controls, bidi formatting characters; it
// escapes C0 and U+2028/U+2029 itself, and replaces invalid UTF-8). Such
// characters only ever occur inside strings, so the result is the same JSON
// value, with nothing left for a terminal to obey.
func jsonSafe(b []byte) []byte {
	var out []byte
	start := 0
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r >= 0x7f && folder.IsControl(r) { // all in the BMP: one \u escape each
			if out == nil {
				out = make([]byte, 0, len(b)+32)
			}
			out = append(out, b[start:i]...)
			out = fmt.Appendf(out, `\u%04x`, r)
			start = i + n
		}
		i += n
	}
	if out == nil {
		return b
	}
	return append(out, b[start:]...)
}

// count is n and the noun, singular for one: "1 problem", "2 problems".
// plural is the noun's plural, "" for noun+"s".
func count(n int, noun, plural string) string {
	if n == 1 {
		return "1 " + noun
	}
	if plural == "" {
		plural = noun + "s"
	}
	return fmt.Sprintf("%d %s", n, plural)
}

// errPrefixes are the package names Modelpub's errors start with ("auth:
// no Hub token", "hub: whoami: unauthorized"); a command's line already
// starts with "modelpub CMD: ".
var errPrefixes = []string{"auth: ", "card: ", "folder: ", "hub: ", "pipeline: ", "publish: ", "tensors: ", "torchbin: "}

// errText is err's message for a command's line: errMessage, escaped by
// safeText.
func errText(err error) string { return safeText(errMessage(err)) }

// errMessage is err's message without the package prefixes it starts
// with, a missing path or a refused access worded the same on every OS
// (folder.Reason).
func errMessage(err error) string {
	s := folder.Reason(err)
	for again := true; again; {
		again = false
		for _, p := range errPrefixes {
			if strings.HasPrefix(s, p) {
				s, again = s[len(p):], true
			}
		}
	}
	return s
}
