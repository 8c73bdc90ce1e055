//go:build !linux

package tensors

import (
	"context"
	"fmt"
	"io"
	"os"
)

// copyFileRange copies n bytes of src at off to dst's current position by
// reading and writing through a pooled buffer, where the OS has no
// copy_file_range (Windows, macOS). Like the kernel copy it writes every
// byte the source has before saying it ended, so dst's position tells
// which tensor was cut.
func copyFileRange(ctx context.Context, dst, src *os.File, off, n int64) (int64, error) {
	bp := chunkPool.Get().(*[]byte)
	defer chunkPool.Put(bp)
	buf := *bp
	var done int64
	for done < n {
		if err := ctx.Err(); err != nil {
			return done, err
		}
		roff := off + done
		k := min(int64(len(buf)), n-done)
		m, rerr := src.ReadAt(buf[:k], roff)
		if m > 0 {
			if _, err := dst.Write(buf[:m]); err != nil {
				return done, err
			}
			done += int64(m)
		}
		if int64(m) < k {
			if rerr == nil || rerr == io.EOF {
				rerr = ErrShortSource
			}
			return done, fmt.Errorf("copying %d bytes at offset %d: %w", n-done, off+done, rerr)
		}
	}
	return done, nil
}

func startWriteback(f *os.File, off, n int64) {}
