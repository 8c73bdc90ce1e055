package tensors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
)

// ErrIndexInvalid is wrapped by every error of ParseIndex and Index.Validate.
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
	// verbatim as read; MarshalPython re-encodes them in Python's format.
	// Keys total_size and total_parameters here are ignored.
	Metadata map[string]json.RawMessage
	// Extra holds top-level keys other than metadata and weight_map,
	// verbatim as read, so that a round trip keeps them.
	Extra map[string]json.RawMessage
	// WeightMap maps every tensor name to the bare name of its shard file.
	WeightMap map[string]string
}

// MarshalPython encodes the index exactly as diffusers and transformers
// write it: json.dumps(index, indent=2, sort_keys=True) + "\n" (see
// MarshalPythonJSON). total_parameters is written only when > 0.
//
// It panics if a Metadata or Extra value is not valid JSON. ParseIndex never
// produces such a value; call Validate first for an Index built from other
// data.
func (ix *Index) MarshalPython() []byte {
	b, err := MarshalPythonJSON(ix.pyValue())
	if err != nil {
		panic("tensors: Index.MarshalPython: " + err.Error())
	}
	return b
}

func (ix *Index) pyValue() map[string]any {
	md := make(map[string]any, len(ix.Metadata)+2)
	for k, v := range ix.Metadata {
		md[k] = v
	}
	md["total_size"] = ix.TotalSize
	if ix.TotalParameters > 0 {
		md["total_parameters"] = ix.TotalParameters
	} else {
		delete(md, "total_parameters")
	}
	top := make(map[string]any, len(ix.Extra)+2)
	for k, v := range ix.Extra {
		top[k] = v
	}
	wm := ix.WeightMap
	if wm == nil {
		wm = map[string]string{}
	}
	top["metadata"] = md
	top["weight_map"] = wm
	return top
}

// Validate checks an Index before it is written: sizes not negative, every
// weight_map value a safe bare file name (CheckShardFileName), and every
// Metadata and Extra value valid JSON. Errors wrap ErrIndexInvalid (and
// ErrUnsafeShardName for file names).
func (ix *Index) Validate() error {
	if ix.TotalSize < 0 {
		return fmt.Errorf("%w: total_size %d is negative", ErrIndexInvalid, ix.TotalSize)
	}
	if ix.TotalParameters < 0 {
		return fmt.Errorf("%w: total_parameters %d is negative", ErrIndexInvalid, ix.TotalParameters)
	}
	for _, t := range slices.Sorted(maps.Keys(ix.WeightMap)) {
		if err := CheckShardFileName(ix.WeightMap[t]); err != nil {
			return fmt.Errorf("%w: weight_map: tensor %q: %w", ErrIndexInvalid, t, err)
		}
	}
	for _, part := range []struct {
		name string
		m    map[string]json.RawMessage
	}{{"metadata", ix.Metadata}, {"top-level key", ix.Extra}} {
		for _, k := range slices.Sorted(maps.Keys(part.m)) {
			if _, err := ParsePythonJSON(part.m[k]); err != nil {
				return fmt.Errorf("%w: %s %q: %v", ErrIndexInvalid, part.name, k, err)
			}
		}
	}
	return nil
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
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("%w: malformed JSON at byte %d: %v", ErrIndexInvalid, se.Offset, err)
		}
		return nil, fmt.Errorf("%w: the file must hold a JSON object: %v", ErrIndexInvalid, err)
	}
	if top == nil {
		return nil, fmt.Errorf("%w: the file must hold a JSON object, not null", ErrIndexInvalid)
	}
	ix := &Index{}

	rawWM, ok := top["weight_map"]
	if !ok {
		return nil, fmt.Errorf("%w: no \"weight_map\" key", ErrIndexInvalid)
	}
	var wm map[string]json.RawMessage
	if err := json.Unmarshal(rawWM, &wm); err != nil || wm == nil {
		return nil, fmt.Errorf("%w: \"weight_map\" must be an object, got %s", ErrIndexInvalid, abbrevJSON(rawWM))
	}
	ix.WeightMap = make(map[string]string, len(wm))
	for _, t := range slices.Sorted(maps.Keys(wm)) {
		raw := wm[t]
		var file string
		if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &file) != nil {
			return nil, fmt.Errorf("%w: weight_map: tensor %q: the shard must be a file name string, got %s", ErrIndexInvalid, t, abbrevJSON(raw))
		}
		if err := CheckShardFileName(file); err != nil {
			return nil, fmt.Errorf("%w: weight_map: tensor %q: %w", ErrIndexInvalid, t, err)
		}
		ix.WeightMap[t] = file
	}

	if rawMD, ok := top["metadata"]; ok {
		var md map[string]json.RawMessage
		if err := json.Unmarshal(rawMD, &md); err != nil || md == nil {
			return nil, fmt.Errorf("%w: \"metadata\" must be an object, got %s", ErrIndexInvalid, abbrevJSON(rawMD))
		}
		for _, f := range []struct {
			key string
			dst *int64
		}{{"total_size", &ix.TotalSize}, {"total_parameters", &ix.TotalParameters}} {
			raw, ok := md[f.key]
			if !ok {
				continue
			}
			n, err := parseIndexCount(raw)
			if err != nil {
				return nil, fmt.Errorf("%w: metadata.%s: %v", ErrIndexInvalid, f.key, err)
			}
			*f.dst = n
			delete(md, f.key)
		}
		if len(md) > 0 {
			ix.Metadata = md
		}
	}

	delete(top, "weight_map")
	delete(top, "metadata")
	if len(top) > 0 {
		ix.Extra = top
	}
	return ix, nil
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
