package folder

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Options say what a [Root] lets through beyond its folder.
type Options struct {
	// AllowOutsideLinks follows symbolic links wherever they lead (the user
	// said they trust the folder). Special files are still refused.
	AllowOutsideLinks bool
}

// Root is an opened folder and the policy for reaching its files.
type Root struct {
	dir     string   // as given, absolute and clean
	allowed []string // real paths links may lead into: the folder's, and its Hugging Face cache repo's
	opts    Options
}

// New opens the policy for dir, a folder. Links inside it may lead
// anywhere under dir's real path, and, when dir is (inside) a snapshot of
// the Hugging Face cache, anywhere in that cache repository.
func New(dir string, opts Options) (*Root, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(real)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, &Error{Path: dir, Err: ErrNotRegular, Detail: "not a folder"}
	}
	r := &Root{dir: abs, allowed: []string{real}, opts: opts}
	for _, p := range []string{abs, real} {
		if repo := CacheRepo(p); repo != "" {
			if rr, err := filepath.EvalSymlinks(repo); err == nil {
				r.allowed = append(r.allowed, rr)
			}
		}
	}
	return r, nil
}

// Dir is the folder, absolute.
func (r *Root) Dir() string { return r.dir }

// AllowsOutsideLinks reports whether the caller opted in to links leading
// anywhere.
func (r *Root) AllowsOutsideLinks() bool { return r.opts.AllowOutsideLinks }

// CacheRepo returns the repository folder of the Hugging Face cache that
// path is inside a snapshot of (`…/models--org--name` for
// `…/models--org--name/snapshots/<rev>/…`), or "".
func CacheRepo(path string) string {
	parts := strings.Split(filepath.Clean(path), string(filepath.Separator))
	for i := len(parts) - 2; i >= 1; i-- {
		if parts[i] != "snapshots" {
			continue
		}
		repo := parts[i-1]
		for _, kind := range []string{"models--", "datasets--", "spaces--"} {
			if strings.HasPrefix(repo, kind) && len(repo) > len(kind) {
				return strings.Join(parts[:i], string(filepath.Separator))
			}
		}
	}
	return ""
}

// abs makes path absolute against the folder and refuses one that is not
// inside it lexically.
func (r *Root) abs(path string) (string, error) {
	if !filepath.IsAbs(path) {
		path = filepath.Join(r.dir, path)
	}
	path = filepath.Clean(path)
	if !within(r.dir, path) {
		return "", &Error{Path: path, Err: ErrOutside, Detail: "not inside " + r.dir}
	}
	return path, nil
}

// within reports whether path is dir or below it (both clean).
func within(dir, path string) bool {
	if path == dir {
		return true
	}
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// resolve checks every link on the way to path and returns path's real
// location.
func (r *Root) resolve(path string) (string, error) {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", err
	}
	if r.opts.AllowOutsideLinks {
		return real, nil
	}
	for _, a := range r.allowed {
		if within(a, real) {
			return real, nil
		}
	}
	return "", &Error{Path: r.linkOf(path), Target: real, Err: ErrOutsideLink}
}

// linkOf names the first link on the way from the folder to path, the one
// the user has to deal with.
func (r *Root) linkOf(path string) string {
	rel, err := filepath.Rel(r.dir, path)
	if err != nil {
		return path
	}
	p := r.dir
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		p = filepath.Join(p, part)
		if st, err := os.Lstat(p); err == nil && st.Mode()&fs.ModeSymlink != 0 {
			return p
		}
	}
	return path
}

// Stat returns what path (absolute, or relative to the folder) is after
// following links the policy allows. It refuses links leading outside; a
// special file is returned as it is (callers that read use [Root.Open]).
func (r *Root) Stat(path string) (fs.FileInfo, error) {
	p, err := r.abs(path)
	if err != nil {
		return nil, err
	}
	real, err := r.resolve(p)
	if err != nil {
		return nil, err
	}
	return os.Stat(real)
}

// Open opens a regular file of the folder for reading, following only the
// links the policy allows; special files are refused without being opened.
func (r *Root) Open(path string) (*os.File, error) {
	p, err := r.abs(path)
	if err != nil {
		return nil, err
	}
	want, err := r.Stat(p)
	if err != nil {
		return nil, err
	}
	if !want.Mode().IsRegular() {
		return nil, &Error{Path: p, Err: ErrNotRegular, Detail: kindOf(want.Mode())}
	}
	f, err := OpenRegular(p)
	if err != nil {
		return nil, err
	}
	// A link swapped between the check and the open would open another file.
	if got, err := f.Stat(); err != nil || !os.SameFile(want, got) {
		f.Close()
		if err == nil {
			err = &Error{Path: p, Err: ErrOutsideLink, Detail: "the file changed while it was opened"}
		}
		return nil, err
	}
	return f, nil
}

// ReadFile reads a small regular file of the folder whole (see the
// package's ReadFile for max).
func (r *Root) ReadFile(path string, max int64) ([]byte, error) {
	f, err := r.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readAll(f, f.Name(), max)
}

// Entry is one entry of a folder listing after the policy: links resolved.
type Entry struct {
	Name string
	Info fs.FileInfo // of the link's target for a link
	Link bool
}

// IsDir reports whether the entry is (or links to) a folder.
func (e Entry) IsDir() bool { return e.Info.IsDir() }

// ReadDir lists a folder of the root, sorted by name, following the links
// the policy allows; a link leading outside or a special file is an error
// naming it, so no caller can miss it.
func (r *Root) ReadDir(path string) ([]Entry, error) {
	p, err := r.abs(path)
	if err != nil {
		return nil, err
	}
	if _, err := r.resolve(p); err != nil {
		return nil, err
	}
	des, err := os.ReadDir(p)
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(des))
	for _, de := range des {
		e, err := r.entry(filepath.Join(p, de.Name()), de)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

func (r *Root) entry(path string, de fs.DirEntry) (Entry, error) {
	e := Entry{Name: de.Name(), Link: de.Type()&fs.ModeSymlink != 0}
	var err error
	if e.Link {
		e.Info, err = r.Stat(path)
		if errors.Is(err, fs.ErrNotExist) {
			target, _ := os.Readlink(path)
			return e, &Error{Path: path, Target: target, Err: ErrBrokenLink}
		}
	} else {
		e.Info, err = de.Info()
	}
	if err != nil {
		return e, err
	}
	if m := e.Info.Mode(); !m.IsRegular() && !m.IsDir() {
		return e, &Error{Path: path, Err: ErrNotRegular, Detail: kindOf(m)}
	}
	return e, nil
}

// Walk calls fn for every file and folder below the root (the root
// excluded), in lexical order, with paths relative to the root using '/'.
// Links are followed as the policy allows (a link to a folder is walked as
// a folder, once); a refused entry stops the walk with its error. Folders
// whose name starts with a dot are skipped (.git, .cache).
func (r *Root) Walk(ctx context.Context, fn func(rel string, e Entry) error) error {
	return r.walk(ctx, "", map[string]bool{}, fn)
}

func (r *Root) walk(ctx context.Context, rel string, seen map[string]bool, fn func(string, Entry) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dir := filepath.Join(r.dir, filepath.FromSlash(rel))
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		if seen[real] {
			return nil // a link cycle
		}
		seen[real] = true
	}
	entries, err := r.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		child := e.Name
		if rel != "" {
			child = rel + "/" + e.Name
		}
		if e.IsDir() && strings.HasPrefix(e.Name, ".") {
			continue
		}
		if err := fn(child, e); err != nil {
			if err == fs.SkipDir {
				continue
			}
			return err
		}
		if e.IsDir() {
			if err := r.walk(ctx, child, seen, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// Problems walks the whole folder and returns every entry the policy
// refuses (links leading outside, special files), so a caller can list
// them all at once (the app's "links outside the folder" dialog) instead
// of failing on the first.
func (r *Root) Problems(ctx context.Context) ([]*Error, error) {
	var out []*Error
	err := filepath.WalkDir(r.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if p == r.dir {
			return nil
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") {
			return fs.SkipDir
		}
		if _, err := r.entry(p, d); err != nil {
			var fe *Error
			if errors.As(err, &fe) {
				out = append(out, fe)
				return nil
			}
			return err
		}
		return nil
	})
	return out, err
}

// Sub is the policy for a folder inside the root: the same links allowed.
func (r *Root) Sub(path string) (*Root, error) {
	p, err := r.abs(path)
	if err != nil {
		return nil, err
	}
	st, err := r.Stat(p)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, &Error{Path: p, Err: ErrNotRegular, Detail: "not a folder"}
	}
	return &Root{dir: p, allowed: r.allowed, opts: r.opts}, nil
}
