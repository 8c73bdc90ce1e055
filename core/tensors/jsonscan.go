package tensors

import (
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// jsonScanner reads strict RFC 8259 JSON from a byte slice, one value or
// token at a time, for the two big inputs of this package: safetensors
// headers (up to 100 MB) and shard indexes. It accepts exactly what
// encoding/json accepts and decodes strings as it does (invalid surrogate
// escapes and invalid UTF-8 become U+FFFD), but allocates nothing per
// token: encoding/json's Decoder.Token boxes every token in an interface
// and parsed a 94 MB header of 1.3 M tensors in about 10 s and 1 GB of
// garbage; this reads it in well under a second.
type jsonScanner struct {
	data []byte
	pos  int
	buf  []byte // the decoded text of the last string that had escapes
	// short is set by an error found at the end of data: with more
	// input, there might have been none.
	short bool
}

// jsonMaxDepth is encoding/json's nesting limit.
const jsonMaxDepth = 10000

// jsonSyntaxError is a JSON syntax error. Offset counts the bytes read
// before the error, the offending one included, as json.SyntaxError does.
type jsonSyntaxError struct {
	msg    string
	Offset int64
}

func (e *jsonSyntaxError) Error() string { return e.msg }

func (s *jsonScanner) skipWS() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// more skips whitespace and reports whether a byte follows.
func (s *jsonScanner) more() bool {
	s.skipWS()
	return s.pos < len(s.data)
}

// consume skips whitespace and then c, reporting whether c was there.
func (s *jsonScanner) consume(c byte) bool {
	s.skipWS()
	if s.pos < len(s.data) && s.data[s.pos] == c {
		s.pos++
		return true
	}
	return false
}

func (s *jsonScanner) errEOF() error {
	s.short = true
	return &jsonSyntaxError{"unexpected end of JSON input", int64(len(s.data))}
}

// errAt reports the byte at i as unexpected in context ctx, or the end of
// the input when there is none.
func (s *jsonScanner) errAt(i int, ctx string) error {
	if i >= len(s.data) {
		return s.errEOF()
	}
	return &jsonSyntaxError{"invalid character " + quoteJSONChar(s.data[i]) + " " + ctx, int64(i) + 1}
}

// errIn is errAt for a byte inside a number, a literal or an escape: there,
// the end of the input is reported as encoding/json reports it, as the
// space its scanner feeds itself at the end.
func (s *jsonScanner) errIn(i int, ctx string) error {
	if i >= len(s.data) {
		s.short = true
		return &jsonSyntaxError{"invalid character ' ' " + ctx, int64(len(s.data))}
	}
	return s.errAt(i, ctx)
}

func errDepth(off int) error {
	return &jsonSyntaxError{"exceeded max depth", int64(off) + 1}
}

// quoteJSONChar formats c as encoding/json's error messages do.
func quoteJSONChar(c byte) string {
	if c == '\'' {
		return `'\''`
	}
	if c == '"' {
		return `'"'`
	}
	s := strconv.Quote(string(rune(c)))
	return "'" + s[1:len(s)-1] + "'"
}

// afterValue consumes the ',' or the closing byte that follows a member of
// an object (close '}') or an element of an array (close ']'); done is
// true at the closing byte.
func (s *jsonScanner) afterValue(close byte) (done bool, err error) {
	s.skipWS()
	if s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ',':
			s.pos++
			return false, nil
		case close:
			s.pos++
			return true, nil
		}
	}
	if close == '}' {
		return false, s.errAt(s.pos, "after object key:value pair")
	}
	return false, s.errAt(s.pos, "after array element")
}

// key reads an object key and the ':' after it. The bytes are valid until
// the next string is read.
func (s *jsonScanner) key() ([]byte, error) {
	k, err := s.keyString()
	if err != nil {
		return nil, err
	}
	return k, s.colon()
}

// keyString reads an object key without the ':' after it.
func (s *jsonScanner) keyString() ([]byte, error) {
	s.skipWS()
	if s.pos >= len(s.data) || s.data[s.pos] != '"' {
		return nil, s.errAt(s.pos, "looking for beginning of object key string")
	}
	return s.str()
}

// colon reads the ':' after an object key.
func (s *jsonScanner) colon() error {
	if !s.consume(':') {
		return s.errAt(s.pos, "after object key")
	}
	return nil
}

// str reads the string starting at s.pos (a '"') and returns its decoded
// bytes: a slice of the input when there is nothing to decode, otherwise
// s.buf. Either is valid until the next call.
func (s *jsonScanner) str() ([]byte, error) {
	start := s.pos + 1
	i := start
	for i < len(s.data) {
		c := s.data[i]
		if c == '"' {
			s.pos = i + 1
			return s.data[start:i], nil
		}
		if c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			break
		}
		i++
	}
	s.buf = append(s.buf[:0], s.data[start:i]...)
	for {
		if i >= len(s.data) {
			s.pos = i
			return nil, s.errEOF()
		}
		c := s.data[i]
		switch {
		case c == '"':
			s.pos = i + 1
			return s.buf, nil
		case c < 0x20:
			return nil, s.errAt(i, "in string literal")
		case c == '\\':
			if i+1 >= len(s.data) {
				return nil, s.errIn(i+1, "in string escape code")
			}
			switch e := s.data[i+1]; e {
			case '"', '\\', '/':
				s.buf = append(s.buf, e)
			case 'b':
				s.buf = append(s.buf, '\b')
			case 'f':
				s.buf = append(s.buf, '\f')
			case 'n':
				s.buf = append(s.buf, '\n')
			case 'r':
				s.buf = append(s.buf, '\r')
			case 't':
				s.buf = append(s.buf, '\t')
			case 'u':
				r, err := s.hex4(i + 2)
				if err != nil {
					return nil, err
				}
				i += 6
				if utf16.IsSurrogate(r) {
					// A valid pair is one character; anything else is
					// U+FFFD, and a following \u is read on its own.
					r2, ok := rune(-1), false
					if i+1 < len(s.data) && s.data[i] == '\\' && s.data[i+1] == 'u' {
						if v, err := s.hex4(i + 2); err == nil {
							r2, ok = v, true
						}
					}
					if d := utf16.DecodeRune(r, r2); ok && d != utf8.RuneError {
						r = d
						i += 6
					} else {
						r = utf8.RuneError
					}
				}
				s.buf = utf8.AppendRune(s.buf, r)
				continue
			default:
				return nil, s.errIn(i+1, "in string escape code")
			}
			i += 2
		case c < utf8.RuneSelf:
			s.buf = append(s.buf, c)
			i++
		default:
			r, size := utf8.DecodeRune(s.data[i:])
			if r == utf8.RuneError && size == 1 {
				s.buf = utf8.AppendRune(s.buf, utf8.RuneError)
			} else {
				s.buf = append(s.buf, s.data[i:i+size]...)
			}
			i += size
		}
	}
}

// hex4 reads the four hex digits of a \u escape at i.
func (s *jsonScanner) hex4(i int) (rune, error) {
	var r rune
	for k := i; k < i+4; k++ {
		if k >= len(s.data) {
			return 0, s.errIn(k, `in \u hexadecimal character escape`)
		}
		c := s.data[k]
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, s.errIn(k, `in \u hexadecimal character escape`)
		}
		r = r<<4 | rune(c)
	}
	return r, nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// number reads the number starting at s.pos and returns its text.
func (s *jsonScanner) number() ([]byte, error) {
	start, i := s.pos, s.pos
	digits := func() {
		for i < len(s.data) && isDigit(s.data[i]) {
			i++
		}
	}
	if i < len(s.data) && s.data[i] == '-' {
		i++
	}
	switch {
	case i < len(s.data) && s.data[i] == '0':
		i++
	case i < len(s.data) && isDigit(s.data[i]):
		digits()
	default:
		return nil, s.errIn(i, "in numeric literal")
	}
	if i < len(s.data) && s.data[i] == '.' {
		i++
		if i >= len(s.data) || !isDigit(s.data[i]) {
			return nil, s.errIn(i, "after decimal point in numeric literal")
		}
		digits()
	}
	if i < len(s.data) && (s.data[i] == 'e' || s.data[i] == 'E') {
		i++
		if i < len(s.data) && (s.data[i] == '+' || s.data[i] == '-') {
			i++
		}
		if i >= len(s.data) || !isDigit(s.data[i]) {
			return nil, s.errIn(i, "in exponent of numeric literal")
		}
		digits()
	}
	s.pos = i
	return s.data[start:i], nil
}

// literal reads true, false or null, whichever word is.
func (s *jsonScanner) literal(word string) error {
	for k := 0; k < len(word); k++ {
		i := s.pos + k
		if i >= len(s.data) || s.data[i] != word[k] {
			return s.errIn(i, "in literal "+word+" (expecting "+quoteJSONChar(word[k])+")")
		}
	}
	s.pos += len(word)
	return nil
}

// describe names the value at s.pos for an error message, as
// describeToken did for encoding/json's tokens: an object or an array is
// named from its first byte; a scalar is read (and must be valid).
func (s *jsonScanner) describe() (string, error) {
	s.skipWS()
	if s.pos >= len(s.data) {
		return "", s.errEOF()
	}
	switch c := s.data[s.pos]; {
	case c == '{':
		return "an object", nil
	case c == '[':
		return "an array", nil
	case c == '"':
		if _, err := s.str(); err != nil {
			return "", err
		}
		return "a string", nil
	case c == '-' || isDigit(c):
		lit, err := s.number()
		if err != nil {
			return "", err
		}
		return "the number " + string(lit), nil
	case c == 't':
		return "a boolean", s.literal("true")
	case c == 'f':
		return "a boolean", s.literal("false")
	case c == 'n':
		return "null", s.literal("null")
	}
	return "", s.errAt(s.pos, "looking for beginning of value")
}

// skipValue reads and checks one value of any kind; depth is the nesting
// of the container holding it (0 at the top level).
func (s *jsonScanner) skipValue(depth int) error {
	s.skipWS()
	if s.pos >= len(s.data) {
		return s.errEOF()
	}
	switch c := s.data[s.pos]; {
	case c == '{':
		if depth+1 > jsonMaxDepth {
			return errDepth(s.pos)
		}
		s.pos++
		if s.consume('}') {
			return nil
		}
		for {
			if _, err := s.key(); err != nil {
				return err
			}
			if err := s.skipValue(depth + 1); err != nil {
				return err
			}
			if done, err := s.afterValue('}'); done || err != nil {
				return err
			}
		}
	case c == '[':
		if depth+1 > jsonMaxDepth {
			return errDepth(s.pos)
		}
		s.pos++
		if s.consume(']') {
			return nil
		}
		for {
			if err := s.skipValue(depth + 1); err != nil {
				return err
			}
			if done, err := s.afterValue(']'); done || err != nil {
				return err
			}
		}
	case c == '"':
		_, err := s.str()
		return err
	case c == '-' || isDigit(c):
		_, err := s.number()
		return err
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	}
	return s.errAt(s.pos, "looking for beginning of value")
}

// end checks that only whitespace follows the top-level value.
func (s *jsonScanner) end() error {
	if s.more() {
		return s.errAt(s.pos, "after top-level value")
	}
	return nil
}
