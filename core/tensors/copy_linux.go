package tensors

import (
	"context"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// copyChunk bounds one copy_file_range call so cancellation stays prompt.
const copyChunk = 64 << 20

// copyFileRange copies n bytes of src at off to dst's current position with
// copy_file_range(2), which lets the kernel (or the file system, by sharing
// extents) move the data without it passing through this process. It returns
// errNoCopyFileRange, with the bytes done so far, when the kernel or file
// system cannot do it, so the caller falls back to reading and writing.
func copyFileRange(ctx context.Context, dst, src *os.File, off, n int64) (int64, error) {
	var done int64
	for done < n {
		if err := ctx.Err(); err != nil {
			return done, err
		}
		roff := off + done
		k, err := unix.CopyFileRange(int(src.Fd()), &roff, int(dst.Fd()), nil, int(min(n-done, copyChunk)), 0)
		if err != nil {
			if done == 0 && (errors.Is(err, unix.EXDEV) || errors.Is(err, unix.ENOSYS) ||
				errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EPERM)) {
				return 0, errNoCopyFileRange
			}
			return done, fmt.Errorf("copying %d bytes at offset %d: %w", n-done, roff, err)
		}
		if k == 0 {
			return done, fmt.Errorf("copying %d bytes at offset %d: %w", n-done, roff, ErrShortSource)
		}
		done += int64(k)
	}
	return done, nil
}

// startWriteback asks the kernel to begin writing n bytes of f at off to
// disk without waiting for it, so the fsync that makes the file durable
// finds little left to do: disk writes overlap the rest of the copy.
func startWriteback(f *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}
