package tensors

import "math/bits"

// Test-only code of convert.go: inRange, which only the tests use, and the
// reference conversions the kernels are checked against.

// inRange reports lo ≤ a ≤ hi with one unsigned compare.
func inRange(a, lo, hi uint32) bool { return a-lo <= hi-lo }

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
