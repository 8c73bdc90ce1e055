package xet

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
)

func benchData(n int) []byte {
	rng := rand.New(rand.NewPCG(7, 8))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// BenchmarkChunker is the upload's first pass: cut and hash a stream.
func BenchmarkChunker(b *testing.B) {
	data := benchData(64 << 20)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		c := NewChunker(bytes.NewReader(data))
		for {
			if _, _, err := c.Next(); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkBoundaries is the Gear hash alone.
func BenchmarkBoundaries(b *testing.B) {
	data := benchData(64 << 20)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		for d := data; len(d) > 0; {
			d = d[nextBoundary(d):]
		}
	}
}

// BenchmarkChunkHash is the keyed BLAKE3 of a 64 KiB chunk.
func BenchmarkChunkHash(b *testing.B) {
	data := benchData(TargetChunkSize)
	h := newChunkHasher()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		h.hash(data)
	}
}
