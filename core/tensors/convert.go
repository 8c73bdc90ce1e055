package tensors

import (
	"encoding/binary"
	"math"
)

// This file holds the streaming float conversion kernels: the exported
// entry points, the portable (pure-Go) fast path, and the plain per-element
// reference functions the tests use as an oracle. The amd64 assembly lives
// in convert_amd64.s and is wired in by convert_amd64.go; convert_other.go
// disables it on other architectures and under the purego build tag.
//
// Rounding is IEEE-754 round-to-nearest-even with subnormals produced and
// consumed (no flush-to-zero), overflow to ±Inf and -0 kept, matching
// PyTorch's .half() / .bfloat16() on CPU for every non-NaN value. NaNs stay
// NaNs with the sign kept and the quiet bit set (PyTorch's own NaN bits
// vary by code path):
//
//	F32→F16:  sign | 0x7E00 | mantissa>>13      (what VCVTPS2PH produces)
//	F32→BF16: bits>>16 | 0x0040
//	F16→F32:  sign | 0x7FC00000 | mantissa<<13  (what VCVTPH2PS produces)
//	BF16→F32: bits<<16                          (exact, payload untouched)
//	BF16→F16: as BF16→F32 then F32→F16

// ConvStats counts values a narrowing conversion could not keep.
type ConvStats struct {
	Overflow  int64 // finite inputs that became ±Inf
	Underflow int64 // non-zero inputs that became ±0
}

// Add adds the counts of o to s.
func (s *ConvStats) Add(o ConvStats) {
	s.Overflow += o.Overflow
	s.Underflow += o.Underflow
}

// ConvertFunc converts len(src)/srcSize elements from src into dst, where
// srcSize is the element size of the source dtype. Both slices hold
// little-endian element data and may have any alignment. dst must be at
// least OutputSize(from, to, len(src)) bytes long; a trailing partial
// element of src is ignored, and if dst is shorter only the elements that
// fit whole are converted. A ConvertFunc never panics on mismatched lengths.
// src and dst must not overlap.
type ConvertFunc func(dst, src []byte) ConvStats

// Converter returns the kernel for from→to, or ok=false if that conversion
// is not supported. Supported are F32→F16, F32→BF16, BF16→F16, F16→F32,
// BF16→F32, and the identity (a plain copy of whole elements) for F16, BF16
// and F32. Use OutputSize for the number of bytes the kernel writes.
func Converter(from, to DType) (fn ConvertFunc, ok bool) {
	switch {
	case from == F32 && to == F16:
		return ConvertF32ToF16, true
	case from == F32 && to == BF16:
		return ConvertF32ToBF16, true
	case from == BF16 && to == F16:
		return ConvertBF16ToF16, true
	case from == F16 && to == F32:
		return ConvertF16ToF32, true
	case from == BF16 && to == F32:
		return ConvertBF16ToF32, true
	case from == to && (from == F16 || from == BF16):
		return copy16, true
	case from == to && from == F32:
		return copy32, true
	}
	return nil, false
}

// OutputSize returns the number of bytes a conversion from→to produces for
// n input bytes: the number of whole input elements in n bytes times the
// output element size. It returns 0 for negative n and for dtypes whose
// elements are not a whole number of bytes.
func OutputSize(from, to DType, n int) int {
	fb, tb := from.Bits(), to.Bits()
	if n <= 0 || fb == 0 || tb == 0 || fb%8 != 0 || tb%8 != 0 {
		return 0
	}
	return n / int(fb/8) * int(tb/8)
}

// useAsm selects the assembly kernels; haveAsm is true only on amd64 with
// F16C and AVX2 (see convert_amd64.go). Tests call the lower-case kernels
// with an explicit flag to exercise both paths.
var useAsm = haveAsm

// ConvertF32ToF16 converts float32 elements to IEEE half precision with
// round-to-nearest-even, counting overflows (finite |x| ≥ 65520 becomes
// ±Inf) and underflows (non-zero |x| ≤ 2⁻²⁵ becomes ±0). It is a
// ConvertFunc: dst needs len(src)/2 bytes.
func ConvertF32ToF16(dst, src []byte) ConvStats { return convertF32ToF16(dst, src, useAsm) }

// ConvertF32ToBF16 converts float32 elements to bfloat16 with
// round-to-nearest-even, counting overflows (finite |x| that round past the
// largest bfloat16) and underflows (non-zero |x| ≤ 2⁻¹³⁴ becomes ±0). It is
// a ConvertFunc: dst needs len(src)/2 bytes.
func ConvertF32ToBF16(dst, src []byte) ConvStats { return convertF32ToBF16(dst, src, useAsm) }

// ConvertBF16ToF16 converts bfloat16 elements to IEEE half precision. The
// result is the single rounding of the exact value, as if widened to
// float32 first and then converted with ConvertF32ToF16, stats included. It
// is a ConvertFunc: dst needs len(src) bytes.
func ConvertBF16ToF16(dst, src []byte) ConvStats { return convertBF16ToF16(dst, src, useAsm) }

// ConvertF16ToF32 widens IEEE half precision elements to float32. The
// conversion is exact, so the returned stats are always zero. It is a
// ConvertFunc: dst needs 2*len(src) bytes.
func ConvertF16ToF32(dst, src []byte) ConvStats { return convertF16ToF32(dst, src, useAsm) }

// ConvertBF16ToF32 widens bfloat16 elements to float32. The conversion is
// exact, so the returned stats are always zero. It is a ConvertFunc: dst
// needs 2*len(src) bytes.
func ConvertBF16ToF32(dst, src []byte) ConvStats { return convertBF16ToF32(dst, src, useAsm) }

func copy16(dst, src []byte) ConvStats {
	n := min(len(src), len(dst)) &^ 1
	copy(dst[:n], src[:n])
	return ConvStats{}
}

func copy32(dst, src []byte) ConvStats {
	n := min(len(src), len(dst)) &^ 3
	copy(dst[:n], src[:n])
	return ConvStats{}
}

// asmKernel converts n elements, n a positive multiple of asmBlock, and
// returns the overflow and underflow counts.
type asmKernel func(dst, src *byte, n int) (overflow, underflow int64)

// convertWith converts n = min(len(src)/in, len(dst)/out) elements: the
// assembly (when asm is set and available) takes the largest multiple of its
// block size, the portable kernel the rest.
func convertWith(dst, src []byte, in, out int, asm bool, k asmKernel, portable ConvertFunc) (st ConvStats) {
	n := min(len(src)/in, len(dst)/out)
	done := 0
	if asm && haveAsm {
		done, st = runAsm(k, dst, src, n, in, out)
	}
	st.Add(portable(dst[out*done:out*n], src[in*done:in*n]))
	return st
}

func convertF32ToF16(dst, src []byte, asm bool) ConvStats {
	return convertWith(dst, src, 4, 2, asm, asmF32ToF16, f32ToF16Go)
}

func convertF32ToBF16(dst, src []byte, asm bool) ConvStats {
	return convertWith(dst, src, 4, 2, asm, asmF32ToBF16, f32ToBF16Go)
}

func convertBF16ToF16(dst, src []byte, asm bool) ConvStats {
	return convertWith(dst, src, 2, 2, asm, asmBF16ToF16, bf16ToF16Go)
}

func convertF16ToF32(dst, src []byte, asm bool) ConvStats {
	return convertWith(dst, src, 2, 4, asm, asmF16ToF32, widening(f16ToF32Go))
}

func convertBF16ToF32(dst, src []byte, asm bool) ConvStats {
	return convertWith(dst, src, 2, 4, asm, asmBF16ToF32, widening(bf16ToF32Go))
}

// widening adapts a kernel that cannot lose values to ConvertFunc.
func widening(k func(dst, src []byte)) ConvertFunc {
	return func(dst, src []byte) ConvStats { k(dst, src); return ConvStats{} }
}

// Overflow and underflow are decided on the input bits alone: a is the
// float32 magnitude (bits & 0x7FFFFFFF). The exhaustive tests check these
// ranges against the reference conversion for every float32.
const (
	// F32→F16: finite |x| ≥ 65520 (0x477FF000, max half + half an ulp,
	// which ties to even = Inf) overflows; 0 < |x| ≤ 2⁻²⁵ (0x33000000, half
	// the smallest subnormal half, which ties to even = 0) underflows.
	f16OvLo, f16OvHi = 0x477FF000, 0x7F7FFFFF
	f16UfLo, f16UfHi = 0x00000001, 0x33000000
	// F32→BF16: |x| ≥ 0x7F7F8000 overflows (the tie above the largest
	// bfloat16 rounds to the even Inf); 0 < |x| ≤ 0x00008000 underflows.
	bf16OvLo, bf16OvHi = 0x7F7F8000, 0x7F7FFFFF
	bf16UfLo, bf16UfHi = 0x00000001, 0x00008000
)

// The portable kernels below take the common case (a normal result) with
// straight-line code and the rare ones (subnormal or zero results,
// overflow, Inf, NaN) on branches that also count the stats, so typical
// weights pay nothing for the counting. The branch conditions are the
// ranges above; the tests check them against the definitions for every
// input.

// f32ToF16Go is the portable kernel; it converts min(len(src)/4,
// len(dst)/2) elements. It gives the same bits as VCVTPS2PH with
// round-to-nearest-even for every input, NaNs included.
func f32ToF16Go(dst, src []byte) (st ConvStats) {
	for len(src) >= 4 && len(dst) >= 2 {
		x := binary.LittleEndian.Uint32(src)
		a := x & 0x7FFFFFFF
		// Normal half: rebias the exponent by 127-15 and round to nearest
		// even at bit 13; a carry out of the mantissa correctly bumps the
		// exponent.
		h := (a - (127-15)<<23 + 0xFFF + (a>>13)&1) >> 13
		if a < 0x38800000 {
			// |x| < 2⁻¹⁴: a subnormal half or zero. Adding 0.5, whose ulp
			// is the subnormal step 2⁻²⁴, makes the FPU round |x| to that
			// step (nearest even); the low bits of the sum are the half's
			// bits (0x400, the smallest normal, if it rounds up to 2⁻¹⁴).
			h = math.Float32bits(math.Float32frombits(a)+0.5) - 0x3F000000
			if a-f16UfLo <= f16UfHi-f16UfLo {
				st.Underflow++
			}
		} else if a >= f16OvLo {
			h = 0x7C00 // overflow or Inf
			if a <= f16OvHi {
				st.Overflow++
			} else if a > 0x7F800000 { // NaN: quiet, keep the top payload
				h = 0x7E00 | (a>>13)&0x3FF
			}
		}
		binary.LittleEndian.PutUint16(dst, uint16(x>>16)&0x8000|uint16(h))
		src, dst = src[4:], dst[2:]
	}
	return st
}

// f32ToBF16Go is the portable kernel; it converts min(len(src)/4,
// len(dst)/2) elements.
func f32ToBF16Go(dst, src []byte) (st ConvStats) {
	for len(src) >= 4 && len(dst) >= 2 {
		x := binary.LittleEndian.Uint32(src)
		a := x & 0x7FFFFFFF
		// Round to nearest even at bit 16; a carry bumps the exponent,
		// up to Inf for the largest values.
		h := (x + 0x7FFF + (x>>16)&1) >> 16
		if a <= bf16UfHi {
			if a != 0 {
				st.Underflow++
			}
		} else if a >= bf16OvLo {
			if a <= bf16OvHi {
				st.Overflow++
			} else if a > 0x7F800000 { // NaN: keep the sign, set the quiet bit
				h = x>>16 | 0x0040
			}
		}
		binary.LittleEndian.PutUint16(dst, uint16(h))
		src, dst = src[4:], dst[2:]
	}
	return st
}

// bf16ToF16Go is the portable kernel; it converts min(len(src)/2,
// len(dst)/2) elements. It widens blocks to float32 on the stack (exactly)
// and narrows them with f32ToF16Go.
func bf16ToF16Go(dst, src []byte) (st ConvStats) {
	var buf [256 * 4]byte
	for len(src) >= 2 && len(dst) >= 2 {
		k := min(len(src)/2, len(dst)/2, 256)
		bf16ToF32Go(buf[:4*k], src[:2*k])
		st.Add(f32ToF16Go(dst[:2*k], buf[:4*k]))
		src, dst = src[2*k:], dst[2*k:]
	}
	return st
}

// f16ToF32Go is the portable kernel; it converts min(len(src)/2,
// len(dst)/4) elements.
func f16ToF32Go(dst, src []byte) {
	for len(src) >= 2 && len(dst) >= 4 {
		binary.LittleEndian.PutUint32(dst, f16ToF32Fast(binary.LittleEndian.Uint16(src)))
		src, dst = src[2:], dst[4:]
	}
}

// bf16ToF32Go is the portable kernel; it converts min(len(src)/2,
// len(dst)/4) elements.
func bf16ToF32Go(dst, src []byte) {
	for len(src) >= 2 && len(dst) >= 4 {
		binary.LittleEndian.PutUint32(dst, uint32(binary.LittleEndian.Uint16(src))<<16)
		src, dst = src[2:], dst[4:]
	}
}

// f16ToF32Fast is the per-element widening of the portable kernel. It gives
// the same bits as VCVTPH2PS for every input: NaNs get the quiet bit set.
func f16ToF32Fast(h uint16) uint32 {
	sign := uint32(h&0x8000) << 16
	a := uint32(h & 0x7FFF)
	switch {
	case a >= 0x7C00: // Inf or NaN
		if a > 0x7C00 {
			return sign | 0x7FC00000 | (a&0x3FF)<<13
		}
		return sign | 0x7F800000
	case a >= 0x0400: // normal: rebias the exponent
		return sign | (a<<13 + (127-15)<<23)
	default: // subnormal or zero: a·2⁻²⁴ is exact in float32
		return sign | math.Float32bits(float32(a)*(1.0/(1<<24)))
	}
}
