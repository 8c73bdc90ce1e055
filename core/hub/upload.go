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
	"sort"
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
	// Delete lists paths of the repository to delete in the same commit
	// (deletedFile lines), so the commit holds the new files and the
	// removal of the old ones at once. A path the folder also holds is
	// refused. A commit of deletions alone is made like any other.
	Delete []string
	// ParentCommit, when set, is the head the caller planned against:
	// when the revision's head is another commit at preupload, the upload
	// fails with ErrConflict before any object is sent, and the commit is
	// made against it (a branch that moves later is ErrConflict too).
	ParentCommit string
}

// FileOutcome is what UploadFolder did with one file.
type FileOutcome string

// The outcomes of a file.
const (
	FileSent      FileOutcome = "sent"      // committed, its content sent
	FileStored    FileOutcome = "stored"    // committed; the Hub already stored its LFS object, nothing sent
	FileUnchanged FileOutcome = "unchanged" // the same content is on the Hub at that path: not committed
	FileIgnored   FileOutcome = "ignored"   // excluded by the repository's .gitignore: not committed
)

// UploadReport says what UploadFolder did, from what it sent.
type UploadReport struct {
	Files   []FileResult // every file of the folder, in the order of the folder's walk
	Deleted []string     // paths the commit deleted
	Sent    int64        // bytes sent: LFS objects uploaded plus the contents of regular files committed
}

// FileResult is the outcome of one file of the folder.
type FileResult struct {
	Path    string      // path in the repo
	Size    int64       //
	LFS     bool        // stored through Git LFS (preupload's verdict)
	OID     string      // sha256 for LFS, git blob sha1 otherwise ("" when ignored)
	Remote  string      // the oid preupload gave for the path ("" when it was new)
	Outcome FileOutcome //
	Sent    int64       // bytes of this file sent (an object shared by several paths counts once)
}

// Count returns how many files had outcome o and their bytes sent.
func (r *UploadReport) Count(o FileOutcome) (n int, sent int64) {
	if r == nil {
		return 0, 0
	}
	for _, f := range r.Files {
		if f.Outcome == o {
			n++
			sent += f.Sent
		}
	}
	return n, sent
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
//     objects the Hub already has are not sent. opts.Delete adds deletions
//     to the same commit. When nothing changed and nothing is deleted, no
//     commit is made and the head is returned with NoChanges set.
//     CommitInfo.Upload reports the outcome of every file.
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
	deletes, err := cleanDeletes(opts.Delete, files)
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
	if opts.ParentCommit != "" {
		if head != "" && head != opts.ParentCommit {
			return nil, &Error{Kind: ErrConflict, Op: "preupload",
				Message: fmt.Sprintf("%s is at %s, not at %s", rev, short(head), short(opts.ParentCommit)),
				Hint:    "the branch moved since it was read; read it again and plan the upload against its new head"}
		}
		head = opts.ParentCommit
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
	report := &UploadReport{Files: make([]FileResult, len(files))}
	for i := range files {
		f := &files[i]
		local := f.hashes.SHA1
		if f.mode == "lfs" {
			local = f.hashes.SHA256
		}
		r := &report.Files[i]
		*r = FileResult{Path: f.path, Size: f.st.size, LFS: f.mode == "lfs", OID: local, Remote: f.remote}
		switch {
		case f.ignore:
			c.logf("hub: %s is ignored by the repository's .gitignore", f.path)
			r.Outcome, r.OID = FileIgnored, ""
			continue
		case f.remote != "" && f.remote == local:
			r.Outcome = FileUnchanged
			continue
		}
		if f.mode == "lfs" {
			// Stored until the batch asks for the object's bytes.
			r.Outcome = FileStored
			ops = append(ops, AddLFS{Path: f.path, OID: f.hashes.SHA256, Size: f.st.size})
			if source[f.hashes.SHA256] == nil {
				source[f.hashes.SHA256] = f
				objects = append(objects, LFSObject{OID: f.hashes.SHA256, Size: f.st.size})
			}
			continue
		}
		r.Outcome, r.Sent = FileSent, f.st.size
		abs := f.abs
		ops = append(ops, AddFile{Path: f.path, Size: f.st.size, SHA1: f.hashes.SHA1,
			Open: func() (io.ReadCloser, error) { return os.Open(abs) }})
	}
	for _, p := range deletes {
		ops = append(ops, DeleteFile{Path: p})
	}
	if len(ops) == 0 {
		info, err := c.RepoInfo(ctx, id, rev)
		if err != nil {
			return nil, err
		}
		rep.phase("done", 0, 0)
		return &CommitInfo{OID: info.SHA, URL: c.commitURL(id, info.SHA), NoChanges: true, Upload: report}, nil
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
		index := make(map[string]int, len(files))
		for i := range files {
			index[files[i].path] = i
		}
		for _, a := range actions {
			if a.Upload() != nil {
				r := &report.Files[index[source[a.OID].path]]
				r.Outcome, r.Sent = FileSent, a.Size
			}
		}
	}
	for _, f := range report.Files {
		report.Sent += f.Sent
	}
	report.Deleted = deletes

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
	ci.Upload = report
	rep.phase("done", 0, 0)
	return ci, nil
}

// cleanDeletes validates the paths to delete, drops repeats and refuses
// a path the folder holds.
func cleanDeletes(paths []string, files []localFile) ([]string, error) {
	if len(paths) == 0 {
		return nil, nil
	}
	have := make(map[string]bool, len(files))
	for _, f := range files {
		have[f.path] = true
	}
	seen := map[string]bool{}
	var out []string
	for _, p := range paths {
		clean, err := CleanPath(p)
		if err != nil {
			return nil, err
		}
		if have[clean] {
			return nil, errorf(ErrBadRequest, "upload", "%q is both in the folder and in the paths to delete", clean)
		}
		if !seen[clean] {
			seen[clean] = true
			out = append(out, clean)
		}
	}
	sort.Strings(out)
	return out, nil
}

// short abbreviates a commit id as git does.
func short(oid string) string {
	if len(oid) > 7 {
		return oid[:7]
	}
	return oid
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
