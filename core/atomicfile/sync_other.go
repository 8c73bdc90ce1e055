//go:build !windows

package atomicfile

import (
	"errors"
	"os"
	"syscall"
)

// syncDir flushes a folder's entries to disk. File systems that cannot
// sync a folder answer EINVAL; that is no reason to fail a write.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}

// syncFile flushes a file's bytes to disk; read access is enough to fsync.
func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// replace renames tmp over target: rename(2) replaces atomically, even
// while the target is open.
func replace(tmp, target string) error {
	if err := os.Rename(tmp, target); err != nil {
		return bare(err)
	}
	return nil
}
