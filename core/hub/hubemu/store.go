package hubemu

import (
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"modelpub/core/atomicfile"
)

// On-disk layout under Options.Dir:
//
//	objects/sha256/ab/<oid>       LFS objects, content-addressed by sha256
//	objects/blob/ab/<sha1>        regular files, by git blob sha1
//	repos/<type>/<ns>/<name>/repo.json        refs and settings
//	repos/<type>/<ns>/<name>/commits/<id>.json one snapshot per commit
//	repos/<type>/<ns>/<name>/lfs/up/<oid>      LFS objects uploaded for the repo (empty markers)
//	repos/<type>/<ns>/<name>/lfs/ref/<oid>     LFS objects a commit of the repo references
//	uploads/<id>/<part>           multipart parts in flight
//	tmp/                          temp files, renamed into place when complete
//
// Every file is written to tmp/ and renamed, so a crash or a fault never
// leaves a half-written object, commit or ref file.

// fileEntry is one file of a commit snapshot.
type fileEntry struct {
	LFS  bool   `json:"lfs,omitempty"` // stored as an LFS object
	Oid  string `json:"oid"`           // sha256 (LFS) or git blob sha1 (regular)
	Size int64  `json:"size"`          // content size in bytes
}

// commitRec is one commit: a full snapshot of the files.
type commitRec struct {
	ID      string               `json:"id"`      // 40 hex
	Parents []string             `json:"parents"` // zero or one
	Title   string               `json:"title"`   // the summary
	Message string               `json:"message"` // the description
	Author  string               `json:"author"`  // user name
	Date    time.Time            `json:"date"`    // creation time
	Files   map[string]fileEntry `json:"files"`   // path → entry

	once    sync.Once   // builds listing
	listing []treeEntry // every file and directory, sorted by path
}

// repoMeta is what repo.json holds.
type repoMeta struct {
	Type      string            `json:"type"` // model, dataset, space
	NS        string            `json:"ns"`
	Name      string            `json:"name"`
	ID        string            `json:"id"` // 24 hex, like the Hub's object ids
	Private   bool              `json:"private"`
	Gated     string            `json:"gated,omitempty"` // "", "auto" or "manual"
	Created   time.Time         `json:"created"`
	Branches  map[string]string `json:"branches"` // branch → commit id
	PRs       map[string]string `json:"prs"`      // "N" → commit id of refs/pr/N
	NextPR    int               `json:"nextPR"`   // next discussion number
	LastWrite time.Time         `json:"lastWrite"`
}

// repo is one repository; mu guards everything in it.
type repo struct {
	mu      sync.Mutex
	dir     string
	meta    repoMeta
	deleted bool
	commits map[string]*commitRec // cache of commits read
}

func (rp *repo) fullID() string { return rp.meta.NS + "/" + rp.meta.Name }

// key is the repo's repoKey. Callers hold rp.mu.
func (rp *repo) key() string { return repoKey(rp.meta.Type, rp.meta.NS, rp.meta.Name) }

// repoKey is the map key and directory of a repo: repo ids are
// case-insensitive on the Hub.
func repoKey(typ, ns, name string) string {
	return strings.ToLower(typ + "/" + ns + "/" + name)
}

func urlPrefix(typ string) string {
	if typ == "model" {
		return ""
	}
	return typ + "s/"
}

// lfsPatterns is the default .gitattributes of a new repo on the Hub.
var lfsPatterns = []string{"*.7z", "*.arrow", "*.bin", "*.bz2", "*.ckpt", "*.ftz", "*.gz", "*.h5", "*.joblib",
	"*.lfs.*", "*.mlmodel", "*.model", "*.msgpack", "*.npy", "*.npz", "*.onnx", "*.ot", "*.parquet", "*.pb",
	"*.pickle", "*.pkl", "*.pt", "*.pth", "*.rar", "*.safetensors", "saved_model/**/*", "*.tar.*", "*.tar",
	"*.tflite", "*.tgz", "*.wasm", "*.xz", "*.zip", "*.zst", "*tfevents*"}

func defaultGitattributes() []byte {
	var b strings.Builder
	for _, p := range lfsPatterns {
		b.WriteString(p + " filter=lfs diff=lfs merge=lfs -text\n")
	}
	return []byte(b.String())
}

// --- objects ---------------------------------------------------------------

func (s *Server) objectPath(oid string) string {
	return filepath.Join(s.dir, "objects", "sha256", oid[:2], oid)
}

func (s *Server) blobPath(sha string) string {
	return filepath.Join(s.dir, "objects", "blob", sha[:2], sha)
}

// Object returns the file holding the LFS object oid, if it is stored.
func (s *Server) Object(oid string) (string, bool) {
	if !validOid(oid) {
		return "", false
	}
	p := s.objectPath(oid)
	if _, err := os.Stat(p); err != nil {
		return "", false
	}
	return p, true
}

// objectSize returns the size of a stored LFS object, or -1.
func (s *Server) objectSize(oid string) int64 {
	if !validOid(oid) {
		return -1
	}
	fi, err := os.Stat(s.objectPath(oid))
	if err != nil {
		return -1
	}
	return fi.Size()
}

// tempFile creates a file in tmp/ that the caller renames or removes.
func (s *Server) tempFile() (*os.File, error) {
	return os.CreateTemp(filepath.Join(s.dir, "tmp"), "up-*")
}

// install renames the complete temp file f to dst, replacing it
// (atomicfile.Rename: on Windows, retried while a reader has dst open).
func install(f *os.File, dst string) error { return installFile(f, dst, false) }

// installContent is install for a content-addressed dst (an LFS object, a
// git blob): when dst is there already it holds the same bytes, maybe
// open in a reader (Windows refuses to replace an open file), so the temp
// file is dropped instead.
func installContent(f *os.File, dst string) error { return installFile(f, dst, true) }

func installFile(f *os.File, dst string, content bool) error {
	name := f.Name()
	err := f.Close()
	if err == nil {
		err = placeFile(name, dst, content)
	}
	if err != nil {
		os.Remove(name)
	}
	return err
}

// placeFile renames the closed file at name to dst as installFile says; on
// error name is left where it was.
func placeFile(name, dst string, content bool) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if content {
		if _, err := os.Stat(dst); err == nil {
			return os.Remove(name)
		}
	}
	err := atomicfile.Rename(name, dst)
	if _, serr := os.Stat(dst); err != nil && content && serr == nil {
		return os.Remove(name) // another upload of the same bytes installed it first
	}
	return err
}

// errContent reports uploaded bytes that are not what was announced.
var errContent = errors.New("content does not match")

// storeObject streams r into the LFS store, checking that it is exactly
// size bytes with sha256 oid.
func (s *Server) storeObject(r io.Reader, oid string, size int64) error {
	f, err := s.tempFile()
	if err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(r, size+1))
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if n != size {
		f.Close()
		os.Remove(f.Name())
		return fmt.Errorf("%w: got %d bytes, want %d", errContent, n, size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != oid {
		f.Close()
		os.Remove(f.Name())
		return fmt.Errorf("%w: sha256 is %s, want %s", errContent, got, oid)
	}
	return installContent(f, s.objectPath(oid))
}

// installObject checks that the complete file at path is size bytes with
// sha256 oid and renames it into the LFS store.
func (s *Server) installObject(path, oid string, size int64) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	f.Close()
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("%w: got %d bytes, want %d", errContent, n, size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != oid {
		return fmt.Errorf("%w: sha256 is %s, want %s", errContent, got, oid)
	}
	return placeFile(path, s.objectPath(oid), true)
}

// gitBlobSHA1 is git's id of a blob: sha1("blob <n>\0" + data).
func gitBlobSHA1(data []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(data))
	h.Write(data)
	return hex.EncodeToString(h.Sum(nil))
}

// storeBlob writes a regular file's content and returns its git sha1.
func (s *Server) storeBlob(data []byte) (string, error) {
	sha := gitBlobSHA1(data)
	dst := s.blobPath(sha)
	if _, err := os.Stat(dst); err == nil {
		return sha, nil
	}
	f, err := s.tempFile()
	if err != nil {
		return "", err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", err
	}
	return sha, installContent(f, dst)
}

// openContent opens the content of a file entry.
func (s *Server) openContent(e fileEntry) (*os.File, error) {
	if e.LFS {
		return os.Open(s.objectPath(e.Oid))
	}
	return os.Open(s.blobPath(e.Oid))
}

func lfsPointer(oid string, size int64) string {
	return "version https://git-lfs.github.com/spec/v1\noid sha256:" + oid + "\nsize " + strconv.FormatInt(size, 10) + "\n"
}

// writeJSONFile writes v to path atomically.
func (s *Server) writeJSONFile(path string, v any) error {
	data, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return err
	}
	f, err := s.tempFile()
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	return install(f, path)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// --- repos -----------------------------------------------------------------

// loadRepos reads every repo.json under dir/repos.
func (s *Server) loadRepos() error {
	root := filepath.Join(s.dir, "repos")
	matches, err := filepath.Glob(filepath.Join(root, "*", "*", "*", "repo.json"))
	if err != nil {
		return err
	}
	for _, m := range matches {
		data, err := os.ReadFile(m)
		if err != nil {
			return err
		}
		rp := &repo{dir: filepath.Dir(m), commits: map[string]*commitRec{}}
		if err := json.Unmarshal(data, &rp.meta); err != nil {
			return fmt.Errorf("%s: %w", m, err)
		}
		if rp.meta.PRs == nil {
			rp.meta.PRs = map[string]string{}
		}
		if err := rp.backfillLFS(); err != nil {
			return fmt.Errorf("%s: %w", rp.dir, err)
		}
		s.repos[repoKey(rp.meta.Type, rp.meta.NS, rp.meta.Name)] = rp
	}
	return nil
}

// LFS objects are stored once for the whole server, but each repo may use
// only the objects uploaded for it or referenced by its own commits, as on
// the Hub, where a repo's LFS storage is its own: knowing an oid is not
// having its bytes. The markers below record which objects a repo may use.

const (
	lfsUploaded   = "up"  // uploaded through one of the repo's batch actions
	lfsReferenced = "ref" // referenced by a commit of the repo
)

func (rp *repo) lfsMarker(kind, oid string) string {
	return filepath.Join(rp.dir, "lfs", kind, oid)
}

// hasLFS reports whether the repo may use LFS object oid: uploaded for it
// or referenced by one of its commits.
func (rp *repo) hasLFS(oid string) bool {
	return rp.hasMarker(lfsUploaded, oid) || rp.hasMarker(lfsReferenced, oid)
}

func (rp *repo) hasMarker(kind, oid string) bool {
	if !validOid(oid) {
		return false
	}
	_, err := os.Stat(rp.lfsMarker(kind, oid))
	return err == nil
}

// markLFS records that the repo may use oid. The marker is an empty file,
// so recording it twice or concurrently is harmless.
func (rp *repo) markLFS(kind, oid string) error {
	if !validOid(oid) {
		return fmt.Errorf("invalid oid %q", oid)
	}
	p := rp.lfsMarker(kind, oid)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}

// backfillLFS marks the LFS objects referenced by the repo's commits, for
// state written before the markers existed.
func (rp *repo) backfillLFS() error {
	if _, err := os.Stat(filepath.Join(rp.dir, "lfs")); err == nil {
		return nil
	}
	matches, err := filepath.Glob(filepath.Join(rp.dir, "commits", "*.json"))
	if err != nil {
		return err
	}
	for _, m := range matches {
		cm, ok := rp.commit(strings.TrimSuffix(filepath.Base(m), ".json"))
		if !ok {
			continue
		}
		for _, e := range cm.Files {
			if e.LFS {
				if err := rp.markLFS(lfsReferenced, e.Oid); err != nil {
					return err
				}
			}
		}
	}
	return os.MkdirAll(filepath.Join(rp.dir, "lfs", lfsReferenced), 0o755)
}

func (rp *repo) saveMeta(s *Server) error {
	return s.writeJSONFile(filepath.Join(rp.dir, "repo.json"), &rp.meta)
}

// commit returns commit id of rp, reading it from disk on first use.
// Callers hold rp.mu.
func (rp *repo) commit(id string) (*commitRec, bool) {
	if c, ok := rp.commits[id]; ok {
		return c, true
	}
	if !isHex40(id) {
		return nil, false
	}
	data, err := os.ReadFile(filepath.Join(rp.dir, "commits", id+".json"))
	if err != nil {
		return nil, false
	}
	c := &commitRec{}
	if err := json.Unmarshal(data, c); err != nil || c.ID != id {
		return nil, false
	}
	if c.Files == nil {
		c.Files = map[string]fileEntry{}
	}
	rp.commits[id] = c
	return c, true
}

// resolveRev returns the commit a revision names: a branch, refs/heads/X,
// refs/pr/N or a full commit id. Callers hold rp.mu.
func (rp *repo) resolveRev(rev string) (*commitRec, bool) {
	id, ok := rp.refTarget(rev)
	if !ok {
		if !isHex40(rev) {
			return nil, false
		}
		id = rev
	}
	return rp.commit(id)
}

// refTarget returns the commit of a ref (not a commit id).
func (rp *repo) refTarget(rev string) (string, bool) {
	if id, ok := rp.meta.Branches[rev]; ok {
		return id, true
	}
	if b, ok := strings.CutPrefix(rev, "refs/heads/"); ok {
		id, ok := rp.meta.Branches[b]
		return id, ok
	}
	if n, ok := strings.CutPrefix(rev, "refs/pr/"); ok {
		id, ok := rp.meta.PRs[n]
		return id, ok
	}
	return "", false
}

// knownRev reports whether rev names something, for splitting a
// "{rev}/{path}" URL whose rev contains slashes.
func (rp *repo) knownRev(rev string) bool {
	if _, ok := rp.refTarget(rev); ok {
		return true
	}
	_, ok := rp.commit(rev)
	return ok
}

// newCommit makes, stores and caches a commit. Callers hold rp.mu.
func (s *Server) newCommit(rp *repo, parents []string, title, message, author string, files map[string]fileEntry) (*commitRec, error) {
	c := &commitRec{Parents: parents, Title: title, Message: message, Author: author, Date: time.Now().UTC(), Files: files}
	if c.Parents == nil {
		c.Parents = []string{}
	}
	h := sha1.New()
	json.NewEncoder(h).Encode(c)
	io.WriteString(h, randomHex(8)) // two identical commits in the same instant still differ
	c.ID = hex.EncodeToString(h.Sum(nil))
	if err := s.writeJSONFile(filepath.Join(rp.dir, "commits", c.ID+".json"), c); err != nil {
		return nil, err
	}
	rp.commits[c.ID] = c
	return c, nil
}

// --- listings --------------------------------------------------------------

// treeEntry is one entry of a tree listing or paths-info answer.
type treeEntry struct {
	Type string   `json:"type"` // "file" or "directory"
	Oid  string   `json:"oid"`  // git sha1 of the blob, pointer or tree
	Size int64    `json:"size"` // content size; 0 for directories
	Path string   `json:"path"` // from the repo root
	LFS  *lfsInfo `json:"lfs,omitempty"`
	// LastCommit is set with expand=true only.
	LastCommit *lastCommitJSON `json:"lastCommit,omitempty"`
}

type lfsInfo struct {
	Oid         string `json:"oid"`         // sha256
	Size        int64  `json:"size"`        // content size
	PointerSize int    `json:"pointerSize"` // size of the pointer blob
}

func fileTreeEntry(p string, e fileEntry) treeEntry {
	te := treeEntry{Type: "file", Oid: e.Oid, Size: e.Size, Path: p}
	if e.LFS {
		ptr := lfsPointer(e.Oid, e.Size)
		te.Oid = gitBlobSHA1([]byte(ptr))
		te.LFS = &lfsInfo{Oid: e.Oid, Size: e.Size, PointerSize: len(ptr)}
	}
	return te
}

// entries returns every file and directory of c sorted by path, with
// directories carrying their git tree ids. Commits never change, so the
// listing is built once.
func (c *commitRec) entries() []treeEntry {
	c.once.Do(func() {
		type dir struct {
			files map[string]string // name → git blob sha1
			dirs  map[string]bool
		}
		dirs := map[string]*dir{}
		getDir := func(p string) *dir {
			d := dirs[p]
			if d == nil {
				d = &dir{files: map[string]string{}, dirs: map[string]bool{}}
				dirs[p] = d
			}
			return d
		}
		getDir("")
		var out []treeEntry
		for p, e := range c.Files {
			te := fileTreeEntry(p, e)
			out = append(out, te)
			parent, name := splitParent(p)
			getDir(parent).files[name] = te.Oid
			for parent != "" {
				pp, pn := splitParent(parent)
				getDir(pp).dirs[pn] = true
				parent = pp
			}
		}
		// Git tree ids, deepest directories first.
		treeIDs := map[string]string{}
		var treeID func(p string) string
		treeID = func(p string) string {
			if id, ok := treeIDs[p]; ok {
				return id
			}
			d := dirs[p]
			type ent struct {
				sortKey, mode, name, sha string
			}
			var es []ent
			for n, sha := range d.files {
				es = append(es, ent{n, "100644", n, sha})
			}
			for n := range d.dirs {
				es = append(es, ent{n + "/", "40000", n, treeID(joinPath(p, n))})
			}
			sort.Slice(es, func(i, j int) bool { return es[i].sortKey < es[j].sortKey })
			var body []byte
			for _, e := range es {
				raw, _ := hex.DecodeString(e.sha)
				body = append(body, e.mode+" "+e.name+"\x00"...)
				body = append(body, raw...)
			}
			h := sha1.New()
			fmt.Fprintf(h, "tree %d\x00", len(body))
			h.Write(body)
			id := hex.EncodeToString(h.Sum(nil))
			treeIDs[p] = id
			return id
		}
		for p := range dirs {
			if p != "" {
				out = append(out, treeEntry{Type: "directory", Oid: treeID(p), Path: p})
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
		c.listing = out
	})
	return c.listing
}

// isDir reports whether p is a directory of c ("" is the root).
func (c *commitRec) isDir(p string) bool {
	if p == "" {
		return true
	}
	for f := range c.Files {
		if strings.HasPrefix(f, p+"/") {
			return true
		}
	}
	return false
}

func splitParent(p string) (parent, name string) {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i], p[i+1:]
	}
	return "", p
}

func joinPath(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}
