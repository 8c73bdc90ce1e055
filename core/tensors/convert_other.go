//go:build !amd64 || purego

package tensors

// Without the amd64 assembly every conversion runs the portable kernels.
const haveAsm = false

func f32ToF16Asm(dst, src []byte, n int) (int, ConvStats)  { return 0, ConvStats{} }
func f32ToBF16Asm(dst, src []byte, n int) (int, ConvStats) { return 0, ConvStats{} }
func bf16ToF16Asm(dst, src []byte, n int) (int, ConvStats) { return 0, ConvStats{} }
func f16ToF32Asm(dst, src []byte, n int) int               { return 0 }
func bf16ToF32Asm(dst, src []byte, n int) int              { return 0 }
