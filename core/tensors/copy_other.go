//go:build !linux

package tensors

import (
	"context"
	"os"
)

// copyFileRange streams n bytes of src at off to dst's current position
// through a pooled buffer, where the OS has no copy_file_range (Windows,
// macOS).
func copyFileRange(ctx context.Context, dst, src *os.File, off, n int64) (int64, error) {
	return streamRange(ctx, dst, src, off, n)
}

func startWriteback(f *os.File, off, n int64) {}
