package pipeline

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// The source is never at risk: a save destination is compared with the
// source on real paths (symbolic links and ".." resolved) and, for bind
// mounts and other aliases, by device and inode of every ancestor.

// realPath resolves path's links; a path that does not exist yet is
// resolved as far as it exists and the rest appended. It returns the real
// path and its deepest existing ancestor (itself when it exists).
func realPath(path string) (real, existing string, err error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", "", err
	}
	rest := ""
	for p := abs; ; {
		r, err := filepath.EvalSymlinks(p)
		if err == nil {
			return filepath.Join(r, rest), r, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", "", err
		}
		parent := filepath.Dir(p)
		if parent == p {
			return abs, "", nil
		}
		rest = filepath.Join(filepath.Base(p), rest)
		p = parent
	}
}

// isWithin reports whether path is dir or below it (both clean, absolute).
func isWithin(dir, path string) bool {
	if path == dir {
		return true
	}
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// ancestorIs reports whether folder dir or one of its ancestors is the same
// folder (device and inode) as target.
func ancestorIs(dir string, target fs.FileInfo) bool {
	for p := dir; ; {
		if st, err := os.Stat(p); err == nil && os.SameFile(st, target) {
			return true
		}
		parent := filepath.Dir(p)
		if parent == p {
			return false
		}
		p = parent
	}
}

// contains reports whether folder b (which may not exist yet) is folder a
// or inside it.
func contains(a, b string) (bool, error) {
	ra, ea, err := realPath(a)
	if err != nil {
		return false, err
	}
	rb, eb, err := realPath(b)
	if err != nil {
		return false, err
	}
	if isWithin(ra, rb) {
		return true, nil
	}
	// Bind mounts: the same folder under two real paths.
	if ea != ra || eb == "" {
		return false, nil
	}
	sa, err := os.Stat(ea)
	return err == nil && ancestorIs(eb, sa), nil
}

// overlaps reports whether folders a and b are the same folder or one holds
// the other.
func overlaps(a, b string) (bool, error) {
	if in, err := contains(a, b); in || err != nil {
		return in, err
	}
	return contains(b, a)
}

// checkOutsideSource refuses a destination that is, holds or is inside the
// source.
func checkOutsideSource(src, dst string) error {
	bad, err := overlaps(src, dst)
	if err != nil {
		return fmt.Errorf("%s: %w", dst, err)
	}
	if bad {
		return fmt.Errorf("%s: %w, %s: choose a folder outside the source (it is only ever read)", dst, ErrInsideSource, src)
	}
	return nil
}

// checkReplaceable refuses to replace dir when something in it is the
// source or one of its ancestors (a bind mount of the source inside it):
// removing dir would then remove the source's files.
func checkReplaceable(dir, src string) error {
	var ancestors []fs.FileInfo
	if real, _, err := realPath(src); err == nil {
		for p := real; ; {
			if st, err := os.Stat(p); err == nil {
				ancestors = append(ancestors, st)
			}
			parent := filepath.Dir(p)
			if parent == p {
				break
			}
			p = parent
		}
	}
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		st, err := d.Info()
		if err != nil {
			return err
		}
		for _, a := range ancestors {
			if os.SameFile(st, a) {
				return fmt.Errorf("%s: %w: %s reaches the source %s (a mount?); nothing was replaced", dir, ErrInsideSource, p, src)
			}
		}
		return nil
	})
}

// removeReplaced removes a replaced destination, checked again right
// before: a folder that reaches the source is left in place.
func removeReplaced(old, src string) error {
	if err := checkReplaceable(old, src); err != nil {
		return err
	}
	return os.RemoveAll(old)
}
