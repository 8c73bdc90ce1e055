package xet

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The tracker decides as xet-core's DefragPrevention: no decision before
// Ranges terms, a run refused only when the average is under the current
// threshold and the run is shorter than the average, the threshold raised
// by a refusal and lowered by an allowance at or above it.
func TestDefragTracker(t *testing.T) {
	small := DefragPolicy{Ranges: 4, MinChunksPerRange: 8, Hysteresis: 0.5} // thresholds 4 (low) and 8 (high)
	type ask struct {
		run  int
		want bool
	}
	for _, tt := range []struct {
		name   string
		policy DefragPolicy
		terms  []int // terms opened, in order, before the asks
		asks   []ask // in order: each may move the threshold
	}{
		{"no estimate before Ranges terms", small, []int{1, 1, 1}, []ask{{1, true}}},
		{"average at the low threshold", small, []int{4, 4, 4, 4}, []ask{{1, true}}},
		{"run as long as the average", small, []int{1, 1, 1, 1}, []ask{{1, true}}},
		{"short run refused", small, []int{1, 1, 2, 2}, []ask{{1, false}}},
		{"long run allowed while fragmented", small, []int{1, 1, 2, 2}, []ask{{2, true}, {1, false}}},
		// Average 6: above the low threshold until a refusal, then under
		// the high one.
		{"hysteresis: 6 passes at first", small, []int{6, 6, 6, 6}, []ask{{1, true}}},
		{"hysteresis: refused run raises the threshold", small, []int{1, 1, 2, 2}, []ask{{1, false}, {1, false}}},
		{"off", DefragPolicy{}, []int{1, 1, 2, 2, 1, 1}, []ask{{1, true}}},
		{"default: 127 terms are no estimate", DefaultDefrag, make([]int, 127), []ask{{1, true}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var d defragTracker
			d.reset(tt.policy)
			for _, n := range tt.terms {
				d.addRange(n)
			}
			for i, a := range tt.asks {
				assert.Equal(t, a.want, d.allow(a.run), "ask %d: run of %d", i, a.run)
			}
		})
	}

	// The hysteresis across a changing average: refused under 4, still
	// refused at 6 (threshold 8), allowed at 8, then allowed at 6 again.
	var d defragTracker
	d.reset(small)
	for _, n := range []int{2, 2, 2, 2} {
		d.addRange(n)
	}
	assert.False(t, d.allow(1), "average 2 < 4")
	for range 4 {
		d.addRange(6)
	}
	assert.False(t, d.allow(1), "average 6 < 8 once refused")
	bound, pending := d.pending()
	assert.True(t, pending)
	assert.InDelta(t, 6, bound, 0.001, "a run of the average's length is allowed")
	assert.True(t, d.allow(6))
	for range 4 {
		d.addRange(8)
	}
	assert.True(t, d.allow(1), "average 8 reaches the high threshold")
	d.addRange(1) // 8 8 8 1: 6.25
	d.extend(0)
	_, pending = d.pending()
	assert.False(t, pending, "6.25 ≥ 4: the low threshold again")
	assert.True(t, d.allow(1))

	// The window keeps the last Ranges terms; extend grows the last.
	d.reset(small)
	for _, n := range []int{100, 1, 1, 1, 1} {
		d.addRange(n)
	}
	cpr, ok := d.average()
	require.True(t, ok)
	assert.InDelta(t, 1, cpr, 0.001, "the first term left the window")
	d.extend(4)
	cpr, _ = d.average()
	assert.InDelta(t, 2, cpr, 0.001)
}

// pieces are the chunks of data as byte slices, without its last one
// (cut by the end of data, not by content): concatenated in any order
// they chunk back into the same pieces.
func pieces(t *testing.T, data []byte) [][]byte {
	t.Helper()
	var out [][]byte
	off := 0
	for _, ch := range Chunks(data) {
		out = append(out, data[off:off+int(ch.Size)])
		off += int(ch.Size)
	}
	require.Greater(t, len(out), 1)
	return out[:len(out)-1]
}

// defragFixture is a base file packed in an earlier session (its xorbs,
// and a Lookup that finds its chunks) and a file mixing its chunks with
// new ones.
type defragFixture struct {
	xorbs    map[Hash][]XorbChunk
	lookup   func(Hash) (Located, bool)
	file     []byte
	chunks   int    // chunks of file
	newBytes uint64 // bytes of file's chunks the base does not hold
}

// newDefragFixture builds the file from groups: each takes known base
// chunks (known[g] of them, consecutive in the base, from where the last
// group stopped, skipping skip base chunks between groups) then fresh ones
// (fresh[g] of them).
func newDefragFixture(t *testing.T, groups, skip int, known, fresh func(g int) int) defragFixture {
	t.Helper()
	var nKnown, nFresh int
	for g := range groups {
		nKnown += known(g) + skip
		nFresh += fresh(g)
	}
	base := estimateBytes((nKnown+8)*64<<10, 41)
	basePieces := pieces(t, base)
	freshPieces := pieces(t, estimateBytes((nFresh+8)*64<<10, 42))
	require.GreaterOrEqual(t, len(basePieces), nKnown)
	require.GreaterOrEqual(t, len(freshPieces), nFresh)

	p0 := NewPacker(PolicyNone, nil)
	raw, _ := packFiles(t, p0, base)
	fx := defragFixture{xorbs: map[Hash][]XorbChunk{}}
	index := map[Hash]Located{}
	for h, x := range raw {
		cs, err := ReadXorb(x, h)
		require.NoError(t, err)
		fx.xorbs[h] = cs
		for i, c := range cs {
			index[c.Hash] = Located{Xorb: h, Index: uint32(i)}
		}
	}
	fx.lookup = func(h Hash) (Located, bool) {
		loc, ok := index[h]
		return loc, ok
	}
	var b bytes.Buffer
	bi, fi := 0, 0
	for g := range groups {
		for range known(g) {
			b.Write(basePieces[bi])
			bi++
			fx.chunks++
		}
		bi += skip
		for range fresh(g) {
			b.Write(freshPieces[fi])
			fx.newBytes += uint64(len(freshPieces[fi]))
			fi++
			fx.chunks++
		}
	}
	fx.file = b.Bytes()
	require.Len(t, Chunks(fx.file), fx.chunks, "the file chunks into the pieces it was made of")
	return fx
}

// pack packs the fixture's file with policy against the base, and checks
// that it reconstructs from the base's xorbs and the new ones.
func (fx defragFixture) pack(t *testing.T, policy DefragPolicy) (FileInfo, *PackedFile, Stats, uint64) {
	t.Helper()
	p := NewPacker(PolicyNone, nil)
	p.Defrag = policy
	p.Lookup = fx.lookup
	var told uint64
	p.OnDedup = func(file int, size uint32) { told += uint64(size) }
	xorbs := map[Hash][]byte{}
	p.emit = func(x SealedXorb) error {
		xorbs[x.Info.Hash] = append([]byte(nil), x.Bytes...)
		return nil
	}
	pf, err := p.AddFile(bytes.NewReader(fx.file))
	require.NoError(t, err)
	require.NoError(t, p.Flush())
	info, err := pf.Info()
	require.NoError(t, err)
	all := map[Hash][]XorbChunk{}
	for h, cs := range fx.xorbs {
		all[h] = cs
	}
	for h, x := range xorbs {
		cs, err := ReadXorb(x, h)
		require.NoError(t, err)
		all[h] = cs
	}
	require.True(t, bytes.Equal(fx.file, reconstruct(t, all, info)), "the file round-trips")
	st := p.Stats()
	assert.Equal(t, uint64(len(fx.file)), st.Bytes)
	assert.Equal(t, st.Bytes, st.NewBytes+st.DedupedBytes)
	assert.Equal(t, st.DedupedBytes, told, "OnDedup is told every referenced chunk")
	assert.Equal(t, st.NewBytes, pf.NewBytes)
	assert.Equal(t, st.Defragmented, pf.Defragmented)
	return info, pf, st, told
}

// Known chunks in long runs stay deduplicated: with the rule on, only the
// fresh chunks are packed, and each run is one term.
func TestDefragLongRunsStayDeduplicated(t *testing.T) {
	small := DefragPolicy{Ranges: 16, MinChunksPerRange: 8, Hysteresis: 0.5}
	for _, tt := range []struct {
		name         string
		known, fresh int
	}{
		{"runs of 8, one fresh chunk", 8, 1},
		{"runs of 16, two fresh chunks", 16, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			const groups = 24 // 48 terms: the estimate is full long before the end
			fx := newDefragFixture(t, groups, 3, func(int) int { return tt.known }, func(int) int { return tt.fresh })
			info, _, st, _ := fx.pack(t, small)
			assert.Zero(t, st.Defragmented)
			assert.Equal(t, fx.newBytes, st.NewBytes, "only the fresh chunks are packed")
			assert.Len(t, info.Terms, 2*groups, "a term per run and per fresh group")
		})
	}
}

// Known chunks scattered one at a time among fresh ones make a
// reconstruction of tiny terms; the rule packs most of them again, so the
// terms stay few, and counts what it packed again.
func TestDefragScatteredChunksArePackedAgain(t *testing.T) {
	for _, tt := range []struct {
		name   string
		policy DefragPolicy
		groups int
	}{
		{"small window", DefragPolicy{Ranges: 16, MinChunksPerRange: 8, Hysteresis: 0.5}, 120},
		{"xet-core's default", DefaultDefrag, 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// One known chunk, then two or three fresh ones.
			fx := newDefragFixture(t, tt.groups, 2, func(int) int { return 1 }, func(g int) int { return 2 + g%2 })
			offInfo, _, offStats, _ := fx.pack(t, DefragPolicy{})
			assert.Zero(t, offStats.Defragmented)
			assert.Equal(t, fx.newBytes, offStats.NewBytes, "without the rule every known chunk is referenced")
			assert.Len(t, offInfo.Terms, 2*tt.groups, "a term per known chunk and per fresh group")

			info, pf, st, _ := fx.pack(t, tt.policy)
			assert.Positive(t, st.Defragmented)
			assert.Equal(t, fx.newBytes+st.Defragmented, st.NewBytes, "the fresh chunks and those packed again")
			assert.LessOrEqual(t, st.Defragmented, uint64(len(fx.file))-fx.newBytes)
			assert.Equal(t, pf.Defragmented, st.Defragmented)
			// Past the first Ranges terms (no estimate yet) the rule keeps
			// terms at about MinChunksPerRange × Hysteresis chunks or more.
			low := tt.policy.MinChunksPerRange * tt.policy.Hysteresis
			bound := tt.policy.Ranges + int(float32(fx.chunks)/(low-1))
			t.Logf("%d chunks: %d terms without the rule, %d with it (bound %d); %d of %d known bytes packed again",
				fx.chunks, len(offInfo.Terms), len(info.Terms), bound, st.Defragmented, uint64(len(fx.file))-fx.newBytes)
			assert.LessOrEqual(t, len(info.Terms), bound)
			assert.Less(t, len(info.Terms), len(offInfo.Terms)/2)
		})
	}
}

// A run held for the rule that the file's end cuts short is decided too,
// and a file of repeats within itself reconstructs.
func TestDefragHeldRunAtTheEnd(t *testing.T) {
	policy := DefragPolicy{Ranges: 4, MinChunksPerRange: 8, Hysteresis: 0.5}
	// Ends with one known chunk after a fragmented start.
	fx := newDefragFixture(t, 9, 1, func(int) int { return 1 }, func(g int) int {
		if g == 8 {
			return 0
		}
		return 2
	})
	info, _, st, _ := fx.pack(t, policy)
	assert.Positive(t, st.Defragmented)
	last := info.Terms[len(info.Terms)-1]
	_, inBase := fx.xorbs[last.Xorb]
	assert.False(t, inBase, "the last known chunk, a short run, is packed again")
}
