package hub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// UploadOptions configures UploadFolder. The zero value commits to main
// with the defaults below.
type UploadOptions struct {
	Revision          string         // branch to commit to (or to open the PR against); "" → "main"
	CreatePR          bool           // open a pull request instead of committing to Revision
	CommitMessage     string         // "" → "Upload folder using modelpub"
	CommitDescription string         //
	Concurrency       int            // LFS objects uploaded at once; 0 → 4
	PartConcurrency   int            // part and basic PUTs in flight across all objects; 0 → 8
	HashConcurrency   int            // files hashed at once; 0 → GOMAXPROCS
	Progress          func(Progress) // reports (serialized, throttled); nil → none
	ProgressInterval  time.Duration  // throttle; 0 → 100ms
	HashCache         *HashCache     // nil → the cache at DefaultHashCachePath (none if that fails)
}

// localFile is one file of the folder, with what the phases learn about it.
type localFile struct {
	abs    string   // path on disk
	path   string   // path in the repo
	st     fileStat // identity at scan time
	mode   string   // "lfs" or "regular", from preupload
	ignore bool     // preupload's shouldIgnore
	remote string   // preupload oid ("" when the path is new)
	hashes fileHashes
}

// UploadFolder uploads every file under dir to the root of the repository
// as one commit, the way huggingface_hub's upload_folder does (§10):
// preupload, hash, LFS batch, upload, commit.
//
//   - Folders named .git or .cache are skipped (the Hub refuses them);
//     symlinks to regular files are followed, other special files skipped.
//   - Files whose preupload oid equals the local one are not committed; LFS
//     objects the Hub already has are not sent. When nothing changed, no
//     commit is made and the head is returned with NoChanges set.
//   - Hashes are computed once per file content, in parallel, and cached.
//   - Every request is retried on its own (a part re-sends only that part);
//     the commit is re-sent only after checking the branch head (Commit).
//
// It returns only after every goroutine it started has finished.
func (c *Client) UploadFolder(ctx context.Context, id RepoID, dir string, opts UploadOptions) (*CommitInfo, error) {
	if err := id.Validate(); err != nil {
		return nil, err
	}
	rev := opts.Revision
	if rev == "" {
		rev = "main"
	}
	rep := newReporter(opts.Progress, opts.ProgressInterval)

	// 1. Scan and validate every path before any request.
	rep.phase("scan", 0, 0)
	files, err := scanFolder(dir)
	if err != nil {
		return nil, err
	}

	// 2. Preupload: upload mode, ignore flag and remote oid of each file.
	rep.phase("preupload", 0, len(files))
	pf := make([]PreuploadFile, len(files))
	gitAttributes := ""
	for i, f := range files {
		sample, err := readSample(f.abs, 512)
		if err != nil {
			return nil, err
		}
		pf[i] = PreuploadFile{Path: f.path, Sample: sample, Size: f.st.size}
		if f.path == ".gitattributes" && f.st.size < 1<<20 {
			b, err := os.ReadFile(f.abs)
			if err != nil {
				return nil, err
			}
			gitAttributes = string(b)
		}
	}
	results, head, err := c.Preupload(ctx, id, rev, pf, PreuploadOptions{CreatePR: opts.CreatePR, GitAttributes: gitAttributes})
	if err != nil {
		return nil, err
	}
	for i := range files {
		files[i].mode, files[i].ignore, files[i].remote = results[i].UploadMode, results[i].ShouldIgnore, results[i].OID
	}

	// 3. Hash what each mode needs: sha256 for LFS, the git sha1 otherwise.
	hc := opts.HashCache
	if hc == nil {
		if hc, err = OpenHashCache(""); err != nil {
			c.logf("hub: no hash cache (%v); every file will be hashed", err)
			hc = nil
		}
	}
	defer func() {
		if err := hc.Save(); err != nil {
			c.logf("hub: could not save the hash cache: %v", err)
		}
	}()
	if err := c.hashFiles(ctx, files, hc, opts.HashConcurrency, rep); err != nil {
		return nil, err
	}
	// Keep the hashes now: a process killed during the upload resumes
	// without hashing the folder again.
	if err := hc.Save(); err != nil {
		c.logf("hub: could not save the hash cache: %v", err)
	}

	// 4. Keep what changed; one LFS object per distinct oid.
	var ops []Operation
	var objects []LFSObject
	source := map[string]*localFile{} // oid → a file holding it
	for i := range files {
		f := &files[i]
		local := f.hashes.SHA1
		if f.mode == "lfs" {
			local = f.hashes.SHA256
		}
		switch {
		case f.ignore:
			c.logf("hub: %s is ignored by the repository's .gitignore", f.path)
			continue
		case f.remote != "" && f.remote == local:
			continue // unchanged on the Hub
		}
		if f.mode == "lfs" {
			ops = append(ops, AddLFS{Path: f.path, OID: f.hashes.SHA256, Size: f.st.size})
			if source[f.hashes.SHA256] == nil {
				source[f.hashes.SHA256] = f
				objects = append(objects, LFSObject{OID: f.hashes.SHA256, Size: f.st.size})
			}
			continue
		}
		abs := f.abs
		ops = append(ops, AddFile{Path: f.path, Size: f.st.size, SHA1: f.hashes.SHA1,
			Open: func() (io.ReadCloser, error) { return os.Open(abs) }})
	}
	if len(ops) == 0 {
		info, err := c.RepoInfo(ctx, id, rev)
		if err != nil {
			return nil, err
		}
		rep.phase("done", 0, 0)
		return &CommitInfo{OID: info.SHA, URL: c.commitURL(id, info.SHA), NoChanges: true}, nil
	}

	// 5. LFS batch and uploads.
	if len(objects) > 0 {
		ref := rev
		if opts.CreatePR {
			ref = ""
		}
		actions, err := c.LFSBatch(ctx, id, ref, objects)
		if err != nil {
			return nil, err
		}
		if err := c.uploadObjects(ctx, id, actions, source, opts, rep); err != nil {
			return nil, err
		}
	}

	// 6. Commit against the head preupload saw.
	rep.phase("commit", 0, len(ops))
	co := CommitOptions{Summary: opts.CommitMessage, Description: opts.CommitDescription, CreatePR: opts.CreatePR}
	if !opts.CreatePR {
		co.ParentCommit = head
	}
	ci, err := c.Commit(ctx, id, rev, co, ops)
	if err != nil {
		return nil, err
	}
	rep.phase("done", 0, 0)
	return ci, nil
}

// hashFiles fills files[i].hashes from the cache or by reading the files,
// several at a time.
func (c *Client) hashFiles(ctx context.Context, files []localFile, hc *HashCache, workers int, rep *reporter) error {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	var todo []*localFile
	var total int64
	for i := range files {
		f := &files[i]
		if f.ignore {
			continue
		}
		if h, ok := hc.lookup(f.abs, f.st); ok && (f.mode != "lfs" || h.SHA256 != "") && (f.mode == "lfs" || h.SHA1 != "") {
			f.hashes = h
			continue
		}
		todo = append(todo, f)
		total += f.st.size
	}
	rep.phase("hash", total, len(todo))
	g := newGroup(ctx, workers)
	for _, f := range todo {
		rep.file(f.path, f.st.size)
		if !g.do(func(ctx context.Context) error {
			// Small files get both hashes in the same pass, so a later
			// change of upload mode needs no new read.
			small := f.st.size <= 10<<20
			h, err := hashFile(ctx, f.abs, f.st.size, f.mode == "lfs" || small, f.mode != "lfs" || small,
				func(n int64) { rep.add(f.path, n) })
			if err != nil {
				return fmt.Errorf("hub: hash %s: %w", f.path, err)
			}
			f.hashes = h
			hc.store(f.abs, f.st, h)
			rep.done(f.path)
			return nil
		}) {
			break
		}
	}
	return g.wait()
}

// uploadObjects uploads the objects the batch asked for, Concurrency at a
// time, with PUTs limited across all of them by PartConcurrency.
func (c *Client) uploadObjects(ctx context.Context, id RepoID, actions []LFSAction, source map[string]*localFile, opts UploadOptions, rep *reporter) error {
	var todo []LFSAction
	var total int64
	for _, a := range actions {
		if a.Upload() == nil {
			continue // the Hub already has it
		}
		if f := source[a.OID]; f == nil || f.st.size != a.Size {
			return errorf(ErrBadRequest, "lfs batch", "the Hub answered for object %s of size %d, which is not being uploaded", a.OID, a.Size)
		}
		todo = append(todo, a)
		total += a.Size
	}
	if len(todo) == 0 {
		return nil
	}
	objs := opts.Concurrency
	if objs <= 0 {
		objs = 4
	}
	parts := opts.PartConcurrency
	if parts <= 0 {
		parts = DefaultPartConcurrency
	}
	slots := make(chan struct{}, parts)
	rep.phase("upload", total, len(todo))
	g := newGroup(ctx, objs)
	for _, a := range todo {
		f := source[a.OID]
		rep.file(f.path, f.st.size)
		if !g.do(func(ctx context.Context) error {
			fh, err := os.Open(f.abs)
			if err != nil {
				return err
			}
			defer fh.Close()
			if err := c.UploadLFSObject(ctx, id, a, fh, LFSUploadOptions{Slots: slots,
				Progress: func(n int64) { rep.add(f.path, n) }}); err != nil {
				return err
			}
			rep.done(f.path)
			return nil
		}) {
			break
		}
	}
	return g.wait()
}

// scanFolder lists the regular files under dir with their repo paths.
func scanFolder(dir string) ([]localFile, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("hub: %s is not a folder", dir)
	}
	var files []localFile
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != dir && (d.Name() == ".git" || d.Name() == ".cache") {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := os.Stat(p) // follows symlinks
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // dangling symlink
			}
			return err
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		clean, err := CleanPath(filepath.ToSlash(rel))
		if err != nil {
			return err
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return err
		}
		files = append(files, localFile{abs: abs, path: clean, st: statOf(info)})
		return nil
	})
	if err != nil {
		var he *Error
		if errors.As(err, &he) {
			return nil, err
		}
		return nil, fmt.Errorf("hub: scan %s: %w", dir, err)
	}
	return files, nil
}

// readSample returns up to n first bytes of a file.
func readSample(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	k, err := io.ReadFull(f, b)
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return nil, err
	}
	return b[:k], nil
}
