package xet

import (
	"errors"
	"io"
)

// The content-defined chunking parameters (docs/xet/chunking.md).
const (
	TargetChunkSize = 64 << 10  // mean chunk size
	MinChunkSize    = 8 << 10   // no boundary is tested before this size (see skipBytes)
	MaxChunkSize    = 128 << 10 // a boundary is forced at this size
	// chunkMask has 16 one-bits: a boundary where h&chunkMask == 0.
	chunkMask = 0xFFFF_0000_0000_0000
	// hashWindow is how many trailing bytes the Gear hash depends on: a
	// byte shifted left 64 times has left the 64-bit state.
	hashWindow = 64
	// skipBytes is how far into a chunk the reference implementations
	// (xet-core, @huggingface/xetchunk-wasm) start hashing: MinChunkSize -
	// hashWindow - 1. The hash starts from zero there and every byte after
	// is tested, so the first testable cut is at 8128 bytes, not at
	// MinChunkSize as the specification's pseudocode says; the cuts between
	// 8128 and 8191 bytes (about one chunk in a thousand) are the
	// reference's, and content-defined deduplication needs the reference's
	// cuts, so they are kept.
	skipBytes = MinChunkSize - hashWindow - 1
)

// chunkerBufferSize is the Chunker's read buffer: a multiple of MaxChunkSize,
// so a refill moves at most one chunk's bytes.
const chunkerBufferSize = 8 * MaxChunkSize

// nextBoundary is the length of the chunk starting at data[0]; data holds
// at least MaxChunkSize bytes, or the rest of the input.
func nextBoundary(data []byte) int {
	lim := min(len(data), MaxChunkSize)
	var h uint64
	i := skipBytes
	// Four bytes per round. h after four bytes is h<<4 plus a sum of the
	// four table entries shifted, so the loop-carried chain is one shift and
	// one add per round instead of per byte; the three intermediate hashes
	// are computed from h off that chain, only to be tested (the arithmetic
	// wraps mod 2^64 either way, so the values are the byte-by-byte ones).
	for ; i+4 <= lim; i += 4 {
		d := data[i : i+4 : i+4]
		t0, t1, t2, t3 := gearTable[d[0]], gearTable[d[1]], gearTable[d[2]], gearTable[d[3]]
		s1 := t0<<1 + t1
		s2 := s1<<1 + t2
		h1 := h<<1 + t0
		h2 := h<<2 + s1
		h3 := h<<3 + s2
		h = h<<4 + (s2<<1 + t3)
		if (h1&chunkMask == 0) || (h2&chunkMask == 0) || (h3&chunkMask == 0) || (h&chunkMask == 0) {
			switch {
			case h1&chunkMask == 0:
				return i + 1
			case h2&chunkMask == 0:
				return i + 2
			case h3&chunkMask == 0:
				return i + 3
			}
			return i + 4
		}
	}
	for ; i < lim; i++ {
		h = h<<1 + gearTable[data[i]]
		if h&chunkMask == 0 {
			return i + 1
		}
	}
	return lim
}

// Chunks cuts data into chunks and hashes them, as a Chunker over
// bytes.NewReader(data) would.
func Chunks(data []byte) []Chunk {
	var out []Chunk
	h := newChunkHasher()
	for len(data) > 0 {
		n := nextBoundary(data)
		out = append(out, Chunk{Hash: h.hash(data[:n]), Size: uint32(n)})
		data = data[n:]
	}
	return out
}

// Chunker cuts a stream into content-defined chunks and hashes each one. It
// holds one fixed buffer (1 MiB) whatever the stream's size.
type Chunker struct {
	r          io.Reader
	buf        []byte
	start, end int // unread bytes are buf[start:end]
	eof        bool
	err        error
	hasher     chunkHasher
	offset     int64 // stream offset of buf[start]
}

// NewChunker returns a Chunker reading r.
func NewChunker(r io.Reader) *Chunker {
	return &Chunker{r: r, buf: make([]byte, chunkerBufferSize), hasher: newChunkHasher()}
}

// Offset is the stream offset of the next chunk: the bytes chunked so far.
func (c *Chunker) Offset() int64 { return c.offset }

// fill tops the buffer up when less than MaxChunkSize bytes are buffered,
// reading until it is full or the input ends.
func (c *Chunker) fill() error {
	if c.end-c.start >= MaxChunkSize || c.eof {
		return nil
	}
	if c.start > 0 {
		c.end = copy(c.buf, c.buf[c.start:c.end])
		c.start = 0
	}
	for empty := 0; c.end < len(c.buf); {
		n, err := c.r.Read(c.buf[c.end:])
		c.end += n
		if errors.Is(err, io.EOF) {
			c.eof = true
			return nil
		}
		if err != nil {
			return err
		}
		if n == 0 {
			if empty++; empty >= 100 {
				return io.ErrNoProgress
			}
		}
	}
	return nil
}

// Next returns the next chunk and its bytes, which stay valid until the
// next call; io.EOF after the last chunk. A read error is returned as it
// came, and again on every later call.
func (c *Chunker) Next() (Chunk, []byte, error) {
	if c.err != nil {
		return Chunk{}, nil, c.err
	}
	if err := c.fill(); err != nil {
		c.err = err
		return Chunk{}, nil, err
	}
	if c.start == c.end {
		c.err = io.EOF
		return Chunk{}, nil, io.EOF
	}
	data := c.buf[c.start:c.end]
	n := nextBoundary(data)
	data = data[:n]
	c.start += n
	c.offset += int64(n)
	return Chunk{Hash: c.hasher.hash(data), Size: uint32(n)}, data, nil
}
