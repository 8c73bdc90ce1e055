package tensors

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rewrite reads the safetensors file at src and writes its tensors and
// metadata to dst through the streaming writer.
func rewrite(t *testing.T, src, dst string, opts WriteOptions) *Layout {
	t.Helper()
	f, err := Open(src)
	require.NoError(t, err)
	defer f.Close()
	var ws []WriteTensor
	for _, ti := range f.Header.Tensors {
		ws = append(ws, WriteTensor{Name: ti.Name, DType: ti.DType, Shape: ti.Shape, Data: f.TensorSource(ti)})
	}
	l, err := WriteFile(context.Background(), dst, ws, f.Header.Metadata, opts)
	require.NoError(t, err)
	return l
}

// tensorBytes returns every tensor's data keyed by name.
func tensorBytes(t *testing.T, path string) (map[string][]byte, *Header) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	h, err := parseBytes(b)
	require.NoError(t, err)
	out := map[string][]byte{}
	for _, ti := range h.Tensors {
		out[ti.Name] = b[h.DataStart+ti.Begin : h.DataStart+ti.End]
	}
	return out, h
}

// TestWriteRoundTripRealFiles is the proof that the writer lays files out
// exactly as the reference writer: every padded real file (written by
// safetensors >= 0.3) read and written back gives identical bytes. Files
// without __metadata__ round-trip byte for byte in Verbatim mode; by default
// the writer adds "format":"pt". Old unpadded files are re-laid-out the
// modern way with the same tensors, bytes and metadata.
func TestWriteRoundTripRealFiles(t *testing.T) {
	for _, src := range realFiles(t) {
		t.Run(filepath.Base(filepath.Dir(src))+"/"+filepath.Base(src), func(t *testing.T) {
			orig, err := os.ReadFile(src)
			require.NoError(t, err)
			h, err := parseBytes(orig)
			require.NoError(t, err)
			padded := h.HeaderLen%8 == 0
			dir := t.TempDir()

			verbatim := filepath.Join(dir, "verbatim.safetensors")
			rewrite(t, src, verbatim, WriteOptions{Verbatim: true})
			got, err := os.ReadFile(verbatim)
			require.NoError(t, err)
			if padded {
				assert.True(t, bytes.Equal(orig, got), "padded real file must round-trip byte for byte")
			}

			def := filepath.Join(dir, "default.safetensors")
			rewrite(t, src, def, WriteOptions{})
			got, err = os.ReadFile(def)
			require.NoError(t, err)
			if v, _ := h.Metadata.Get("format"); v == "pt" && padded {
				assert.True(t, bytes.Equal(orig, got), "a file with format=pt round-trips byte for byte by default")
			}

			// Whatever the writer's age, tensors, bytes and metadata survive.
			want, _ := tensorBytes(t, src)
			for _, p := range []string{verbatim, def} {
				have, hh := tensorBytes(t, p)
				assert.Equal(t, want, have)
				assert.Zero(t, hh.HeaderLen%8, "header padded to 8")
				for _, e := range h.Metadata {
					v, ok := hh.Metadata.Get(e.Key)
					assert.True(t, ok, e.Key)
					if e.Key != "format" {
						assert.Equal(t, e.Value, v)
					}
				}
			}
			_, hd := tensorBytes(t, def)
			v, ok := hd.Metadata.Get("format")
			assert.True(t, ok)
			assert.Equal(t, "pt", v)
		})
	}
}

func TestPlanLayoutOrderAndHeader(t *testing.T) {
	ws := []WriteTensor{
		{Name: "z", DType: U8, Shape: []int64{2}, Data: Bytes([]byte{1, 2})},
		{Name: "b", DType: F32, Shape: []int64{1}, Data: Bytes(make([]byte, 4))},
		{Name: "a", DType: F32, Shape: []int64{}, Data: Bytes(make([]byte, 4))},
		{Name: "h", DType: BF16, Shape: []int64{1}, Data: Bytes(make([]byte, 2))},
		{Name: "g", DType: F16, Shape: []int64{1}, Data: Bytes(make([]byte, 2))},
		{Name: "i", DType: I64, Shape: []int64{0, 3}, Data: Bytes(nil)},
		{Name: "ok", DType: BOOL, Shape: []int64{1}, Data: Bytes([]byte{1})},
	}
	l, err := PlanLayout(ws, Metadata{{"format", "pt"}, {"note", "x"}})
	require.NoError(t, err)
	var names []string
	for _, ti := range l.Tensors {
		names = append(names, ti.Name)
	}
	// I64 > F32 > BF16 > F16 > U8 > BOOL in the reference enum; names ascend within a dtype.
	assert.Equal(t, []string{"i", "a", "b", "h", "g", "z", "ok"}, names)
	want := `{"__metadata__":{"format":"pt","note":"x"},` +
		`"i":{"dtype":"I64","shape":[0,3],"data_offsets":[0,0]},` +
		`"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},` +
		`"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},` +
		`"h":{"dtype":"BF16","shape":[1],"data_offsets":[8,10]},` +
		`"g":{"dtype":"F16","shape":[1],"data_offsets":[10,12]},` +
		`"z":{"dtype":"U8","shape":[2],"data_offsets":[12,14]},` +
		`"ok":{"dtype":"BOOL","shape":[1],"data_offsets":[14,15]}}`
	js := string(l.Header[8:])
	assert.Equal(t, want, js[:len(want)])
	assert.Zero(t, len(js)%8)
	assert.Equal(t, strings.Repeat(" ", len(js)-len(want)), js[len(want):], "padded with spaces only")
	assert.Equal(t, int64(len(l.Header))+15, l.Size)
}

func TestPlanLayoutEscapesLikeSerde(t *testing.T) {
	name := "q\"b\\s/\n\t\x01é☃<>&\u2028"
	l, err := PlanLayout([]WriteTensor{{Name: name, DType: U8, Shape: []int64{1}, Data: Bytes([]byte{7})}},
		Metadata{{"k\"", "v\x1f"}})
	require.NoError(t, err)
	js := string(bytes.TrimRight(l.Header[8:], " "))
	assert.Equal(t, `{"__metadata__":{"k\"":"v\u001f"},"q\"b\\s/\n\t\u0001é☃<>&`+"\u2028"+`":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, js)
	h, err := parseBytes(append(l.Header, 7))
	require.NoError(t, err)
	assert.Equal(t, name, h.Tensors[0].Name)
	assert.Equal(t, Metadata{{"k\"", "v\x1f"}}, h.Metadata)
}

func TestPlanLayoutRejects(t *testing.T) {
	four := Bytes(make([]byte, 4))
	tests := []struct {
		name string
		ws   []WriteTensor
		msg  string
	}{
		{"empty name", []WriteTensor{{Name: "", DType: F32, Shape: []int64{1}, Data: four}}, "empty name"},
		{"reserved name", []WriteTensor{{Name: "__metadata__", DType: F32, Shape: []int64{1}, Data: four}}, "reserved"},
		{"duplicate", []WriteTensor{{Name: "a", DType: F32, Shape: []int64{1}, Data: four}, {Name: "a", DType: F32, Shape: []int64{1}, Data: four}}, "twice"},
		{"size mismatch", []WriteTensor{{Name: "a", DType: F32, Shape: []int64{2}, Data: four}}, "its source has 4 bytes"},
		{"negative shape", []WriteTensor{{Name: "a", DType: F32, Shape: []int64{-1}, Data: four}}, "negative"},
		{"no source", []WriteTensor{{Name: "a", DType: F32, Shape: []int64{1}}}, "no data source"},
		{"bad utf-8", []WriteTensor{{Name: "a\xff", DType: F32, Shape: []int64{1}, Data: four}}, "UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := PlanLayout(tt.ws, nil)
			require.ErrorIs(t, err, ErrInvalidTensor)
			assert.Contains(t, err.Error(), tt.msg)
		})
	}
}

// failingSource writes half its bytes, then fails: a disk error or a source
// file vanishing mid-write.
type failingSource struct {
	n   int64
	err error
}

func (s failingSource) Size() int64 { return s.n }
func (s failingSource) CopyTo(ctx context.Context, w io.Writer) error {
	if _, err := w.Write(make([]byte, s.n/2)); err != nil {
		return err
	}
	return s.err
}

// lyingSource declares one size and writes another.
type lyingSource struct{ declared, writes int64 }

func (s lyingSource) Size() int64 { return s.declared }
func (s lyingSource) CopyTo(ctx context.Context, w io.Writer) error {
	_, err := w.Write(make([]byte, s.writes))
	return err
}

func TestWriteFileIsAtomic(t *testing.T) {
	boom := errors.New("simulated disk error")
	tests := []struct {
		name string
		src  Source
		ctx  func() context.Context
		want error
	}{
		{"source fails half-way", failingSource{n: 1 << 20, err: boom}, context.Background, boom},
		{"source writes too little", lyingSource{declared: 8, writes: 4}, context.Background, nil},
		{"source writes too much", lyingSource{declared: 8, writes: 12}, context.Background, nil},
		{"cancelled", Bytes(make([]byte, 8)), func() context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "model.safetensors")
			require.NoError(t, os.WriteFile(path, []byte("previous content"), 0o644))
			ws := []WriteTensor{
				{Name: "a", DType: U8, Shape: []int64{4}, Data: Bytes([]byte{1, 2, 3, 4})},
				{Name: "b", DType: U8, Shape: []int64{tt.src.Size()}, Data: tt.src},
			}
			_, err := WriteFile(tt.ctx(), path, ws, nil, WriteOptions{})
			require.Error(t, err)
			if tt.want != nil {
				assert.ErrorIs(t, err, tt.want)
			}
			assert.Contains(t, err.Error(), path)
			got, rerr := os.ReadFile(path)
			require.NoError(t, rerr)
			assert.Equal(t, "previous content", string(got), "the old file is untouched")
			entries, rerr := os.ReadDir(dir)
			require.NoError(t, rerr)
			assert.Len(t, entries, 1, "no temporary file is left behind")
		})
	}
}

func TestWriteFileProgressAndMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.safetensors")
	var calls [][2]int64
	l, err := WriteFile(context.Background(), path, []WriteTensor{
		{Name: "a", DType: F32, Shape: []int64{3}, Data: Bytes(make([]byte, 12))},
		{Name: "b", DType: F32, Shape: []int64{1}, Data: Bytes(make([]byte, 4))},
	}, Metadata{{"x", "y"}}, WriteOptions{Progress: func(done, total int64) { calls = append(calls, [2]int64{done, total}) }})
	require.NoError(t, err)
	require.Len(t, calls, 2)
	assert.Equal(t, [2]int64{l.Size - 4, l.Size}, calls[0])
	assert.Equal(t, [2]int64{l.Size, l.Size}, calls[1])
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, l.Size, st.Size())
	want := os.FileMode(0o644)
	if runtime.GOOS == "windows" {
		want = 0o666 // Windows keeps only a read-only flag; Go shows a writable file as 0666
	}
	assert.Equal(t, want, st.Mode().Perm())
	_, h := tensorBytes(t, path)
	assert.Equal(t, Metadata{{"format", "pt"}, {"x", "y"}}, h.Metadata, "format=pt first, other entries kept")
}

func TestEnsureFormatPT(t *testing.T) {
	assert.Equal(t, Metadata{{"format", "pt"}}, EnsureFormatPT(nil))
	assert.Equal(t, Metadata{{"a", "1"}, {"format", "pt"}}, EnsureFormatPT(Metadata{{"a", "1"}, {"format", "pt"}}))
	in := Metadata{{"a", "1"}, {"format", "tf"}}
	assert.Equal(t, Metadata{{"a", "1"}, {"format", "pt"}}, EnsureFormatPT(in))
	assert.Equal(t, "tf", in[1].Value, "the input is not modified")
}

// TestRangeSourceFallback checks the copy_file_range path and the
// read/write path give the same bytes, and that a source file shorter than
// its header claims is an error, not a short tensor.
func TestRangeSourceFallback(t *testing.T) {
	dir := t.TempDir()
	data := make([]byte, 3*chunkSize+123)
	for i := range data {
		data[i] = byte(i * 7)
	}
	srcPath := filepath.Join(dir, "src")
	require.NoError(t, os.WriteFile(srcPath, data, 0o644))
	src, err := os.Open(srcPath)
	require.NoError(t, err)
	defer src.Close()

	dst, err := os.Create(filepath.Join(dir, "dst"))
	require.NoError(t, err)
	defer dst.Close()
	require.NoError(t, Range(src, 5, int64(len(data))-10).CopyTo(context.Background(), dst))
	got, err := os.ReadFile(dst.Name())
	require.NoError(t, err)
	assert.True(t, bytes.Equal(data[5:len(data)-5], got), "kernel copy")

	var buf bytes.Buffer // not an *os.File: the read/write loop
	require.NoError(t, Range(src, 5, int64(len(data))-10).CopyTo(context.Background(), &buf))
	assert.True(t, bytes.Equal(data[5:len(data)-5], buf.Bytes()), "buffered copy")

	// A cut source: both paths write every byte it has before saying it
	// ended, so the writer's position names the cut tensor.
	require.NoError(t, dst.Truncate(0))
	_, err = dst.Seek(0, io.SeekStart)
	require.NoError(t, err)
	buf.Reset()
	for _, w := range []io.Writer{dst, &buf} {
		err = Range(src, 10, int64(len(data))).CopyTo(context.Background(), w)
		assert.ErrorIs(t, err, ErrShortSource)
	}
	got, err = os.ReadFile(dst.Name())
	require.NoError(t, err)
	assert.True(t, bytes.Equal(data[10:], got), "kernel copy of a cut source: %d bytes", len(got))
	assert.True(t, bytes.Equal(data[10:], buf.Bytes()), "buffered copy of a cut source: %d bytes", buf.Len())
}
