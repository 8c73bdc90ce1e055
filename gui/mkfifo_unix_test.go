//go:build unix

package gui

import (
	"os"
	"syscall"
)

func mkfifo(path string) error {
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return err
	}
	return syscall.Mkfifo(path, 0o644)
}
