package tensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
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
// against the limit and the size. A big header is read a window at a time:
// memory holds what is parsed from it, not its text.
func ReadHeader(r io.ReaderAt, size int64) (*Header, error) {
	return readHeader(r, size, false)
}

// ReadHeaderFile reads and validates the header of the file at path.
// Errors name the file.
func ReadHeaderFile(path string) (*Header, error) {
	return readHeaderFile(path, false)
}

func readHeaderFile(path string, check bool) (*Header, error) {
	f, err := folder.OpenRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	h, err := readHeader(f, st.Size(), check)
	return h, withPath(err, path)
}

// headerWindow is how much of a header is read at a time.
const headerWindow = 1 << 20

// readHeader reads the header of r as ReadHeader documents; check leaves
// out the tensor list (OpenData).
func readHeader(r io.ReaderAt, size int64, check bool) (*Header, error) {
	return readHeaderWindow(r, size, check, headerWindow)
}

// readHeaderWindow is readHeader reading a header of more than two windows
// window bytes at a time.
func readHeaderWindow(r io.ReaderAt, size int64, check bool, window int) (*Header, error) {
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
	if n > 2*uint64(window) {
		h := &Header{HeaderLen: int64(n), DataStart: 8 + int64(n), FileSize: size}
		p := &headerParser{check: check, src: &headerSource{r: r, next: 8, end: 8 + int64(n), window: window}}
		err := p.run(h)
		if err == nil {
			return h, nil
		}
		var re *readError
		if errors.As(err, &re) {
			return nil, re.err
		}
		// Something is wrong: the whole header, parsed at once, says
		// exactly what and where, as for a small one.
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
	if check {
		h.Tensors = nil
	}
	return h, nil
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
	p := &headerParser{s: jsonScanner{data: header}}
	if err := p.run(h); err != nil {
		return nil, err
	}
	return h, nil
}

// headerParser reads a header with a jsonScanner, keeping the order of
// __metadata__ and rejecting duplicate names, which a decode into a map
// would silently merge. Memory stays proportional to what the header
// describes, not to its text: every tensor name goes into one string and
// every shape into one []int64, so a tensor costs its TensorInfo and its
// name's bytes, not three allocations; and with a src the text is read a
// window at a time.
type headerParser struct {
	s       jsonScanner
	tensors []TensorInfo
	names   []byte  // the tensor names, one after the other
	nameEnd []int32 // where tensor i's name ends in names
	dims    []int64 // the shapes, one after the other
	dimEnd  []int32 // where tensor i's shape ends in dims

	// check keeps, instead of tensors and dims, a span per tensor: all
	// CheckHeaderFile needs to decide whether the header is valid. A tensor
	// whose size does not match its dtype and shape fails at once.
	check bool
	spans []span

	// src, when set, is where s.data's window comes from. Any error
	// then only means "not valid as read": readHeader parses the whole
	// header again for the exact error.
	src *headerSource
}

// span is a tensor's data_offsets.
type span struct{ begin, end int64 }

// headerSource feeds a header to a headerParser a window at a time.
type headerSource struct {
	r         io.ReaderAt
	next, end int64 // the file offsets of the next byte to read and of the header's end
	window    int   // the window's first size
	checked   int   // bytes of the window checked as UTF-8
}

// readError is a failure to read the file, not a problem in its header.
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }

// errWindow stops a streamed parse that found something wrong.
var errWindow = errors.New("header window")

// minTensorEntry is the length of the shortest tensor entry, with its
// comma: `"a":{"dtype":"U8","shape":[],"data_offsets":[0,0]},`. It bounds
// how many tensors a header can hold, for the initial allocations.
const minTensorEntry = 51

// run parses the header into h.Tensors (in header order, then data order)
// and h.Metadata, and validates it. The checks and their order are those
// of a token-by-token decode: the first problem in the text is reported,
// except that a duplicate name is reported before anything wrong after its
// second occurrence; then the layout is checked in data order.
func (p *headerParser) run(h *Header) error {
	if p.src != nil {
		if err := p.src.fill(&p.s, 0); err != nil {
			return err
		}
		if len(p.s.data) == 0 || p.s.data[0] != '{' {
			return errWindow
		}
	}
	p.alloc(h.HeaderLen)
	if err := p.parse(h); err != nil {
		if dup := p.checkNames(); dup != nil {
			return dup
		}
		return err
	}
	if dup := p.checkNames(); dup != nil {
		return dup
	}
	if p.check {
		return p.checkSpans(h)
	}
	p.setShapes()
	h.Tensors = p.tensors
	return validateLayout(h)
}

// alloc sizes the parser's slices for a header of n bytes, from the
// `"dtype"` keys in the text at hand; the estimate is bounded by what the
// header can hold, as `"dtype"` may also appear in names or unknown fields.
func (p *headerParser) alloc(n int64) {
	seen := bytes.Count(p.s.data, []byte(`"dtype"`))
	est := int64(seen)
	if len(p.s.data) > 0 {
		est = int64(seen) * (n / int64(len(p.s.data)))
	}
	c := int(min(est, n/minTensorEntry+1))
	p.nameEnd = make([]int32, 0, c)
	if p.check {
		p.spans = make([]span, 0, c)
		return
	}
	p.tensors = make([]TensorInfo, 0, c)
	p.dimEnd = make([]int32, 0, c)
	p.dims = make([]int64, 0, 2*c)
}

// fill moves s.data[keep:] to the start of the window and reads as much of
// the header after it as the window holds, growing the window when
// s.data[keep:] fills it (an entry bigger than the window). The new bytes
// are checked as UTF-8, up to the last whole character.
func (src *headerSource) fill(s *jsonScanner, keep int) error {
	kept := s.data[keep:]
	win := s.data[:cap(s.data)]
	switch {
	case win == nil:
		win = make([]byte, src.window)
	case len(kept) == len(win):
		win = make([]byte, 2*len(win))
	}
	n := copy(win, kept)
	src.checked = max(0, src.checked-keep)
	k := min(int64(len(win)-n), src.end-src.next)
	if k > 0 {
		if m, err := src.r.ReadAt(win[n:n+int(k)], src.next); int64(m) < k {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return &readError{fmt.Errorf("reading header: %w", err)}
		}
	}
	src.next += k
	s.data, s.pos = win[:n+int(k)], s.pos-keep
	upto := len(s.data)
	if src.next < src.end {
		// Leave a character cut by the window's end to the next fill.
		for i := upto - 1; i >= max(0, upto-utf8.UTFMax); i-- {
			if utf8.RuneStart(s.data[i]) {
				if !utf8.FullRune(s.data[i:upto]) {
					upto = i
				}
				break
			}
		}
	}
	if !utf8.Valid(s.data[src.checked:upto]) {
		return errWindow
	}
	src.checked = upto
	return nil
}

// mark is what a member of the top-level object adds to the parser, to
// undo it when the member has to be read again with more of the header.
type mark struct {
	pos, names, nameEnd, tensors, dims, dimEnd, spans int
	sawMeta                                           bool
	meta                                              Metadata
}

func (p *headerParser) mark(sawMeta bool, meta Metadata) mark {
	return mark{p.s.pos, len(p.names), len(p.nameEnd), len(p.tensors), len(p.dims), len(p.dimEnd), len(p.spans), sawMeta, meta}
}

func (p *headerParser) undo(m mark) {
	p.names, p.nameEnd, p.tensors = p.names[:m.names], p.nameEnd[:m.nameEnd], p.tensors[:m.tensors]
	p.dims, p.dimEnd, p.spans = p.dims[:m.dims], p.dimEnd[:m.dimEnd], p.spans[:m.spans]
}

// parse reads the top-level object, whose '{' the caller checked.
func (p *headerParser) parse(h *Header) error {
	s := &p.s
	s.pos = 1
	sawMeta := false
	if !s.consume('}') {
		for {
			m := p.mark(sawMeta, h.Metadata)
			s.short = false
			done, err := p.member(h, &sawMeta)
			if err != nil && p.src != nil {
				// A member cut by the end of the window is read again
				// from its start once more of the header is in.
				if !s.short || p.src.next == p.src.end {
					return errWindow
				}
				p.undo(m)
				sawMeta, h.Metadata = m.sawMeta, m.meta
				s.pos = m.pos
				if err := p.src.fill(s, m.pos); err != nil {
					return err
				}
				continue
			}
			if err != nil {
				return err
			}
			if done {
				break
			}
		}
	}
	for s.more() || p.src != nil && p.src.next < p.src.end {
		if s.pos < len(s.data) {
			if p.src != nil {
				return errWindow
			}
			return formatErr(ErrHeaderJSON, "", fmt.Sprintf("unexpected %s after the header object", quoteJSONChar(s.data[s.pos])))
		}
		if err := p.src.fill(s, s.pos); err != nil {
			return err
		}
	}
	if p.src != nil && p.src.checked != len(s.data) {
		return errWindow
	}
	return nil
}

// member reads one member of the top-level object and the ',' or '}' after
// it; done is true at the '}'.
func (p *headerParser) member(h *Header, sawMeta *bool) (done bool, err error) {
	s := &p.s
	// The name is checked, and recorded for the duplicate check, before
	// the ':' is read.
	key, err := s.keyString()
	if err != nil {
		return false, jsonErr(err, "")
	}
	switch {
	case string(key) == "__metadata__":
		if *sawMeta {
			return false, formatErr(ErrDuplicateName, "__metadata__", "")
		}
		*sawMeta = true
		if err := s.colon(); err != nil {
			return false, jsonErr(err, "")
		}
		if h.Metadata, err = p.parseMetadata(); err != nil {
			return false, err
		}
	case len(key) == 0:
		return false, formatErr(ErrEmptyName, "", "")
	default:
		p.names = append(p.names, key...)
		p.nameEnd = append(p.nameEnd, int32(len(p.names)))
		if err := s.colon(); err != nil {
			return false, jsonErr(err, p.name())
		}
		if err := p.parseTensor(); err != nil {
			return false, err
		}
	}
	done, err = s.afterValue('}')
	if err != nil {
		return false, jsonErr(err, "")
	}
	return done, nil
}

// setShapes points every tensor's Shape at its run of dims, in one array
// of exactly the size needed. A Shape is never nil ([] for a 0-rank
// tensor), and its capacity ends with it, so an append copies.
func (p *headerParser) setShapes() {
	dims := make([]int64, len(p.dims))
	copy(dims, p.dims)
	start := int32(0)
	for i, end := range p.dimEnd {
		p.tensors[i].Shape = dims[start:end:end]
		start = end
	}
}

// checkNames gives every parsed tensor its name and returns the error of
// the first name that repeats an earlier one, if any.
func (p *headerParser) checkNames() error {
	all := string(p.names)
	name := func(i int32) string {
		start := int32(0)
		if i > 0 {
			start = p.nameEnd[i-1]
		}
		return all[start:p.nameEnd[i]]
	}
	if i := firstRepeat(len(p.nameEnd), name); i >= 0 {
		return formatErr(ErrDuplicateName, name(int32(i)), "")
	}
	start := int32(0)
	for i := range p.tensors {
		end := p.nameEnd[i]
		p.tensors[i].Name = all[start:end]
		start = end
	}
	return nil
}

// firstRepeat returns the index of the first of n names that equals an
// earlier one, or -1. It uses an open-addressing table of int32 (4 bytes a
// slot, at most half full): a third of what a map[string]struct{} of a
// million names takes, and faster. The hash is seeded, so no input can be
// built to collide.
func firstRepeat(n int, name func(i int32) string) int {
	if n < 2 {
		return -1
	}
	size := 4
	for size < 2*n {
		size <<= 1
	}
	table := make([]int32, size) // a name's index + 1; 0 is a free slot
	mask := uint64(size - 1)
	seed := maphash.MakeSeed()
	for i := range int32(n) {
		s := name(i)
		for k := maphash.String(seed, s) & mask; ; k = (k + 1) & mask {
			j := table[k]
			if j == 0 {
				table[k] = i + 1
				break
			}
			if name(j-1) == s {
				return int(i)
			}
		}
	}
	return -1
}

// checkSpans is validateLayout for a check: it only says whether the
// layout is valid (the error comes from a full parse).
func (p *headerParser) checkSpans(h *Header) error {
	spans := p.spans
	cmp := func(a, b span) int {
		if a.begin != b.begin {
			if a.begin < b.begin {
				return -1
			}
			return 1
		}
		if a.end < b.end {
			return -1
		} else if a.end > b.end {
			return 1
		}
		return 0
	}
	if !slices.IsSortedFunc(spans, cmp) {
		slices.SortFunc(spans, cmp)
	}
	var end int64
	for _, t := range spans {
		if t.begin != end {
			return ErrOffsetGap
		}
		end = t.end
	}
	if end != h.FileSize-h.DataStart {
		return ErrTruncated
	}
	return nil
}

// name is the name of the tensor being parsed, for error messages.
func (p *headerParser) name() string {
	start := int32(0)
	if n := len(p.nameEnd); n > 1 {
		start = p.nameEnd[n-2]
	}
	return string(p.names[start:])
}

func jsonErr(err error, tensor string) error {
	return formatErr(ErrHeaderJSON, tensor, err.Error())
}

func (p *headerParser) parseMetadata() (Metadata, error) {
	s := &p.s
	s.skipWS()
	if s.pos < len(s.data) && s.data[s.pos] == 'n' { // "__metadata__": null is accepted as absent
		if err := s.literal("null"); err != nil {
			return nil, jsonErr(err, "")
		}
		return nil, nil
	}
	if s.pos >= len(s.data) || s.data[s.pos] != '{' {
		what, err := s.describe()
		if err != nil {
			return nil, jsonErr(err, "")
		}
		return nil, formatErr(ErrInvalidMetadata, "", "found "+what)
	}
	s.pos++
	md := Metadata{}
	var seen map[string]struct{} // once md is long enough for a linear search to cost
	if s.consume('}') {
		return md, nil
	}
	for {
		k, err := s.key()
		if err != nil {
			return nil, jsonErr(err, "")
		}
		key := string(k)
		s.skipWS()
		if s.pos >= len(s.data) || s.data[s.pos] != '"' {
			what, err := s.describe()
			if err != nil {
				return nil, jsonErr(err, "")
			}
			return nil, formatErr(ErrInvalidMetadata, "", fmt.Sprintf("key %q has %s", key, what))
		}
		v, err := s.str()
		if err != nil {
			return nil, jsonErr(err, "")
		}
		dup := false
		if seen != nil {
			_, dup = seen[key]
			seen[key] = struct{}{}
		} else {
			_, dup = md.Get(key)
			if len(md) == 16 {
				seen = make(map[string]struct{})
				for _, e := range md {
					seen[e.Key] = struct{}{}
				}
				seen[key] = struct{}{}
			}
		}
		if dup {
			return nil, formatErr(ErrInvalidMetadata, "", fmt.Sprintf("key %q appears twice", key))
		}
		md = append(md, MetadataEntry{key, string(v)})
		done, err := s.afterValue('}')
		if err != nil {
			return nil, jsonErr(err, "")
		}
		if done {
			return md, nil
		}
	}
}

// describeValue names the value at the scanner's position for an error
// about tensor name; a value that is not valid JSON is a JSON error.
func (p *headerParser) describeValue() (string, error) {
	what, err := p.s.describe()
	if err != nil {
		return "", jsonErr(err, p.name())
	}
	return what, nil
}

// parseTensor reads the entry of the tensor whose name was just recorded.
func (p *headerParser) parseTensor() error {
	s := &p.s
	t := TensorInfo{}
	s.skipWS()
	if s.pos >= len(s.data) || s.data[s.pos] != '{' {
		what, err := p.describeValue()
		if err != nil {
			return err
		}
		return formatErr(ErrInvalidField, p.name(), "the entry is "+what+", not an object")
	}
	s.pos++
	var haveDType, haveShape, haveOffsets bool
	if !s.consume('}') {
		for {
			k, err := s.keyString()
			if err != nil {
				return jsonErr(err, p.name())
			}
			// A repeated field is reported before the ':' is read.
			var field string
			switch string(k) {
			case "dtype":
				field = "dtype"
			case "shape":
				field = "shape"
			case "data_offsets":
				field = "data_offsets"
			}
			switch {
			case field == "dtype" && haveDType, field == "shape" && haveShape, field == "data_offsets" && haveOffsets:
				return formatErr(ErrInvalidField, p.name(), field+" appears twice")
			}
			if err := s.colon(); err != nil {
				return jsonErr(err, p.name())
			}
			switch field {
			case "dtype":
				haveDType = true
				s.skipWS()
				if s.pos >= len(s.data) || s.data[s.pos] != '"' {
					what, err := p.describeValue()
					if err != nil {
						return err
					}
					return formatErr(ErrInvalidField, p.name(), "dtype is "+what+", not a string")
				}
				v, err := s.str()
				if err != nil {
					return jsonErr(err, p.name())
				}
				d, ok := parseDTypeBytes(v)
				if !ok {
					return formatErr(ErrUnknownDType, p.name(), strconv.Quote(string(v)))
				}
				t.DType = d
			case "shape":
				haveShape = true
				if _, err := p.parseUintArray("shape", -1, nil); err != nil {
					return err
				}
			case "data_offsets":
				haveOffsets = true
				var offs [2]int64
				if _, err := p.parseUintArray("data_offsets", 2, &offs); err != nil {
					return err
				}
				t.Begin, t.End = offs[0], offs[1]
			default: // unknown fields are ignored, as serde does
				if err := s.skipValue(2); err != nil {
					return jsonErr(err, p.name())
				}
			}
			done, err := s.afterValue('}')
			if err != nil {
				return jsonErr(err, p.name())
			}
			if done {
				break
			}
		}
	}
	switch {
	case !haveDType:
		return formatErr(ErrMissingField, p.name(), "dtype")
	case !haveShape:
		return formatErr(ErrMissingField, p.name(), "shape")
	case !haveOffsets:
		return formatErr(ErrMissingField, p.name(), "data_offsets")
	}
	if p.check {
		want, err := byteSize(t.DType, p.dims)
		if err != nil || t.End < t.Begin || t.End-t.Begin != want {
			return errWindow // validateLayout would refuse it
		}
		p.spans = append(p.spans, span{t.Begin, t.End})
		p.dims = p.dims[:0]
		return nil
	}
	// The shape is the run of dims appended since the last tensor's; it
	// is set once dims has stopped growing (setShapes).
	p.dimEnd = append(p.dimEnd, int32(len(p.dims)))
	p.tensors = append(p.tensors, t)
	return nil
}

// parseUintArray reads an array of non-negative integers that fit in an
// int64: a shape (want < 0: any length, appended to p.dims) or the two
// data_offsets (stored in two).
func (p *headerParser) parseUintArray(field string, want int, two *[2]int64) (int, error) {
	s := &p.s
	bad := ErrInvalidField
	if field == "shape" {
		bad = ErrInvalidShape
	}
	s.skipWS()
	if s.pos >= len(s.data) || s.data[s.pos] != '[' {
		what, err := p.describeValue()
		if err != nil {
			return 0, err
		}
		return 0, formatErr(bad, p.name(), fmt.Sprintf("%s is %s, not an array", field, what))
	}
	s.pos++
	n := 0
	if !s.consume(']') {
		for {
			s.skipWS()
			if s.pos >= len(s.data) || (s.data[s.pos] != '-' && !isDigit(s.data[s.pos])) {
				what, err := p.describeValue()
				if err != nil {
					return 0, err
				}
				return 0, formatErr(bad, p.name(), fmt.Sprintf("%s holds %s, not an integer", field, what))
			}
			lit, err := s.number()
			if err != nil {
				return 0, jsonErr(err, p.name())
			}
			v, err := parseUint63(lit)
			if err != nil {
				if err == ErrOverflow {
					return 0, formatErr(ErrOverflow, p.name(), fmt.Sprintf("%s value %s", field, lit))
				}
				return 0, formatErr(bad, p.name(), fmt.Sprintf("%s value %s is not a non-negative integer", field, lit))
			}
			if two != nil {
				if n < 2 {
					two[n] = v
				}
			} else {
				p.dims = append(p.dims, v)
			}
			n++
			done, err := s.afterValue(']')
			if err != nil {
				return 0, jsonErr(err, p.name())
			}
			if done {
				break
			}
		}
	}
	if want >= 0 && n != want {
		return 0, formatErr(bad, p.name(), fmt.Sprintf("%s has %d values, want %d", field, n, want))
	}
	return n, nil
}

// errNotUint reports a JSON number that is not a plain run of digits.
var errNotUint = errors.New("not a non-negative integer")

// parseUint63 parses a JSON number that must be a non-negative integer
// fitting in an int64, exactly as strconv.ParseUint(lit, 10, 64) followed
// by a check against math.MaxInt64: errNotUint at the first byte that is
// not a digit (a sign, a fraction, an exponent), ErrOverflow as soon as the
// value passes 64 bits, or at the end when it passes 63.
func parseUint63(lit []byte) (int64, error) {
	if len(lit) == 0 {
		return 0, errNotUint
	}
	var v uint64
	for _, c := range lit {
		if !isDigit(c) {
			return 0, errNotUint
		}
		hi, lo := bits.Mul64(v, 10)
		sum, carry := bits.Add64(lo, uint64(c-'0'), 0)
		if hi != 0 || carry != 0 {
			return 0, ErrOverflow
		}
		v = sum
	}
	if v > math.MaxInt64 {
		return 0, ErrOverflow
	}
	return int64(v), nil
}

// parseDTypeBytes is ParseDType for the bytes of a header.
func parseDTypeBytes(name []byte) (DType, bool) {
	for i, n := range dtypeNames {
		if n == string(name) {
			return DType(i), true
		}
	}
	return 0, false
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
	byOffsets := func(a, b TensorInfo) int {
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
	}
	// Writers put the header in data order: check before sorting.
	if !slices.IsSortedFunc(h.Tensors, byOffsets) {
		slices.SortStableFunc(h.Tensors, byOffsets)
	}
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
