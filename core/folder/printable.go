package folder

import (
	"errors"
	"io/fs"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Names that come from a model folder (file names, tensor names in a
// safetensors header or an index, keys in a pickle, metadata) are untrusted
// text. Printed raw, an ESC can rewrite the user's terminal, a newline can
// forge a line of output ("valid"), and a bidi override can make a name read
// as another (CVE-2021-42574). Everything that prints such a name goes
// through Printable (a name) or PrintableText (a whole message).

// IsControl reports whether r must not reach a terminal or a log raw: a C0
// control (tab and newline included), DEL, a C1 control (U+0080–U+009F, which
// some terminals obey like ESC sequences), a bidirectional formatting
// character (the embeddings, overrides and isolates U+202A–U+202E and
// U+2066–U+2069, and the marks U+061C, U+200E, U+200F), or the line and
// paragraph separators U+2028 and U+2029.
func IsControl(r rune) bool {
	switch {
	case r < 0x20, r == 0x7f, 0x80 <= r && r <= 0x9f:
		return true
	case 0x202a <= r && r <= 0x202e, 0x2066 <= r && r <= 0x2069:
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f, r == 0x2028, r == 0x2029:
		return true
	}
	return false
}

// Printable returns a name (of a file, a tensor, a metadata key or value)
// in a form safe to print. A name without control characters (see
// [IsControl]) and valid UTF-8 is returned unchanged. Any other name is
// returned as a Go string literal, quoted, with the offending characters
// escaped: "a\x1b[2Jb\nvalid", "\u202eevil", "bad\xff". A name that itself
// begins with a double quote is quoted too, so the result is unambiguous:
// either it does not begin with a quote and is the name itself, or it does
// and strconv.Unquote turns it back into the name, byte for byte.
func Printable(s string) string {
	if !strings.HasPrefix(s, `"`) && clean(s) {
		return s
	}
	// strconv.Quote escapes every rune strconv.IsPrint refuses, which
	// covers all of IsControl, and every byte of invalid UTF-8.
	return strconv.Quote(s)
}

// PrintableText returns a message or a line built from parts that should
// already be printable (names passed through [Printable] or %q) with every
// control character that slipped through replaced by its Go escape (\n,
// \x1b, \u202e; \xff for a byte of invalid UTF-8), and nothing else changed:
// quotes and backslashes stay as they are, so the result reads as the
// message did, on one line. Unlike Printable, it cannot be undone; it is
// the last line of defence for whole messages (errors, warnings), not the
// way to print a name.
func PrintableText(s string) string {
	if clean(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b.WriteString(`\x`)
			b.WriteByte(hexDigits[s[i]>>4])
			b.WriteByte(hexDigits[s[i]&0xf])
		case IsControl(r):
			q := strconv.QuoteRune(r) // '\n', '\x1b', '\u202e'
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

const hexDigits = "0123456789abcdef"

// clean reports whether s is valid UTF-8 without control characters.
func clean(s string) bool {
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return false
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && n == 1) || IsControl(r) {
			return false
		}
		i += n
	}
	return true
}

// Reason is err's text with the operating system's words for a missing
// path or a refused access replaced by the same words on every OS: "stat
// D:\m: no such file or directory" on Linux and "GetFileAttributesEx
// D:\m: The system cannot find the file specified." on Windows both read
// "D:\m: no such file or folder". The system call's name goes too; it
// tells a user nothing. Any other error's text is returned as it is.
func Reason(err error) string {
	s := err.Error()
	var pe *fs.PathError
	if !errors.As(err, &pe) {
		return s
	}
	var why string
	switch {
	case errors.Is(pe.Err, fs.ErrNotExist):
		why = "no such file or folder"
	case errors.Is(pe.Err, fs.ErrPermission):
		why = "permission denied"
	default:
		return s
	}
	return strings.Replace(s, pe.Error(), pe.Path+": "+why, 1)
}
