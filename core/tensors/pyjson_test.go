package tensors

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPythonFloatRepr(t *testing.T) {
	// want is Python 3.11's json.dumps(float(in)).
	tests := []struct{ in, want string }{
		{"0", "0.0"},
		{"-0.0", "-0.0"},
		{"1", "1.0"},
		{"100.0", "100.0"},
		{"1.5", "1.5"},
		{"0.1", "0.1"},
		{"0.012", "0.012"},
		{"0.00085", "0.00085"},
		{"1e-05", "1e-05"},
		{"1e-06", "1e-06"},
		{"0.0001", "0.0001"},
		{"0.00001", "1e-05"},
		{"1e-4", "0.0001"},
		{"0.1e-3", "0.0001"},
		{"0.000123", "0.000123"},
		{"1e16", "1e+16"},
		{"1.5e16", "1.5e+16"},
		{"1e15", "1000000000000000.0"},
		{"9999999999999998", "9999999999999998.0"},
		{"12345678901234567", "1.2345678901234568e+16"},
		{"9007199254740993", "9007199254740992.0"},
		{"123456789012345678901234567890", "1.2345678901234568e+29"},
		{"1.7976931348623157e308", "1.7976931348623157e+308"},
		{"5e-324", "5e-324"},
		{"2.2250738585072014e-308", "2.2250738585072014e-308"},
		{"1e22", "1e+22"},
		{"1e21", "1e+21"},
		{"3.0", "3.0"},
		{"6.0", "6.0"},
		{"1.15", "1.15"},
		{"0.26130258", "0.26130258"},
		{"2.6592", "2.6592"},
		{"4.46", "4.46"},
		{"-1.5e-07", "-1.5e-07"},
		{"1234.5678", "1234.5678"},
		{"123456789.123456789", "123456789.12345679"},
		{"1.0000000000000002", "1.0000000000000002"},
		{"0.30000000000000004", "0.30000000000000004"},
		{"1e400", "Infinity"},
		{"-1e400", "-Infinity"},
	}
	for _, tt := range tests {
		f, err := strconv.ParseFloat(tt.in, 64)
		if err != nil {
			require.ErrorIs(t, err, strconv.ErrRange)
		}
		assert.Equal(t, tt.want, PythonFloatRepr(f), "repr(float(%q))", tt.in)
	}
	assert.Equal(t, "NaN", PythonFloatRepr(math.NaN()))
	assert.Equal(t, "1.0", PythonFloatRepr(float64(float32(1))))
	assert.Equal(t, "0.10000000149011612", PythonFloatRepr(float64(float32(0.1))))
}

// goldenCompare compares got with the golden file path, or rewrites the file
// with -update.
func goldenCompare(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got), "%s (rerun with -update if the change is intended)", path)
}

func TestMarshalPythonJSONEscapes(t *testing.T) {
	// testdata/pyjson/escapes.want.json was written by Python 3.11:
	// json.dumps(obj, indent=2, sort_keys=True) + "\n" of the same object.
	obj := map[string]any{
		"ascii":      "plain / <script>&amp; 'q' ~",
		"quote":      "a\"b\\c",
		"ctrl":       "\n\r\t\b\f\x00\x01\x1f\x7f\u0080",
		"latin":      "caf\u00e9 \u00f1",
		"bmp":        "\u65e5\u672c\u8a9e \u2028 \uffff \ue000",
		"astral":     "\U0001F600 \U0001D11E \U0010FFFF",
		"\u00e9":     1,
		"z":          2,
		"Z":          3,
		"\uffff":     4, // sorts before U+1F600: code point order, not UTF-16
		"\U0001F600": 5,
		"":           6,
		"a b":        7,
		"_x":         8,
		"10":         9,
		"9":          10,
		"\ue000":     11,
		"empty_obj":  map[string]any{},
		"empty_list": []any{},
		"nested": map[string]any{
			"list":   []any{1, 2.5, nil, true, false, "s", []any{}, map[string]any{}, []any{[]any{}}, map[string]any{"k": map[string]any{}}},
			"deeper": map[string]any{"a": []any{map[string]any{"b": []float64{0.1, math.Copysign(0, -1), 1e-07}}}},
		},
		"int_big":   json.Number("123456789012345678901234567890"),
		"neg":       -7,
		"float_int": 1.0,
		"float_big": 1e16,
		"inf":       math.Inf(1),
		"ninf":      math.Inf(-1),
		"nan":       math.NaN(),
	}
	got, err := MarshalPythonJSON(obj)
	require.NoError(t, err)
	goldenCompare(t, filepath.Join("testdata", "pyjson", "escapes.want.json"), got)
}

func TestMarshalPythonJSONNumbers(t *testing.T) {
	// want: Python 3.11 json.dumps(json.loads(in), indent=2, sort_keys=True).
	in := `{"a": 1, "b": 1.0, "c": 1e2, "d": -0, "e": 1E-7, "f": 12345678901234567890, "g": -0.0, "h": 0.1e1,
		"i": [1.5e300, 2.5E-300, 1e400], "j": 100, "k": 1e16, "l": 123456789012345678.0}`
	want := `{
  "a": 1,
  "b": 1.0,
  "c": 100.0,
  "d": 0,
  "e": 1e-07,
  "f": 12345678901234567890,
  "g": -0.0,
  "h": 1.0,
  "i": [
    1.5e+300,
    2.5e-300,
    Infinity
  ],
  "j": 100,
  "k": 1e+16,
  "l": 1.2345678901234568e+17
}
`
	v, err := ParsePythonJSON([]byte(in))
	require.NoError(t, err)
	got, err := MarshalPythonJSON(v)
	require.NoError(t, err)
	assert.Equal(t, want, string(got))
}

func TestMarshalPythonJSONGoTypes(t *testing.T) {
	type named string
	x := 5
	px := &x
	tests := []struct {
		name string
		in   any
		want string
	}{
		{"nil", nil, "null"},
		{"bool", false, "false"},
		{"string", "x", `"x"`},
		{"named string", named("y"), `"y"`},
		{"ints", []any{int8(-8), int16(16), int32(-32), int64(1 << 62), uint8(8), uint64(math.MaxUint64)},
			"[\n  -8,\n  16,\n  -32,\n  4611686018427387904,\n  8,\n  18446744073709551615\n]"},
		{"float32", float32(0.5), "0.5"},
		{"map[string]string", map[string]string{"b": "2", "a": "1"}, "{\n  \"a\": \"1\",\n  \"b\": \"2\"\n}"},
		{"named keys", map[named]int{"b": 2, "a": 1}, "{\n  \"a\": 1,\n  \"b\": 2\n}"},
		{"[]string", []string{"transformers", "CLIPTextModel"}, "[\n  \"transformers\",\n  \"CLIPTextModel\"\n]"},
		{"array", [2]any{nil, nil}, "[\n  null,\n  null\n]"},
		{"nil slice", []string(nil), "[]"},
		{"nil map", map[string]any(nil), "{}"},
		{"pointers", &px, "5"},
		{"nil pointer", (*int)(nil), "null"},
		{"raw", json.RawMessage(`{"b":[1,2.0],"a":{}}`), "{\n  \"a\": {},\n  \"b\": [\n    1,\n    2.0\n  ]\n}"},
		{"nil raw", json.RawMessage(nil), "null"},
		{"raw in map", map[string]any{"m": json.RawMessage(` "s" `)}, "{\n  \"m\": \"s\"\n}"},
		{"number", json.Number("-0.0"), "-0.0"},
		{"invalid UTF-8", "a\xffb", `"a\ufffdb"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := MarshalPythonJSON(tt.in)
			require.NoError(t, err)
			assert.Equal(t, tt.want+"\n", string(got))
		})
	}
}

func TestMarshalPythonJSONErrors(t *testing.T) {
	cyclic := map[string]any{}
	cyclic["self"] = cyclic
	var selfRef any
	selfRef = &selfRef
	tests := []struct {
		name string
		in   any
		msg  string
	}{
		{"struct", struct{ A int }{1}, "unsupported type struct"},
		{"chan", make(chan int), "unsupported type chan int"},
		{"int keys", map[int]string{1: "a"}, "unsupported map key type int"},
		{"nested", map[string]any{"a": []any{1, func() {}}}, `"a": [1]: python json: unsupported type func()`},
		{"bad number", json.Number("01"), `invalid number "01"`},
		{"bad number 2", json.Number("1."), `invalid number "1."`},
		{"bad number 3", json.Number("NaN"), `invalid number "NaN"`},
		{"bad raw", json.RawMessage(`{"a":`), "json.RawMessage"},
		{"cycle", cyclic, "nesting deeper than"},
		{"pointer cycle", selfRef, "too many pointer indirections"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := MarshalPythonJSON(tt.in)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.msg)
		})
	}
}

func TestParsePythonJSON(t *testing.T) {
	v, err := ParsePythonJSON([]byte(" {\"a\": [1, 1.0, null, true, \"x\"], \"a\": {\"dup\": 2}}\r\n"))
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"a": map[string]any{"dup": json.Number("2")}}, v, "the last duplicate wins, as in Python")

	v, err = ParsePythonJSON([]byte(`[1, 1.0]`))
	require.NoError(t, err)
	assert.Equal(t, []any{json.Number("1"), json.Number("1.0")}, v)

	for _, bad := range []string{``, `{`, `{} {}`, `{} x`, `[1,]`, `NaN`, `{"a": Infinity}`, `{'a': 1}`} {
		_, err := ParsePythonJSON([]byte(bad))
		assert.Error(t, err, "%q", bad)
	}
}

// TestMarshalPythonJSONRealFiles parses real config files written by
// diffusers / transformers and checks that MarshalPythonJSON writes them
// back byte for byte. For the four that were not written in that format,
// <name>.want.json holds Python's sorted json.dumps output instead (see
// testdata/pyjson/SOURCES.md).
func TestMarshalPythonJSONRealFiles(t *testing.T) {
	root := filepath.Join("testdata", "pyjson")
	differ := map[string]string{
		"sd15/scheduler/scheduler_config.json":               "keys not sorted",
		"sdxl-base/model_index.json":                         "keys not sorted",
		"sd35-large-partial/model_index.json":                "CRLF",
		"sd35-large-partial/scheduler/scheduler_config.json": "CRLF",
	}
	var n int
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".json") || strings.HasSuffix(path, ".want.json") {
			return err
		}
		rel := filepath.ToSlash(path[len(root)+1:])
		t.Run(rel, func(t *testing.T) {
			data, err := os.ReadFile(path)
			require.NoError(t, err)
			v, err := ParsePythonJSON(data)
			require.NoError(t, err)
			got, err := MarshalPythonJSON(v)
			require.NoError(t, err)
			why, differs := differ[rel]
			if !differs {
				assert.Equal(t, string(data), string(got), "diffusers/transformers wrote sorted json.dumps output")
				return
			}
			assert.NotEqual(t, string(data), string(got))
			if why == "CRLF" {
				assert.Equal(t, string(bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))), string(got))
			}
			goldenCompare(t, strings.TrimSuffix(path, ".json")+".want.json", got)
		})
		n++
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, 16, n)
}

func FuzzPythonJSON(f *testing.F) {
	_ = filepath.WalkDir(filepath.Join("testdata", "pyjson"), func(path string, d fs.DirEntry, err error) error {
		// Small files only: big seeds make the fuzzer spend its time
		// minimising.
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".json") {
			if data, err := os.ReadFile(path); err == nil && len(data) <= 1100 {
				f.Add(data)
			}
		}
		return nil
	})
	for _, s := range []string{`{"a": 1e400}`, `"\ud800"`, `"\ud83d\ude00"`, `[-0, -0.0, 1E5]`, "\"\xff\"", `{"\u0000": null}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := ParsePythonJSON(data)
		if err != nil {
			return
		}
		out, err := MarshalPythonJSON(v)
		if err != nil {
			t.Fatalf("MarshalPythonJSON of a parsed value: %v", err)
		}
		for _, c := range out {
			if c >= 0x80 || c < 0x20 && c != '\n' {
				t.Fatalf("output not printable ASCII: %q", out)
			}
		}
		v2, err := ParsePythonJSON(out)
		if err != nil {
			if bytes.Contains(out, []byte("Infinity")) {
				return // a float overflowed to ±Inf, which Python writes as Infinity
			}
			t.Fatalf("output does not parse: %v\n%s", err, out)
		}
		out2, err := MarshalPythonJSON(v2)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, out2) {
			t.Fatalf("not idempotent:\n%s\n%s", out, out2)
		}
	})
}
