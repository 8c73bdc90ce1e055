package tensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// convPath selects the assembly or the pure-Go kernels.
type convPath struct {
	name string
	asm  bool
}

// convPaths lists the kernel paths this machine can run.
func convPaths(t testing.TB) []convPath {
	paths := []convPath{{"go", false}}
	if haveAsm {
		paths = append(paths, convPath{"asm", true})
	} else {
		t.Log("assembly kernels unavailable here; testing the pure-Go path only")
	}
	return paths
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func get16(b []byte, i int) uint16    { return binary.LittleEndian.Uint16(b[2*i:]) }
func get32(b []byte, i int) uint32    { return binary.LittleEndian.Uint32(b[4*i:]) }
func put16(b []byte, i int, v uint16) { binary.LittleEndian.PutUint16(b[2*i:], v) }
func put32(b []byte, i int, v uint32) { binary.LittleEndian.PutUint32(b[4*i:], v) }

func f32Bytes(bits ...uint32) []byte {
	b := make([]byte, 4*len(bits))
	for i, v := range bits {
		put32(b, i, v)
	}
	return b
}

func u16Bytes(bits ...uint16) []byte {
	b := make([]byte, 2*len(bits))
	for i, v := range bits {
		put16(b, i, v)
	}
	return b
}

// kernel describes one conversion for the table tests: its internal entry
// point, element sizes, and the reference for one element (input and
// output bits zero-extended to 32 bits).
type kernel struct {
	name     string
	from, to DType
	conv     func(dst, src []byte, asm bool) ConvStats
	public   ConvertFunc
	ref      func(in uint32) uint32
	// refStats says whether converting in to out overflowed/underflowed;
	// nil for the exact widenings.
	refStats func(in, out uint32) (ov, uf bool)
}

func (k kernel) inSize() int  { return int(k.from.Bits() / 8) }
func (k kernel) outSize() int { return int(k.to.Bits() / 8) }

// narrowStats derives the stats of one float32→narrow conversion from the
// input bits and the reference output; infMag is the output's Inf magnitude.
func narrowStats(f32 uint32, out uint32, infMag uint32) (ov, uf bool) {
	a := f32 & 0x7FFFFFFF
	finite := a < 0x7F800000
	return finite && out&0x7FFF == infMag, finite && a != 0 && out&0x7FFF == 0
}

var kernels = []kernel{
	{
		name: "F32ToF16", from: F32, to: F16, conv: convertF32ToF16, public: ConvertF32ToF16,
		ref:      func(x uint32) uint32 { return uint32(f32ToF16Bits(x)) },
		refStats: func(in, out uint32) (bool, bool) { return narrowStats(in, out, 0x7C00) },
	},
	{
		name: "F32ToBF16", from: F32, to: BF16, conv: convertF32ToBF16, public: ConvertF32ToBF16,
		ref:      func(x uint32) uint32 { return uint32(f32ToBF16Bits(x)) },
		refStats: func(in, out uint32) (bool, bool) { return narrowStats(in, out, 0x7F80) },
	},
	{
		name: "BF16ToF16", from: BF16, to: F16, conv: convertBF16ToF16, public: ConvertBF16ToF16,
		ref: func(x uint32) uint32 { return uint32(bf16ToF16Bits(uint16(x))) },
		refStats: func(in, out uint32) (bool, bool) {
			return narrowStats(bf16ToF32Bits(uint16(in)), out, 0x7C00)
		},
	},
	{
		name: "F16ToF32", from: F16, to: F32, conv: convertF16ToF32, public: ConvertF16ToF32,
		ref: func(x uint32) uint32 { return f16ToF32Bits(uint16(x)) },
	},
	{
		name: "BF16ToF32", from: BF16, to: F32, conv: convertBF16ToF32, public: ConvertBF16ToF32,
		ref: func(x uint32) uint32 { return bf16ToF32Bits(uint16(x)) },
	},
}

func getElem(b []byte, size, i int) uint32 {
	if size == 2 {
		return uint32(get16(b, i))
	}
	return get32(b, i)
}

func putElem(b []byte, size, i int, v uint32) {
	if size == 2 {
		put16(b, i, uint16(v))
	} else {
		put32(b, i, v)
	}
}

// checkAgainstRef converts src with k on path p into a fresh buffer and
// compares every element and the stats with the reference.
func checkAgainstRef(t *testing.T, k kernel, p convPath, src []byte) {
	t.Helper()
	n := len(src) / k.inSize()
	dst := make([]byte, n*k.outSize())
	st := k.conv(dst, src, p.asm)
	var want ConvStats
	bad := 0
	for i := 0; i < n; i++ {
		in := getElem(src, k.inSize(), i)
		r := k.ref(in)
		if k.refStats != nil {
			ov, uf := k.refStats(in, r)
			want.Overflow += b2i(ov)
			want.Underflow += b2i(uf)
		}
		if got := getElem(dst, k.outSize(), i); got != r {
			if bad++; bad <= 10 {
				t.Errorf("%s/%s element %d: in %#x: got %#x, want %#x", k.name, p.name, i, in, got, r)
			}
		}
	}
	require.Zero(t, bad, "%s/%s: %d of %d elements differ", k.name, p.name, bad, n)
	require.Equal(t, want, st, "%s/%s stats", k.name, p.name)
}

// --- reference functions against numpy ---

type spotCase struct {
	In   string `json:"in"`
	Out  string `json:"out"`
	Note string `json:"note"`
}

type spotFile struct {
	Source   string `json:"source"`
	F32ToF16 struct {
		Method string     `json:"method"`
		Cases  []spotCase `json:"cases"`
	} `json:"f32_to_f16"`
	F32ToBF16 struct {
		Method string     `json:"method"`
		Cases  []spotCase `json:"cases"`
	} `json:"f32_to_bf16"`
	F16ToF32 struct {
		Method string     `json:"method"`
		Cases  []spotCase `json:"cases"`
	} `json:"f16_to_f32"`
}

func parseHex(t *testing.T, s string) uint32 {
	t.Helper()
	v, err := strconv.ParseUint(s, 0, 32)
	require.NoError(t, err)
	return uint32(v)
}

// TestConvertSpotNumpy checks the reference functions, and the kernels on
// both paths, against values recorded from numpy.
func TestConvertSpotNumpy(t *testing.T) {
	raw, err := os.ReadFile("testdata/convert_spot.json")
	require.NoError(t, err)
	var f spotFile
	require.NoError(t, json.Unmarshal(raw, &f))
	require.Contains(t, f.Source, "numpy")

	sections := []struct {
		name  string
		cases []spotCase
		k     kernel
		ref   func(uint32) uint32
	}{
		{"f32_to_f16", f.F32ToF16.Cases, kernels[0], func(x uint32) uint32 { return uint32(f32ToF16Bits(x)) }},
		{"f32_to_bf16", f.F32ToBF16.Cases, kernels[1], func(x uint32) uint32 { return uint32(f32ToBF16Bits(x)) }},
		{"f16_to_f32", f.F16ToF32.Cases, kernels[3], func(x uint32) uint32 { return f16ToF32Bits(uint16(x)) }},
	}
	for _, sec := range sections {
		t.Run(sec.name, func(t *testing.T) {
			require.GreaterOrEqual(t, len(sec.cases), 200)
			k := sec.k
			src := make([]byte, len(sec.cases)*k.inSize())
			want := make([]uint32, len(sec.cases))
			for i, c := range sec.cases {
				in, out := parseHex(t, c.In), parseHex(t, c.Out)
				assert.Equal(t, out, sec.ref(in), "reference: in %s (%s)", c.In, c.Note)
				putElem(src, k.inSize(), i, in)
				want[i] = out
			}
			for _, p := range convPaths(t) {
				dst := make([]byte, len(sec.cases)*k.outSize())
				k.conv(dst, src, p.asm)
				for i, c := range sec.cases {
					assert.Equal(t, want[i], getElem(dst, k.outSize(), i), "%s: in %s (%s)", p.name, c.In, c.Note)
				}
			}
		})
	}
}

// TestConvertReferenceRoundTrip checks the narrowing references against the
// widening ones: every non-NaN half and bfloat16 survives widen→narrow.
func TestConvertReferenceRoundTrip(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		if h&0x7FFF > 0x7C00 {
			continue
		}
		require.Equal(t, uint16(h), f32ToF16Bits(f16ToF32Bits(uint16(h))), "half %#04x", h)
	}
	for b := 0; b < 1<<16; b++ {
		if b&0x7FFF > 0x7F80 {
			continue
		}
		require.Equal(t, uint16(b), f32ToBF16Bits(bf16ToF32Bits(uint16(b))), "bf16 %#04x", b)
	}
	// The widened values are the exact values: compare with float64 math.
	for h := 0; h < 1<<16; h++ {
		e, m := h>>10&0x1F, float64(h&0x3FF)
		if e == 0x1F {
			continue
		}
		v := math.Ldexp(m, -24)
		if e > 0 {
			v = math.Ldexp(1024+m, e-25)
		}
		if h&0x8000 != 0 {
			v = -v
		}
		require.Equal(t, math.Float64bits(v), math.Float64bits(float64(math.Float32frombits(f16ToF32Bits(uint16(h))))), "half %#04x", h)
	}
}

// --- exhaustive sweeps ---

// failLog collects the first mismatches of concurrent workers.
type failLog struct {
	mu    sync.Mutex
	n     int64
	first []string
}

func (f *failLog) add(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	if len(f.first) < 20 {
		f.first = append(f.first, fmt.Sprintf(format, args...))
	}
}

func (f *failLog) full() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n > 1000
}

func (f *failLog) report(t *testing.T) {
	for _, s := range f.first {
		t.Error(s)
	}
	assert.Zero(t, f.n, "mismatches")
}

const sweepChunkBits = 12 // magnitudes per chunk: 1<<12

// sweepChunks returns the chunk numbers (magnitude bits >> sweepChunkBits)
// to test: all of them, or, under the race detector (where the full sweep
// would take many minutes) or with -short, every 257th plus those around
// the rounding thresholds.
func sweepChunks(short bool) []uint32 {
	const all = 1 << (31 - sweepChunkBits)
	var out []uint32
	if !short {
		for c := uint32(0); c < all; c++ {
			out = append(out, c)
		}
		return out
	}
	seen := map[uint32]bool{}
	for c := uint32(0); c < all; c += 257 {
		seen[c] = true
		out = append(out, c)
	}
	for _, a := range []uint32{0x8000, 0x33000000, 0x33800000, 0x38800000, 0x477FF000, 0x7F7F8000, 0x7F800000} {
		for _, c := range []uint32{(a - 1) >> sweepChunkBits, a >> sweepChunkBits} {
			if !seen[c] {
				seen[c] = true
				out = append(out, c)
			}
		}
	}
	return out
}

// sweepWorker holds one goroutine's buffers for checkChunk.
type sweepWorker struct {
	paths      []convPath
	src        []byte
	dstH, dstB [][]byte // F16 and BF16 output per path
}

func newSweepWorker(paths []convPath) *sweepWorker {
	const n = 2 << sweepChunkBits
	w := &sweepWorker{paths: paths, src: make([]byte, 4*n)}
	for range paths {
		w.dstH = append(w.dstH, make([]byte, 2*n))
		w.dstB = append(w.dstB, make([]byte, 2*n))
	}
	return w
}

// statFields spreads the four stats flags of one magnitude (F16 overflow,
// F16 underflow, BF16 overflow, BF16 underflow as bits 0-3) into 16-bit
// counters of a uint64, so that a chunk's stats add up with one addition
// per element.
var statFields = func() (t [16]uint64) {
	for f := range t {
		for b := 0; b < 4; b++ {
			t[f] += uint64(f>>b&1) << (16 * b)
		}
	}
	return t
}()

// checkChunk converts the 1<<sweepChunkBits float32 magnitudes from base
// and their negations to F16 and to BF16 on every path and checks:
//   - every element against the reference functions (the last path's output
//     element by element, the other paths' byte for byte against it);
//   - every element's overflow/underflow classification by the kernels'
//     input ranges against the definition applied to the reference result
//     (finite inputs that became ±Inf, non-zero ones that became ±0);
//   - each path's chunk stats against the sum of those.
//
// The references are evaluated on the magnitudes only: they take the sign
// bit apart and never look at it again, so ref(-x) = ref(x) | 0x8000
// (TestConvertReferenceSign checks that on a sample). This halves their
// cost; every input, of either sign, still goes through every kernel.
func (w *sweepWorker) checkChunk(base uint32, fails *failLog) {
	const n = 1 << sweepChunkBits
	for i := 0; i < n; i++ {
		put32(w.src, i, base+uint32(i))
		put32(w.src, n+i, 0x80000000|(base+uint32(i)))
	}
	gotH := make([]ConvStats, len(w.paths))
	gotB := make([]ConvStats, len(w.paths))
	for p, path := range w.paths {
		gotH[p] = convertF32ToF16(w.dstH[p], w.src, path.asm)
		gotB[p] = convertF32ToBF16(w.dstB[p], w.src, path.asm)
	}
	last := len(w.paths) - 1
	dstH, dstB := w.dstH[last][:4*n], w.dstB[last][:4*n]
	var counts uint64 // statFields counters
	for i := 0; i < n; i++ {
		a := base + uint32(i)
		rh, rb := f32ToF16Bits(a), f32ToBF16Bits(a)
		if get16(dstH, i) != rh || get16(dstH, n+i) != rh|0x8000 || get16(dstB, i) != rb || get16(dstB, n+i) != rb|0x8000 {
			fails.add("%s path: |x| %#08x: F16 got %#04x (negated %#04x), want %#04x; BF16 got %#04x (negated %#04x), want %#04x",
				w.paths[last].name, a, get16(dstH, i), get16(dstH, n+i), rh, get16(dstB, i), get16(dstB, n+i), rb)
		}
		finite := a < 0x7F800000
		def := b2i(rh == 0x7C00 && finite) | b2i(rh == 0 && a != 0)<<1 |
			b2i(rb == 0x7F80 && finite)<<2 | b2i(rb == 0 && a != 0)<<3
		ranges := b2i(inRange(a, f16OvLo, f16OvHi)) | b2i(inRange(a, f16UfLo, f16UfHi))<<1 |
			b2i(inRange(a, bf16OvLo, bf16OvHi))<<2 | b2i(inRange(a, bf16UfLo, bf16UfHi))<<3
		if def != ranges {
			fails.add("|x| %#08x: stats flags by definition %04b, by the kernels' ranges %04b "+
				"(bits: BF16 underflow, BF16 overflow, F16 underflow, F16 overflow)", a, def, ranges)
		}
		counts += statFields[def&15]
	}
	field := func(b int) int64 { return 2 * int64(counts>>(16*b)&0xFFFF) } // both signs
	wantH := ConvStats{Overflow: field(0), Underflow: field(1)}
	wantB := ConvStats{Overflow: field(2), Underflow: field(3)}
	for p, path := range w.paths {
		if !bytes.Equal(w.dstH[p], dstH) || !bytes.Equal(w.dstB[p], dstB) {
			for i := 0; i < 2*n; i++ {
				x := get32(w.src, i)
				if g, r := get16(w.dstH[p], i), f32ToF16Bits(x); g != r {
					fails.add("F32ToF16/%s: in %#08x: got %#04x, want %#04x", path.name, x, g, r)
				}
				if g, r := get16(w.dstB[p], i), f32ToBF16Bits(x); g != r {
					fails.add("F32ToBF16/%s: in %#08x: got %#04x, want %#04x", path.name, x, g, r)
				}
			}
		}
		if gotH[p] != wantH {
			fails.add("F32ToF16/%s: chunk ±%#08x: stats %+v, want %+v", path.name, base, gotH[p], wantH)
		}
		if gotB[p] != wantB {
			fails.add("F32ToBF16/%s: chunk ±%#08x: stats %+v, want %+v", path.name, base, gotB[p], wantB)
		}
	}
}

// TestConvertExhaustiveF32 converts every float32 bit pattern (under the
// race detector or -short, a sample) to F16 and BF16 on every path and
// checks the results with checkChunk, in chunks spread over all cores.
func TestConvertExhaustiveF32(t *testing.T) {
	start := time.Now()
	paths := convPaths(t)
	sample := raceEnabled || testing.Short()
	chunks := sweepChunks(sample)
	var next atomic.Int64
	var fails failLog
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := newSweepWorker(paths)
			for {
				c := next.Add(1) - 1
				if c >= int64(len(chunks)) || fails.full() {
					return
				}
				w.checkChunk(chunks[c]<<sweepChunkBits, &fails)
			}
		}()
	}
	wg.Wait()
	fails.report(t)
	t.Logf("%d inputs, F16 and BF16, on %d paths in %v (sampled=%v)", 2*len(chunks)<<sweepChunkBits, len(paths), time.Since(start), sample)
}

// TestConvertReferenceSign checks on a sample what the sweep relies on:
// the references treat the sign bit apart, ref(-x) = ref(x) | 0x8000.
func TestConvertReferenceSign(t *testing.T) {
	check := func(a uint32) {
		if h, hn := f32ToF16Bits(a), f32ToF16Bits(a|0x80000000); hn != h|0x8000 {
			t.Fatalf("f32ToF16Bits(%#08x) = %#04x, of its negation %#04x", a, h, hn)
		}
		if b, bn := f32ToBF16Bits(a), f32ToBF16Bits(a|0x80000000); bn != b|0x8000 {
			t.Fatalf("f32ToBF16Bits(%#08x) = %#04x, of its negation %#04x", a, b, bn)
		}
	}
	for a := uint32(0); a < 0x80000000; a += 4099 {
		check(a)
	}
	for _, a := range []uint32{0, 1, 0x7FFFFF, 0x33000000, 0x477FF000, 0x7F7F8000, 0x7F800000, 0x7F800001, 0x7FFFFFFF} {
		check(a)
	}
}

// TestConvertExhaustive16 converts all 2¹⁶ inputs of the 16-bit sources.
func TestConvertExhaustive16(t *testing.T) {
	src := make([]byte, 2<<16)
	for i := 0; i < 1<<16; i++ {
		put16(src, i, uint16(i))
	}
	for _, k := range kernels[2:] {
		for _, p := range convPaths(t) {
			t.Run(k.name+"/"+p.name, func(t *testing.T) { checkAgainstRef(t, k, p, src) })
		}
	}
}

// TestConvertNaN pins the NaN bits (VCVTPS2PH / VCVTPH2PS behaviour) on
// every path: sign kept, quiet bit set, top payload bits kept.
func TestConvertNaN(t *testing.T) {
	cases := []struct {
		k       kernel
		in, out uint32
	}{
		{kernels[0], 0x7F800001, 0x7E00}, // signalling, payload below the kept bits
		{kernels[0], 0xFF800001, 0xFE00},
		{kernels[0], 0x7FC00000, 0x7E00}, // default quiet NaN
		{kernels[0], 0xFFC00000, 0xFE00},
		{kernels[0], 0x7F802000, 0x7E01}, // signalling, lowest kept payload bit
		{kernels[0], 0x7FFFFFFF, 0x7FFF},
		{kernels[0], 0xFFBFE000, 0xFFFF},
		{kernels[1], 0x7F800001, 0x7FC0},
		{kernels[1], 0xFF810000, 0xFFC1},
		{kernels[1], 0x7FC00000, 0x7FC0},
		{kernels[1], 0x7FFFFFFF, 0x7FFF},
		{kernels[1], 0xFF80FFFF, 0xFFC0}, // no rounding into the payload
		{kernels[2], 0x7F81, 0x7E08},
		{kernels[2], 0xFFC0, 0xFE00},
		{kernels[2], 0x7FFF, 0x7FF8},
		{kernels[3], 0x7C01, 0x7FC02000}, // signalling half is quieted
		{kernels[3], 0xFE00, 0xFFC00000},
		{kernels[3], 0x7FFF, 0x7FFFE000},
		{kernels[4], 0x7F81, 0x7F810000}, // exact: bfloat16 payload untouched
		{kernels[4], 0xFFC0, 0xFFC00000},
	}
	for _, c := range cases {
		// Repeat the value so the assembly (16 elements a block) sees it.
		src := make([]byte, 17*c.k.inSize())
		for i := 0; i < 17; i++ {
			putElem(src, c.k.inSize(), i, c.in)
		}
		for _, p := range convPaths(t) {
			dst := make([]byte, 17*c.k.outSize())
			st := c.k.conv(dst, src, p.asm)
			assert.Zero(t, st, "%s/%s: NaN counts in no stat", c.k.name, p.name)
			for i := 0; i < 17; i++ {
				assert.Equal(t, c.out, getElem(dst, c.k.outSize(), i), "%s/%s in %#x", c.k.name, p.name, c.in)
			}
		}
		assert.Equal(t, c.out, c.k.ref(c.in), "%s reference in %#x", c.k.name, c.in)
	}
}

// TestConvertStats checks overflow/underflow counts of specific vectors.
func TestConvertStats(t *testing.T) {
	f := math.Float32bits
	nan := uint32(0x7FC00000)
	inf := uint32(0x7F800000)
	cases := []struct {
		name   string
		k      kernel
		src    []byte
		ov, uf int64
	}{
		{"f16 mixed", kernels[0], f32Bytes(
			f(1), f(65504), 0x477FEFFF, // 65519.99 keeps 65504
			f(65520), f(-65520), f(1e30), 0x7F7FFFFF, // 4 overflow
			inf, inf|1<<31, nan, nan|1<<31, // neither
			f(0x1p-24), f(-0x1p-24), 0x33000001, // kept as the smallest subnormal
			f(0x1p-25), f(-0x1p-25), f(0x1p-26), f(1e-30), 1, 0x80000001, // 6 underflow
			0, 1<<31, // zeros: neither
		), 4, 6},
		{"f16 weights", kernels[0], f32Bytes(f(0.02), f(-0.013), f(3e-5), f(-6e-8), f(2.9e-8), f(1e-9)), 0, 2},
		{"bf16 mixed", kernels[1], f32Bytes(
			0x7F7FFFFF, 0xFF7FFFFF, 0x7F7F8000, // overflow
			0x7F7F7FFF, 0x7F7F0000, f(1e38), // kept
			inf, nan, 0xFF800000, 0xFFC00001, // neither
			0x8000, 0x80008000, 1, 0x7FFF, // underflow
			0x8001, 0x00010000, 0, 1<<31, f(1e-40), // kept / zero
		), 3, 4},
		{"bf16->f16 mixed", kernels[2], u16Bytes(
			0x4780, 0xC780, 0x477F, // 65536 overflows both signs; 65280 is kept
			0x7F7F, 0x5015, // max bfloat16, 1e10
			0x7F80, 0x7FC0, 0xFF81, // neither
			0x3300, 0xB300, 0x3280, 0x0001, 0x322C, // 2^-25 (tie to 0), 2^-26, tiny: underflow
			0x3380, 0x3301, 0x0000, 0x8000, // kept, zeros
		), 4, 5},
		{"f16->f32", kernels[3], u16Bytes(0x7BFF, 0x0001, 0x7C00, 0x7E00, 0), 0, 0},
		{"bf16->f32", kernels[4], u16Bytes(0x7F7F, 0x0001, 0x7F80, 0x7FC0, 0), 0, 0},
	}
	for _, c := range cases {
		for _, p := range convPaths(t) {
			for _, reps := range []int{1, 16, 37} { // tail only, asm only, both
				src := make([]byte, 0, reps*len(c.src))
				for r := 0; r < reps; r++ {
					src = append(src, c.src...)
				}
				dst := make([]byte, OutputSize(c.k.from, c.k.to, len(src)))
				st := c.k.conv(dst, src, p.asm)
				assert.Equal(t, ConvStats{Overflow: c.ov * int64(reps), Underflow: c.uf * int64(reps)}, st,
					"%s/%s ×%d", c.name, p.name, reps)
			}
		}
		// The vectors agree with the reference definition of the stats.
		checkAgainstRef(t, c.k, convPath{"go", false}, c.src)
	}
	var s ConvStats
	s.Add(ConvStats{1, 2})
	s.Add(ConvStats{Overflow: 10, Underflow: 20})
	assert.Equal(t, ConvStats{Overflow: 11, Underflow: 22}, s)
}

// convInput makes n elements of the kernel's source type: weight-like
// values mixed with random bit patterns (NaNs, Infs, subnormals included).
func convInput(k kernel, n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n*k.inSize())
	for i := 0; i < n; i++ {
		var x uint32
		if rng.IntN(2) == 0 {
			x = math.Float32bits(float32(rng.NormFloat64() * 0.02))
		} else {
			x = rng.Uint32()
		}
		if k.inSize() == 2 {
			x >>= 16
			if k.from == F16 && rng.IntN(2) == 0 {
				x = uint32(f32ToF16Bits(math.Float32bits(float32(rng.NormFloat64() * 0.02))))
			}
		}
		putElem(b, k.inSize(), i, x)
	}
	return b
}

// TestConvertLengths covers lengths around the 16-element assembly block,
// a long odd length, and slices offset by 2 bytes from their allocation.
func TestConvertLengths(t *testing.T) {
	for _, k := range kernels {
		for _, n := range []int{0, 1, 7, 8, 9, 15, 16, 17, 31, 33, 1000003} {
			for _, off := range []int{0, 2} {
				for _, p := range convPaths(t) {
					name := fmt.Sprintf("%s/%s/n=%d/off=%d", k.name, p.name, n, off)
					srcBuf := make([]byte, off+n*k.inSize())
					src := srcBuf[off:]
					copy(src, convInput(k, n, uint64(n)))
					// Guard bytes around dst catch out-of-bounds writes.
					const guard = 64
					dstBuf := make([]byte, off+n*k.outSize()+guard)
					for i := range dstBuf {
						dstBuf[i] = 0xA5
					}
					dst := dstBuf[off : off+n*k.outSize()]
					st := k.conv(dst, src, p.asm)
					var want ConvStats
					bad := 0
					for i := 0; i < n; i++ {
						in := getElem(src, k.inSize(), i)
						r := k.ref(in)
						if k.refStats != nil {
							ov, uf := k.refStats(in, r)
							want.Overflow += b2i(ov)
							want.Underflow += b2i(uf)
						}
						if getElem(dst, k.outSize(), i) != r {
							bad++
						}
					}
					require.Zero(t, bad, name)
					require.Equal(t, want, st, name)
					for i, v := range dstBuf[off+len(dst):] {
						require.Equal(t, byte(0xA5), v, "%s: guard byte %d written", name, i)
					}
					for i, v := range dstBuf[:off] {
						require.Equal(t, byte(0xA5), v, "%s: byte %d before dst written", name, i)
					}
				}
			}
		}
	}
}

// TestConvertMismatchedLengths checks that kernels convert only whole
// elements that fit in both slices and never panic.
func TestConvertMismatchedLengths(t *testing.T) {
	for _, k := range kernels {
		src := convInput(k, 40, 1)
		full := make([]byte, 40*k.outSize())
		k.public(full, src)
		cases := []struct {
			name        string
			srcLen      int // bytes
			dstLen      int // bytes
			wantElems   int
			wantWritten int
		}{
			{"nil", 0, 0, 0, 0},
			{"empty dst", len(src), 0, 0, 0},
			{"partial src element", 37*k.inSize() + 1, len(full), 37, 37 * k.outSize()},
			{"short dst", len(src), 20*k.outSize() + 1, 20, 20 * k.outSize()},
			{"short dst, asm-sized", len(src), 33 * k.outSize(), 33, 33 * k.outSize()},
			{"dst one byte", len(src), 1, 0, 0},
			{"src one byte", 1, len(full), 0, 0},
		}
		for _, c := range cases {
			for _, p := range convPaths(t) {
				dst := make([]byte, c.dstLen)
				for i := range dst {
					dst[i] = 0xA5
				}
				var st ConvStats
				require.NotPanics(t, func() { st = k.conv(dst, src[:c.srcLen], p.asm) }, "%s/%s %s", k.name, p.name, c.name)
				assert.Equal(t, full[:c.wantWritten], dst[:c.wantWritten], "%s/%s %s", k.name, p.name, c.name)
				for i := c.wantWritten; i < len(dst); i++ {
					assert.Equal(t, byte(0xA5), dst[i], "%s/%s %s: byte %d", k.name, p.name, c.name, i)
				}
				if k.refStats == nil {
					assert.Zero(t, st)
				}
			}
			require.NotPanics(t, func() { k.public(nil, nil) })
		}
	}
}

// TestConverter checks the dispatch table and OutputSize.
func TestConverter(t *testing.T) {
	for _, k := range kernels {
		fn, ok := Converter(k.from, k.to)
		require.True(t, ok, k.name)
		src := convInput(k, 100, 3)
		got := make([]byte, OutputSize(k.from, k.to, len(src)))
		want := make([]byte, len(got))
		assert.Equal(t, k.public(want, src), fn(got, src), k.name)
		assert.Equal(t, want, got, k.name)
	}
	for _, d := range []DType{F16, BF16, F32} {
		fn, ok := Converter(d, d)
		require.True(t, ok, "identity %v", d)
		src := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9}
		dst := make([]byte, 16)
		assert.Zero(t, fn(dst, src))
		n := 8
		assert.Equal(t, src[:n], dst[:n], "identity %v copies whole elements", d)
		assert.Equal(t, make([]byte, 8), dst[n:], "identity %v", d)
	}
	for _, c := range []struct{ from, to DType }{{F32, F64}, {F64, F16}, {I32, F16}, {F16, BF16}, {U8, F16}, {BF16, I8}} {
		fn, ok := Converter(c.from, c.to)
		assert.False(t, ok, "%v→%v", c.from, c.to)
		assert.Nil(t, fn)
	}

	sizes := []struct {
		from, to DType
		n, want  int
	}{
		{F32, F16, 400, 200},
		{F32, F16, 403, 200},
		{F32, BF16, 4, 2},
		{BF16, F16, 7, 6},
		{F16, F32, 6, 12},
		{F16, F32, 7, 12},
		{BF16, F32, 0, 0},
		{F32, F16, -4, 0},
		{F32, F64, 8, 16},
		{F4, F16, 8, 0},
		{F16, DType(200), 8, 0},
	}
	for _, c := range sizes {
		assert.Equal(t, c.want, OutputSize(c.from, c.to, c.n), "%v→%v n=%d", c.from, c.to, c.n)
	}
}
