// Package folder is Modelpub's file policy: the one way the core reaches the
// files of a folder it was given (a model folder, a checkpoint's folder, a
// staged output). A downloaded model folder is untrusted input, so:
//
//   - only regular files and folders are read; FIFOs, devices and sockets are
//     refused without being opened for reading (nothing can hang on them);
//   - a symbolic link is followed only when its target stays inside the
//     opened folder, or inside the Hugging Face cache repository the folder
//     is a snapshot of (`…/models--org--name/snapshots/<rev>/x` →
//     `../../blobs/<sha>` is the cache's normal layout); anything else is
//     refused naming the link and its target, unless the caller opts in
//     ([Options.AllowOutsideLinks]);
//   - small files (JSON, configs, tokenizer files, cards) are read through
//     [ReadFile] with a size cap checked before reading.
//
// The package is a leaf: tensors, torchbin, pipeline, publish, card and hub
// all reach files through it.
package folder

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// MaxSmallFile caps the JSON, config, tokenizer and card files that are read
// whole into memory. The largest real ones (a tokenizer.json) are a few MB.
const MaxSmallFile = 64 << 20

// The kinds of refusal, for errors.Is.
var (
	// ErrOutsideLink: a symbolic link leads outside the folder.
	ErrOutsideLink = errors.New("symbolic link leads outside the folder")
	// ErrNotRegular: a FIFO, device, socket or other special file.
	ErrNotRegular = errors.New("not a regular file")
	// ErrTooLarge: a file read whole is above its cap.
	ErrTooLarge = errors.New("file too large")
	// ErrBrokenLink: a symbolic link whose target does not exist.
	ErrBrokenLink = errors.New("symbolic link to nothing")
	// ErrOutside: a path (not a link) that is not inside the folder.
	ErrOutside = errors.New("path outside the folder")
)

// Error is a refusal of the file policy. It names the file as the caller
// named it and, for a link, where it leads.
type Error struct {
	Path   string
	Target string // the link's resolved target, for ErrOutsideLink
	Err    error  // ErrOutsideLink, ErrNotRegular, ErrTooLarge or ErrOutside
	Detail string // "a FIFO", "70 MB, the limit is 64 MB", …
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(Printable(e.Path))
	b.WriteString(": ")
	switch {
	case errors.Is(e.Err, ErrOutsideLink):
		fmt.Fprintf(&b, "symbolic link to %s, outside the folder: refused (a downloaded model folder is untrusted; "+
			"copy the file into the folder, or allow links outside the folder if you trust it)", Printable(e.Target))
	case errors.Is(e.Err, ErrBrokenLink):
		fmt.Fprintf(&b, "symbolic link to %s, which does not exist", Printable(e.Target))
	default:
		b.WriteString(e.Err.Error())
		if e.Detail != "" {
			b.WriteString(": ")
			b.WriteString(e.Detail)
		}
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// kindOf names a special file's type for messages.
func kindOf(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO (named pipe)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m.IsDir():
		return "a folder"
	case m&fs.ModeIrregular != 0:
		return "an irregular file"
	}
	return "not a regular file (" + m.Type().String() + ")"
}

// OpenRegular opens path for reading if it is (or links to) a regular file.
// A FIFO, device or socket is refused without being opened for reading, so
// nothing blocks on it. It applies no folder confinement: callers holding a
// [Root] use [Root.Open].
func OpenRegular(path string) (*os.File, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, &Error{Path: path, Err: ErrNotRegular, Detail: kindOf(st.Mode())}
	}
	f, err := openNoBlock(path)
	if err != nil {
		return nil, err
	}
	// The file may have been swapped between the stat and the open.
	fst, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fst.Mode().IsRegular() {
		f.Close()
		return nil, &Error{Path: path, Err: ErrNotRegular, Detail: kindOf(fst.Mode())}
	}
	return f, nil
}

// ReadFile reads a regular file whole, refusing it before reading when it
// is larger than max bytes (max ≤ 0 means [MaxSmallFile]). It never reads
// more than max bytes, even from a file that grows.
func ReadFile(path string, max int64) ([]byte, error) {
	f, err := OpenRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readAll(f, path, max)
}

func readAll(f *os.File, path string, max int64) ([]byte, error) {
	if max <= 0 {
		max = MaxSmallFile
	}
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > max {
		return nil, tooLarge(path, st.Size(), max)
	}
	buf := make([]byte, 0, st.Size()+1)
	for {
		if int64(len(buf)) > max {
			return nil, tooLarge(path, int64(len(buf)), max)
		}
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := f.Read(buf[len(buf):min(cap(buf), int(max)+1)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

func tooLarge(path string, size, max int64) error {
	return &Error{Path: path, Err: ErrTooLarge, Detail: fmt.Sprintf("%s, more than the %s this file may have",
		formatBytes(size), formatBytes(max))}
}

// formatBytes is a short decimal size for messages (the package is a leaf,
// so it does not use tensors.FormatSize).
func formatBytes(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.1f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f KB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d bytes", n)
}
