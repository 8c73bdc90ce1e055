package xet

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// estimateBytes is n seeded random bytes.
func estimateBytes(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// cacheOf opens an empty shard cache and adds a shard whose xorbs hold
// every chunk of data (one xorb, as an upload of it would register).
func cacheOf(t *testing.T, data ...[]byte) *ShardCache {
	t.Helper()
	c, err := OpenShardCache(t.TempDir(), 0, nil)
	require.NoError(t, err)
	for _, d := range data {
		cs := Chunks(d)
		b, err := (&Shard{Xorbs: []XorbInfo{{Hash: XorbHash(cs), Chunks: cs, StoredSize: uint32(len(d))}}}).Marshal(false)
		require.NoError(t, err)
		require.NoError(t, c.Add(b))
	}
	return c
}

func TestEstimate(t *testing.T) {
	base := estimateBytes(4<<20, 1)
	// A fine-tune of base: 512 KiB in the middle changed.
	tuned := bytes.Clone(base)
	copy(tuned[2<<20:], estimateBytes(512<<10, 2))
	other := estimateBytes(3<<20, 3)

	tests := []struct {
		name   string
		cached [][]byte // what the cache was fed
		files  [][]byte // what is estimated, in order
		// the new bytes lie in [lo, hi]
		lo, hi int
	}{
		{"empty cache: all new", nil, [][]byte{base}, len(base), len(base)},
		{"everything cached", [][]byte{base}, [][]byte{base}, 0, 0},
		{"unrelated cache", [][]byte{other}, [][]byte{base}, len(base), len(base)},
		// Content-defined chunks resynchronise after the edit: only the
		// chunks it touches are new (a chunk is at most MaxChunkSize on
		// each side).
		{"a changed region", [][]byte{base}, [][]byte{tuned}, 512 << 10, 512<<10 + 2*MaxChunkSize},
		{"the same file twice, empty cache", nil, [][]byte{base, base}, len(base), len(base)},
		{"two files, one cached", [][]byte{other}, [][]byte{base, other}, len(base), len(base)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cache := cacheOf(t, tt.cached...)
			e := NewEstimate(cache)
			var sum, total int64
			for _, f := range tt.files {
				n, err := e.Add(context.Background(), bytes.NewReader(f))
				require.NoError(t, err)
				sum += n
				total += int64(len(f))
			}
			assert.Equal(t, total, e.Total)
			assert.Equal(t, sum, e.New, "Add's results add up to New")
			assert.GreaterOrEqual(t, e.New, int64(tt.lo))
			assert.LessOrEqual(t, e.New, int64(tt.hi))

			// The Packer, deduplicating against the same cache, packs
			// exactly the bytes the estimate calls new.
			p := NewPacker(PolicyNone, func(SealedXorb) error { return nil })
			p.Lookup = cache.Lookup
			for _, f := range tt.files {
				_, err := p.AddFile(bytes.NewReader(f))
				require.NoError(t, err)
			}
			require.NoError(t, p.Flush())
			assert.Equal(t, uint64(e.New), p.Stats().NewBytes, "the estimate is what the Packer packs")
		})
	}
}

// Several caches (one per CAS) are all asked.
func TestEstimateSeveralCaches(t *testing.T) {
	a, b := estimateBytes(1<<20, 8), estimateBytes(1<<20, 9)
	e := NewEstimate(cacheOf(t, a), nil, cacheOf(t, b))
	for _, f := range [][]byte{a, b} {
		n, err := e.Add(context.Background(), bytes.NewReader(f))
		require.NoError(t, err)
		assert.Zero(t, n)
	}
	assert.EqualValues(t, 2<<20, e.Total)
}

func TestEstimateNewWithoutCache(t *testing.T) {
	data := estimateBytes(1<<20, 4)
	n, err := EstimateNew(context.Background(), bytes.NewReader(append(bytes.Clone(data), data...)), nil)
	require.NoError(t, err)
	// The second copy repeats the first's chunks but for the ones around
	// the seam.
	assert.GreaterOrEqual(t, n, int64(len(data)))
	assert.LessOrEqual(t, n, int64(len(data)+2*MaxChunkSize))
}

// errReader gives n bytes, then err.
type errReader struct {
	n   int
	err error
}

func (r *errReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, r.err
	}
	k := min(len(p), r.n)
	clear(p[:k])
	r.n -= k
	return k, nil
}

func TestEstimateStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := EstimateNew(ctx, bytes.NewReader(estimateBytes(1<<20, 5)), nil)
	assert.ErrorIs(t, err, context.Canceled)

	boom := errors.New("disk gone")
	e := NewEstimate(nil)
	_, err = e.Add(context.Background(), &errReader{n: 3 << 20, err: boom})
	assert.ErrorIs(t, err, boom)
	assert.Less(t, e.Total, int64(3<<20)+1, "counts hold what was read before")

	// A reader that ends cleanly after an error-free read.
	n, err := EstimateNew(context.Background(), &errReader{n: 100, err: io.EOF}, nil)
	require.NoError(t, err)
	assert.EqualValues(t, 100, n)
}
