package tensors

import "fmt"

// DType is a safetensors element type. The constants are declared in the
// order of the reference crate's Dtype enum (safetensors/src/tensor.rs), so
// comparing two DTypes compares their enum rank: the reference writer lays
// tensors out by descending rank.
type DType uint8

// The dtypes of the reference implementation, in enum order.
const (
	BOOL DType = iota
	F4
	F6_E2M3
	F6_E3M2
	U8
	I8
	F8_E5M2
	F8_E4M3
	F8_E8M0
	F8_E4M3FNUZ
	F8_E5M2FNUZ
	I16
	U16
	F16
	BF16
	I32
	U32
	F32
	C64
	F64
	I64
	U64

	numDTypes = iota
)

var dtypeNames = [numDTypes]string{
	BOOL: "BOOL", F4: "F4", F6_E2M3: "F6_E2M3", F6_E3M2: "F6_E3M2", U8: "U8", I8: "I8",
	F8_E5M2: "F8_E5M2", F8_E4M3: "F8_E4M3", F8_E8M0: "F8_E8M0", F8_E4M3FNUZ: "F8_E4M3FNUZ",
	F8_E5M2FNUZ: "F8_E5M2FNUZ", I16: "I16", U16: "U16", F16: "F16", BF16: "BF16", I32: "I32",
	U32: "U32", F32: "F32", C64: "C64", F64: "F64", I64: "I64", U64: "U64",
}

var dtypeBits = [numDTypes]uint64{
	BOOL: 8, F4: 4, F6_E2M3: 6, F6_E3M2: 6, U8: 8, I8: 8,
	F8_E5M2: 8, F8_E4M3: 8, F8_E8M0: 8, F8_E4M3FNUZ: 8, F8_E5M2FNUZ: 8,
	I16: 16, U16: 16, F16: 16, BF16: 16, I32: 32, U32: 32, F32: 32,
	C64: 64, F64: 64, I64: 64, U64: 64,
}

// String returns the name used in safetensors headers, such as "F32".
func (d DType) String() string {
	if int(d) < len(dtypeNames) {
		return dtypeNames[d]
	}
	return fmt.Sprintf("DType(%d)", uint8(d))
}

// Bits is the size of one element in bits (4 for F4, 6 for the F6 types).
func (d DType) Bits() uint64 {
	if int(d) < len(dtypeBits) {
		return dtypeBits[d]
	}
	return 0
}

// IsFloat reports whether d is a floating-point type whose values a
// precision variant (fp16, bf16) converts. Integer, bool and the packed
// sub-byte and 8-bit float types are copied unchanged by a variant.
func (d DType) IsFloat() bool {
	switch d {
	case F16, BF16, F32, F64:
		return true
	}
	return false
}
