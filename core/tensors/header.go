package tensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"unicode/utf8"

	"modelpub/core/folder"
)

// MaxHeaderSize is the largest header the reference implementation reads.
const MaxHeaderSize = 100_000_000

// MaxIndexSize caps a weights index file (*.safetensors.index.json): a
// legal index of a million tensors is about 65 MB.
const MaxIndexSize = 256 << 20

// MetadataKeyFormat is the __metadata__ key transformers checks on load.
const MetadataKeyFormat = "format"

// TensorInfo describes one tensor of a safetensors file. Begin and End are
// data_offsets: relative to the start of the data buffer, End exclusive.
type TensorInfo struct {
	Name  string
	DType DType
	Shape []int64
	Begin int64
	End   int64
}

// Size is the number of data bytes.
func (t TensorInfo) Size() int64 { return t.End - t.Begin }

// NumElements is the product of the shape (1 for a 0-rank tensor). It is
// only called on validated tensors, whose product fits in 64 bits.
func (t TensorInfo) NumElements() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// MetadataEntry is one key of __metadata__.
type MetadataEntry struct{ Key, Value string }

// Metadata is the __metadata__ map in file order. Nil means the header has
// no __metadata__ key at all; an empty non-nil value is written as {}.
type Metadata []MetadataEntry

// Get returns the value of key.
func (m Metadata) Get(key string) (string, bool) {
	for _, e := range m {
		if e.Key == key {
			return e.Value, true
		}
	}
	return "", false
}

// With returns a copy of m with key set to value: in place if the key
// exists, appended otherwise.
func (m Metadata) With(key, value string) Metadata {
	out := make(Metadata, len(m), len(m)+1)
	copy(out, m)
	for i := range out {
		if out[i].Key == key {
			out[i].Value = value
			return out
		}
	}
	return append(out, MetadataEntry{key, value})
}

// Header is the parsed and validated header of a safetensors file.
type Header struct {
	// Tensors in data order (ascending Begin), whatever the header order.
	Tensors  []TensorInfo
	Metadata Metadata
	// HeaderLen is the JSON header's length including padding (the N of the
	// format); the data buffer starts at DataStart = 8 + HeaderLen.
	HeaderLen int64
	DataStart int64
	FileSize  int64
}

// Tensor returns the tensor called name.
func (h *Header) Tensor(name string) (TensorInfo, bool) {
	for _, t := range h.Tensors {
		if t.Name == name {
			return t, true
		}
	}
	return TensorInfo{}, false
}

// DataSize is the size of the data buffer.
func (h *Header) DataSize() int64 { return h.FileSize - h.DataStart }

// ReadHeader reads and validates the header of the safetensors data in r,
// which is size bytes long. It reads the 8-byte length and the header, never
// tensor data, and allocates nothing before the length has been checked
// against the limit and the size.
func ReadHeader(r io.ReaderAt, size int64) (*Header, error) {
	if size < 8 {
		return nil, formatErr(ErrFileTooSmall, "", fmt.Sprintf("the file has %d bytes", size))
	}
	var lenBuf [8]byte
	if m, err := r.ReadAt(lenBuf[:], 0); m < len(lenBuf) {
		return nil, fmt.Errorf("reading header length: %w", err)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n > MaxHeaderSize {
		return nil, formatErr(ErrHeaderTooLarge, "", fmt.Sprintf("the header claims %d bytes", n))
	}
	if n > uint64(size-8) {
		return nil, formatErr(ErrHeaderLength, "",
			fmt.Sprintf("the header claims %d bytes but only %d follow the length", n, size-8))
	}
	buf := make([]byte, n)
	if n > 0 {
		// A ReaderAt may report io.EOF along with a full read at the end.
		if m, err := r.ReadAt(buf, 8); m < len(buf) {
			return nil, fmt.Errorf("reading header: %w", err)
		}
	}
	h, err := ParseHeader(buf, size)
	if err != nil {
		return nil, err
	}
	return h, nil
}

// ReadHeaderFile reads and validates the header of the file at path.
// Errors name the file.
func ReadHeaderFile(path string) (*Header, error) {
	f, err := folder.OpenRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	h, err := ReadHeader(f, st.Size())
	return h, withPath(err, path)
}

// ParseHeader parses and validates header, the JSON that follows the 8-byte
// length in a file of fileSize bytes.
func ParseHeader(header []byte, fileSize int64) (*Header, error) {
	if !utf8.Valid(header) {
		return nil, formatErr(ErrHeaderUTF8, "", "")
	}
	if len(header) == 0 || header[0] != '{' {
		return nil, formatErr(ErrHeaderNotObject, "", "it must start with '{'")
	}
	h := &Header{HeaderLen: int64(len(header)), DataStart: 8 + int64(len(header)), FileSize: fileSize}
	if err := parseHeaderJSON(header, h); err != nil {
		return nil, err
	}
	if err := validateLayout(h); err != nil {
		return nil, err
	}
	return h, nil
}

// parseHeaderJSON decodes the header object token by token, keeping the
// key order of __metadata__ and rejecting duplicate names, which a decode
// into a map would silently merge.
func parseHeaderJSON(header []byte, h *Header) error {
	dec := json.NewDecoder(bytes.NewReader(header))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil { // the '{' checked by the caller
		return jsonErr(err, "")
	}
	seen := make(map[string]struct{})
	sawMeta := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return jsonErr(err, "")
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
			md, err := parseMetadata(dec)
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
		t, err := parseTensor(dec, name)
		if err != nil {
			return err
		}
		h.Tensors = append(h.Tensors, t)
	}
	if _, err := dec.Token(); err != nil { // closing '}'
		return jsonErr(err, "")
	}
	if tok, err := dec.Token(); err != io.EOF {
		if err != nil {
			return jsonErr(err, "")
		}
		return formatErr(ErrHeaderJSON, "", fmt.Sprintf("unexpected %v after the header object", tok))
	}
	return nil
}

func jsonErr(err error, tensor string) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return formatErr(ErrHeaderJSON, tensor, err.Error())
}

func parseMetadata(dec *json.Decoder) (Metadata, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, jsonErr(err, "")
	}
	if tok == nil { // "__metadata__": null is accepted as absent
		return nil, nil
	}
	if tok != json.Delim('{') {
		return nil, formatErr(ErrInvalidMetadata, "", fmt.Sprintf("found %s", describeToken(tok)))
	}
	md := Metadata{}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, jsonErr(err, "")
		}
		key := kt.(string) // the decoder only yields string keys inside an object
		vt, err := dec.Token()
		if err != nil {
			return nil, jsonErr(err, "")
		}
		v, ok := vt.(string)
		if !ok {
			return nil, formatErr(ErrInvalidMetadata, "", fmt.Sprintf("key %q has %s", key, describeToken(vt)))
		}
		if _, dup := md.Get(key); dup {
			return nil, formatErr(ErrInvalidMetadata, "", fmt.Sprintf("key %q appears twice", key))
		}
		md = append(md, MetadataEntry{key, v})
	}
	if _, err := dec.Token(); err != nil {
		return nil, jsonErr(err, "")
	}
	return md, nil
}

func describeToken(tok json.Token) string {
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

func parseTensor(dec *json.Decoder, name string) (TensorInfo, error) {
	t := TensorInfo{Name: name}
	tok, err := dec.Token()
	if err != nil {
		return t, jsonErr(err, name)
	}
	if tok != json.Delim('{') {
		return t, formatErr(ErrInvalidField, name, fmt.Sprintf("the entry is %s, not an object", describeToken(tok)))
	}
	var haveDType, haveShape, haveOffsets bool
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return t, jsonErr(err, name)
		}
		switch field := kt.(string); field {
		case "dtype":
			if haveDType {
				return t, formatErr(ErrInvalidField, name, "dtype appears twice")
			}
			haveDType = true
			vt, err := dec.Token()
			if err != nil {
				return t, jsonErr(err, name)
			}
			s, ok := vt.(string)
			if !ok {
				return t, formatErr(ErrInvalidField, name, "dtype is "+describeToken(vt)+", not a string")
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
			dims, err := parseUintArray(dec, name, "shape", -1)
			if err != nil {
				return t, err
			}
			t.Shape = dims
		case "data_offsets":
			if haveOffsets {
				return t, formatErr(ErrInvalidField, name, "data_offsets appears twice")
			}
			haveOffsets = true
			offs, err := parseUintArray(dec, name, "data_offsets", 2)
			if err != nil {
				return t, err
			}
			t.Begin, t.End = offs[0], offs[1]
		default: // unknown fields are ignored, as serde does
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return t, jsonErr(err, name)
			}
		}
	}
	if _, err := dec.Token(); err != nil {
		return t, jsonErr(err, name)
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
func parseUintArray(dec *json.Decoder, name, field string, want int) ([]int64, error) {
	bad := ErrInvalidField
	if field == "shape" {
		bad = ErrInvalidShape
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, jsonErr(err, name)
	}
	if tok != json.Delim('[') {
		return nil, formatErr(bad, name, fmt.Sprintf("%s is %s, not an array", field, describeToken(tok)))
	}
	out := []int64{}
	for dec.More() {
		vt, err := dec.Token()
		if err != nil {
			return nil, jsonErr(err, name)
		}
		num, ok := vt.(json.Number)
		if !ok {
			return nil, formatErr(bad, name, fmt.Sprintf("%s holds %s, not an integer", field, describeToken(vt)))
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
		return nil, jsonErr(err, name)
	}
	if want >= 0 && len(out) != want {
		return nil, formatErr(bad, name, fmt.Sprintf("%s has %d values, want %d", field, len(out), want))
	}
	return out, nil
}

// byteSize returns the bytes a tensor of dtype d and shape needs, checking
// every multiplication for overflow.
func byteSize(d DType, shape []int64) (int64, error) {
	n := uint64(1)
	for _, dim := range shape {
		hi, lo := bits.Mul64(n, uint64(dim))
		if hi != 0 {
			return 0, ErrOverflow
		}
		n = lo
	}
	hi, nbits := bits.Mul64(n, d.Bits())
	if hi != 0 || nbits/8 > math.MaxInt64 {
		return 0, ErrOverflow
	}
	if nbits%8 != 0 {
		return 0, ErrMisaligned
	}
	return int64(nbits / 8), nil
}

// validateLayout checks, in data order, that every tensor's byte range
// matches its dtype and shape and that the ranges tile the data buffer
// exactly: from 0, without holes or overlaps, up to the end of the file.
func validateLayout(h *Header) error {
	slices.SortStableFunc(h.Tensors, func(a, b TensorInfo) int {
		if a.Begin != b.Begin {
			if a.Begin < b.Begin {
				return -1
			}
			return 1
		}
		if a.End < b.End {
			return -1
		} else if a.End > b.End {
			return 1
		}
		return 0
	})
	var end int64
	for _, t := range h.Tensors {
		if t.End < t.Begin {
			return formatErr(ErrSizeMismatch, t.Name, fmt.Sprintf("data_offsets [%d, %d] end before they begin", t.Begin, t.End))
		}
		if t.Begin > end {
			return formatErr(ErrOffsetGap, t.Name, fmt.Sprintf("it begins at %d but the data before it ends at %d", t.Begin, end))
		}
		if t.Begin < end {
			return formatErr(ErrOffsetOverlap, t.Name, fmt.Sprintf("it begins at %d but the data before it ends at %d", t.Begin, end))
		}
		want, err := byteSize(t.DType, t.Shape)
		if err != nil {
			return formatErr(err, t.Name, fmt.Sprintf("%s %v", t.DType, t.Shape))
		}
		if t.Size() != want {
			return formatErr(ErrSizeMismatch, t.Name,
				fmt.Sprintf("%s %v needs %d bytes but data_offsets [%d, %d] span %d", t.DType, t.Shape, want, t.Begin, t.End, t.Size()))
		}
		end = t.End
	}
	have := h.FileSize - h.DataStart
	switch {
	case end > have:
		return formatErr(ErrTruncated, "",
			fmt.Sprintf("the header describes %d bytes of tensor data but the file holds %d (an interrupted download or copy?)", end, have))
	case end < have:
		return formatErr(ErrTrailingBytes, "", fmt.Sprintf("%d bytes after the end of the last tensor", have-end))
	}
	return nil
}
