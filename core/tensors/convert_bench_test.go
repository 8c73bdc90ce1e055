package tensors

import (
	"math"
	"math/rand/v2"
	"testing"
)

// benchBytes is the size of each benchmark's input buffer.
const benchBytes = 16 << 20

// benchF32 returns benchBytes of float32 weights drawn from N(0, 0.02).
func benchF32() []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, benchBytes)
	for i := 0; i < benchBytes/4; i++ {
		put32(b, i, math.Float32bits(float32(rng.NormFloat64()*0.02)))
	}
	return b
}

// bench16 returns benchBytes of the same weights converted by conv to a
// 16-bit type.
func bench16(conv ConvertFunc) []byte {
	f := benchF32()
	b := make([]byte, 2*benchBytes)
	conv(b[:len(f)/2], f)
	conv(b[len(f)/2:], f)
	return b[:benchBytes]
}

// benchPaths runs conv as one sub-benchmark per kernel path, reporting
// throughput in input bytes.
func benchPaths(b *testing.B, src []byte, outBytes int, conv func(dst, src []byte, asm bool) ConvStats) {
	dst := make([]byte, outBytes)
	for _, p := range convPaths(b) {
		b.Run(p.name, func(b *testing.B) {
			b.SetBytes(int64(len(src)))
			for b.Loop() {
				conv(dst, src, p.asm)
			}
		})
	}
}

func BenchmarkConvertF32ToF16(b *testing.B) {
	src := benchF32()
	benchPaths(b, src, len(src)/2, convertF32ToF16)
}

func BenchmarkConvertF32ToBF16(b *testing.B) {
	src := benchF32()
	benchPaths(b, src, len(src)/2, convertF32ToBF16)
}

func BenchmarkConvertBF16ToF16(b *testing.B) {
	src := bench16(ConvertF32ToBF16)
	benchPaths(b, src, len(src), convertBF16ToF16)
}

func BenchmarkConvertF16ToF32(b *testing.B) {
	src := bench16(ConvertF32ToF16)
	benchPaths(b, src, 2*len(src), convertF16ToF32)
}

func BenchmarkConvertBF16ToF32(b *testing.B) {
	src := bench16(ConvertF32ToBF16)
	benchPaths(b, src, 2*len(src), convertBF16ToF32)
}

// BenchmarkCopy is the memory-bandwidth baseline: copy() of a buffer the
// size of the conversion benchmarks' input.
func BenchmarkCopy(b *testing.B) {
	src := benchF32()
	dst := make([]byte, len(src))
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		copy(dst, src)
	}
}

// BenchmarkConvertF32ToF16InCache converts 64 KiB blocks that stay in L2,
// the in-cache speed of the kernels.
func BenchmarkConvertF32ToF16InCache(b *testing.B) {
	src := benchF32()[:64<<10]
	benchPaths(b, src, len(src)/2, convertF32ToF16)
}
