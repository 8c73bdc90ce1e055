package tensors

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/internal/costtest"
)

// Big but legal inputs: a header of a million tensors, an index of a
// million entries. They must be read in memory proportional to their size
// and in linear time.

// tinyTensors returns n one-element F32 tensors named t.0000000, … with
// their data in one buffer, as a file of n tensors holds them.
func tinyTensors(n int) []WriteTensor {
	data := make([]byte, 4*n)
	ws := make([]WriteTensor, n)
	for i := range ws {
		data[4*i] = byte(i)
		ws[i] = WriteTensor{Name: fmt.Sprintf("t.%07d", i), DType: F32, Shape: []int64{1}, Data: Bytes(data[4*i : 4*i+4])}
	}
	return ws
}

// requireLinear times f on n and 4n items: linear work takes 4 to 6 times
// as long (a bigger table misses the caches more), a quadratic step 16
// times. The bound is 8.
func requireLinear(t *testing.T, what string, n int, f func(n int)) {
	t.Helper()
	small := costtest.CPUTime(t, func() { f(n) })
	large := costtest.CPUTime(t, func() { f(4 * n) })
	t.Logf("%s: %d items %v, %d items %v (%.1fx)", what, n, small, 4*n, large, float64(large)/float64(small))
	assert.Less(t, large, 8*small+10*time.Millisecond, "%s: 4 times the items take %.1f times as long", what, float64(large)/float64(small))
}

// TestReadHeaderInWindows reads headers a few bytes at a time, as headers
// over two windows are read: the result is the whole header's.
func TestReadHeaderInWindows(t *testing.T) {
	files := realFiles(t)
	ws := tinyTensors(300)
	ws[7].Name = "caf\u00e9 \u2603 \"quoted\"\n" // escapes and characters cut by windows
	var big bytes.Buffer
	l, err := PlanLayout(ws, Metadata{{"format", "pt"}, {"note", strings.Repeat("\u00e9", 500)}})
	require.NoError(t, err)
	big.Write(l.Header)
	for _, w := range ws {
		require.NoError(t, w.Data.CopyTo(context.Background(), &big))
	}
	inputs := map[string][]byte{"generated": big.Bytes()}
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		inputs[f] = b
	}
	for name, b := range inputs {
		want, err := parseBytes(b)
		require.NoError(t, err, name)
		for _, window := range []int{8, 61, 1000} {
			for _, check := range []bool{false, true} {
				got, err := readHeaderWindow(bytes.NewReader(b), int64(len(b)), check, window)
				require.NoError(t, err, "%s, window %d", name, window)
				w := *want
				if check {
					w.Tensors = nil
				}
				require.Equal(t, w, *got, "%s, window %d, check %v", name, window, check)
			}
		}
	}
}

// TestPlanShardedMatchesWriteSharded checks the layout PlanSharded gives
// is what WriteSharded writes, index included, and that the index written
// a line at a time is byte for byte MarshalPython's.
func TestPlanShardedMatchesWriteSharded(t *testing.T) {
	ws := tinyTensors(500)
	ws[3].Name = "\u00e9t\u00e9 \"x\"\\\U0001F600\x7f" // Python escapes: \u00e9, surrogates, \u007f
	ws[4] = WriteTensor{Name: "big", DType: U8, Shape: []int64{3000}, Data: Bytes(make([]byte, 3000))}
	for _, params := range []bool{true, false} {
		if !params { // total_parameters is left out when 0
			for i := range ws {
				ws[i].Shape = []int64{0}
				ws[i].Data = Bytes(nil)
			}
		}
		opts := ShardedOptions{MaxShardSize: 700, Base: "model", Variant: "fp16", Metadata: Metadata{{"a", "b"}}}
		l, err := PlanSharded(ws, opts)
		require.NoError(t, err)
		dir := t.TempDir()
		res, err := WriteSharded(context.Background(), dir, ws, opts)
		require.NoError(t, err)
		require.Len(t, res.Files, len(l.Files))
		var bytesOnDisk int64
		for i, f := range l.Files {
			assert.Equal(t, f.Name, res.Files[i])
			st, err := os.Stat(filepath.Join(dir, f.Name))
			require.NoError(t, err)
			assert.Equal(t, f.Size, st.Size())
			bytesOnDisk += st.Size()
			h, err := ReadHeaderFile(filepath.Join(dir, f.Name))
			require.NoError(t, err)
			assert.Equal(t, f.DataStart, h.DataStart)
			k := 0
			for _, ti := range l.Tensors(i, ws) {
				require.Less(t, k, len(h.Tensors))
				assert.Equal(t, h.Tensors[k], ti)
				k++
			}
			assert.Equal(t, len(h.Tensors), k)
			assert.Equal(t, f.Count, k)
		}
		if !params {
			assert.Len(t, l.Files, 1, "empty tensors all fit in one file")
			assert.Empty(t, l.Index)
			continue
		}
		require.Equal(t, l.Index, res.IndexFile)
		index, err := os.ReadFile(filepath.Join(dir, l.Index))
		require.NoError(t, err)
		ix := res.Plan.Index()
		ix.TotalParameters = l.Parameters
		assert.Equal(t, string(ix.MarshalPython()), string(index))
		assert.Equal(t, int64(len(index)), l.IndexSize)
		assert.Equal(t, bytesOnDisk+l.IndexSize, l.Bytes)
		assert.Equal(t, l.Bytes, res.Bytes)
	}
}

// TestWriteCopiesRunsOfRanges writes the tensors of a file in another
// order, so that some follow each other in the source and some do not,
// and checks the bytes; a source truncated in the middle of a run fails
// naming the tensor where the data ends.
func TestWriteCopiesRunsOfRanges(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.safetensors")
	ws := tinyTensors(1000)
	for i := range ws {
		if i%3 == 0 {
			ws[i].DType, ws[i].Shape = I32, []int64{1} // another dtype: written first, a run broken every third tensor
		}
	}
	_, err := WriteFile(context.Background(), src, ws, nil, WriteOptions{})
	require.NoError(t, err)
	f, err := Open(src)
	require.NoError(t, err)
	defer f.Close()
	var from []WriteTensor
	for _, ti := range f.Header.Tensors {
		from = append(from, WriteTensor{Name: ti.Name, DType: ti.DType, Shape: ti.Shape, Data: f.TensorSource(ti)})
	}
	for _, order := range []string{"same", "reversed"} {
		in := from
		if order == "reversed" {
			in = make([]WriteTensor, len(from))
			for i := range from {
				in[i] = from[len(from)-1-i]
			}
		}
		out := filepath.Join(dir, order+".safetensors")
		_, err := WriteFile(context.Background(), out, in, nil, WriteOptions{})
		require.NoError(t, err)
		got, hg := tensorBytes(t, out)
		want, _ := tensorBytes(t, src)
		assert.Equal(t, want, got, order)
		assert.Len(t, hg.Tensors, 1000)
	}

	// Cut the source inside the 600th tensor of the data buffer.
	cut := f.Header.Tensors[600]
	require.NoError(t, os.Truncate(src, f.Header.DataStart+cut.Begin+2))
	_, err = WriteFile(context.Background(), filepath.Join(dir, "cut.safetensors"), from, nil, WriteOptions{})
	require.ErrorIs(t, err, ErrShortSource)
	assert.Contains(t, err.Error(), strconv.Quote(cut.Name))
}

// TestWriteMixedSources writes byte ranges, in-memory bytes and converted
// tensors in one file, through the kernel copy and the write buffer.
func TestWriteMixedSources(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.safetensors")
	base := tinyTensors(200)
	_, err := WriteFile(context.Background(), src, base, nil, WriteOptions{})
	require.NoError(t, err)
	f, err := Open(src)
	require.NoError(t, err)
	defer f.Close()
	want := map[string][]byte{}
	var ws []WriteTensor
	for i, ti := range f.Header.Tensors {
		w := WriteTensor{Name: ti.Name, DType: ti.DType, Shape: ti.Shape, Data: f.TensorSource(ti)}
		switch i % 3 {
		case 1:
			b := []byte{byte(i), 1, 2, byte(i)}
			w.Name, w.Data = "mem."+ti.Name, Bytes(b)
			want[w.Name] = b
		case 2:
			c, err := Convert(w.Data, F32, F16)
			require.NoError(t, err)
			w.Name, w.DType, w.Data = "f16."+ti.Name, F16, c
			var buf bytes.Buffer
			c2, _ := Convert(f.TensorSource(ti), F32, F16)
			require.NoError(t, c2.CopyTo(context.Background(), &buf))
			want[w.Name] = buf.Bytes()
		default:
			var buf bytes.Buffer
			require.NoError(t, w.Data.CopyTo(context.Background(), &buf))
			want[w.Name] = buf.Bytes()
		}
		ws = append(ws, w)
	}
	out := filepath.Join(dir, "mixed.safetensors")
	_, err = WriteFile(context.Background(), out, ws, nil, WriteOptions{})
	require.NoError(t, err)
	got, _ := tensorBytes(t, out)
	assert.Equal(t, want, got)
}

// TestBigInputsLinearTime checks that reading headers and indexes, laying
// out, sharding and writing an index take time linear in the tensors: no
// step compares every tensor (or metadata key) with every other.
func TestBigInputsLinearTime(t *testing.T) {
	if raceEnabled || testing.Short() {
		t.Skip("timing; slow under -race")
	}
	const n = 25_000
	requireLinear(t, "header", n, func(n int) {
		l, err := PlanLayout(tinyTensors(n), nil)
		require.NoError(t, err)
		h, err := ParseHeader(l.Header[8:], l.Size)
		require.NoError(t, err)
		require.Len(t, h.Tensors, n)
	})
	requireLinear(t, "header read a window at a time", n, func(n int) {
		l, err := PlanLayout(tinyTensors(n), nil)
		require.NoError(t, err)
		file := append(l.Header, make([]byte, 4*n)...)
		h, err := readHeaderWindow(bytes.NewReader(file), int64(len(file)), false, 64<<10)
		require.NoError(t, err)
		require.Len(t, h.Tensors, n)
	})
	requireLinear(t, "metadata keys", 2*n, func(n int) {
		meta := make(Metadata, n)
		for i := range meta {
			meta[i] = MetadataEntry{fmt.Sprintf("k%07d", i), "v"}
		}
		l, err := PlanLayout(nil, meta)
		require.NoError(t, err)
		h, err := ParseHeader(l.Header[8:], l.Size)
		require.NoError(t, err)
		require.Len(t, h.Metadata, n)
	})
	requireLinear(t, "sharded layout and index", n, func(n int) {
		ws := tinyTensors(n)
		l, err := PlanSharded(ws, ShardedOptions{MaxShardSize: int64(n), Base: "model"})
		require.NoError(t, err)
		require.Len(t, l.Files, 4)
		ix := namedPlan(l.groups, l.sizes, l.TotalSize, "model", "", func(i int32) string { return ws[i].Name }).Index()
		data := ix.MarshalPython()
		back, err := ParseIndex(data)
		require.NoError(t, err)
		require.Len(t, back.WeightMap, n)
		var w bytes.Buffer
		_, err = writeShardIndex(&w, l, ws)
		require.NoError(t, err)
	})
}

// TestBigHeaderMemory reads, checks, reshards and re-reads a file of 400,000
// tensors (a 29 MB header) and its index in a process of its own, whose
// peak RSS must stay under 8 times the header plus 100 MB. (The 1.3 M
// tensors of a 94 MB header took 1 GB to read before.)
func TestBigHeaderMemory(t *testing.T) {
	if dir := costtest.ChildInput(); dir != "" {
		bigHeaderChild(t, dir)
		return
	}
	if raceEnabled || testing.Short() {
		t.Skip("a 29 MB header; memory is not measurable under -race")
	}
	costtest.PeakRSS(t) // skip where there is no /proc
	dir := t.TempDir()
	l, err := WriteFile(context.Background(), filepath.Join(dir, "model.safetensors"), tinyTensors(400_000), nil, WriteOptions{})
	require.NoError(t, err)
	header := int64(len(l.Header))
	rss := costtest.ChildPeakRSS(t, dir)
	t.Logf("header %d MB, peak RSS %d MB", header>>20, rss>>20)
	assert.LessOrEqual(t, rss, 8*header+100<<20, "peak RSS %d MB for a header of %d MB", rss>>20, header>>20)
}

func bigHeaderChild(t *testing.T, dir string) {
	path := filepath.Join(dir, "model.safetensors")
	h, err := ReadHeaderFile(path)
	require.NoError(t, err)
	require.Len(t, h.Tensors, 400_000)
	_, err = CheckHeaderFile(path)
	require.NoError(t, err)
	f, err := OpenData(path)
	require.NoError(t, err)
	defer f.Close()
	ws := make([]WriteTensor, len(h.Tensors))
	for i, ti := range h.Tensors {
		ws[i] = WriteTensor{Name: ti.Name, DType: ti.DType, Shape: ti.Shape, Data: f.TensorSource(ti)}
	}
	out := filepath.Join(dir, "out")
	require.NoError(t, os.Mkdir(out, 0o755))
	res, err := WriteSharded(context.Background(), out, ws, ShardedOptions{MaxShardSize: 400_000, Base: "model"})
	require.NoError(t, err)
	require.Len(t, res.Files, 4)
	ws, h = nil, nil
	index := filepath.Join(out, res.IndexFile)
	n := 0
	require.NoError(t, ReadShardedSet(index, func(_ string, h *Header) { n += len(h.Tensors) }))
	require.Equal(t, 400_000, n)
	set, err := OpenShardedSet(index)
	require.NoError(t, err)
	require.Len(t, set.Index.WeightMap, 400_000)
	costtest.ReportPeakRSS(t)
}
