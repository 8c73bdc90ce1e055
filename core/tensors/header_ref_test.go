package tensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// The reference header parser: the encoding/json Decoder.Token version the
// jsonScanner one replaced (it took ~10 s and 1 GB of garbage for a
// 1.3 M-tensor header). FuzzHeaderParsersAgree checks the two accept the
// same headers with the same result.

func parseHeaderRef(header []byte, fileSize int64) (*Header, error) {
	if !utf8.Valid(header) {
		return nil, formatErr(ErrHeaderUTF8, "", "")
	}
	if len(header) == 0 || header[0] != '{' {
		return nil, formatErr(ErrHeaderNotObject, "", "it must start with '{'")
	}
	h := &Header{HeaderLen: int64(len(header)), DataStart: 8 + int64(len(header)), FileSize: fileSize}
	if err := parseHeaderJSONRef(header, h); err != nil {
		return nil, err
	}
	if err := validateLayout(h); err != nil {
		return nil, err
	}
	return h, nil
}

// parseHeaderJSONRef decodes the header object token by token, keeping the
// key order of __metadata__ and rejecting duplicate names, which a decode
// into a map would silently merge.
func parseHeaderJSONRef(header []byte, h *Header) error {
	dec := json.NewDecoder(bytes.NewReader(header))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil { // the '{' checked by the caller
		return jsonErrRef(err, "")
	}
	seen := make(map[string]struct{})
	sawMeta := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return jsonErrRef(err, "")
		}
		name, ok := tok.(string)
		if !ok {
			return formatErr(ErrHeaderJSON, "", "object key is not a string")
		}
		if name == "__metadata__" {
			if sawMeta {
				return formatErr(ErrDuplicateName, name, "")
			}
			sawMeta = true
			md, err := parseMetadataRef(dec)
			if err != nil {
				return err
			}
			h.Metadata = md
			continue
		}
		if name == "" {
			return formatErr(ErrEmptyName, "", "")
		}
		if _, dup := seen[name]; dup {
			return formatErr(ErrDuplicateName, name, "")
		}
		seen[name] = struct{}{}
		t, err := parseTensorRef(dec, name)
		if err != nil {
			return err
		}
		h.Tensors = append(h.Tensors, t)
	}
	if _, err := dec.Token(); err != nil { // closing '}'
		return jsonErrRef(err, "")
	}
	if tok, err := dec.Token(); err != io.EOF {
		if err != nil {
			return jsonErrRef(err, "")
		}
		return formatErr(ErrHeaderJSON, "", fmt.Sprintf("unexpected %v after the header object", tok))
	}
	return nil
}

func jsonErrRef(err error, tensor string) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return formatErr(ErrHeaderJSON, tensor, err.Error())
}

func parseMetadataRef(dec *json.Decoder) (Metadata, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, jsonErrRef(err, "")
	}
	if tok == nil { // "__metadata__": null is accepted as absent
		return nil, nil
	}
	if tok != json.Delim('{') {
		return nil, formatErr(ErrInvalidMetadata, "", fmt.Sprintf("found %s", describeTokenRef(tok)))
	}
	md := Metadata{}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, jsonErrRef(err, "")
		}
		key := kt.(string) // the decoder only yields string keys inside an object
		vt, err := dec.Token()
		if err != nil {
			return nil, jsonErrRef(err, "")
		}
		v, ok := vt.(string)
		if !ok {
			return nil, formatErr(ErrInvalidMetadata, "", fmt.Sprintf("key %q has %s", key, describeTokenRef(vt)))
		}
		if _, dup := md.Get(key); dup {
			return nil, formatErr(ErrInvalidMetadata, "", fmt.Sprintf("key %q appears twice", key))
		}
		md = append(md, MetadataEntry{key, v})
	}
	if _, err := dec.Token(); err != nil {
		return nil, jsonErrRef(err, "")
	}
	return md, nil
}

func describeTokenRef(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		if v == '{' {
			return "an object"
		}
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "the number " + string(v)
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%v", tok)
}

func parseTensorRef(dec *json.Decoder, name string) (TensorInfo, error) {
	t := TensorInfo{Name: name}
	tok, err := dec.Token()
	if err != nil {
		return t, jsonErrRef(err, name)
	}
	if tok != json.Delim('{') {
		return t, formatErr(ErrInvalidField, name, fmt.Sprintf("the entry is %s, not an object", describeTokenRef(tok)))
	}
	var haveDType, haveShape, haveOffsets bool
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return t, jsonErrRef(err, name)
		}
		switch field := kt.(string); field {
		case "dtype":
			if haveDType {
				return t, formatErr(ErrInvalidField, name, "dtype appears twice")
			}
			haveDType = true
			vt, err := dec.Token()
			if err != nil {
				return t, jsonErrRef(err, name)
			}
			s, ok := vt.(string)
			if !ok {
				return t, formatErr(ErrInvalidField, name, "dtype is "+describeTokenRef(vt)+", not a string")
			}
			d, ok := ParseDType(s)
			if !ok {
				return t, formatErr(ErrUnknownDType, name, strconv.Quote(s))
			}
			t.DType = d
		case "shape":
			if haveShape {
				return t, formatErr(ErrInvalidField, name, "shape appears twice")
			}
			haveShape = true
			dims, err := parseUintArrayRef(dec, name, "shape", -1)
			if err != nil {
				return t, err
			}
			t.Shape = dims
		case "data_offsets":
			if haveOffsets {
				return t, formatErr(ErrInvalidField, name, "data_offsets appears twice")
			}
			haveOffsets = true
			offs, err := parseUintArrayRef(dec, name, "data_offsets", 2)
			if err != nil {
				return t, err
			}
			t.Begin, t.End = offs[0], offs[1]
		default: // unknown fields are ignored, as serde does
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return t, jsonErrRef(err, name)
			}
		}
	}
	if _, err := dec.Token(); err != nil {
		return t, jsonErrRef(err, name)
	}
	switch {
	case !haveDType:
		return t, formatErr(ErrMissingField, name, "dtype")
	case !haveShape:
		return t, formatErr(ErrMissingField, name, "shape")
	case !haveOffsets:
		return t, formatErr(ErrMissingField, name, "data_offsets")
	}
	return t, nil
}

// parseUintArray reads an array of non-negative integers that fit in an
// int64. want < 0 accepts any length.
func parseUintArrayRef(dec *json.Decoder, name, field string, want int) ([]int64, error) {
	bad := ErrInvalidField
	if field == "shape" {
		bad = ErrInvalidShape
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, jsonErrRef(err, name)
	}
	if tok != json.Delim('[') {
		return nil, formatErr(bad, name, fmt.Sprintf("%s is %s, not an array", field, describeTokenRef(tok)))
	}
	out := []int64{}
	for dec.More() {
		vt, err := dec.Token()
		if err != nil {
			return nil, jsonErrRef(err, name)
		}
		num, ok := vt.(json.Number)
		if !ok {
			return nil, formatErr(bad, name, fmt.Sprintf("%s holds %s, not an integer", field, describeTokenRef(vt)))
		}
		v, err := strconv.ParseUint(string(num), 10, 64)
		if err != nil {
			var ne *strconv.NumError
			if errors.As(err, &ne) && ne.Err == strconv.ErrRange {
				return nil, formatErr(ErrOverflow, name, fmt.Sprintf("%s value %s", field, num))
			}
			return nil, formatErr(bad, name, fmt.Sprintf("%s value %s is not a non-negative integer", field, num))
		}
		if v > math.MaxInt64 {
			return nil, formatErr(ErrOverflow, name, fmt.Sprintf("%s value %s", field, num))
		}
		out = append(out, int64(v))
	}
	if _, err := dec.Token(); err != nil {
		return nil, jsonErrRef(err, name)
	}
	if want >= 0 && len(out) != want {
		return nil, formatErr(bad, name, fmt.Sprintf("%s has %d values, want %d", field, len(out), want))
	}
	return out, nil
}

// FuzzHeaderParsersAgree feeds the same header text to the parser and to
// the encoding/json reference: both accept it with the same tensors and
// metadata, or both refuse it with the same kind of error.
func FuzzHeaderParsersAgree(f *testing.F) {
	for _, s := range []string{
		`{}`, `{}   `, "{}\n", `{} {}`, `{"a":{}}`, `{"__metadata__":null}`, `{"__metadata__":{"a":"b","c":"d"}}`,
		`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`,
		`{"a\"b\\c\u00e9\ud83d\ude00\ud800x\udc00":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`,
		`{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2],"extra":[1,{"x":2.5e-3,"y":[true,false,null]}]}}`,
		`{"b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`,
		`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`,
		`{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}`,
		`{"a":{"dtype":"F32","shape":[99999999999999999999.5],"data_offsets":[0,4]}}`,
		`{"a":{"dtype":"F32","shape":[01],"data_offsets":[0,4]}}`,
		`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`,
		`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":"x","data_offsets":[4,8]}}`,
		`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a" x`,
		`{"__metadata__":{},"__metadata__":{}}`, `{"__metadata__":{"a":"1","a":"2"}}`, `{"__metadata__":{"a":1}}`,
		`{"a":{"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,4]}}`,
		`{"a":{"dtype":3,"shape":[1],"data_offsets":[0,4]}}`, `{"a":[1]}`, `{"":{}}`, `{"a":{"shape":[1]}}`,
		`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}`, `{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,"4"]}}`,
		`{"a":{"dt\u0079pe":"F32","shape":[1],"data_offsets":[0,4]}}`, `{"a":{"dtype":"F32"`, `{"a":tru}`, `{"a":{"x":[[[[]]]]}}`,
	} {
		f.Add([]byte(s), int64(0))
		f.Add([]byte(s), int64(4))
	}
	f.Fuzz(func(t *testing.T, header []byte, data int64) {
		if data < 0 || data > 1<<20 {
			return
		}
		size := 8 + int64(len(header)) + data
		got, err := ParseHeader(header, size)
		want, wantErr := parseHeaderRef(header, size)
		// Read a window of a few bytes at a time, the header gives the
		// same result, or the same error.
		file := append(binary.LittleEndian.AppendUint64(nil, uint64(len(header))), header...)
		file = append(file, make([]byte, data)...)
		for _, window := range []int{1, 3, 7, 16} {
			for _, check := range []bool{false, true} {
				streamed, serr := readHeaderWindow(bytes.NewReader(file), size, check, window)
				if err != nil {
					require.Equal(t, err, serr, "window %d, check %v: %q", window, check, header)
					continue
				}
				require.NoError(t, serr, "window %d, check %v: %q", window, check, header)
				want := *got
				if check {
					want.Tensors = nil
				}
				require.Equal(t, want, *streamed, "window %d, check %v: %q", window, check, header)
			}
		}
		if wantErr != nil {
			require.Error(t, err, "the reference refuses %q: %v", header, wantErr)
			var g, w *FormatError
			require.ErrorAs(t, err, &g)
			require.ErrorAs(t, wantErr, &w)
			require.Equal(t, w.Err, g.Err, "%q: got %v, want %v", header, err, wantErr)
			require.Equal(t, w.Tensor, g.Tensor, "%q: got %v, want %v", header, err, wantErr)
			return
		}
		require.NoError(t, err, "the reference accepts %q", header)
		require.Equal(t, want.Metadata, got.Metadata)
		require.Equal(t, len(want.Tensors), len(got.Tensors))
		for i := range want.Tensors {
			require.Equal(t, want.Tensors[i], got.Tensors[i])
		}
	})
}

// ParseDType maps a header name such as "BF16" to its DType.
func ParseDType(name string) (DType, bool) {
	for i, n := range dtypeNames {
		if n == name {
			return DType(i), true
		}
	}
	return 0, false
}

// DTypes returns every known dtype in enum order.
func DTypes() []DType {
	out := make([]DType, numDTypes)
	for i := range out {
		out[i] = DType(i)
	}
	return out
}

// CheckHeaderFile validates the header of the file at path exactly as
// ReadHeaderFile does, and returns it without its tensor list
// (Header.Tensors is nil): for callers that need only the metadata or
// where the data starts, or that have the tensor list already. The check
// keeps 16 bytes per tensor and its name, not a TensorInfo.
func CheckHeaderFile(path string) (*Header, error) {
	return readHeaderFile(path, true)
}
