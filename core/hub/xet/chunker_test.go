package xet

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// unevenReader returns its data in pieces of varying sizes, some empty.
type unevenReader struct {
	data []byte
	n    int
}

func (r *unevenReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	sizes := []int{1, 0, 7, 4096, 70001, 3, 200000}
	k := min(sizes[r.n%len(sizes)], len(p), len(r.data))
	r.n++
	copy(p, r.data[:k])
	r.data = r.data[k:]
	return k, nil
}

func chunkStream(t *testing.T, r io.Reader) []Chunk {
	t.Helper()
	c := NewChunker(r)
	var out []Chunk
	var off int64
	for {
		ch, data, err := c.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		require.Equal(t, int(ch.Size), len(data))
		require.Equal(t, ChunkHash(data), ch.Hash)
		off += int64(ch.Size)
		require.Equal(t, off, c.Offset())
		out = append(out, ch)
	}
	return out
}

// naiveBoundaries is the chunking rule written byte by byte, as the
// reference applies it: the hash starts at zero skipBytes into each chunk,
// every byte from there is tested, and MaxChunkSize forces a cut.
func naiveBoundaries(data []byte) []int {
	var sizes []int
	start := 0
	for start < len(data) {
		var h uint64
		end := len(data)
		for i := start + skipBytes; i < len(data); i++ {
			h = h<<1 + gearTable[data[i]]
			if h&chunkMask == 0 || i+1-start >= MaxChunkSize {
				end = i + 1
				break
			}
		}
		sizes = append(sizes, end-start)
		start = end
	}
	return sizes
}

func TestGearTableIsTheSpecifiedTable(t *testing.T) {
	// Entries of rust-gearhash's DEFAULT_TABLE, which the spec names.
	for i, want := range map[int]uint64{
		0: 0xb088d3a9e840f559, 1: 0x5652c7f739ed20d6, 17: 0x00005082119ea468,
		23: 0x0000010695477bc5, 124: 0x267310178e08a22e, 128: 0xa315f5ebfb706d26, 255: 0x63c7a906c1dd187b,
	} {
		assert.Equal(t, want, gearTable[i], "TABLE[%d]", i)
	}
}

func TestChunkBoundaries(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 5<<20)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	tests := []struct {
		name  string
		data  []byte
		sizes []int // nil: compare with naiveBoundaries only
	}{
		{"empty", nil, nil},
		{"one byte", []byte{42}, []int{1}},
		{"below the skip", random[:skipBytes], []int{skipBytes}},
		{"zeros force MaxChunkSize", make([]byte, 2*MaxChunkSize+5), []int{MaxChunkSize, MaxChunkSize, 5}},
		{"exactly MaxChunkSize", make([]byte, MaxChunkSize), []int{MaxChunkSize}},
		{"random", random, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sizes []int
			for _, c := range Chunks(tt.data) {
				sizes = append(sizes, int(c.Size))
			}
			if tt.sizes != nil {
				assert.Equal(t, tt.sizes, sizes)
			}
			assert.Equal(t, naiveBoundaries(tt.data), sizes)
		})
	}
	// Random data: sizes within bounds, mean near the target.
	cs := Chunks(random)
	total := 0
	for i, c := range cs {
		total += int(c.Size)
		assert.LessOrEqual(t, int(c.Size), MaxChunkSize)
		if i < len(cs)-1 {
			assert.Greater(t, int(c.Size), skipBytes)
		}
	}
	assert.Equal(t, len(random), total)
	mean := total / len(cs)
	assert.InDelta(t, TargetChunkSize, mean, TargetChunkSize/2, "mean chunk size %d over %d chunks", mean, len(cs))
}

func TestChunkerStreamsLikeChunks(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	data := make([]byte, 3<<20+12345)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	want := Chunks(data)
	readers := map[string]io.Reader{
		"whole":    bytes.NewReader(data),
		"uneven":   &unevenReader{data: data},
		"one byte": iotest.OneByteReader(bytes.NewReader(data[:300<<10])),
		"half":     iotest.HalfReader(bytes.NewReader(data)),
	}
	for name, r := range readers {
		t.Run(name, func(t *testing.T) {
			w := want
			if name == "one byte" {
				w = Chunks(data[:300<<10])
			}
			assert.Equal(t, w, chunkStream(t, r))
		})
	}
}

// An edit changes only the chunks around it: content-defined cuts.
func TestChunkerLocality(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	data := make([]byte, 4<<20)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	edited := append(append(append([]byte{}, data[:2<<20]...), []byte("inserted bytes")...), data[2<<20:]...)
	a, b := Chunks(data), Chunks(edited)
	seen := map[Hash]bool{}
	for _, c := range a {
		seen[c.Hash] = true
	}
	shared := 0
	for _, c := range b {
		if seen[c.Hash] {
			shared++
		}
	}
	assert.GreaterOrEqual(t, shared, len(a)-5, "of %d chunks, %d survive the edit", len(a), shared)
}

func TestChunkerReadError(t *testing.T) {
	boom := errors.New("disk on fire")
	r := io.MultiReader(bytes.NewReader(make([]byte, 3*MaxChunkSize)), iotest.ErrReader(boom))
	c := NewChunker(r)
	var err error
	for range 10 {
		if _, _, err = c.Next(); err != nil {
			break
		}
	}
	require.ErrorIs(t, err, boom)
	_, _, err = c.Next()
	require.ErrorIs(t, err, boom, "the error sticks")
}

type stuckReader struct{}

func (stuckReader) Read([]byte) (int, error) { return 0, nil }

func TestChunkerStuckReader(t *testing.T) {
	_, _, err := NewChunker(stuckReader{}).Next()
	require.ErrorIs(t, err, io.ErrNoProgress)
}
