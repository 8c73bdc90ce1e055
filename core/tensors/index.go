package tensors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
)

// ErrIndexInvalid is wrapped by every error of ParseIndex.
var ErrIndexInvalid = errors.New("invalid shard index")

// ErrUnsafeShardName is wrapped by the errors of CheckShardFileName, and by
// ParseIndex (together with ErrIndexInvalid) for a weight_map value that is
// not a bare file name.
var ErrUnsafeShardName = errors.New("unsafe shard file name")

// Index is a shard index file, *.safetensors.index.json:
//
//	{"metadata": {"total_size": N[, "total_parameters": P, ...]},
//	 "weight_map": {"<tensor>": "<shard file>", ...}}
type Index struct {
	// TotalSize is metadata.total_size: the sum of the tensors' data bytes
	// (no headers). Always written.
	TotalSize int64
	// TotalParameters is metadata.total_parameters, written by recent
	// transformers but not by diffusers; written only when > 0. The Hub
	// shows it as the parameter count, so leave it 0 unless it is exact.
	TotalParameters int64
	// Metadata holds the other metadata keys (e.g. quantization metadata),
	// verbatim as read.
	// Keys total_size and total_parameters here are ignored.
	Metadata map[string]json.RawMessage
	// Extra holds top-level keys other than metadata and weight_map,
	// verbatim as read, so that a round trip keeps them.
	Extra map[string]json.RawMessage
	// WeightMap maps every tensor name to the bare name of its shard file.
	WeightMap map[string]string
}

// ParseIndex parses and checks a shard index file. It accepts any JSON
// formatting (e.g. huggingface_hub's unsorted json.dump without a final
// newline, or CRLF line ends).
//
// Required: a top-level object with a "weight_map" object whose values are
// all strings naming safe bare files (CheckShardFileName); an empty
// weight_map is accepted. "metadata" may be absent (loaders only read
// weight_map), but when present it must be an object, and its
// "total_size" and "total_parameters", when present, non-negative integers
// that fit in int64 (not 1.0, not 1e3). Other metadata and top-level keys
// are kept verbatim in Metadata and Extra.
//
// Errors wrap ErrIndexInvalid, and also ErrUnsafeShardName for an unsafe
// file name; they name the tensor or key involved (the first in sorted
// order when several are wrong).
func ParseIndex(data []byte) (*Index, error) {
	r, err := checkIndex(data)
	if err != nil {
		return nil, err
	}
	return r.index(), nil
}

// checkIndex reads an index file and makes every check of ParseIndex,
// without building its maps.
func checkIndex(data []byte) (*indexJSON, error) {
	r, err := readIndexJSON(data)
	if err != nil {
		var se *jsonSyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("%w: malformed JSON at byte %d: %v", ErrIndexInvalid, se.Offset, err)
		}
		return nil, err
	}
	switch {
	case r.topKind != "object":
		if r.topKind == "null" {
			return nil, fmt.Errorf("%w: the file must hold a JSON object, not null", ErrIndexInvalid)
		}
		return nil, fmt.Errorf("%w: the file must hold a JSON object: json: cannot unmarshal %s into Go value of type map[string]json.RawMessage", ErrIndexInvalid, r.topKind)
	case !r.haveWM:
		return nil, fmt.Errorf("%w: no \"weight_map\" key", ErrIndexInvalid)
	case r.wm == nil:
		return nil, fmt.Errorf("%w: \"weight_map\" must be an object, got %s", ErrIndexInvalid, abbrevJSON(r.wmRaw))
	}
	if err := r.wm.check(); err != nil {
		return nil, err
	}
	if r.haveMD {
		if r.md == nil {
			return nil, fmt.Errorf("%w: \"metadata\" must be an object, got %s", ErrIndexInvalid, abbrevJSON(r.mdRaw))
		}
		for _, f := range []struct {
			key string
			dst *int64
		}{{"total_size", &r.totalSize}, {"total_parameters", &r.totalParameters}} {
			raw, ok := r.md[f.key]
			if !ok {
				continue
			}
			n, err := parseIndexCount(raw)
			if err != nil {
				return nil, fmt.Errorf("%w: metadata.%s: %v", ErrIndexInvalid, f.key, err)
			}
			*f.dst = n
			delete(r.md, f.key)
		}
	}
	return r, nil
}

// index builds the Index of a checked file.
func (r *indexJSON) index() *Index {
	ix := &Index{TotalSize: r.totalSize, TotalParameters: r.totalParameters, WeightMap: r.wm.build()}
	if len(r.md) > 0 {
		ix.Metadata = r.md
	}
	if len(r.extra) > 0 {
		ix.Extra = r.extra
	}
	return ix
}

// indexJSON is an index file as read by readIndexJSON: every key with its
// last value, as json.Unmarshal into maps keeps them (and Python's
// json.loads too).
type indexJSON struct {
	totalSize, totalParameters int64 // set by checkIndex

	topKind string // "object", or the kind of value the file holds instead
	haveWM  bool
	wm      *weightMapJSON // nil when weight_map is not an object
	wmRaw   []byte         // weight_map's text when it is not an object
	haveMD  bool
	md      map[string]json.RawMessage // nil when metadata is not an object
	mdRaw   []byte
	extra   map[string]json.RawMessage
}

// weightMapJSON is a weight_map as read: names and values in file order,
// the names in one byte slice and the values interned, so that a million
// entries cost their bytes and not three allocations each.
type weightMapJSON struct {
	names   []byte
	nameEnd []int32
	value   []int32  // index in files, or -1 - index in bad
	files   []string // the distinct string values
	byFile  map[string]int32
	bad     []string // the text of values that are not strings
}

// readIndexJSON reads the whole file before any of its content is judged,
// as json.Unmarshal checks the syntax first: a syntax error anywhere is
// the error, whatever else is wrong.
func readIndexJSON(data []byte) (*indexJSON, error) {
	s := &jsonScanner{data: data}
	r := &indexJSON{}
	if !s.more() {
		return nil, s.errEOF()
	}
	if s.data[s.pos] != '{' {
		switch c := s.data[s.pos]; {
		case c == 'n':
			r.topKind = "null"
		case c == '[':
			r.topKind = "array"
		case c == '"':
			r.topKind = "string"
		case c == 't' || c == 'f':
			r.topKind = "bool"
		default:
			r.topKind = "number"
		}
		if err := s.skipValue(0); err != nil {
			return nil, err
		}
		return r, s.end()
	}
	r.topKind = "object"
	s.pos++
	if s.consume('}') {
		return r, s.end()
	}
	for {
		k, err := s.key()
		if err != nil {
			return nil, err
		}
		s.skipWS()
		start := s.pos
		switch string(k) {
		case "weight_map":
			r.haveWM, r.wm, r.wmRaw = true, nil, nil
			if s.pos < len(s.data) && s.data[s.pos] == '{' {
				if r.wm, err = readWeightMap(s); err != nil {
					return nil, err
				}
				break
			}
			if err := s.skipValue(1); err != nil {
				return nil, err
			}
			r.wmRaw = s.data[start:s.pos]
		case "metadata":
			r.haveMD, r.md, r.mdRaw = true, nil, nil
			if s.pos < len(s.data) && s.data[s.pos] == '{' {
				if r.md, err = readRawObject(s, 1); err != nil {
					return nil, err
				}
				break
			}
			if err := s.skipValue(1); err != nil {
				return nil, err
			}
			r.mdRaw = s.data[start:s.pos]
		default:
			key := string(k)
			if err := s.skipValue(1); err != nil {
				return nil, err
			}
			if r.extra == nil {
				r.extra = map[string]json.RawMessage{}
			}
			r.extra[key] = bytes.Clone(s.data[start:s.pos])
		}
		done, err := s.afterValue('}')
		if err != nil {
			return nil, err
		}
		if done {
			return r, s.end()
		}
	}
}

// readRawObject reads an object into a map of its values' text; s is at
// its '{', depth the nesting of the object holding it.
func readRawObject(s *jsonScanner, depth int) (map[string]json.RawMessage, error) {
	s.pos++
	m := map[string]json.RawMessage{}
	if s.consume('}') {
		return m, nil
	}
	for {
		k, err := s.key()
		if err != nil {
			return nil, err
		}
		key := string(k)
		s.skipWS()
		start := s.pos
		if err := s.skipValue(depth + 1); err != nil {
			return nil, err
		}
		m[key] = bytes.Clone(s.data[start:s.pos])
		done, err := s.afterValue('}')
		if err != nil {
			return nil, err
		}
		if done {
			return m, nil
		}
	}
}

// readWeightMap reads the weight_map object; s is at its '{'.
func readWeightMap(s *jsonScanner) (*weightMapJSON, error) {
	s.pos++
	w := &weightMapJSON{byFile: map[string]int32{}}
	if s.consume('}') {
		return w, nil
	}
	for {
		k, err := s.key()
		if err != nil {
			return nil, err
		}
		w.names = append(w.names, k...)
		w.nameEnd = append(w.nameEnd, int32(len(w.names)))
		s.skipWS()
		if s.pos < len(s.data) && s.data[s.pos] == '"' {
			v, err := s.str()
			if err != nil {
				return nil, err
			}
			i, ok := w.byFile[string(v)]
			if !ok {
				i = int32(len(w.files))
				w.files = append(w.files, string(v))
				w.byFile[w.files[i]] = i
			}
			w.value = append(w.value, i)
		} else {
			start := s.pos
			if err := s.skipValue(2); err != nil {
				return nil, err
			}
			w.value = append(w.value, -1-int32(len(w.bad)))
			w.bad = append(w.bad, abbrevJSON(s.data[start:s.pos]))
		}
		done, err := s.afterValue('}')
		if err != nil {
			return nil, err
		}
		if done {
			return w, nil
		}
	}
}

// last returns, for every name, the index of its last entry, and the
// names in one string.
func (w *weightMapJSON) last() (string, map[string]int32) {
	all := string(w.names)
	m := make(map[string]int32, len(w.nameEnd))
	start := int32(0)
	for i, end := range w.nameEnd {
		m[all[start:end]] = int32(i)
		start = end
	}
	return all, m
}

// check returns the error of the first tensor, in sorted order, whose
// shard is not a string or not a safe file name: what checking every entry
// of the map json.Unmarshal makes would report. Each distinct file name is
// checked once.
func (w *weightMapJSON) check() error {
	unsafe := make([]error, len(w.files))
	anyUnsafe := false
	for i, f := range w.files {
		unsafe[i] = CheckShardFileName(f)
		anyUnsafe = anyUnsafe || unsafe[i] != nil
	}
	if !anyUnsafe && len(w.bad) == 0 {
		return nil
	}
	_, last := w.last()
	var worst string
	var werr error
	for name, i := range last {
		var err error
		if v := w.value[i]; v < 0 {
			err = fmt.Errorf("%w: weight_map: tensor %q: the shard must be a file name string, got %s", ErrIndexInvalid, name, w.bad[-1-v])
		} else if unsafe[v] != nil {
			err = fmt.Errorf("%w: weight_map: tensor %q: %w", ErrIndexInvalid, name, unsafe[v])
		}
		if err != nil && (werr == nil || name < worst) {
			worst, werr = name, err
		}
	}
	return werr
}

// lookup is a weight map as an open-addressing table: for a million
// tensors, 4 bytes a slot and the names in one string, where a
// map[string]string takes some 40 bytes an entry. Every name maps to its
// last value, as in the map.
type lookup struct {
	w     *weightMapJSON
	all   string  // every name, one after the other
	table []int32 // an entry's index + 1; 0 is a free slot
	seed  maphash.Seed
	n     int // distinct names
}

func (w *weightMapJSON) lookup() *lookup {
	l := &lookup{w: w, all: string(w.names), seed: maphash.MakeSeed()}
	size := 4
	for size < 2*len(w.nameEnd) {
		size <<= 1
	}
	l.table = make([]int32, size)
	mask := uint64(size - 1)
	for i := range int32(len(w.nameEnd)) {
		name := l.name(i)
		for k := maphash.String(l.seed, name) & mask; ; k = (k + 1) & mask {
			j := l.table[k]
			if j == 0 {
				l.table[k] = i + 1
				l.n++
				break
			}
			if l.name(j-1) == name {
				l.table[k] = i + 1 // the last value wins
				break
			}
		}
	}
	return l
}

func (l *lookup) name(i int32) string {
	start := int32(0)
	if i > 0 {
		start = l.w.nameEnd[i-1]
	}
	return l.all[start:l.w.nameEnd[i]]
}

// file returns the index in w.files of name's shard, or -1 when the index
// does not map name.
func (l *lookup) file(name string) int32 {
	mask := uint64(len(l.table) - 1)
	for k := maphash.String(l.seed, name) & mask; ; k = (k + 1) & mask {
		j := l.table[k]
		if j == 0 {
			return -1
		}
		if l.name(j-1) == name {
			return l.w.value[j-1]
		}
	}
}

// shards returns the distinct shards of the names' last values, sorted,
// as Index.Shards does.
func (l *lookup) shards() []string {
	used := make([]bool, len(l.w.files))
	for _, j := range l.table {
		if j != 0 {
			if v := l.w.value[j-1]; v >= 0 {
				used[v] = true
			}
		}
	}
	var out []string
	for i, f := range l.w.files {
		if used[i] {
			out = append(out, f)
		}
	}
	slices.Sort(out)
	return out
}

// build returns the weight map, every value a string shared by the
// entries of one shard.
func (w *weightMapJSON) build() map[string]string {
	all := string(w.names)
	m := make(map[string]string, len(w.nameEnd))
	start := int32(0)
	for i, end := range w.nameEnd {
		// check made sure the last value of every name is a string:
		// an earlier one that is not is overwritten.
		if v := w.value[i]; v >= 0 {
			m[all[start:end]] = w.files[v]
		}
		start = end
	}
	return m
}

// parseIndexCount parses a JSON number that must be a non-negative integer
// (a Python int) fitting in int64.
func parseIndexCount(raw json.RawMessage) (int64, error) {
	s := string(bytes.TrimSpace(raw))
	if !pyIsJSONNumber(s) || strings.ContainsAny(s, ".eE") || strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("must be a non-negative integer, got %s", abbrevJSON(raw))
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s is larger than %d", abbrevJSON(raw), int64(math.MaxInt64))
	}
	return n, nil
}

// abbrevJSON shortens a raw JSON value for an error message.
func abbrevJSON(raw []byte) string {
	s := string(bytes.TrimSpace(raw))
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}

// Shards returns the shard file names of the index, sorted and without
// repeats (as the loaders do: sorted(set(weight_map.values()))).
func (ix *Index) Shards() []string {
	set := make(map[string]struct{})
	for _, f := range ix.WeightMap {
		set[f] = struct{}{}
	}
	return slices.Sorted(maps.Keys(set))
}

// TensorsIn returns the names of the tensors the index places in file,
// sorted by name (the index does not record the order inside a shard).
func (ix *Index) TensorsIn(file string) []string {
	var ts []string
	for t, f := range ix.WeightMap {
		if f == file {
			ts = append(ts, t)
		}
	}
	slices.Sort(ts)
	return ts
}

// CheckShardFileName reports whether name is safe to join to a model folder:
// a bare file name that is not empty, not "." or "..", and contains no '/',
// '\\', NUL or ':' (so it cannot be absolute or climb out of the folder on
// any OS; ':' would make a drive-relative path or an NTFS alternate data
// stream on Windows). The errors wrap ErrUnsafeShardName.
func CheckShardFileName(name string) error {
	var why string
	switch {
	case name == "":
		why = "it is empty"
	case name == "." || name == "..":
		why = "it is a directory reference"
	case strings.ContainsAny(name, `/\`):
		why = "it contains a path separator"
	case strings.ContainsRune(name, 0):
		why = "it contains a NUL byte"
	case strings.ContainsRune(name, ':'):
		why = "it contains ':'"
	default:
		return nil
	}
	return fmt.Errorf("%w %q: %s; a shard must be a bare file name in the model folder", ErrUnsafeShardName, name, why)
}
