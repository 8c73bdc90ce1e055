//go:build !purego

#include "textflag.h"

// AVX2 + F16C conversion kernels. Each loop iteration handles 16 elements;
// n is a positive multiple of 16 (and at most 1<<16, so the 32-bit per-lane
// counters cannot overflow). Loads and stores are unaligned.
//
// Overflow/underflow are counted from the float32 input bits: with
// a = bits & 0x7FFFFFFF, "lo <= a <= hi" is evaluated with one signed
// compare as  (0x80000000 + hi-lo+1) > (a + 0x80000000-lo)  (int32), since
// the addition maps [lo, 0x7FFFFFFF] to the bottom of the negative range and
// everything below lo to non-negative values. Each matching lane's mask
// (-1) is subtracted from a per-lane counter.
//
// Register use in the narrowing kernels:
//	Y15 0x7FFFFFFF (abs mask)
//	Y14, Y13 overflow bias and limit
//	Y12, Y11 underflow bias and limit
//	Y10, Y9  overflow and underflow lane counters

// f16 thresholds: overflow a in [0x477FF000, 0x7F7FFFFF],
// underflow a in [1, 0x33000000].
DATA f16k<>+0x00(SB)/4, $0x7fffffff // abs mask
DATA f16k<>+0x04(SB)/4, $0x38801000 // overflow bias
DATA f16k<>+0x08(SB)/4, $0xb8001000 // overflow limit
DATA f16k<>+0x0c(SB)/4, $0x7fffffff // underflow bias
DATA f16k<>+0x10(SB)/4, $0xb3000000 // underflow limit
GLOBL f16k<>(SB), RODATA|NOPTR, $20

// bf16 thresholds: overflow a in [0x7F7F8000, 0x7F7FFFFF],
// underflow a in [1, 0x8000]; then the rounding constants.
DATA bf16k<>+0x00(SB)/4, $0x7fffffff // abs mask
DATA bf16k<>+0x04(SB)/4, $0x00808000 // overflow bias
DATA bf16k<>+0x08(SB)/4, $0x80008000 // overflow limit
DATA bf16k<>+0x0c(SB)/4, $0x7fffffff // underflow bias
DATA bf16k<>+0x10(SB)/4, $0x80008000 // underflow limit
DATA bf16k<>+0x14(SB)/4, $0x00000001 // rounding: lsb mask
DATA bf16k<>+0x18(SB)/4, $0x00007fff // rounding: half minus one
DATA bf16k<>+0x1c(SB)/4, $0x00000040 // NaN: bfloat16 quiet bit
DATA bf16k<>+0x20(SB)/4, $0x7f800000 // NaN iff a > this
GLOBL bf16k<>(SB), RODATA|NOPTR, $36

// LOADK broadcasts the five threshold constants at k and clears the counters.
#define LOADK(k) \
	VPBROADCASTD k+0x00(SB), Y15; \
	VPBROADCASTD k+0x04(SB), Y14; \
	VPBROADCASTD k+0x08(SB), Y13; \
	VPBROADCASTD k+0x0c(SB), Y12; \
	VPBROADCASTD k+0x10(SB), Y11; \
	VPXOR        Y10, Y10, Y10; \
	VPXOR        Y9, Y9, Y9

// STATS counts the overflow and underflow lanes of the float32s in x,
// clobbering t1 and t2.
#define STATS(x, t1, t2) \
	VPAND    x, Y15, t1; \
	VPADDD   t1, Y14, t2; \
	VPCMPGTD t2, Y13, t2; \
	VPSUBD   t2, Y10, Y10; \
	VPADDD   t1, Y12, t1; \
	VPCMPGTD t1, Y11, t1; \
	VPSUBD   t1, Y9, Y9

// SUM sets r to the sum of the eight 32-bit lanes of acc (whose lower
// half is xacc), clobbering X0 and X1.
#define SUM(acc, xacc, r) \
	VEXTRACTI128 $1, acc, X0; \
	VPADDD       X0, xacc, X0; \
	VPSHUFD      $0x4e, X0, X1; \
	VPADDD       X1, X0, X0; \
	VPSHUFD      $0xb1, X0, X1; \
	VPADDD       X1, X0, X0; \
	VMOVD        X0, r

// func f32ToF16AVX2(dst, src *byte, n int) (overflow, underflow int64)
TEXT ·f32ToF16AVX2(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	LOADK(f16k<>)

f32f16loop:
	VMOVDQU   (SI), Y0
	VMOVDQU   32(SI), Y1
	VCVTPS2PH $0, Y0, (DI)   // imm 0: round to nearest even
	VCVTPS2PH $0, Y1, 16(DI)
	STATS(Y0, Y2, Y3)
	STATS(Y1, Y4, Y5)
	ADDQ      $64, SI
	ADDQ      $32, DI
	SUBQ      $16, CX
	JNZ       f32f16loop

	SUM(Y10, X10, AX)
	SUM(Y9, X9, BX)
	MOVQ AX, overflow+24(FP)
	MOVQ BX, underflow+32(FP)
	VZEROUPPER
	RET

// func bf16ToF16AVX2(dst, src *byte, n int) (overflow, underflow int64)
TEXT ·bf16ToF16AVX2(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	LOADK(f16k<>)

bf16f16loop:
	VPMOVZXWD (SI), Y0       // widen bfloat16 to float32: bits<<16
	VPMOVZXWD 16(SI), Y1
	VPSLLD    $16, Y0, Y0
	VPSLLD    $16, Y1, Y1
	VCVTPS2PH $0, Y0, (DI)
	VCVTPS2PH $0, Y1, 16(DI)
	STATS(Y0, Y2, Y3)
	STATS(Y1, Y4, Y5)
	ADDQ      $32, SI
	ADDQ      $32, DI
	SUBQ      $16, CX
	JNZ       bf16f16loop

	SUM(Y10, X10, AX)
	SUM(Y9, X9, BX)
	MOVQ AX, overflow+24(FP)
	MOVQ BX, underflow+32(FP)
	VZEROUPPER
	RET

// ROUNDBF16 replaces the eight float32s in x with their bfloat16 bits
// (zero-extended to 32 bits), clobbering t1, t2 and t3:
// NaN ? x>>16 | 0x40 : (x + 0x7FFF + (x>>16 & 1)) >> 16.
#define ROUNDBF16(x, t1, t2, t3) \
	VPSRLD    $16, x, t1; \
	VPAND     t1, Y8, t2; \
	VPADDD    x, Y7, t3; \
	VPADDD    t3, t2, t3; \
	VPSRLD    $16, t3, t3; \
	VPOR      t1, Y6, t1; \
	VPAND     x, Y15, t2; \
	VPCMPGTD  Y5, t2, t2; \
	VPBLENDVB t2, t1, t3, x

// func f32ToBF16AVX2(dst, src *byte, n int) (overflow, underflow int64)
TEXT ·f32ToBF16AVX2(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	LOADK(bf16k<>)
	VPBROADCASTD bf16k<>+0x14(SB), Y8
	VPBROADCASTD bf16k<>+0x18(SB), Y7
	VPBROADCASTD bf16k<>+0x1c(SB), Y6
	VPBROADCASTD bf16k<>+0x20(SB), Y5

f32bf16loop:
	VMOVDQU (SI), Y0
	VMOVDQU 32(SI), Y1
	STATS(Y0, Y2, Y3)
	STATS(Y1, Y2, Y3)
	ROUNDBF16(Y0, Y2, Y3, Y4)
	ROUNDBF16(Y1, Y2, Y3, Y4)
	VPACKUSDW Y1, Y0, Y0     // lanes: Y0[0:4] Y1[0:4] Y0[4:8] Y1[4:8]
	VPERMQ    $0xd8, Y0, Y0  // restore element order
	VMOVDQU   Y0, (DI)
	ADDQ      $64, SI
	ADDQ      $32, DI
	SUBQ      $16, CX
	JNZ       f32bf16loop

	SUM(Y10, X10, AX)
	SUM(Y9, X9, BX)
	MOVQ AX, overflow+24(FP)
	MOVQ BX, underflow+32(FP)
	VZEROUPPER
	RET

// func f16ToF32AVX2(dst, src *byte, n int)
TEXT ·f16ToF32AVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX

f16f32loop:
	VCVTPH2PS (SI), Y0
	VCVTPH2PS 16(SI), Y1
	VMOVDQU   Y0, (DI)
	VMOVDQU   Y1, 32(DI)
	ADDQ      $32, SI
	ADDQ      $64, DI
	SUBQ      $16, CX
	JNZ       f16f32loop
	VZEROUPPER
	RET

// func bf16ToF32AVX2(dst, src *byte, n int)
TEXT ·bf16ToF32AVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX

bf16f32loop:
	VPMOVZXWD (SI), Y0
	VPMOVZXWD 16(SI), Y1
	VPSLLD    $16, Y0, Y0
	VPSLLD    $16, Y1, Y1
	VMOVDQU   Y0, (DI)
	VMOVDQU   Y1, 32(DI)
	ADDQ      $32, SI
	ADDQ      $64, DI
	SUBQ      $16, CX
	JNZ       bf16f32loop
	VZEROUPPER
	RET
