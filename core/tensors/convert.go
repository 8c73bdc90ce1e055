package tensors

import (
	"encoding/binary"
	"math"
	"math/bits"
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

// inRange reports lo ≤ a ≤ hi with one unsigned compare.
func inRange(a, lo, hi uint32) bool { return a-lo <= hi-lo }

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

// The reference functions below are deliberately plain, written from the
// definitions rather than for speed, and independent of the kernels' bit
// tricks: f32ToF16Bits decodes the value, rounds its exact integer
// significand with an explicit round-half-to-even step and re-encodes;
// f32ToBF16Bits picks the nearer of the two neighbouring bfloat16s. They
// are the oracle of the exhaustive tests, which check them in turn against
// values recorded from numpy (testdata/convert_spot.json).

// f32ToF16Bits converts float32 bits to IEEE half bits: 5 exponent bits
// (bias 15), 10 stored mantissa bits, subnormal step 2⁻²⁴.
func f32ToF16Bits(x uint32) uint16 {
	const mantBits, bias, qMin = 10, 15, -24
	sign := uint16(x>>16) & 0x8000
	exp, mant := int(x>>23)&0xFF, x&0x7FFFFF
	if exp == 0xFF {
		if mant == 0 {
			return sign | 0x7C00 // ±Inf
		}
		// NaN: keep the top payload bits, set the quiet bit.
		return sign | 0x7C00 | 0x0200 | uint16(mant>>13)
	}
	sig, e := f32Sig(exp, mant)
	if sig == 0 {
		return sign // ±0
	}
	// q is the exponent of the last mantissa place at this magnitude:
	// mantBits below the leading bit, but not below the subnormal step.
	q := max(e+bits.Len32(sig)-1-mantBits, qMin)
	m := shiftRoundEven(sig, uint(q-e)) // the value is now m·2^q
	if m == 1<<(mantBits+1) {           // rounding carried into the next binade
		m >>= 1
		q++
	}
	if m < 1<<mantBits { // subnormal or zero (q == qMin)
		return sign | uint16(m)
	}
	field := q + mantBits + bias // biased exponent of m·2^q
	if field >= 0x1F {
		return sign | 0x7C00 // overflow
	}
	return sign | uint16(field)<<mantBits | uint16(m)&(1<<mantBits-1)
}

// f32ToBF16Bits converts float32 bits to bfloat16 bits. A bfloat16 is the
// upper half of a float32, so the two candidates for |x| are lo, |x| with
// the low 16 bits cleared (the bfloat16 at or below it), and hi, the next
// bfloat16 up (lo + 0x10000 in float32 bits, since consecutive magnitudes
// have consecutive encodings; Inf past the largest finite value). |x| and lo
// share the exponent field, so |x|-lo is a-lo float32 steps, and hi-lo is
// 0x10000 of them, also where hi starts the next binade.
func f32ToBF16Bits(x uint32) uint16 {
	sign := uint16(x>>16) & 0x8000
	a := x & 0x7FFFFFFF
	if a > 0x7F800000 {
		// NaN: keep the top payload bits, set the quiet bit.
		return sign | 0x7F80 | 0x0040 | uint16(a>>16)&0x7F
	}
	lo := a &^ 0xFFFF
	hi := lo + 0x10000
	var r uint32
	switch d := a - lo; {
	case d < 0x8000:
		r = lo
	case d > 0x8000:
		r = hi
	case lo&0x10000 == 0: // a tie: take the even one
		r = lo
	default:
		r = hi
	}
	return sign | uint16(r>>16)
}

// bf16ToF16Bits converts bfloat16 bits to IEEE half bits with one rounding.
func bf16ToF16Bits(b uint16) uint16 { return f32ToF16Bits(bf16ToF32Bits(b)) }

// bf16ToF32Bits widens bfloat16 bits to float32 bits: bfloat16 is the top
// half of a float32.
func bf16ToF32Bits(b uint16) uint32 { return uint32(b) << 16 }

// f32Sig returns sig and e with |value| = sig·2^e (sig < 2²⁴) for the
// exponent field exp < 0xFF and mantissa field mant of a float32.
func f32Sig(exp int, mant uint32) (sig uint32, e int) {
	if exp == 0 { // zero or subnormal: no implicit leading bit
		return mant, -149
	}
	return mant | 1<<23, exp - 150
}

// shiftRoundEven returns sig / 2^shift rounded to nearest, ties to even,
// for sig < 2³¹ and shift ≥ 1.
func shiftRoundEven(sig uint32, shift uint) uint32 {
	if shift >= 32 {
		return 0 // sig is below half of 2^shift
	}
	m := sig >> shift
	rem, half := sig&(1<<shift-1), uint32(1)<<(shift-1)
	if rem > half || (rem == half && m&1 == 1) {
		m++
	}
	return m
}

// f16ToF32Bits widens IEEE half bits to float32 bits. NaNs keep the sign
// and payload and get the quiet bit set, as VCVTPH2PS does.
func f16ToF32Bits(h uint16) uint32 {
	sign := uint32(h>>15) << 31
	field := int(h>>10) & 0x1F
	frac := uint32(h & 0x3FF)
	switch {
	case field == 0x1F && frac == 0:
		return sign | 0x7F800000
	case field == 0x1F:
		return sign | 0x7F800000 | 1<<22 | frac<<13
	case field == 0 && frac == 0:
		return sign
	case field == 0:
		// Subnormal frac·2⁻²⁴: normalize so the leading bit is implicit.
		e := -24
		for frac < 0x400 {
			frac <<= 1
			e--
		}
		// Now the value is frac·2^e with 0x400 ≤ frac < 0x800,
		// i.e. 1.xxx·2^(e+10).
		return sign | uint32(e+10+127)<<23 | (frac&0x3FF)<<13
	default:
		return sign | uint32(field-15+127)<<23 | frac<<13
	}
}
