//go:build unix

package folder

import (
	"os"
	"syscall"
)

// openNoBlock opens path for reading without blocking on a FIFO that has no
// writer (the caller checks the type and refuses it).
func openNoBlock(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	return f, nil
}
