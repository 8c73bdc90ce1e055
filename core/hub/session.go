package hub

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"sync"
)

// Content is what an Addition's bytes are read through: an *os.File, or a
// *bytes.Reader with a no-op Close.
type Content interface {
	io.ReaderAt
	io.Closer
}

// Addition is a file to add to (or replace in) the repository: a path in
// the repo and where its bytes are. Exactly one of Bytes, Local and Open
// gives the content.
type Addition struct {
	Path string // path in the repo, "/"-separated
	Size int64  // exact content length (set by FileAddition and BytesAddition)

	Bytes []byte // the content itself (a README written from a card)
	// Local is a file on disk holding the content. Its hashes are kept in
	// the hash cache under its real path and identity, so a later upload
	// of the unchanged file reads it only to send it.
	Local string
	// Open opens the content (called once per read: hashing, an upload
	// attempt, a commit attempt).
	Open func() (Content, error)

	// Hashes are digests already known from the pass that read the bytes
	// (a writer, a validation): a known SHA256 is not computed again for
	// an LFS file (the Hub checks it on upload), and is checked against the
	// bytes of a regular file, which are read anyway.
	Hashes Hashes
	// Sample is the content's first ≤512 bytes, when the caller has them:
	// preupload needs them, and a caller that just read the file saves a read.
	Sample []byte
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

// open opens the addition's content.
func (a *Addition) open() (Content, error) {
	switch {
	case a.Bytes != nil:
		return nopCloser{bytes.NewReader(a.Bytes)}, nil
	case a.Open != nil:
		return a.Open()
	case a.Local != "":
		return os.Open(a.Local)
	}
	return nil, fmt.Errorf("hub: %s has no content", a.Path)
}

// regularLimit is the size up to which the Hub keeps a file in git rather
// than LFS; a regular file's bytes are read once and kept for the commit.
const regularLimit = 10 << 20

// keepLimit caps the bytes of regular files an upload keeps in memory for
// its commit; files beyond it are read again when the commit is sent.
const keepLimit = 64 << 20

// Upload is an upload in progress: files are added while earlier ones are
// already being hashed and sent (StartUpload, Add), then one commit adds
// them all and makes the deletions (Commit). Each file goes through
// preupload (batched with the files added at the same time), hashing when
// its digests are not known or cached, the LFS batch and its upload
// (Git LFS, or Xet when the batch answers it: xetupload.go); files the Hub
// holds at the same path are not committed, objects it stores are not
// sent. A failure stops everything in flight and commits nothing.
type Upload struct {
	c    *Client
	id   RepoID
	rev  string
	opts UploadOptions
	rep  *reporter
	hc   *HashCache

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // the dispatcher and every file's work
	slots  chan struct{}  // PUTs in flight across all objects
	work   chan struct{}  // files processed at once
	hashes chan struct{}  // files hashed at once

	mu      sync.Mutex
	queue   []*pending // added, not yet preuploaded
	wake    chan struct{}
	closed  bool
	files   []*pending // every file, in the order added
	paths   map[string]bool
	objects map[string]*object // sha256 → its upload, shared by paths with the same content
	head    string             // the revision's head at the first preupload (or ParentCommit)
	kept    int64              // bytes of regular files held for the commit
	err     error              // the first failure
	noXet   bool               // TransferAuto: Xet failed to start, batches offer LFS only

	xetMu sync.Mutex  // making xs
	xs    *xetSession // the Xet upload, from the first batch that answered xet
}

// pending is one added file and what its processing learns.
type pending struct {
	a       Addition
	mode    string // "lfs" or "regular"
	ignore  bool
	remote  string // preupload oid ("" when new)
	h       Hashes
	data    []byte // a regular file's content, when kept
	deduped int64  // Xet: bytes of its chunks not sent
	res     FileResult
}

// object is one LFS object of the upload.
type object struct {
	done    chan struct{}
	sent    int64 // bytes sent (Xet: the new chunks); 0 when the Hub stores it
	deduped int64 // Xet: bytes of its chunks not sent
	stored  bool  // the Hub already stored the object: nothing was sent
	err     error
}

// StartUpload starts an upload to the repository's revision (opts.Revision,
// "" → main). Cancelling ctx, or Abort, stops it.
func (c *Client) StartUpload(ctx context.Context, id RepoID, opts UploadOptions) (*Upload, error) {
	if err := id.Validate(); err != nil {
		return nil, err
	}
	u := &Upload{c: c, id: id, rev: opts.Revision, opts: opts, rep: newReporter(opts.Progress),
		paths: map[string]bool{}, objects: map[string]*object{}, wake: make(chan struct{}, 1)}
	if u.rev == "" {
		u.rev = "main"
	}
	u.hc = opts.HashCache
	if u.hc == nil {
		var err error
		if u.hc, err = OpenHashCache(""); err != nil {
			c.logf("hub: no hash cache (%v); every file will be hashed", err)
			u.hc = nil
		}
	}
	parts := opts.PartConcurrency
	if parts <= 0 {
		parts = DefaultPartConcurrency
	}
	objs := opts.Concurrency
	if objs <= 0 {
		objs = 4
	}
	hashers := opts.HashConcurrency
	if hashers <= 0 {
		hashers = runtime.GOMAXPROCS(0)
	}
	u.slots, u.work, u.hashes = make(chan struct{}, parts), make(chan struct{}, objs), make(chan struct{}, hashers)
	u.ctx, u.cancel = context.WithCancel(ctx)
	u.wg.Add(1)
	go u.dispatch()
	return u, nil
}

// Add adds a file to the upload; its work starts at once, in the
// background. It fails for a bad or repeated path, and once the upload has
// failed (with that failure).
func (u *Upload) Add(a Addition) error {
	clean, err := CleanPath(a.Path)
	if err != nil {
		return err
	}
	a.Path = clean
	if a.Bytes != nil {
		a.Size = int64(len(a.Bytes))
	}
	if a.Bytes == nil && a.Local == "" && a.Open == nil {
		return fmt.Errorf("hub: %s has no content", clean)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.err != nil {
		return u.err
	}
	if u.closed {
		return errors.New("hub: the upload is already committed")
	}
	if u.paths[clean] {
		return errorf(ErrBadRequest, "upload", "%q is added twice", clean)
	}
	u.paths[clean] = true
	p := &pending{a: a}
	u.files = append(u.files, p)
	u.queue = append(u.queue, p)
	select {
	case u.wake <- struct{}{}:
	default:
	}
	return nil
}

// fail records the first failure and stops the work in flight.
func (u *Upload) fail(err error) {
	u.mu.Lock()
	if u.err == nil {
		u.err = err
	}
	u.mu.Unlock()
	u.cancel()
}

// dispatch sends what was added to preupload, in batches of what is waiting,
// and starts each file's work.
func (u *Upload) dispatch() {
	defer u.wg.Done()
	for {
		u.mu.Lock()
		batch, closed := u.queue, u.closed
		u.queue = nil
		u.mu.Unlock()
		if len(batch) == 0 {
			if closed {
				return
			}
			select {
			case <-u.wake:
				continue
			case <-u.ctx.Done():
				return
			}
		}
		if err := u.preupload(batch); err != nil {
			u.fail(err)
			return
		}
		for _, p := range batch {
			u.wg.Add(1)
			go func() {
				defer u.wg.Done()
				select {
				case u.work <- struct{}{}:
				case <-u.ctx.Done():
					return
				}
				defer func() { <-u.work }()
				if err := u.process(p); err != nil {
					u.fail(err)
				}
			}()
		}
	}
}

// preupload asks the Hub how to upload batch.
func (u *Upload) preupload(batch []*pending) error {
	u.rep.phase("preupload", 0, len(batch))
	pf := make([]PreuploadFile, len(batch))
	gitAttributes := ""
	for i, p := range batch {
		sample, err := u.sample(p)
		if err != nil {
			return err
		}
		pf[i] = PreuploadFile{Path: p.a.Path, Sample: sample, Size: p.a.Size}
		if p.a.Path == ".gitattributes" && p.a.Size < 1<<20 {
			b, err := readAll(&p.a)
			if err != nil {
				return err
			}
			gitAttributes = string(b)
		}
	}
	results, head, err := u.c.Preupload(u.ctx, u.id, u.rev, pf, PreuploadOptions{CreatePR: u.opts.CreatePR, GitAttributes: gitAttributes})
	if err != nil {
		return err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	want := u.opts.ParentCommit
	if want == "" {
		want = u.head
	}
	if want != "" && head != "" && head != want {
		return &Error{Kind: ErrConflict, Op: "preupload",
			Message: fmt.Sprintf("%s is at %s, not at %s", u.rev, short(head), short(want)),
			Hint:    "the branch moved since it was read; read it again and plan the upload against its new head"}
	}
	if u.head == "" {
		u.head = head
		if u.opts.ParentCommit != "" {
			u.head = u.opts.ParentCommit
		}
	}
	for i, p := range batch {
		p.mode, p.ignore, p.remote = results[i].UploadMode, results[i].ShouldIgnore, results[i].OID
		u.rep.done("preupload", p.a.Path)
	}
	return nil
}

// sample returns the first ≤512 bytes of p's content.
func (u *Upload) sample(p *pending) ([]byte, error) {
	a := &p.a
	switch {
	case a.Sample != nil:
		return a.Sample[:min(len(a.Sample), 512)], nil
	case a.Bytes != nil:
		return a.Bytes[:min(len(a.Bytes), 512)], nil
	}
	f, err := a.open()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, min(a.Size, 512))
	n, err := f.ReadAt(b, 0)
	if err != nil && err != io.EOF {
		return nil, err
	}
	return b[:n], nil
}

// process hashes one file as its upload mode needs, then uploads its LFS
// object unless the Hub has it.
func (u *Upload) process(p *pending) error {
	a := &p.a
	r := &p.res
	*r = FileResult{Path: a.Path, Size: a.Size, LFS: p.mode == "lfs", Remote: p.remote}
	if p.ignore {
		u.c.logf("hub: %s is ignored by the repository's .gitignore", a.Path)
		r.Outcome = FileIgnored
		return nil
	}
	if p.mode != "lfs" {
		return u.regular(p)
	}
	if err := u.hashLFS(p); err != nil {
		return err
	}
	r.OID = p.h.SHA256
	if p.remote != "" && p.remote == p.h.SHA256 {
		r.Outcome = FileUnchanged
		return nil
	}
	r.Outcome = FileStored
	u.mu.Lock()
	o := u.objects[p.h.SHA256]
	first := o == nil
	if first {
		o = &object{done: make(chan struct{})}
		u.objects[p.h.SHA256] = o
	}
	u.mu.Unlock()
	if !first { // another path with the same content sends it
		select {
		case <-o.done:
			return o.err
		case <-u.ctx.Done():
			return u.ctx.Err()
		}
	}
	defer close(o.done)
	o.sent, o.deduped, o.stored, o.err = u.sendObject(p)
	if o.err == nil && !o.stored && o.sent > 0 {
		r.Outcome, r.Sent = FileSent, o.sent
	}
	p.deduped = o.deduped
	return o.err
}

// hashLFS gets the sha256 of an LFS file: known, cached, or read.
func (u *Upload) hashLFS(p *pending) error {
	a := &p.a
	if a.Hashes.SHA256 != "" {
		p.h = a.Hashes
		return nil
	}
	var st fileStat
	if a.Local != "" {
		info, err := os.Stat(a.Local)
		if err != nil {
			return fmt.Errorf("hub: %w", err)
		}
		if st = statOf(a.Local, info); st.size != a.Size {
			return fmt.Errorf("hub: %s changed since it was added (%d bytes, %d before)", a.Path, st.size, a.Size)
		}
		if h, ok := u.hc.lookup(a.Local, st); ok && h.SHA256 != "" {
			p.h = Hashes(h)
			return nil
		}
	}
	select {
	case u.hashes <- struct{}{}:
	case <-u.ctx.Done():
		return u.ctx.Err()
	}
	defer func() { <-u.hashes }()
	u.rep.phase("hash", a.Size, 1)
	u.rep.file("hash", a.Path, a.Size)
	f, err := a.open()
	if err != nil {
		return err
	}
	defer f.Close()
	if hashReadHook != nil && a.Local != "" {
		hashReadHook(a.Local)
	}
	h, err := hashReader(u.ctx, io.NewSectionReader(f, 0, a.Size), a.Size, true, false, func(n int64) { u.rep.add("hash", a.Path, n) })
	if err != nil {
		return fmt.Errorf("hub: hash %s: %w", a.Path, err)
	}
	p.h = Hashes(h)
	if a.Local != "" {
		u.hc.store(a.Local, st, h)
	}
	u.rep.done("hash", a.Path)
	return nil
}

// regular reads a regular file once: its git sha1 (and a known sha256
// checked), and its content kept for the commit while that stays small.
func (u *Upload) regular(p *pending) error {
	a := &p.a
	if a.Size > regularLimit {
		return errorf(ErrBadRequest, "preupload", "the Hub wants %s (%d bytes) as a regular git file; files over 10 MiB go through LFS", a.Path, a.Size)
	}
	b, err := readAll(a)
	if err != nil {
		return err
	}
	p.h = Hashes{SHA1: GitBlobSHA1(b), SHA256: a.Hashes.SHA256}
	if a.Hashes.SHA256 != "" {
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != a.Hashes.SHA256 {
			return fmt.Errorf("hub: %s changed since it was written: its bytes are not the ones hashed then", a.Path)
		}
	}
	r := &p.res
	r.OID = p.h.SHA1
	if p.remote != "" && p.remote == p.h.SHA1 {
		r.Outcome = FileUnchanged
		return nil
	}
	r.Outcome, r.Sent = FileSent, a.Size
	u.mu.Lock()
	if a.Bytes == nil && u.kept+int64(len(b)) <= keepLimit {
		p.data = b
		u.kept += int64(len(b))
	}
	u.mu.Unlock()
	return nil
}

// readAll reads a small addition whole.
func readAll(a *Addition) ([]byte, error) {
	if a.Bytes != nil {
		return a.Bytes, nil
	}
	f, err := a.open()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, a.Size)
	n, err := f.ReadAt(b, 0)
	if err == io.EOF && int64(n) == a.Size {
		err = nil
	}
	if err != nil {
		return nil, fmt.Errorf("hub: read %s: %w", a.Path, err)
	}
	if extra, _ := f.ReadAt(make([]byte, 1), a.Size); extra > 0 {
		return nil, fmt.Errorf("hub: %s changed since it was added: it is longer than %d bytes", a.Path, a.Size)
	}
	return b, nil
}

// sendObject asks the LFS batch where p's object goes and sends it,
// through Xet when the batch answers it: it reports the bytes sent, those
// Xet found on the Hub, and whether the Hub already stored the object
// (nothing sent).
func (u *Upload) sendObject(p *pending) (sent, deduped int64, stored bool, err error) {
	ref := u.rev
	if u.opts.CreatePR {
		ref = ""
	}
	a := &p.a
	objs := []LFSObject{{OID: p.h.SHA256, Size: a.Size}}
	transfer, actions, err := u.c.lfsBatch(u.ctx, u.id, ref, u.transfers(), objs)
	if err != nil {
		return 0, 0, false, err
	}
	act := actions[0]
	if act.Size != a.Size {
		return 0, 0, false, errorf(ErrBadRequest, "lfs batch", "the Hub answered for object %s of size %d, which is not being uploaded", act.OID, act.Size)
	}
	switch {
	case transfer == "xet":
		if act.Upload() == nil {
			return 0, 0, true, nil
		}
		xs, err := u.xetStart(act.Upload())
		if err == nil {
			sent, deduped, err := xs.send(p)
			return sent, deduped, sent == 0 && err == nil, err
		}
		if u.c.transfer == TransferXet || u.ctx.Err() != nil {
			return 0, 0, false, err
		}
		// Auto: a Hub that answers xet but gives no usable token is an
		// explicit refusal; the upload goes on through Git LFS.
		u.c.logf("hub: Xet refused (%v); uploading through Git LFS", err)
		u.mu.Lock()
		u.noXet = true
		u.mu.Unlock()
		if _, actions, err = u.c.lfsBatch(u.ctx, u.id, ref, lfsTransfers, objs); err != nil {
			return 0, 0, false, err
		}
		act = actions[0]
	case u.c.transfer == TransferXet:
		return 0, 0, false, &Error{Kind: ErrXetUnavailable, Op: "lfs batch",
			Message: "offered only the xet transfer, the Hub answered the transfer " + transfer,
			Hint:    "this Hub does not take Xet uploads; use --transfer auto or lfs"}
	}
	if act.Upload() == nil {
		return 0, 0, true, nil
	}
	u.rep.phase("upload", a.Size, 1)
	u.rep.file("upload", a.Path, a.Size)
	f, err := a.open()
	if err != nil {
		return 0, 0, false, err
	}
	defer f.Close()
	if err := u.c.UploadLFSObject(u.ctx, u.id, act, f, LFSUploadOptions{Slots: u.slots,
		Progress: func(n int64) { u.rep.add("upload", a.Path, n) }}); err != nil {
		return 0, 0, false, err
	}
	u.rep.done("upload", a.Path)
	return a.Size, 0, false, nil
}

// finishXet ends the Xet upload, if any: with ok, the last xorb and the
// shards that register its files go up; otherwise it only waits for the
// xorb uploads in flight.
func (u *Upload) finishXet(ok bool) error {
	u.xetMu.Lock()
	xs := u.xs
	u.xs = nil
	u.xetMu.Unlock()
	if xs == nil {
		return nil
	}
	if !ok {
		u.cancel()
		_ = xs.finish(u.ctx)
		return nil
	}
	return xs.finish(u.ctx)
}

// Abort stops the upload and waits for its work to end; nothing is
// committed. It may be called after Commit.
func (u *Upload) Abort() {
	u.mu.Lock()
	u.closed = true
	u.mu.Unlock()
	u.cancel()
	u.wg.Wait()
	_ = u.finishXet(false)
}

// Commit waits for every added file, then makes one commit (or pull
// request) of the files that changed and of the deletions. When nothing
// changed and nothing is deleted, no commit is made and the head is
// returned with NoChanges set. CommitInfo.Upload reports every file, in
// the order added.
func (u *Upload) Commit(ctx context.Context, deletes []string) (*CommitInfo, error) {
	u.mu.Lock()
	u.closed = true
	u.mu.Unlock()
	select {
	case u.wake <- struct{}{}:
	default:
	}
	stop := context.AfterFunc(ctx, u.cancel)
	defer stop()
	u.wg.Wait()
	defer u.cancel()
	defer func() {
		if err := u.hc.Save(); err != nil {
			u.c.logf("hub: could not save the hash cache: %v", err)
		}
	}()
	u.mu.Lock()
	err := u.err
	u.mu.Unlock()
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		_ = u.finishXet(false)
		return nil, err
	}
	// Every xorb and shard is in before the commit names the files.
	if err := u.finishXet(true); err != nil {
		return nil, err
	}
	dels, err := cleanDeletes(deletes, u.paths)
	if err != nil {
		return nil, err
	}
	report := &UploadReport{Files: make([]FileResult, len(u.files)), Deleted: dels}
	var ops []Operation
	for i, p := range u.files {
		report.Files[i] = p.res
		report.Sent += p.res.Sent
		report.Deduped += p.deduped
		switch p.res.Outcome {
		case FileSent, FileStored:
		default:
			continue
		}
		if p.mode == "lfs" {
			ops = append(ops, AddLFS{Path: p.a.Path, OID: p.h.SHA256, Size: p.a.Size})
			continue
		}
		op := AddFile{Path: p.a.Path, Size: p.a.Size, SHA1: p.h.SHA1}
		if data := p.data; data != nil || p.a.Bytes != nil {
			if data == nil {
				data = p.a.Bytes
			}
			op.Open = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
		} else {
			a := p.a
			op.Open = func() (io.ReadCloser, error) {
				f, err := a.open()
				if err != nil {
					return nil, err
				}
				return struct {
					io.Reader
					io.Closer
				}{io.NewSectionReader(f, 0, a.Size), f}, nil
			}
		}
		ops = append(ops, op)
	}
	for _, p := range dels {
		ops = append(ops, DeleteFile{Path: p})
	}
	if len(ops) == 0 {
		info, err := u.c.RepoInfo(ctx, u.id, u.rev)
		if err != nil {
			return nil, err
		}
		u.rep.phase("done", 0, 0)
		return &CommitInfo{OID: info.SHA, URL: u.c.commitURL(u.id, info.SHA), NoChanges: true, Upload: report}, nil
	}
	u.rep.phase("commit", 0, len(ops))
	co := CommitOptions{Summary: u.opts.CommitMessage, Description: u.opts.CommitDescription, CreatePR: u.opts.CreatePR}
	if !u.opts.CreatePR {
		co.ParentCommit = u.head
	}
	ci, err := u.c.Commit(ctx, u.id, u.rev, co, ops)
	if err != nil {
		return nil, err
	}
	ci.Upload = report
	u.rep.phase("done", 0, 0)
	return ci, nil
}

// UploadFiles uploads the additions as one commit with the deletions in
// opts.Delete: StartUpload, Add each, Commit.
func (c *Client) UploadFiles(ctx context.Context, id RepoID, files []Addition, opts UploadOptions) (*CommitInfo, error) {
	if err := id.Validate(); err != nil {
		return nil, err
	}
	// Every path is checked before any request.
	added := make(map[string]bool, len(files))
	for _, a := range files {
		clean, err := CleanPath(a.Path)
		if err != nil {
			return nil, err
		}
		added[clean] = true
	}
	if _, err := cleanDeletes(opts.Delete, added); err != nil {
		return nil, err
	}
	u, err := c.StartUpload(ctx, id, opts)
	if err != nil {
		return nil, err
	}
	defer u.Abort()
	for _, a := range files {
		if err := u.Add(a); err != nil {
			return nil, err
		}
	}
	return u.Commit(ctx, opts.Delete)
}

// cleanDeletes validates the paths to delete, drops repeats and refuses
// a path also being added.
func cleanDeletes(paths []string, added map[string]bool) ([]string, error) {
	if len(paths) == 0 {
		return nil, nil
	}
	seen := map[string]bool{}
	var out []string
	for _, p := range paths {
		clean, err := CleanPath(p)
		if err != nil {
			return nil, err
		}
		if added[clean] {
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
