//go:build !amd64 || purego

package tensors

// Without the amd64 assembly every conversion runs the portable kernels.
const haveAsm = false

var asmF32ToF16, asmF32ToBF16, asmBF16ToF16, asmF16ToF32, asmBF16ToF32 asmKernel

func runAsm(k asmKernel, dst, src []byte, n, in, out int) (int, ConvStats) { return 0, ConvStats{} }
