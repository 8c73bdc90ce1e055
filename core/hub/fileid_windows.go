package hub

import (
	"os"
	"syscall"
)

// fileID returns the volume serial number and the file index of the file
// at path, Windows' device and inode, read from an open handle (os.Stat's
// FileInfo does not carry them). 0, 0 when the file cannot be opened; size
// and mtime identify it then.
func fileID(path string, _ os.FileInfo) (dev, ino uint64) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	var d syscall.ByHandleFileInformation
	if err := syscall.GetFileInformationByHandle(syscall.Handle(f.Fd()), &d); err != nil {
		return 0, 0
	}
	return uint64(d.VolumeSerialNumber), uint64(d.FileIndexHigh)<<32 | uint64(d.FileIndexLow)
}
