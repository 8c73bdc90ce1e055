package tensors

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// The reference index parser: the json.Unmarshal version the jsonScanner
// one replaced (it took 583 MB for a 65 MB index of a million tensors).
// FuzzIndexParsersAgree checks the two agree.

func parseIndexRef(data []byte) (*Index, error) {
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

// FuzzIndexParsersAgree feeds the same file to ParseIndex and to the
// json.Unmarshal reference: the same index, or the same error message.
func FuzzIndexParsersAgree(f *testing.F) {
	for _, s := range []string{
		``, ` `, `null`, `[]`, `"x"`, `1`, `true`, `{}`, `{} {}`, `{"weight_map":{}}`, `{"weight_map":null}`, `{"weight_map":[1]}`,
		`{"weight_map":{"a":"x.safetensors","b":"y.safetensors","a":"z.safetensors"}}`,
		`{"weight_map":{"a":1,"a":"x"}}`, `{"weight_map":{"a":"x","a":1}}`, `{"weight_map":{"z":1,"b":"../x","c":"y"}}`,
		`{"weight_map":{"a":"x"},"weight_map":{"b":"y"}}`, `{"weight_map":1,"weight_map":{"b":"y"}}`,
		`{"weight\u005fmap":{"\ud800":"a\u0000b"}}`, `{"weight_map":{"a":"x",}}`,
		`{"metadata":{"total_size":1,"total_parameters":2,"x":[1.0,{"y":null}]},"weight_map":{"a":"b"},"z":1e400}`,
		`{"metadata":{"total_size":-1},"weight_map":{}}`, `{"metadata":null,"weight_map":{}}`, `{"metadata":{"total_size":1,"total_size":"x"},"weight_map":{}}`,
		`{"metadata":[],"weight_map":{"a":1}}`, `{"weight_map":{"a":1},"x":}`, "{\"weight_map\":{\"a\xff\":\"b\xfe\"}}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ParseIndex(data)
		want, wantErr := parseIndexRef(data)
		if wantErr != nil {
			require.Error(t, err, "the reference refuses %q: %v", data, wantErr)
			require.Equal(t, wantErr.Error(), err.Error(), "%q", data)
			require.Equal(t, errors.Is(wantErr, ErrUnsafeShardName), errors.Is(err, ErrUnsafeShardName))
			return
		}
		require.NoError(t, err, "the reference accepts %q", data)
		require.Equal(t, want, got, "%q", data)
	})
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
