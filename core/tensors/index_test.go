package tensors

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestIndexRealFiles(t *testing.T) {
	tests := []struct {
		file    string
		tensors int
		total   int64
		shards  []string
		crlf    bool // the copy has CRLF line ends; LF-normalised it is byte-identical
		first   string
	}{
		{
			file: "flux-schnell-nf4-text_encoder_2.model.safetensors.index.json", tensors: 651, total: 6_328_582_592,
			shards: []string{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"},
			first:  "encoder.block.0.layer.0.SelfAttention.k.weight",
		},
		{
			file: "sd35-large-transformer.diffusion_pytorch_model.safetensors.index.json", tensors: 1227, total: 16_292_561_536,
			shards: []string{"diffusion_pytorch_model-00001-of-00002.safetensors", "diffusion_pytorch_model-00002-of-00002.safetensors"},
			crlf:   true, first: "context_embedder.bias",
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "index", tt.file))
			require.NoError(t, err)
			ix, err := ParseIndex(data)
			require.NoError(t, err)
			assert.Len(t, ix.WeightMap, tt.tensors)
			assert.Equal(t, tt.total, ix.TotalSize)
			assert.Zero(t, ix.TotalParameters)
			assert.Nil(t, ix.Metadata)
			assert.Nil(t, ix.Extra)
			assert.Equal(t, tt.shards, ix.Shards())
			n := 0
			for _, s := range ix.Shards() {
				ts := ix.TensorsIn(s)
				assert.NotEmpty(t, ts)
				n += len(ts)
			}
			assert.Equal(t, tt.tensors, n)
			assert.Equal(t, tt.shards[0], ix.WeightMap[tt.first])
			require.NoError(t, ix.Validate())

			want := data
			if tt.crlf {
				require.True(t, bytes.HasSuffix(data, []byte("}\r\n")))
				require.NotContains(t, string(bytes.ReplaceAll(data, []byte("\r\n"), nil)), "\n", "every newline is CRLF")
				want = bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
			}
			assert.Equal(t, string(want), string(ix.MarshalPython()))
		})
	}
}

func TestIndexMarshalGolden(t *testing.T) {
	// A planned fp16 index with everything MarshalPython writes: sorted
	// weight map, total_parameters, extra metadata and top-level keys kept
	// from a parsed file, names needing escapes. Python 3.11's
	// json.dumps(json.load(f), indent=2, sort_keys=True) + "\n" reproduces
	// the golden file byte for byte.
	es := []ShardEntry{
		{"transformer_blocks.0.attn.to_q.weight", 6}, {"transformer_blocks.0.attn.to_k.weight", 6},
		{"pos_embed.pos_embed", 12}, {"norm_out.linear.weight", 4}, {"caf\u00e9.\U0001F600", 0},
	}
	plan, err := PlanShards(es, 12, "diffusion_pytorch_model", "fp16")
	require.NoError(t, err)
	require.True(t, plan.Sharded)
	ix := plan.Index()
	ix.TotalParameters = 14
	ix.Metadata = map[string]json.RawMessage{"quant": json.RawMessage(`{"bits":4,"scale":0.5,"skip":["a","b"]}`)}
	ix.Extra = map[string]json.RawMessage{"format_note": json.RawMessage(`"kept"`)}
	require.NoError(t, ix.Validate())
	got := ix.MarshalPython()
	path := filepath.Join("testdata", "index", "planned.safetensors.index.fp16.json")
	goldenCompare(t, path, got)

	back, err := ParseIndex(got)
	require.NoError(t, err)
	assert.Equal(t, ix.WeightMap, back.WeightMap)
	assert.Equal(t, int64(28), back.TotalSize)
	assert.Equal(t, int64(14), back.TotalParameters)
	assert.Equal(t, string(got), string(back.MarshalPython()))
	assert.Equal(t, IndexFileName("diffusion_pytorch_model", "fp16"), "diffusion_pytorch_model.safetensors.index.fp16.json")
}

func TestIndexMarshalPython(t *testing.T) {
	ix := &Index{TotalSize: 10, WeightMap: map[string]string{"b": "m-00002-of-00002.safetensors", "a": "m-00001-of-00002.safetensors"}}
	want := `{
  "metadata": {
    "total_size": 10
  },
  "weight_map": {
    "a": "m-00001-of-00002.safetensors",
    "b": "m-00002-of-00002.safetensors"
  }
}
`
	assert.Equal(t, want, string(ix.MarshalPython()))

	// The typed fields win over same-named Metadata/Extra keys;
	// total_parameters only when > 0.
	ix.Metadata = map[string]json.RawMessage{"total_size": json.RawMessage(`1`), "total_parameters": json.RawMessage(`2`)}
	ix.Extra = map[string]json.RawMessage{"weight_map": json.RawMessage(`{}`), "metadata": json.RawMessage(`{}`)}
	assert.Equal(t, want, string(ix.MarshalPython()))

	ix.TotalParameters = 5
	assert.Contains(t, string(ix.MarshalPython()), "    \"total_parameters\": 5,\n    \"total_size\": 10\n")

	empty := &Index{}
	assert.Equal(t, "{\n  \"metadata\": {\n    \"total_size\": 0\n  },\n  \"weight_map\": {}\n}\n", string(empty.MarshalPython()))

	bad := &Index{Metadata: map[string]json.RawMessage{"x": json.RawMessage(`{`)}}
	assert.PanicsWithValue(t, `tensors: Index.MarshalPython: "metadata": "x": json.RawMessage: unexpected EOF`, func() { bad.MarshalPython() })
	assert.ErrorIs(t, bad.Validate(), ErrIndexInvalid)
}

func TestParseIndexFormats(t *testing.T) {
	// huggingface_hub's save_torch_state_dict writes json.dump(index, f,
	// indent=2): unsorted, no final newline. It parses the same and is
	// written back in diffusers' format.
	hub := "{\n  \"metadata\": {\n    \"total_size\": 3\n  },\n  \"weight_map\": {\n    \"z\": \"model-00002-of-00002.safetensors\",\n    \"a\": \"model-00001-of-00002.safetensors\"\n  }\n}"
	ix, err := ParseIndex([]byte(hub))
	require.NoError(t, err)
	assert.Equal(t, "{\n  \"metadata\": {\n    \"total_size\": 3\n  },\n  \"weight_map\": {\n    \"a\": \"model-00001-of-00002.safetensors\",\n    \"z\": \"model-00002-of-00002.safetensors\"\n  }\n}\n", string(ix.MarshalPython()))

	// transformers' newer index with total_parameters, compact JSON, extra keys kept verbatim.
	tf := `{"metadata":{"total_parameters":7,"total_size":28,"quantization":{"b":1.0,"a":[]}},"weight_map":{"w":"model.safetensors"},"extra":null}`
	ix, err = ParseIndex([]byte(tf))
	require.NoError(t, err)
	assert.Equal(t, int64(7), ix.TotalParameters)
	assert.Equal(t, int64(28), ix.TotalSize)
	assert.Equal(t, map[string]json.RawMessage{"quantization": json.RawMessage(`{"b":1.0,"a":[]}`)}, ix.Metadata)
	assert.Equal(t, map[string]json.RawMessage{"extra": json.RawMessage(`null`)}, ix.Extra)
	assert.Equal(t, `{
  "extra": null,
  "metadata": {
    "quantization": {
      "a": [],
      "b": 1.0
    },
    "total_parameters": 7,
    "total_size": 28
  },
  "weight_map": {
    "w": "model.safetensors"
  }
}
`, string(ix.MarshalPython()))

	// No metadata at all, and an empty weight map, are accepted.
	ix, err = ParseIndex([]byte(`{"weight_map":{}}`))
	require.NoError(t, err)
	assert.Zero(t, ix.TotalSize)
	assert.Empty(t, ix.Shards())
	assert.Empty(t, ix.TensorsIn("x"))
	ix, err = ParseIndex([]byte(`{"metadata":{},"weight_map":{"a":"x.safetensors"}}`))
	require.NoError(t, err)
	assert.Equal(t, []string{"a"}, ix.TensorsIn("x.safetensors"))
	assert.Nil(t, ix.Metadata)
}

func TestParseIndexErrors(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		msg    string
		unsafe bool
	}{
		{"empty", ``, "malformed JSON", false},
		{"truncated", `{"weight_map": {"a": "x"`, "malformed JSON", false},
		{"syntax", `{"weight_map": {"a": "x",}}`, "malformed JSON at byte 26", false},
		{"trailing", `{"weight_map": {}} {}`, "malformed JSON", false},
		{"array", `[]`, "must hold a JSON object", false},
		{"null", `null`, "must hold a JSON object, not null", false},
		{"string", `"x"`, "must hold a JSON object", false},
		{"no weight_map", `{"metadata": {"total_size": 1}}`, `no "weight_map" key`, false},
		{"weight_map null", `{"weight_map": null}`, `"weight_map" must be an object, got null`, false},
		{"weight_map array", `{"weight_map": ["a"]}`, `"weight_map" must be an object, got ["a"]`, false},
		{"value number", `{"weight_map": {"w.bias": 1}}`, `tensor "w.bias": the shard must be a file name string, got 1`, false},
		{"value null", `{"weight_map": {"w": null}}`, `tensor "w": the shard must be a file name string, got null`, false},
		{"value object", `{"weight_map": {"w": {"f": "x"}}}`, `tensor "w": the shard must be a file name string`, false},
		{"first bad in sorted order", `{"weight_map": {"z": 1, "b": 2}}`, `tensor "b"`, false},
		{"parent", `{"weight_map": {"w": "../x.safetensors"}}`, `tensor "w": unsafe shard file name "../x.safetensors": it contains a path separator`, true},
		{"dotdot", `{"weight_map": {"w": ".."}}`, `unsafe shard file name "..": it is a directory reference`, true},
		{"dot", `{"weight_map": {"w": "."}}`, "directory reference", true},
		{"absolute", `{"weight_map": {"w": "/etc/passwd"}}`, "path separator", true},
		{"subdir", `{"weight_map": {"w": "unet/x.safetensors"}}`, "path separator", true},
		{"backslash", `{"weight_map": {"w": "..\\x.safetensors"}}`, "path separator", true},
		{"windows absolute", `{"weight_map": {"w": "C:\\x.safetensors"}}`, "path separator", true},
		{"drive relative", `{"weight_map": {"w": "C:x.safetensors"}}`, `it contains ':'`, true},
		{"empty name", `{"weight_map": {"w": ""}}`, "it is empty", true},
		{"NUL", `{"weight_map": {"w": "x\u0000.safetensors"}}`, "NUL", true},
		{"metadata array", `{"metadata": [], "weight_map": {}}`, `"metadata" must be an object, got []`, false},
		{"metadata null", `{"metadata": null, "weight_map": {}}`, `"metadata" must be an object, got null`, false},
		{"total_size negative", `{"metadata": {"total_size": -1}, "weight_map": {}}`, "metadata.total_size: must be a non-negative integer, got -1", false},
		{"total_size float", `{"metadata": {"total_size": 16292561536.0}, "weight_map": {}}`, "got 16292561536.0", false},
		{"total_size exponent", `{"metadata": {"total_size": 1e3}, "weight_map": {}}`, "got 1e3", false},
		{"total_size string", `{"metadata": {"total_size": "123"}, "weight_map": {}}`, `got "123"`, false},
		{"total_size null", `{"metadata": {"total_size": null}, "weight_map": {}}`, "got null", false},
		{"total_size bool", `{"metadata": {"total_size": true}, "weight_map": {}}`, "got true", false},
		{"total_size huge", `{"metadata": {"total_size": 9223372036854775808}, "weight_map": {}}`, "9223372036854775808 is larger than 9223372036854775807", false},
		{"total_parameters negative", `{"metadata": {"total_parameters": -5}, "weight_map": {}}`, "metadata.total_parameters: must be a non-negative integer, got -5", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ix, err := ParseIndex([]byte(tt.in))
			require.Error(t, err)
			assert.Nil(t, ix)
			assert.ErrorIs(t, err, ErrIndexInvalid)
			assert.Equal(t, tt.unsafe, errors.Is(err, ErrUnsafeShardName))
			assert.Contains(t, err.Error(), tt.msg)
			assert.True(t, strings.HasPrefix(err.Error(), "invalid shard index: "), err.Error())
		})
	}
}

func TestCheckShardFileName(t *testing.T) {
	for _, ok := range []string{"model.safetensors", "diffusion_pytorch_model.fp16-00001-of-00002.safetensors", "...", "a..b", "x y", "caf\u00e9"} {
		assert.NoError(t, CheckShardFileName(ok), ok)
	}
	for _, bad := range []string{"", ".", "..", "../a", "a/..", "a/b", `a\b`, "/a", `\a`, `C:\a`, "C:a", "a\x00b", "//server/share"} {
		err := CheckShardFileName(bad)
		assert.ErrorIs(t, err, ErrUnsafeShardName, "%q", bad)
	}
}

func TestIndexValidate(t *testing.T) {
	assert.NoError(t, (&Index{}).Validate())
	tests := []struct {
		name string
		ix   Index
		msg  string
	}{
		{"negative size", Index{TotalSize: -1}, "total_size -1 is negative"},
		{"negative params", Index{TotalParameters: -1}, "total_parameters -1 is negative"},
		{"unsafe", Index{WeightMap: map[string]string{"w": "../x"}}, `tensor "w": unsafe shard file name`},
		{"bad metadata", Index{Metadata: map[string]json.RawMessage{"q": json.RawMessage(`nope`)}}, `metadata "q"`},
		{"bad extra", Index{Extra: map[string]json.RawMessage{"e": json.RawMessage(`{`)}}, `top-level key "e"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.ix.Validate()
			assert.ErrorIs(t, err, ErrIndexInvalid)
			assert.ErrorContains(t, err, tt.msg)
		})
	}
}

func FuzzParseIndex(f *testing.F) {
	// Seeds: the golden files cut down to a few tensors (whole 100 KB
	// files make the fuzzer spend its time minimising), plus small cases.
	for _, name := range []string{
		"flux-schnell-nf4-text_encoder_2.model.safetensors.index.json",
		"sd35-large-transformer.diffusion_pytorch_model.safetensors.index.json",
		"planned.safetensors.index.fp16.json",
	} {
		data, err := os.ReadFile(filepath.Join("testdata", "index", name))
		require.NoError(f, err)
		ix, err := ParseIndex(data)
		require.NoError(f, err)
		for i, k := range slices.Sorted(maps.Keys(ix.WeightMap)) {
			if i >= 4 {
				delete(ix.WeightMap, k)
			}
		}
		f.Add(ix.MarshalPython())
	}
	f.Add([]byte(strings.ReplaceAll(`{
  "metadata": {
    "total_size": 16292561536
  },
  "weight_map": {
    "context_embedder.bias": "diffusion_pytorch_model-00001-of-00002.safetensors"
  }
}
`, "\n", "\r\n")))
	for _, s := range []string{
		`{"weight_map":{}}`,
		`{"metadata":{"total_size":1,"total_parameters":2,"x":[1.0,{"y":null}]},"weight_map":{"a":"b"},"z":1e400}`,
		`{"metadata":{"total_size":-1},"weight_map":{}}`,
		`{"weight_map":{"a":"../b"}}`,
		`{"weight_map":{"a":1}}`,
		`null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ix, err := ParseIndex(data)
		if err != nil {
			if !errors.Is(err, ErrIndexInvalid) {
				t.Fatalf("error does not wrap ErrIndexInvalid: %v", err)
			}
			return
		}
		if err := ix.Validate(); err != nil {
			t.Fatalf("a parsed index does not validate: %v", err)
		}
		out := ix.MarshalPython()
		back, err := ParseIndex(out)
		if err != nil {
			if bytes.Contains(out, []byte("Infinity")) || bytes.Contains(out, []byte("NaN")) {
				return // an extra float overflowed to ±Inf, which Python writes as Infinity
			}
			t.Fatalf("MarshalPython output does not parse: %v\n%s", err, out)
		}
		if back.TotalSize != ix.TotalSize || back.TotalParameters != ix.TotalParameters || len(back.WeightMap) != len(ix.WeightMap) {
			t.Fatalf("round trip changed the index:\n%s", out)
		}
		for k, v := range ix.WeightMap {
			if back.WeightMap[k] != v {
				t.Fatalf("round trip changed tensor %q: %q -> %q", k, v, back.WeightMap[k])
			}
		}
		if out2 := back.MarshalPython(); !bytes.Equal(out, out2) {
			t.Fatalf("not idempotent:\n%s\n%s", out, out2)
		}
	})
}
