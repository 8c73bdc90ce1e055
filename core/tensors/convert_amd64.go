//go:build !purego

package tensors

import "golang.org/x/sys/cpu"

// haveAsm reports whether the AVX2/F16C kernels in convert_amd64.s can run.
var haveAsm = cpu.X86.HasF16C && cpu.X86.HasAVX2

const (
	// asmBlock is the number of elements one iteration of every assembly
	// loop handles; the caller passes a multiple of it.
	asmBlock = 16
	// asmCall bounds the elements per assembly call: it keeps the per-lane
	// 32-bit counters far from overflowing and the (non-preemptible)
	// assembly short, about 10µs.
	asmCall = 1 << 16
)

// The assembly kernels convert n elements, n a positive multiple of
// asmBlock and at most asmCall. Unaligned pointers are fine.

//go:noescape
func f32ToF16AVX2(dst, src *byte, n int) (overflow, underflow int64)

//go:noescape
func f32ToBF16AVX2(dst, src *byte, n int) (overflow, underflow int64)

//go:noescape
func bf16ToF16AVX2(dst, src *byte, n int) (overflow, underflow int64)

//go:noescape
func f16ToF32AVX2(dst, src *byte, n int)

//go:noescape
func bf16ToF32AVX2(dst, src *byte, n int)

// The kernels with one signature: the widening ones count nothing.
var (
	asmF32ToF16  asmKernel = f32ToF16AVX2
	asmF32ToBF16 asmKernel = f32ToBF16AVX2
	asmBF16ToF16 asmKernel = bf16ToF16AVX2
	asmF16ToF32  asmKernel = func(d, s *byte, n int) (int64, int64) { f16ToF32AVX2(d, s, n); return 0, 0 }
	asmBF16ToF32 asmKernel = func(d, s *byte, n int) (int64, int64) { bf16ToF32AVX2(d, s, n); return 0, 0 }
)

// runAsm converts the largest multiple of asmBlock elements not above n
// with k, in calls of at most asmCall elements, and returns how many it
// converted; the portable kernel does the tail. in and out are the element
// sizes; the caller guarantees dst and src hold n elements.
func runAsm(k asmKernel, dst, src []byte, n, in, out int) (done int, st ConvStats) {
	for n-done >= asmBlock {
		m := min(n-done, asmCall) &^ (asmBlock - 1)
		ov, uf := k(&dst[out*done], &src[in*done], m)
		st.Overflow += ov
		st.Underflow += uf
		done += m
	}
	return done, st
}
