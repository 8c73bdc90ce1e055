package tensors

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// pendingFile is a file being written under a temporary name in its final
// folder. It takes its final name only in commit, after sync has made its
// bytes durable, so a crash never leaves a partial file under that name.
type pendingFile struct {
	*os.File
	tmp, path string
}

func createPending(path string) (*pendingFile, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, err
	}
	return &pendingFile{File: f, tmp: f.Name(), path: path}, nil
}

// sync makes the file's bytes durable and closes it.
func (p *pendingFile) sync() error {
	if err := p.Chmod(0o644); err != nil {
		return err
	}
	if err := p.Sync(); err != nil {
		return err
	}
	return p.Close()
}

// commit renames the synced file to its final name.
func (p *pendingFile) commit() error { return os.Rename(p.tmp, p.path) }

// abort closes and removes the temporary file.
func (p *pendingFile) abort() {
	p.Close()
	os.Remove(p.tmp)
}

// writeAtomic creates path through a pendingFile: write fills it, then it
// is synced, renamed over path, and the folder synced so the rename
// survives a crash. If anything fails the temporary file is removed and
// path is left as it was.
func writeAtomic(path string, write func(f *os.File) error) error {
	p, err := createPending(path)
	if err != nil {
		return err
	}
	if err := write(p.File); err != nil {
		p.abort()
		return err
	}
	if err := p.sync(); err != nil {
		p.abort()
		return err
	}
	if err := p.commit(); err != nil {
		p.abort()
		return err
	}
	return syncDir(filepath.Dir(path))
}

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

// SyncTree makes every file and folder under root durable: a staged output
// folder before it is renamed into place (files written by WriteFile were
// synced already; syncing them again costs nothing).
func SyncTree(root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return syncDir(p)
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		err = f.Sync()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	})
}
