package tensors

import (
	"os"

	"modelpub/core/folder"
)

// File is an open safetensors file whose header has been validated. Tensor
// data is read on demand through TensorSource.
type File struct {
	Path   string
	Header *Header
	f      *os.File
}

// Open opens the safetensors file at path and validates its header. Only
// the header is read. A FIFO, device or socket is refused (folder.ErrNotRegular).
func Open(path string) (*File, error) { return open(path, false) }

// OpenData opens the safetensors file at path and validates its header as
// Open does, but keeps only what reading tensor data needs: Header.Tensors
// is nil, and the check keeps 16 bytes per tensor and its name, not a
// TensorInfo. It is for callers that already have the tensor list, from an
// earlier Open or ReadHeaderFile, and read tensors through TensorSource: a
// header of a million tensors is checked in a fraction of the memory a full
// read takes, and costs nothing after.
func OpenData(path string) (*File, error) { return open(path, true) }

// open opens path as Open does; check leaves the tensor list out (OpenData).
func open(path string, check bool) (*File, error) {
	f, err := folder.OpenRegular(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	h, err := readHeader(f, st.Size(), check)
	if err != nil {
		f.Close()
		return nil, withPath(err, path)
	}
	return &File{Path: path, Header: h, f: f}, nil
}

// ReadAt reads raw bytes of the file.
func (f *File) ReadAt(p []byte, off int64) (int, error) { return f.f.ReadAt(p, off) }

// Close closes the file.
func (f *File) Close() error { return f.f.Close() }
