package tensors

import (
	"fmt"
	"io/fs"
	"os"

	"modelpub/core/atomicfile"
)

// pendingFile is a file being written under a temporary name in its final
// folder (an atomicfile.File). It takes its final name only in commit,
// after its bytes are durable, so a crash never leaves a partial file under
// that name.
type pendingFile struct {
	*os.File // the temporary file
	af       *atomicfile.File
	path     string // the final name
}

func createPending(path string) (*pendingFile, error) {
	af, err := atomicfile.Create(path, 0o644)
	if err != nil {
		return nil, unname(err, path)
	}
	return &pendingFile{File: af.File, af: af, path: path}, nil
}

// sync makes the file's bytes durable. The files of a set are all synced
// before any is committed, so none appears unless all are complete.
func (p *pendingFile) sync() error { return p.File.Sync() }

// commit gives the synced file its final name, durably.
func (p *pendingFile) commit() error { return unname(p.af.Commit(), p.path) }

// abort removes the temporary file; after commit it does nothing.
func (p *pendingFile) abort() { p.af.Abort() }

// writeAtomic creates path through atomicfile: write fills it, then it is
// synced, renamed over path, and the folder synced so the rename survives
// a crash. If anything fails the temporary file is removed and path is
// left as it was. Errors do not name path: the caller's PathError does.
func writeAtomic(path string, write func(f *os.File) error) error {
	return unname(atomicfile.Write(path, 0o644, write), path)
}

// unname drops path from an *fs.PathError about it, keeping what failed,
// so that the PathError the caller wraps it in names the file once.
func unname(err error, path string) error {
	if pe, ok := err.(*fs.PathError); ok && pe.Path == path {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return err
}

// syncDir flushes a folder's entries to disk, where the OS can.
func syncDir(dir string) error { return atomicfile.SyncDir(dir) }

// SyncTree makes every file and folder under root durable: a staged output
// folder before it is renamed into place (files written by WriteFile were
// synced already; syncing them again costs nothing).
func SyncTree(root string) error { return atomicfile.SyncTree(root) }
