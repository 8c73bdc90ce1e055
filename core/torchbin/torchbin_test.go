package torchbin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/tensors"
)

type expTensor struct {
	DType      string   `json:"dtype"`
	Shape      []int64  `json:"shape"`
	SHA256     string   `json:"sha256"`
	NBytes     int64    `json:"nbytes"`
	Contiguous bool     `json:"contiguous"`
	Shares     []string `json:"shares_storage_with"`
}

type expFile struct {
	Keys    []string             `json:"keys"`
	Tensors map[string]expTensor `json:"tensors"`
}

func loadExpected(t *testing.T) map[string]expFile {
	b, err := os.ReadFile(td("expected.json"))
	require.NoError(t, err)
	var e struct {
		Files map[string]expFile `json:"files"`
	}
	require.NoError(t, json.Unmarshal(b, &e))
	require.NotEmpty(t, e.Files)
	return e.Files
}

// TestConvertMatchesTorch converts every checkpoint of expected.json and
// compares each tensor's bytes with the hash of what torch holds.
func TestConvertMatchesTorch(t *testing.T) {
	exp := loadExpected(t)
	formats := map[string]string{"legacy.pt": "legacy"}
	names := make([]string, 0, len(exp))
	for n := range exp {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		want := exp[name]
		t.Run(name, func(t *testing.T) {
			c, err := Open(td(name))
			require.NoError(t, err)
			defer c.Close()
			format := formats[name]
			if format == "" {
				format = "zip"
			}
			assert.Equal(t, format, c.Format)

			var keys []string
			for _, tn := range c.Tensors {
				keys = append(keys, tn.Name)
				e := want.Tensors[tn.Name]
				assert.Equal(t, e.DType, tn.DType.String(), tn.Name)
				assert.Equal(t, append([]int64{}, e.Shape...), append([]int64{}, tn.Shape...), tn.Name)
				assert.Equal(t, e.Contiguous, tn.Contiguous, tn.Name)
				assert.Equal(t, e.NBytes, tn.ByteSize(), tn.Name)
				shares := append([]string{}, tn.SharesStorageWith...)
				sort.Strings(shares)
				assert.Equal(t, append([]string{}, e.Shares...), shares, tn.Name)

				// the Source on its own
				h := sha256.New()
				src := c.Source(tn)
				require.Equal(t, e.NBytes, src.Size())
				require.NoError(t, src.CopyTo(context.Background(), h), tn.Name)
				assert.Equal(t, e.SHA256, hex.EncodeToString(h.Sum(nil)), "source of %s", tn.Name)
			}
			assert.Equal(t, want.Keys, keys, "state-dict order")

			out := filepath.Join(t.TempDir(), "out.safetensors")
			require.NoError(t, WriteSafetensors(context.Background(), c, out))
			hdr, err := tensors.ReadHeaderFile(out)
			require.NoError(t, err)
			v, ok := hdr.Metadata.Get("format")
			assert.True(t, ok)
			assert.Equal(t, "pt", v)
			raw, err := os.ReadFile(out)
			require.NoError(t, err)
			require.Len(t, hdr.Tensors, len(want.Tensors))
			for _, ti := range hdr.Tensors {
				e, ok := want.Tensors[ti.Name]
				require.True(t, ok, ti.Name)
				assert.Equal(t, e.DType, ti.DType.String(), ti.Name)
				assert.Equal(t, append([]int64{}, e.Shape...), append([]int64{}, ti.Shape...), ti.Name)
				sum := sha256.Sum256(raw[hdr.DataStart+ti.Begin : hdr.DataStart+ti.End])
				assert.Equal(t, e.SHA256, hex.EncodeToString(sum[:]), "written %s", ti.Name)
			}
		})
	}
}

func TestSkippedAndMetadata(t *testing.T) {
	c, err := Open(td("module_state.pt"))
	require.NoError(t, err)
	defer c.Close()
	assert.Empty(t, c.Skipped)
	assert.Equal(t, "module_state", c.Prefix)
	assert.Equal(t, "3", c.Version)
}

// TestLoRAMatchesTwin: the real LoRA .bin has the keys, shapes and dtypes
// of its safetensors twin (whose values differ).
func TestLoRAMatchesTwin(t *testing.T) {
	c, err := Open(td("lora_pytorch_lora_weights.bin"))
	require.NoError(t, err)
	defer c.Close()
	twin, err := tensors.ReadHeaderFile(td("lora_pytorch_lora_weights.safetensors"))
	require.NoError(t, err)
	require.Len(t, c.Tensors, 256)
	require.Len(t, twin.Tensors, 256)
	assert.Equal(t, "pytorch_lora_weights", c.Prefix)
	for _, tn := range c.Tensors {
		ti, ok := twin.Tensor(tn.Name)
		require.True(t, ok, tn.Name)
		assert.Equal(t, ti.DType, tn.DType, tn.Name)
		assert.Equal(t, ti.Shape, tn.Shape, tn.Name)
		assert.True(t, tn.Contiguous)
		assert.Empty(t, tn.SharesStorageWith)
	}
	out := filepath.Join(t.TempDir(), "lora.safetensors")
	require.NoError(t, WriteSafetensors(context.Background(), c, out))
	h, err := tensors.ReadHeaderFile(out)
	require.NoError(t, err)
	assert.Equal(t, twin.DataSize(), h.DataSize())
}

const marker = "/tmp/modelpub-torchbin-pwned-marker"

func TestForbiddenGlobals(t *testing.T) {
	dir := t.TempDir()
	// hand-made pickles, each wrapped in an otherwise valid zip checkpoint
	var listGlobal, computed, ext, inst, builtinsList4 pk
	listGlobal.op(0x80, 2)
	listGlobal.global("builtins", "list") // gopickle would resolve it itself
	listGlobal.op(')', 'R', '.')
	computed.op(0x80, 4)
	computed.str("o") // names built at run time: refused, not evaluated
	computed.op('2', 0x93, '.')
	ext.op(0x80, 2, 0x82, 1, '.')
	inst.op('(')
	inst.WriteString("ios\nsystem\n")
	inst.op('.')
	builtinsList4.op(0x80, 4)
	builtinsList4.stackStr("builtins", "getattr")
	builtinsList4.op('.')
	hand := map[string][]byte{"list.pt": listGlobal.Bytes(), "computed.pt": computed.Bytes(),
		"ext.pt": ext.Bytes(), "inst.pt": inst.Bytes(), "getattr4.pt": builtinsList4.Bytes()}
	for n, b := range hand {
		writeZip(t, filepath.Join(dir, n), "x", []zent{{name: "data.pkl", data: b}})
	}
	cases := []struct{ file, global string }{
		{td("evil_os_system.pt"), "os.system"},
		{td("evil_builtins_eval.pt"), "builtins.eval"},
		{td("evil_popen_proto4.pt"), "subprocess.Popen"},
		{td("evil_legacy.pt"), "os.system"},
		{filepath.Join(dir, "list.pt"), "builtins.list"},
		{filepath.Join(dir, "computed.pt"), "STACK_GLOBAL"},
		{filepath.Join(dir, "ext.pt"), "extension registry"},
		{filepath.Join(dir, "inst.pt"), "os.system"},
		{filepath.Join(dir, "getattr4.pt"), "builtins.getattr"},
	}
	for _, tc := range cases {
		t.Run(filepath.Base(tc.file), func(t *testing.T) {
			os.Remove(marker)
			c, err := Open(tc.file)
			require.Error(t, err)
			assert.Nil(t, c)
			assert.ErrorIs(t, err, ErrForbiddenGlobal)
			assert.Contains(t, err.Error(), tc.global)
			assert.Contains(t, err.Error(), tc.file)
			assert.Contains(t, err.Error(), "refusing to load")
			_, statErr := os.Stat(marker)
			assert.True(t, os.IsNotExist(statErr), "the marker file must not exist")
		})
	}
}

func replaceEntry(ents []zent, name string, data []byte) []zent {
	out := append([]zent{}, ents...)
	for i := range out {
		if out[i].name == name {
			out[i].data = data
		}
	}
	return out
}

func dropEntry(ents []zent, name string) []zent {
	var out []zent
	for _, e := range ents {
		if e.name != name {
			out = append(out, e)
		}
	}
	return out
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	good, err := os.ReadFile(td("dtypes.pt"))
	require.NoError(t, err)
	legacy, err := os.ReadFile(td("legacy.pt"))
	require.NoError(t, err)
	prefix, ents := readZipEntries(t, td("dtypes.pt"))

	f32 := func(name string, numel, off int64, size, stride []int64) spec {
		return spec{name: name, storage: "FloatStorage", key: "0", numel: numel, offset: off, size: size, stride: stride}
	}
	store16 := []zent{{name: "data/0", data: make([]byte, 64)}}
	withPkl := func(p []byte, rest ...zent) []zent { return append([]zent{{name: "data.pkl", data: p}}, rest...) }
	var bigStr pk
	bigStr.op(0x80, 2, 'X')
	bigStr.u32(0x7fffff00)
	bigStr.WriteString("abc")
	var frame pk
	frame.op(0x80, 4, 0x95, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0)
	var oddDict pk
	oddDict.op(0x80, 2, '(', 'K', 1, 'd', '.')

	type tc struct {
		name  string
		make  func(path string)
		want  error
		inMsg string
	}
	raw := func(b []byte) func(string) {
		return func(p string) { require.NoError(t, os.WriteFile(p, b, 0o644)) }
	}
	zipOf := func(prefix string, e []zent) func(string) {
		return func(p string) { writeZip(t, p, prefix, e) }
	}
	// the offset of the last storage's bytes in legacy.pt: its count is 8 bytes before
	cases := []tc{
		{"empty file", raw(nil), ErrNotCheckpoint, "neither"},
		{"text file", raw([]byte("hello world\n")), ErrNotCheckpoint, "neither"},
		{"safetensors", raw([]byte("\x10\x00\x00\x00\x00\x00\x00\x00{}              ")), ErrNotCheckpoint, ""},
		{"plain pickle", raw([]byte("\x80\x02K\x05.")), ErrNotCheckpoint, "magic"},
		{"truncated zip half", raw(good[:len(good)/2]), ErrCorrupt, "zip"},
		{"truncated zip end", raw(good[:len(good)-10]), ErrCorrupt, "zip"},
		{"truncated zip 100", raw(good[:100]), ErrCorrupt, "zip"},
		{"zip without data.pkl", zipOf(prefix, dropEntry(ents, "data.pkl")), ErrNotCheckpoint, "data.pkl"},
		{"missing storage entry", zipOf(prefix, dropEntry(ents, "data/3")), ErrCorrupt, "data/3 is missing"},
		{"short storage entry", zipOf(prefix, replaceEntry(ents, "data/0", []byte{1, 2, 3})), ErrCorrupt, "data/0 is 3 bytes"},
		{"compressed storage", zipOf("p", withPkl(statePickle(f32("w", 4, 0, []int64{4}, []int64{1})),
			zent{name: "data/0", data: make([]byte, 16), method: 8})), ErrUnsupported, "compressed"},
		{"storage entry larger than file", zipOf("p", withPkl(statePickle(f32("w", 1<<40, 0, []int64{4}, []int64{1})),
			zent{name: "data/0", data: make([]byte, 16), size: 4 << 40})), ErrCorrupt, "past the end of the file"},
		{"offset past storage", zipOf("p", withPkl(statePickle(f32("w", 16, 13, []int64{4}, []int64{1})), store16...)), ErrCorrupt, "past the end of the storage"},
		{"shape past storage", zipOf("p", withPkl(statePickle(f32("w", 16, 0, []int64{5, 4}, []int64{4, 1})), store16...)), ErrCorrupt, "past the end of the storage"},
		{"stride past storage", zipOf("p", withPkl(statePickle(f32("w", 16, 0, []int64{4, 4}, []int64{1, 5})), store16...)), ErrCorrupt, "past the end of the storage"},
		{"negative stride", zipOf("p", withPkl(statePickle(f32("w", 16, 3, []int64{4}, []int64{-1})), store16...)), ErrCorrupt, "negative stride"},
		{"overflowing shape", zipOf("p", withPkl(statePickle(f32("w", 16, 0, []int64{1 << 40, 1 << 40}, []int64{1, 1})), store16...)), ErrCorrupt, "overflows"},
		{"overflowing stride", zipOf("p", withPkl(statePickle(f32("w", 16, 0, []int64{2, 2}, []int64{1 << 62, 1 << 62})), store16...)), ErrCorrupt, "overflow"},
		{"huge storage numel", zipOf("p", withPkl(statePickle(f32("w", 1<<62, 0, []int64{4}, []int64{1})), store16...)), ErrCorrupt, "declares"},
		{"declared string past end", zipOf("p", withPkl(bigStr.Bytes())), ErrCorrupt, "past the end"},
		{"declared frame past end", zipOf("p", withPkl(frame.Bytes())), ErrCorrupt, "frame"},
		{"malformed dict", zipOf("p", withPkl(oddDict.Bytes())), ErrCorrupt, "malformed"},
		{"not a state dict", zipOf("p", withPkl([]byte("\x80\x02K\x05."))), ErrUnsupported, "not a state dict"},
		{"pickle bomb header", zipOf("p", []zent{{name: "data.pkl", data: statePickle(), method: 8, size: 1 << 40}}), ErrPickleLimit, "once inflated"},
		{"deflate lies about size", zipOf("p", []zent{{name: "data.pkl", data: bytes.Repeat([]byte("N0"), 1<<16), method: 8, size: 100}}), ErrCorrupt, ""},
		{"torchscript", zipOf("p", []zent{{name: "data.pkl", data: statePickle()}, {name: "constants.pkl", data: []byte(".")}}), ErrUnsupported, "TorchScript"},
		{"big endian", zipOf("p", []zent{{name: "data.pkl", data: statePickle()}, {name: "byteorder", data: []byte("big")}}), ErrUnsupported, "big-endian"},
		{"unknown opcode", zipOf("p", withPkl([]byte{0x80, 2, 0xff})), ErrCorrupt, "opcode"},
		{"truncated legacy storages", raw(legacy[:len(legacy)-5]), ErrCorrupt, "truncated"},
		{"truncated legacy pickle", raw(legacy[:300]), ErrCorrupt, "ends early"},
		{"legacy count mismatch", func(p string) {
			b := append([]byte{}, legacy...)
			i := bytes.LastIndex(b[:len(b)-8], []byte{3, 0, 0, 0, 0, 0, 0, 0}) // the last storage: 3 f32
			require.Positive(t, i)
			b[i] = 200
			require.NoError(t, os.WriteFile(p, b, 0o644))
		}, ErrCorrupt, "the pickle declares"},
		{"tar format", raw(append(make([]byte, 257), []byte("ustar\x00")...)), ErrUnsupported, "tar"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, "bad-"+filepath.Base(c.name)+".pt")
			c.make(p)
			ck, err := Open(p)
			require.Error(t, err)
			assert.Nil(t, ck)
			assert.ErrorIs(t, err, c.want)
			var pe *Error
			require.True(t, errors.As(err, &pe))
			assert.Equal(t, p, pe.Path)
			assert.Contains(t, err.Error(), p)
			assert.Contains(t, err.Error(), c.inMsg)
		})
	}
}

// TestTruncatedAfterOpen: a file cut after Open makes the copy fail with an
// error, not short output.
func TestTruncatedAfterOpen(t *testing.T) {
	for _, name := range []string{"views.pt", "legacy.pt"} {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(td(name))
			require.NoError(t, err)
			p := filepath.Join(t.TempDir(), name)
			require.NoError(t, os.WriteFile(p, b, 0o644))
			c, err := Open(p)
			require.NoError(t, err)
			defer c.Close()
			require.NoError(t, os.Truncate(p, 200))
			out := filepath.Join(t.TempDir(), "o.safetensors")
			err = WriteSafetensors(context.Background(), c, out)
			require.Error(t, err)
			assert.Contains(t, err.Error(), p)
			_, statErr := os.Stat(out)
			assert.True(t, os.IsNotExist(statErr))
		})
	}
}

// TestGather compares the chunked gather with a naive one on views whose
// span exceeds the read window and whose size exceeds one chunk.
func TestGather(t *testing.T) {
	const es = 4
	mk := func(n int64) []byte {
		b := make([]byte, n*es)
		for i := range b {
			b[i] = byte(i*7 + i/251)
		}
		return b
	}
	naive := func(data []byte, shape, strides []int64, off int64) []byte {
		var out []byte
		idx := make([]int64, len(shape))
		n := int64(1)
		for _, d := range shape {
			n *= d
		}
		for k := int64(0); k < n; k++ {
			o := off
			for i := range idx {
				o += idx[i] * strides[i]
			}
			out = append(out, data[o*es:(o+1)*es]...)
			for d := len(shape) - 1; d >= 0; d-- {
				idx[d]++
				if idx[d] < shape[d] {
					break
				}
				idx[d] = 0
			}
		}
		return out
	}
	cases := []struct {
		name           string
		numel, off     int64
		shape, strides []int64
	}{
		{"transpose big", 1100 * 1100, 0, []int64{1100, 1100}, []int64{1, 1100}},
		{"permute 3d", 64 * 128 * 100, 0, []int64{100, 64, 128}, []int64{1, 12800, 100}},
		{"expand", 3000, 0, []int64{3000, 400}, []int64{1, 0}},
		{"slice step", 2000 * 1500, 7, []int64{999, 700}, []int64{3000, 2}},
		{"overlapping rows", 1999*700 + 2000, 0, []int64{2000, 2000}, []int64{700, 1}},
		{"transpose 3 chunks", 600 * 1500, 5, []int64{1500, 599}, []int64{1, 1500}},
		{"small transposed", 12, 0, []int64{4, 3}, []int64{1, 4}},
		{"size-1 dims", 24, 2, []int64{1, 4, 1, 5}, []int64{99, 5, 7, 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := mk(c.numel)
			_, err := checkView(c.shape, c.strides, c.off, c.numel)
			require.NoError(t, err)
			sh, st := collapse(c.shape, c.strides)
			n := int64(1)
			for _, d := range c.shape {
				n *= d
			}
			g := &gather{r: bytes.NewReader(data), base: c.off * es, es: es, n: n, shape: sh, strides: st}
			var out bytes.Buffer
			require.NoError(t, g.CopyTo(context.Background(), &out))
			assert.True(t, bytes.Equal(naive(data, c.shape, c.strides, c.off), out.Bytes()))
			assert.Equal(t, g.Size(), int64(out.Len()))
		})
	}
}

func TestSourceCancel(t *testing.T) {
	c, err := Open(td("views.pt"))
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tn, ok := c.Tensor("transposed")
	require.True(t, ok)
	require.ErrorIs(t, c.Source(tn).CopyTo(ctx, io.Discard), context.Canceled)
	// a tensor edited to point outside its storage is refused, not read
	tn.Offset = 1 << 40
	require.ErrorIs(t, c.Source(tn).CopyTo(context.Background(), io.Discard), ErrCorrupt)
}
