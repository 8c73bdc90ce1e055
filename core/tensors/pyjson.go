package tensors

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MarshalPythonJSON encodes v exactly as Python's
//
//	json.dumps(v, indent=2, sort_keys=True) + "\n"
//
// which is how diffusers writes model_index.json, config.json,
// scheduler_config.json and *.safetensors.index.json (configuration_utils
// to_json_string, ModelMixin.save_pretrained), and how transformers writes
// config.json and its index files.
//
// The byte format: 2-space indentation, one element per line, ", " is never
// used (items end in ","), keys and values are separated by ": ", empty
// objects and arrays are "{}" and "[]", object keys are sorted by Unicode
// code point, ensure_ascii is on (every character outside ' '..'~' is
// written as \uXXXX with lowercase hex, astral characters as surrogate
// pairs, \" \\ \n \r \t \b \f by name), '/' '<' '>' '&' are not escaped,
// and a final newline is added.
//
// Supported values: nil, bool, string, json.Number, json.RawMessage (decoded
// and re-encoded in this format), all Go integer types, float32 and float64,
// and maps with string keys and slices/arrays of those (map[string]any,
// []any, map[string]string, []string, ...).
//
// A json.Number with no '.', 'e' or 'E' is a Python int and is written
// canonically ("-0" becomes "0", big values keep all digits); any other
// json.Number and every Go float is a Python float and is written with
// Python's repr(float): the shortest round-trip digits, in positional
// notation when the decimal exponent is in [-4, 16) ("0.0001", "100.0",
// "1000000000000000.0") and in scientific notation otherwise ("1e-05",
// "1e+16", "1.5e-07"). NaN and ±Inf are written as NaN, Infinity and
// -Infinity, as Python does by default (allow_nan=True).
//
// Invalid UTF-8 in strings is written as \ufffd. Keys are sorted as Go
// strings (byte order), which for valid UTF-8 is exactly code point order,
// Python's str order.
func MarshalPythonJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	if err := pyEncodeValue(&b, reflect.ValueOf(v), 0); err != nil {
		return nil, err
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

// ParsePythonJSON decodes one JSON value into the generic form that
// MarshalPythonJSON re-encodes unchanged: map[string]any, []any, string,
// bool, nil and json.Number (so 1.0 stays a float and 1 an int when written
// back). Trailing data after the value is an error. Duplicate keys keep the
// last value, as Python does. Unlike Python it rejects the non-standard
// literals NaN, Infinity and -Infinity.
func ParsePythonJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("invalid JSON: data after the top-level value")
	}
	return v, nil
}

var (
	pyRawMessageType = reflect.TypeFor[json.RawMessage]()
	pyNumberType     = reflect.TypeFor[json.Number]()
	pyStringMapType  = reflect.TypeFor[map[string]string]()
)

const pyIndentUnit = "  "

// pyMaxDepth bounds nesting (and so catches cyclic values); it equals the
// nesting limit of encoding/json's decoder, so anything ParsePythonJSON
// returns can be encoded.
const pyMaxDepth = 10000

func pyNewline(b *bytes.Buffer, depth int) {
	b.WriteByte('\n')
	for range depth {
		b.WriteString(pyIndentUnit)
	}
}

func pyEncodeValue(b *bytes.Buffer, v reflect.Value, depth int) error {
	if depth > pyMaxDepth {
		return fmt.Errorf("python json: nesting deeper than %d (a cyclic value?)", pyMaxDepth)
	}
	for n := 0; v.IsValid() && (v.Kind() == reflect.Interface || v.Kind() == reflect.Pointer); n++ {
		if v.IsNil() {
			b.WriteString("null")
			return nil
		}
		if n == 100 {
			return fmt.Errorf("python json: too many pointer indirections (a cyclic value?)")
		}
		v = v.Elem()
	}
	if !v.IsValid() {
		b.WriteString("null")
		return nil
	}
	switch v.Type() {
	case pyRawMessageType:
		raw := v.Bytes()
		if raw == nil {
			b.WriteString("null")
			return nil
		}
		x, err := ParsePythonJSON(raw)
		if err != nil {
			return fmt.Errorf("json.RawMessage: %w", err)
		}
		return pyEncodeValue(b, reflect.ValueOf(x), depth)
	case pyNumberType:
		return pyEncodeNumber(b, v.String())
	}
	switch v.Kind() {
	case reflect.Bool:
		if v.Bool() {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case reflect.String:
		pyEncodeString(b, v.String())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		b.WriteString(strconv.FormatInt(v.Int(), 10))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		b.WriteString(strconv.FormatUint(v.Uint(), 10))
	case reflect.Float32, reflect.Float64:
		b.WriteString(PythonFloatRepr(v.Float()))
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			return fmt.Errorf("python json: unsupported map key type %s", v.Type().Key())
		}
		if v.IsNil() || v.Len() == 0 {
			b.WriteString("{}")
			return nil
		}
		if v.Type() == pyStringMapType {
			// An index's weight_map: a million entries, without a
			// reflect.Value per key and value.
			m := v.Interface().(map[string]string)
			keys := slices.Sorted(maps.Keys(m))
			b.WriteByte('{')
			for i, k := range keys {
				if i > 0 {
					b.WriteByte(',')
				}
				pyNewline(b, depth+1)
				pyEncodeString(b, k)
				b.WriteString(": ")
				pyEncodeString(b, m[k])
			}
			pyNewline(b, depth)
			b.WriteByte('}')
			return nil
		}
		type entry struct {
			k string
			v reflect.Value
		}
		entries := make([]entry, 0, v.Len())
		for it := v.MapRange(); it.Next(); {
			entries = append(entries, entry{it.Key().String(), it.Value()})
		}
		slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.k, b.k) })
		b.WriteByte('{')
		for i, e := range entries {
			if i > 0 {
				b.WriteByte(',')
			}
			pyNewline(b, depth+1)
			pyEncodeString(b, e.k)
			b.WriteString(": ")
			if err := pyEncodeValue(b, e.v, depth+1); err != nil {
				return fmt.Errorf("%q: %w", e.k, err)
			}
		}
		pyNewline(b, depth)
		b.WriteByte('}')
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.IsNil() || v.Len() == 0 {
			b.WriteString("[]")
			return nil
		}
		b.WriteByte('[')
		for i := range v.Len() {
			if i > 0 {
				b.WriteByte(',')
			}
			pyNewline(b, depth+1)
			if err := pyEncodeValue(b, v.Index(i), depth+1); err != nil {
				return fmt.Errorf("[%d]: %w", i, err)
			}
		}
		pyNewline(b, depth)
		b.WriteByte(']')
	default:
		return fmt.Errorf("python json: unsupported type %s", v.Type())
	}
	return nil
}

// pyEncodeNumber writes a json.Number the way Python re-encodes the int or
// float that json.loads makes of it.
func pyEncodeNumber(b *bytes.Buffer, s string) error {
	if !pyIsJSONNumber(s) {
		return fmt.Errorf("python json: invalid number %q", s)
	}
	if !strings.ContainsAny(s, ".eE") { // a Python int
		if s == "-0" {
			s = "0"
		}
		b.WriteString(s)
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && f == 0 { // ErrRange with ±Inf is what Python gives too
		return fmt.Errorf("python json: invalid number %q", s)
	}
	b.WriteString(PythonFloatRepr(f))
	return nil
}

// pyIsJSONNumber checks the RFC 8259 number grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func pyIsJSONNumber(s string) bool {
	i := 0
	digits := func() int {
		n := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(s) && s[i] == '-' {
		i++
	}
	if i < len(s) && s[i] == '0' {
		i++
	} else if digits() == 0 {
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

// PythonFloatRepr returns Python's repr(f) as json.dumps writes it: the
// shortest digits that round-trip, positional when the decimal exponent
// (of the form d.ddd×10^x) satisfies -4 <= x < 16 and scientific otherwise,
// with ".0" added to integral positional values; NaN, Infinity, -Infinity.
func PythonFloatRepr(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	if f == 0 {
		if math.Signbit(f) {
			return "-0.0"
		}
		return "0.0"
	}
	// 'e' with precision -1 gives the shortest round-trip digits, e.g.
	// "1.5e-07", "1e+16", with at least two exponent digits like Python.
	e := strconv.FormatFloat(f, 'e', -1, 64)
	exp, _ := strconv.Atoi(e[strings.IndexByte(e, 'e')+1:])
	if exp < -4 || exp >= 16 {
		return e
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

// pyEncodeString writes s as Python's json encoder with ensure_ascii=True.
func pyEncodeString(b *bytes.Buffer, s string) {
	b.Write(appendPyString(b.AvailableBuffer(), s))
}

// appendPyString appends s as Python's json encoder with ensure_ascii=True
// writes it.
func appendPyString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	u4 := func(r rune) {
		b = append(b, '\\', 'u', hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
	}
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			i++
			switch c {
			case '"':
				b = append(b, `\"`...)
			case '\\':
				b = append(b, `\\`...)
			case '\n':
				b = append(b, `\n`...)
			case '\r':
				b = append(b, `\r`...)
			case '\t':
				b = append(b, `\t`...)
			case '\b':
				b = append(b, `\b`...)
			case '\f':
				b = append(b, `\f`...)
			default:
				if c < 0x20 || c == 0x7f {
					u4(rune(c))
				} else {
					b = append(b, c)
				}
			}
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size // invalid UTF-8 gives utf8.RuneError (U+FFFD), size 1
		if r >= 0x10000 {
			r -= 0x10000
			u4(0xd800 | r>>10&0x3ff)
			u4(0xdc00 | r&0x3ff)
		} else {
			u4(r)
		}
	}
	return append(b, '"')
}

// pyStringLen is the length of what pyEncodeString writes for s.
func pyStringLen(s string) int {
	n := 2
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			i++
			switch {
			case c == '"', c == '\\', c == '\n', c == '\r', c == '\t', c == '\b', c == '\f':
				n += 2
			case c < 0x20 || c == 0x7f:
				n += 6
			default:
				n++
			}
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if r >= 0x10000 {
			n += 12
		} else {
			n += 6
		}
	}
	return n
}
