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

// The wrappers below convert the largest multiple of asmBlock elements not
// above n (the caller guarantees dst and src hold n elements) and return how
// many they converted; the portable kernel does the tail.

func f32ToF16Asm(dst, src []byte, n int) (done int, st ConvStats) {
	for n-done >= asmBlock {
		m := min(n-done, asmCall) &^ (asmBlock - 1)
		ov, uf := f32ToF16AVX2(&dst[2*done], &src[4*done], m)
		st.Overflow += ov
		st.Underflow += uf
		done += m
	}
	return done, st
}

func f32ToBF16Asm(dst, src []byte, n int) (done int, st ConvStats) {
	for n-done >= asmBlock {
		m := min(n-done, asmCall) &^ (asmBlock - 1)
		ov, uf := f32ToBF16AVX2(&dst[2*done], &src[4*done], m)
		st.Overflow += ov
		st.Underflow += uf
		done += m
	}
	return done, st
}

func bf16ToF16Asm(dst, src []byte, n int) (done int, st ConvStats) {
	for n-done >= asmBlock {
		m := min(n-done, asmCall) &^ (asmBlock - 1)
		ov, uf := bf16ToF16AVX2(&dst[2*done], &src[2*done], m)
		st.Overflow += ov
		st.Underflow += uf
		done += m
	}
	return done, st
}

func f16ToF32Asm(dst, src []byte, n int) (done int) {
	for n-done >= asmBlock {
		m := min(n-done, asmCall) &^ (asmBlock - 1)
		f16ToF32AVX2(&dst[4*done], &src[2*done], m)
		done += m
	}
	return done
}

func bf16ToF32Asm(dst, src []byte, n int) (done int) {
	for n-done >= asmBlock {
		m := min(n-done, asmCall) &^ (asmBlock - 1)
		bf16ToF32AVX2(&dst[4*done], &src[2*done], m)
		done += m
	}
	return done
}
