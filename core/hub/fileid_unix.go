//go:build unix

package hub

import (
	"os"
	"syscall"
)

// fileID returns the device and inode of the file at path, from its
// FileInfo.
func fileID(_ string, fi os.FileInfo) (dev, ino uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), uint64(st.Ino)
	}
	return 0, 0
}
