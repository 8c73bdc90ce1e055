//go:build unix

package convert

import "golang.org/x/sys/unix"

// freeSpace reports the bytes an unprivileged writer may still use on the
// file system holding dir; a variable so tests can shrink the disk.
var freeSpace = func(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}
