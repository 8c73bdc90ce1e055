package torchbin

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// peakHeap runs f while a goroutine samples the heap every 2 ms, and
// returns the largest growth of the heap's objects over what they were
// before f. The sampler has stopped when peakHeap returns.
func peakHeap(f func()) int64 {
	const name = "/memory/classes/heap/objects:bytes"
	read := func(s []metrics.Sample) int64 {
		metrics.Read(s)
		return int64(s[0].Value.Uint64())
	}
	runtime.GC()
	base := read([]metrics.Sample{{Name: name}})
	var peak int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s := []metrics.Sample{{Name: name}}
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			peak = max(peak, read(s)-base)
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	f()
	close(stop)
	wg.Wait()
	return peak
}

// repeat writes s n times to w, in blocks, so that a bomb of 60 MB is never
// in memory.
func repeat(w io.Writer, s string, n int) {
	const block = 64 << 10
	chunk := strings.Repeat(s, max(1, block/len(s)))
	per := len(chunk) / len(s)
	for ; n >= per; n -= per {
		io.WriteString(w, chunk)
	}
	io.WriteString(w, strings.Repeat(s, n))
}

// deflatedPickle writes a zip checkpoint whose data.pkl, deflated at the
// best compression, is PROTO 2, body and STOP. The zip declares data.pkl's
// size as declared, unless it is 0.
func deflatedPickle(t *testing.T, path string, body func(io.Writer), declared uint64) {
	t.Helper()
	var comp bytes.Buffer
	fw, err := flate.NewWriter(&comp, flate.BestCompression)
	require.NoError(t, err)
	crc := crc32.NewIEEE()
	n := &countWriter{}
	bw := bufio.NewWriterSize(io.MultiWriter(fw, crc, n), 1<<20)
	bw.Write([]byte{0x80, 2})
	body(bw)
	bw.WriteByte('.')
	require.NoError(t, bw.Flush())
	require.NoError(t, fw.Close())
	if declared == 0 {
		declared = n.n
	}
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	w, err := zw.CreateRaw(&zip.FileHeader{Name: "bomb/data.pkl", Method: zip.Deflate, CRC32: crc.Sum32(),
		CompressedSize64: uint64(comp.Len()), UncompressedSize64: declared})
	require.NoError(t, err)
	_, err = w.Write(comp.Bytes())
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	require.NoError(t, os.WriteFile(path, out.Bytes(), 0o644))
}

type countWriter struct{ n uint64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += uint64(len(p)); return len(p), nil }

// legacyPickle writes a legacy-format checkpoint whose main pickle is
// PROTO 2, body and STOP (stored: the legacy format has no compression).
func legacyPickle(t *testing.T, path string, body func(io.Writer)) {
	t.Helper()
	var b bytes.Buffer
	b.Write([]byte("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.")) // the magic number
	b.Write([]byte("\x80\x02M\xe9\x03."))                                        // 1001
	b.Write([]byte("\x80\x02}q\x00X\x0d\x00\x00\x00little_endianq\x01\x88s."))   // sys info
	b.Write([]byte{0x80, 2})
	body(&b)
	b.WriteByte('.')
	require.NoError(t, os.WriteFile(path, b.Bytes(), 0o644))
}

func rep(s string, n int) func(io.Writer) {
	return func(w io.Writer) { repeat(w, s, n) }
}

func seq(parts ...func(io.Writer)) func(io.Writer) {
	return func(w io.Writer) {
		for _, p := range parts {
			p(w)
		}
	}
}

func lit(s string) func(io.Writer) { return func(w io.Writer) { io.WriteString(w, s) } }

// TestPickleBombs opens pickle bombs, each a small file that asks gopickle
// for gigabytes (60 M EMPTY_LIST took ~6 GB and died out of memory), and
// checks that each is refused with ErrPickleLimit naming the limit, in
// bounded time and memory.
func TestPickleBombs(t *testing.T) {
	// Deflated bombs are made of 3 M opcodes, well over the floors of the
	// limits (data.pkl may inflate to 16 MiB + 8 × its compressed size);
	// the first two are the 60 MB bomb of the review.
	const m = 3_000_000
	odict := "ccollections\nOrderedDict\nq\x00)R"
	longBinPut := func(w io.Writer) {
		var b [5]byte
		b[0] = 'r'
		bw := bufio.NewWriter(w)
		for i := uint32(0); i < 600_000; i++ {
			b[1], b[2], b[3], b[4] = byte(i), byte(i>>8), byte(i>>16), byte(i>>24)
			bw.Write(b[:])
		}
		bw.Flush()
	}
	binPut := func(w io.Writer) {
		bw := bufio.NewWriter(w)
		for i := 0; i < m/2; i++ {
			bw.Write([]byte{'q', byte(i)})
		}
		bw.Flush()
	}
	// a dict of 50,000 distinct string keys, then BUILD copying it into
	// the __dict__ of new OrderedDicts, over and over
	build := func(w io.Writer) {
		bw := bufio.NewWriter(w)
		bw.WriteString(odict + "0}q\x01")
		for i := 0; i < 50_000; i++ {
			if i%1000 == 0 {
				bw.WriteString("(")
			}
			k := fmt.Sprintf("k%d", i)
			bw.Write([]byte{0x8c, byte(len(k))})
			bw.WriteString(k)
			bw.WriteByte('N')
			if i%1000 == 999 {
				bw.WriteString("u")
			}
		}
		repeat(bw, "h\x00)Rh\x01b0", 500_000)
		bw.WriteString("N")
		bw.Flush()
	}
	cases := []struct {
		name     string
		legacy   bool
		body     func(io.Writer)
		declared uint64 // the size the zip declares for data.pkl, if not the true one
		limit    string
	}{
		{"60M EMPTY_LIST", false, rep("]", 60_000_000), 0, "size"},
		{"60M EMPTY_LIST declared as 1 MB", false, rep("]", 60_000_000), 1 << 20, "stack"},
		{"EMPTY_LIST", false, rep("]", m), 0, "stack"},
		{"NONE POP", false, seq(rep("N0", m/2), lit("N")), 0, "opcodes"},
		{"EMPTY_LIST POP", false, seq(rep("]0", m/2), lit("N")), 0, "opcodes"},
		{"MARK", false, rep("(", m), 0, "nesting"},
		{"DUP", false, seq(lit("]"), rep("2", m)), 0, "stack"},
		{"LONG_BINPUT", false, seq(lit("N"), longBinPut), 0, "memo"},
		{"BINPUT", false, seq(lit("N"), binPut), 0, "opcodes"},
		{"MEMOIZE", false, seq(lit("N"), rep("\x94", m)), 0, "memo"},
		{"OrderedDict by SETITEMS of 1000", false,
			seq(lit(odict), rep("("+strings.Repeat(")N", 1000)+"u", m/2000)), 0, "memory"},
		{"OrderedDict by one SETITEMS", false, seq(lit(odict+"("), rep(")N", m/2), lit("u")), 0, "stack"},
		{"list of lists", false, seq(lit("]("), rep("]", m), lit("e")), 0, "stack"},
		{"lists nested by APPEND", false, seq(rep("]", m/2), rep("a", m/2-1)), 0, "stack"},
		{"lists nested through the memo", false, seq(lit("]q\x00"), rep("]h\x00aq\x000", 100_000)), 0, "nesting"},
		{"tuples nested by TUPLE1", false, seq(lit("N"), rep("\x85", m)), 0, "nesting"},
		{"BUILD of a 50K-entry dict, again and again", false, build, 0, "memory"},
		{"LONG4 of 10 MB (quadratic to decode)", false, seq(lit("\x8b\x00\x00\xa0\x00"), rep("\x7f", 10<<20)), 0, "integer"},
		{"LONG of 10 M digits", false, seq(lit("L"), rep("9", 10_000_000), lit("L\n")), 0, "integer"},
		{"legacy EMPTY_LIST", true, rep("]", 4_000_000), 0, "stack"},
		{"legacy MEMOIZE", true, seq(lit("N"), rep("\x94", 4_000_000)), 0, "memo"},
		{"legacy MARK", true, rep("(", 4_000_000), 0, "nesting"},
		{"legacy OrderedDict", true, seq(lit(odict), rep("("+strings.Repeat("}N", 1000)+"u", 2_000)), 0, "memory"},
	}
	dir := t.TempDir()
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, fmt.Sprintf("bomb%d.bin", i))
			if c.legacy {
				legacyPickle(t, path, c.body)
			} else {
				deflatedPickle(t, path, c.body, c.declared)
			}
			fi, err := os.Stat(path)
			require.NoError(t, err)
			var (
				ck   *Checkpoint
				err2 error
			)
			start := time.Now()
			peak := peakHeap(func() { ck, err2 = Open(path) })
			took := time.Since(start)
			require.Error(t, err2)
			assert.Nil(t, ck)
			require.ErrorIs(t, err2, ErrPickleLimit)
			var le *LimitError
			require.True(t, errors.As(err2, &le))
			assert.Equal(t, c.limit, le.Limit, "%v", err2)
			var pe *Error
			require.True(t, errors.As(err2, &pe))
			assert.Equal(t, path, pe.Path)
			want := "data.pkl: pickle too complex"
			if c.legacy {
				want = "legacy main pickle: pickle too complex"
			}
			assert.Contains(t, err2.Error(), want)
			bound := 100<<20 + 8*fi.Size()
			assert.Less(t, peak, bound, "peak heap %d for a %d-byte file", peak, fi.Size())
			assert.Less(t, took, 10*time.Second)
			t.Logf("%d-byte file: %v; peak heap %.1f MB, %v", fi.Size(), err2, float64(peak)/1e6, took.Round(time.Millisecond))
		})
	}
}

// nameStyles are tensor names from the shortest to diffusers' longest.
var nameStyles = []struct {
	name string
	f    func(int) string
}{
	{"hex", func(i int) string { return fmt.Sprintf("%x", i) }},
	{"short", func(i int) string { return fmt.Sprintf("l.%d.w", i) }},
	{"diffusers", func(i int) string {
		return fmt.Sprintf("down_blocks.%d.attentions.%d.transformer_blocks.0.attn1.to_q.weight", i/100, i%100)
	}},
}

// TestLimitsFitRealStateDicts scans torch-like state dicts of 10,000
// tensors and checks that each limit's share of the pickle's size is at
// least twice what they use, and that 1,000,000 tensors fit.
func TestLimitsFitRealStateDicts(t *testing.T) {
	const n, million = 10_000, 1_000_000
	for _, proto := range []int{2, 4} {
		for _, style := range nameStyles {
			t.Run(fmt.Sprintf("protocol %d %s", proto, style.name), func(t *testing.T) {
				data := newTorchPickle(proto).stateDict(n, style.f)
				size := int64(len(data))
				s, err := scanWith(bytes.NewReader(data), size, size, allowedGlobal, &defaultLimits)
				require.NoError(t, err)
				per := func(v int64) float64 { return float64(v) / float64(n) }
				bytesPer := per(size)
				t.Logf("per tensor: %.0f bytes, %.1f opcodes, %.1f memo entries, %.0f bytes of heap; stack peak %d",
					bytesPer, per(s.ops), per(s.memo.n), per(s.heap), s.peak)
				assert.LessOrEqual(t, 2*per(s.ops), opsPerByte*bytesPer)
				assert.LessOrEqual(t, 2*per(s.memo.n), bytesPer/memoBytesPerEntry)
				assert.LessOrEqual(t, 2.0, bytesPer/containerBytesPerEntry) // the state dict: one entry per tensor
				assert.LessOrEqual(t, 2*per(s.heap+size), heapPerByte*bytesPer)
				assert.LessOrEqual(t, 2*s.peak, stackFloor)
				// and a million of them
				assert.Less(t, bytesPer*million, float64(maxPickle))
				assert.Less(t, per(s.heap+size)*million, float64(maxHeap))
			})
		}
	}
}

// TestLargeStateDictOpens opens a torch-like checkpoint of 50,000 small
// tensors (TORCHBIN_TENSORS=200000 for more: ~5 s per 100,000 on two
// cores), each in its own storage: the limits leave it alone.
func TestLargeStateDictOpens(t *testing.T) {
	n := 50_000
	if v, err := strconv.Atoi(os.Getenv("TORCHBIN_TENSORS")); err == nil && v > 0 {
		n = v
	}
	name := func(i int) string { return fmt.Sprintf("layers.%d.block.%d.weight", i/10, i%10) }
	path := filepath.Join(t.TempDir(), "large.bin")
	storageZip(t, path, newTorchPickle(2).stateDict(n, name), n)
	start := time.Now()
	c, err := Open(path)
	require.NoError(t, err)
	defer c.Close()
	t.Logf("opened %d tensors in %v", n, time.Since(start).Round(time.Millisecond))
	require.Len(t, c.Tensors, n)
	for _, i := range []int{0, 1, n / 2, n - 1} {
		tn, ok := c.Tensor(name(i))
		require.True(t, ok, name(i))
		assert.Equal(t, []int64{int64(i%7 + 1)}, tn.Shape)
		assert.Equal(t, fmt.Sprint(i), tn.StorageKey)
		assert.True(t, tn.Contiguous)
		assert.Empty(t, tn.SharesStorageWith)
	}
	assert.Equal(t, name(n-1), c.Tensors[n-1].Name, "state-dict order")
}

// TestHostilePlans opens pickles within the VM's limits that made the plan
// blow up: a storage seen by 100,000 tensors (whose SharesStorageWith
// lists were k² names), containers that hold themselves (printed
// recursively in errors), and long keys repeated down nested dicts.
func TestHostilePlans(t *testing.T) {
	dir := t.TempDir()
	const views = 100_000
	var shared pk
	shared.op(0x80, 2)
	shared.global("collections", "OrderedDict")
	shared.op(')', 'R', '(')
	shared.str("t0")
	tensor := statePickle(spec{"", "FloatStorage", "0", 4, 0, []int64{4}, []int64{1}})
	// the tensor record of statePickle: between the first key and SETITEMS
	start := bytes.Index(tensor, []byte("ctorch._utils"))
	shared.Write(tensor[start : len(tensor)-2])
	shared.op('r')
	shared.u32(0)
	for i := 1; i < views; i++ {
		if i%1000 == 0 {
			shared.op('u', '(')
		}
		shared.str(fmt.Sprintf("t%d", i))
		shared.op('j')
		shared.u32(0)
	}
	shared.op('u', '.')
	writeZip(t, filepath.Join(dir, "shared.bin"), "x", []zent{{name: "data.pkl", data: shared.Bytes()}, {name: "data/0", data: make([]byte, 16)}})

	selfList := "]q\x00h\x00a" // L = [L]
	writeZip(t, filepath.Join(dir, "pid.bin"), "x", []zent{{name: "data.pkl", data: []byte("\x80\x02" + selfList + "(h\x00tQ.")}})
	legacy, err := os.ReadFile(td("legacy.pt"))
	require.NoError(t, err)
	magic := bytes.Index(legacy, []byte("\x80\x02M\xe9\x03.")) // the protocol pickle follows the magic number
	require.Positive(t, magic)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "proto.pt"),
		append(append(legacy[:magic:magic], "\x80\x02"+selfList+"."...), legacy[magic+6:]...), 0o644))

	var long pk // {K: {K: {K: ... {K: None}}}}, K 1000 bytes long
	long.op(0x80, 2, '}')
	long.str(strings.Repeat("k", 1000))
	long.op('q', 0, '}')
	for range 9 {
		long.op('h', 0, '}')
	}
	long.op('h', 0, 'N')
	long.op(bytes.Repeat([]byte{'s'}, 11)...)
	long.op('.')
	writeZip(t, filepath.Join(dir, "long.bin"), "x", []zent{{name: "data.pkl", data: long.Bytes()}})

	long.Reset() // a global named by a 1 MB line
	long.WriteString("\x80\x02c" + strings.Repeat("m", 1<<20) + "\nsystem\n.")
	writeZip(t, filepath.Join(dir, "global.bin"), "x", []zent{{name: "data.pkl", data: long.Bytes()}})

	cases := []struct {
		file string
		want error
		msg  string
	}{
		{"shared.bin", nil, ""},
		{"global.bin", ErrForbiddenGlobal, "a global over 1024 bytes long (mmm"},
		{"pid.bin", ErrUnsupported, "persistent id of kind a *types.List"},
		{"proto.pt", ErrUnsupported, "legacy protocol version a *types.List"},
		{"long.bin", ErrPickleLimit, "a tensor name longer than 4096 bytes"},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			path := filepath.Join(dir, c.file)
			fi, err := os.Stat(path)
			require.NoError(t, err)
			var (
				ck   *Checkpoint
				err2 error
			)
			start := time.Now()
			peak := peakHeap(func() { ck, err2 = Open(path) })
			assert.Less(t, time.Since(start), 10*time.Second)
			assert.Less(t, peak, 100<<20+8*fi.Size(), "peak heap %d for a %d-byte file", peak, fi.Size())
			if c.want != nil {
				require.ErrorIs(t, err2, c.want)
				assert.Contains(t, err2.Error(), c.msg)
				assert.Less(t, len(err2.Error()), 1000, "a short message")
				assert.Contains(t, err2.Error(), path)
				return
			}
			require.NoError(t, err2)
			defer ck.Close()
			require.Len(t, ck.Tensors, views)
			for _, i := range []int{0, 1, views - 1} {
				tn := ck.Tensors[i]
				require.Len(t, tn.SharesStorageWith, views-1)
				assert.NotContains(t, tn.SharesStorageWith[:10], tn.Name)
				assert.Equal(t, ck.Tensors[(i+1)%views].Name, tn.SharesStorageWith[0])
				assert.Equal(t, ck.Tensors[(i+views-1)%views].Name, tn.SharesStorageWith[views-2])
			}
		})
	}
}
