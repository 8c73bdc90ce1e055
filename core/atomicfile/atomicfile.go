// Package atomicfile writes files so that they appear under their final
// name only when complete: the bytes go to a temporary file beside the
// target, which is synced, renamed over the target, and the folder synced
// where the OS has a way to. A reader (or a crash) finds either the old
// file or the whole new one, never a part; a failed or abandoned write
// leaves nothing behind.
//
// Small files go through WriteFile; a file written as a stream (a tensor
// file of gigabytes) through Create, writes into the File, then Commit or
// Abort.
//
// On Windows there is no folder sync: the rename is asked to be written
// through instead, and a target another process holds open is retried for
// a while before an error naming it (the old file is then kept).
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ErrIsDir is the answer when the target is a folder.
var ErrIsDir = errors.New("it is a folder")

// ErrInUse is the answer on Windows when another program kept the target
// open, so it could not be replaced, through every retry. The target is
// then left as it was.
var ErrInUse = errors.New("another program has the file open")

// tempInfix marks temporary files: ".<name>.tmp-<random>" in the target's
// folder, hidden on Unix and recognised by IsTemp.
const tempInfix = ".tmp-"

// IsTemp says whether name (a base name) is one of this package's
// temporary files, left behind only by a process that died mid-write.
func IsTemp(name string) bool {
	return strings.HasPrefix(name, ".") && strings.Contains(name, tempInfix)
}

// File is a file being written under a temporary name in its target's
// folder. Write into it through the embedded *os.File (which names the
// temporary file), then call Commit to give it its final name, or Abort to
// remove it. Abort after Commit does nothing, so a deferred Abort is the
// usual cleanup.
type File struct {
	*os.File             // the temporary file
	target   string      // the final name
	perm     fs.FileMode // the target's mode once committed
	closed   bool        // File.Close was called
	done     bool        // committed or aborted: nothing left to remove
}

// Create opens a new temporary file beside path for writing. Commit gives
// it mode perm (exactly: the umask does not apply) and renames it over
// path. An existing path is a file and stays as it is until Commit.
func Create(path string, perm fs.FileMode) (*File, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return nil, &fs.PathError{Op: "write", Path: path, Err: ErrIsDir}
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+tempInfix+"*")
	if err != nil {
		return nil, &fs.PathError{Op: "create", Path: path, Err: bare(err)}
	}
	return &File{File: f, target: path, perm: perm}, nil
}

// Target is the name the file takes at Commit.
func (f *File) Target() string { return f.target }

// Commit makes the file's bytes durable (mode, fsync, close), renames it
// over the target and syncs the target's folder. If any step fails the
// temporary file is removed, the target is left as it was, and the error
// (an *fs.PathError) names the target.
func (f *File) Commit() error {
	if f.done {
		return &fs.PathError{Op: "commit", Path: f.target, Err: fs.ErrClosed}
	}
	if err := f.finish(); err != nil {
		f.Abort()
		return &fs.PathError{Op: "write", Path: f.target, Err: bare(err)}
	}
	if err := replace(f.Name(), f.target); err != nil {
		f.Abort()
		return &fs.PathError{Op: "replace", Path: f.target, Err: err}
	}
	f.done = true
	if err := SyncDir(filepath.Dir(f.target)); err != nil {
		return &fs.PathError{Op: "sync folder of", Path: f.target, Err: bare(err)}
	}
	return nil
}

// finish gives the file its mode, syncs and closes it.
func (f *File) finish() error {
	if f.closed {
		return fs.ErrClosed
	}
	if err := f.Chmod(f.perm); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	f.closed = true
	return f.File.Close()
}

// Close closes the temporary file without committing it; Commit then
// fails. It exists so that a File passed as an io.Closer cannot leak the
// descriptor; use Abort to give up on a write.
func (f *File) Close() error {
	if f.closed {
		return nil
	}
	f.closed = true
	return f.File.Close()
}

// Abort closes and removes the temporary file, leaving the target as it
// was. It does nothing after Commit or another Abort.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	if !f.closed {
		f.closed = true
		f.File.Close()
	}
	os.Remove(f.Name())
}

// Write creates path through a File: write fills it, then it is committed.
// When write fails, its error is returned as it is (the caller names what
// it was writing) and nothing is left behind; the errors of the other
// steps are *fs.PathErrors naming path.
func Write(path string, perm fs.FileMode, write func(f *os.File) error) error {
	f, err := Create(path, perm)
	if err != nil {
		return err
	}
	defer f.Abort()
	if err := write(f.File); err != nil {
		return err
	}
	return f.Commit()
}

// WriteFile writes data to path atomically with mode perm (exactly: the
// umask does not apply). Every error is an *fs.PathError naming path.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	return Write(path, perm, func(f *os.File) error {
		if _, err := f.Write(data); err != nil {
			return &fs.PathError{Op: "write", Path: path, Err: bare(err)}
		}
		return nil
	})
}

// Rename renames the complete, closed file tmp over target as Commit does,
// without its syncs, for a writer that syncs on its own or need not (the
// Hub emulator's store): rename(2) where the OS has it; on Windows
// MoveFileEx, retried while target is open in another program, then an
// error that is ErrInUse, target kept. tmp is left where it was on error.
func Rename(tmp, target string) error {
	if err := replace(tmp, target); err != nil {
		return &os.LinkError{Op: "rename", Old: tmp, New: target, Err: err}
	}
	return nil
}

// SyncDir makes the entries of folder dir (a file created or renamed in
// it) durable. It does nothing where the OS cannot sync a folder (Windows)
// or the file system says it cannot (EINVAL).
func SyncDir(dir string) error { return syncDir(dir) }

// SyncTree makes every file and folder under root durable: a staged
// folder before it is renamed into place. Files committed by this package
// were synced already; syncing them again costs nothing.
func SyncTree(root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return syncDir(p)
		}
		return syncFile(p)
	})
}

// bare drops the path of an *fs.PathError or *os.LinkError (the temporary
// file's name, which means nothing to the user) so the error can be
// wrapped again under the target's name.
func bare(err error) error {
	switch e := err.(type) {
	case *fs.PathError:
		return e.Err
	case *os.LinkError:
		return e.Err
	}
	return err
}

// inUseError is replace's answer on Windows when another program kept the
// target open through every retry: it is ErrInUse and the OS's error.
type inUseError struct {
	err   error         // the last answer of the rename
	tries int           // how many renames were tried
	wait  time.Duration // how long they took
}

func (e *inUseError) Error() string {
	return fmt.Sprintf("%v (%v; tried %d times over %v): close it and try again", ErrInUse, e.err, e.tries, e.wait.Round(time.Millisecond))
}

func (e *inUseError) Unwrap() []error { return []error{ErrInUse, e.err} }
