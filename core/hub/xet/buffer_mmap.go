//go:build linux || darwin

package xet

import "syscall"

// newXorbBuffer maps size bytes of anonymous memory for a xorb: outside
// the Go heap, the xorb buffers do not count in the garbage collector's
// pacing, so the small garbage of an upload is collected long before the
// heap doubles past them (a 4 GiB upload stays ~30 MB lower at its peak).
// ok is false when the mapping failed; the caller then uses the heap.
func newXorbBuffer(size int) (b []byte, ok bool) {
	b, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return nil, false
	}
	return b[:0], true
}

// freeXorbBuffer unmaps a buffer newXorbBuffer mapped; nothing may use it
// afterwards.
func freeXorbBuffer(b []byte) { _ = syscall.Munmap(b[:cap(b)]) }
