package hub

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"modelpub/core/atomicfile"
)

// GitBlobSHA1 is git's object id of a blob: sha1("blob <n>\0" + data),
// what the Hub names a regular file by.
func GitBlobSHA1(b []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(b))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

// fileHashes are the two ids of a file's content.
type fileHashes struct {
	SHA256 string `json:"sha256,omitempty"` // LFS oid
	SHA1   string `json:"sha1,omitempty"`   // git blob sha1
}

// hashReadHook, when set by tests, is called for every file actually read
// for hashing (a cache hit does not call it).
var hashReadHook func(path string)

// hashFile reads path once and computes the hashes asked for, reporting
// bytes read to progress. It stops within one buffer when ctx is done.
func hashFile(ctx context.Context, path string, size int64, want256, want1 bool, progress func(int64)) (fileHashes, error) {
	if hashReadHook != nil {
		hashReadHook(path)
	}
	f, err := os.Open(path)
	if err != nil {
		return fileHashes{}, err
	}
	defer f.Close()
	h, err := hashReader(ctx, f, size, want256, want1, progress)
	if err != nil {
		return fileHashes{}, fmt.Errorf("%s: %w", path, err)
	}
	return h, nil
}

// hashReader reads r to its end, which must come after exactly size bytes,
// and computes the hashes asked for.
func hashReader(ctx context.Context, r io.Reader, size int64, want256, want1 bool, progress func(int64)) (fileHashes, error) {
	var hs []hash.Hash
	var h256, h1 hash.Hash
	if want256 {
		h256 = sha256.New()
		hs = append(hs, h256)
	}
	if want1 {
		h1 = sha1.New()
		fmt.Fprintf(h1, "blob %d\x00", size)
		hs = append(hs, h1)
	}
	buf := make([]byte, 1<<20)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return fileHashes{}, err
		}
		k, err := r.Read(buf)
		if k > 0 {
			for _, h := range hs {
				h.Write(buf[:k])
			}
			n += int64(k)
			if progress != nil {
				progress(int64(k))
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fileHashes{}, err
		}
	}
	if n != size {
		return fileHashes{}, fmt.Errorf("changed while it was hashed (%d bytes, expected %d)", n, size)
	}
	var out fileHashes
	if h256 != nil {
		out.SHA256 = hex.EncodeToString(h256.Sum(nil))
	}
	if h1 != nil {
		out.SHA1 = hex.EncodeToString(h1.Sum(nil))
	}
	return out, nil
}

// HashCache remembers the hashes of local files, keyed by absolute path and
// checked against size, modification time and inode, so an unchanged file
// is never hashed twice. It is safe for concurrent use and stored as JSON.
type HashCache struct {
	path string

	mu       sync.Mutex
	entries  map[string]cacheEntry
	dirty    bool
	inflight map[string]*hashCall // abs path → the hash HashFile is computing
}

// hashCall is a hash of one file in progress: a second HashFile of the
// same unchanged file waits for it instead of reading the file again.
type hashCall struct {
	st      fileStat
	want256 bool
	want1   bool
	done    chan struct{}
	h       fileHashes
	err     error
}

// join registers a hash of abs as in progress and returns it with leader
// true, or returns the call already in progress for the same file state
// that computes at least what is wanted (leader false). A call in progress
// for other hashes or another state gives nil: hash without sharing.
func (hc *HashCache) join(abs string, st fileStat, want256, want1 bool) (c *hashCall, leader bool) {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	if c := hc.inflight[abs]; c != nil {
		if c.st == st && (c.want256 || !want256) && (c.want1 || !want1) {
			return c, false
		}
		return nil, false
	}
	if hc.inflight == nil {
		hc.inflight = map[string]*hashCall{}
	}
	c = &hashCall{st: st, want256: want256, want1: want1, done: make(chan struct{})}
	hc.inflight[abs] = c
	return c, true
}

// finish ends the call: waiters see its result.
func (hc *HashCache) finish(abs string, c *hashCall, h fileHashes, err error) {
	hc.mu.Lock()
	delete(hc.inflight, abs)
	hc.mu.Unlock()
	c.h, c.err = h, err
	close(c.done)
}

type cacheEntry struct {
	Size    int64  `json:"size"`
	MtimeNs int64  `json:"mtime_ns"`
	Inode   uint64 `json:"inode"`
	Dev     uint64 `json:"dev"`
	fileHashes
	Used int64 `json:"used"` // unix seconds of the last hit, for pruning
}

// cacheFile is the on-disk form.
type cacheFile struct {
	Version int                   `json:"version"`
	Files   map[string]cacheEntry `json:"files"`
}

// cacheMaxAge drops entries not used for this long when saving.
const cacheMaxAge = 90 * 24 * time.Hour

// DefaultHashCachePath is os.UserCacheDir()/modelpub/hub-hashes.json.
func DefaultHashCachePath() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "modelpub", "hub-hashes.json"), nil
}

// OpenHashCache loads the cache at path ("" → DefaultHashCachePath). A
// missing or unreadable file gives an empty cache, not an error.
func OpenHashCache(path string) (*HashCache, error) {
	if path == "" {
		p, err := DefaultHashCachePath()
		if err != nil {
			return nil, err
		}
		path = p
	}
	hc := &HashCache{path: path, entries: map[string]cacheEntry{}}
	// A damaged or missing cache only costs re-hashing.
	if b, err := os.ReadFile(path); err == nil {
		var f cacheFile
		if json.Unmarshal(b, &f) == nil && f.Version == 1 && f.Files != nil {
			hc.entries = f.Files
		}
	}
	return hc, nil
}

// lookup returns the cached hashes of a file if its identity is unchanged.
func (hc *HashCache) lookup(abs string, st fileStat) (fileHashes, bool) {
	if hc == nil {
		return fileHashes{}, false
	}
	hc.mu.Lock()
	defer hc.mu.Unlock()
	e, ok := hc.entries[abs]
	if !ok || e.Size != st.size || e.MtimeNs != st.mtimeNs || e.Inode != st.inode || e.Dev != st.dev {
		return fileHashes{}, false
	}
	if now := time.Now().Unix(); now-e.Used > 3600 {
		e.Used = now
		hc.entries[abs] = e
		hc.dirty = true
	}
	return e.fileHashes, true
}

// store records hashes, merging with what is cached for the same identity.
func (hc *HashCache) store(abs string, st fileStat, h fileHashes) {
	if hc == nil {
		return
	}
	hc.mu.Lock()
	defer hc.mu.Unlock()
	e := hc.entries[abs]
	if e.Size != st.size || e.MtimeNs != st.mtimeNs || e.Inode != st.inode || e.Dev != st.dev {
		e = cacheEntry{Size: st.size, MtimeNs: st.mtimeNs, Inode: st.inode, Dev: st.dev}
	}
	if h.SHA256 != "" {
		e.SHA256 = h.SHA256
	}
	if h.SHA1 != "" {
		e.SHA1 = h.SHA1
	}
	e.Used = time.Now().Unix()
	hc.entries[abs] = e
	hc.dirty = true
}

// Save writes the cache through a temporary file and a rename, pruning
// entries unused for 90 days. It does nothing when nothing changed.
func (hc *HashCache) Save() error {
	if hc == nil {
		return nil
	}
	hc.mu.Lock()
	defer hc.mu.Unlock()
	if !hc.dirty {
		return nil
	}
	cutoff := time.Now().Add(-cacheMaxAge).Unix()
	for k, e := range hc.entries {
		if e.Used < cutoff {
			delete(hc.entries, k)
		}
	}
	b, err := json.Marshal(cacheFile{Version: 1, Files: hc.entries})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(hc.path), 0o700); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(hc.path, b, 0o600); err != nil {
		return err
	}
	hc.dirty = false
	return nil
}

// fileStat is the identity of a local file for the cache.
type fileStat struct {
	size    int64
	mtimeNs int64
	inode   uint64
	dev     uint64
}

func statOf(path string, fi os.FileInfo) fileStat {
	dev, ino := fileID(path, fi)
	return fileStat{size: fi.Size(), mtimeNs: fi.ModTime().UnixNano(), inode: ino, dev: dev}
}

// Hashes are the two ids of a file's content the Hub compares.
type Hashes struct {
	SHA256 string // the LFS oid, lowercase hex ("" when not asked for)
	SHA1   string // the git blob sha1, lowercase hex ("" when not asked for)
}

// HashFile returns the hashes of the file at path that UploadFolder would
// compare with the Hub's oids: sha256 when lfs, the git blob sha1 when
// not, both for a file up to 10 MiB (as UploadFolder computes them). They
// come from hc when the file is unchanged since they were stored (hc may
// be nil); otherwise the file is read once, reporting bytes to progress,
// and they are stored in hc under the same key UploadFolder uses, so an
// upload of the same path afterwards reads nothing. Symbolic links are
// followed.
func HashFile(ctx context.Context, hc *HashCache, path string, lfs bool, progress func(int64)) (Hashes, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return Hashes{}, err
	}
	info, err := os.Stat(abs)
	if err != nil {
		return Hashes{}, fmt.Errorf("hub: %w", err)
	}
	if !info.Mode().IsRegular() {
		return Hashes{}, fmt.Errorf("hub: %s is not a regular file", path)
	}
	st := statOf(abs, info)
	if h, ok := hc.lookup(abs, st); ok && (!lfs || h.SHA256 != "") && (lfs || h.SHA1 != "") {
		return Hashes(h), nil
	}
	small := st.size <= 10<<20
	want256, want1 := lfs || small, !lfs || small
	// The same file being hashed already through hc (the app hashes a
	// dropped checkpoint while the user decides what to do with it): wait
	// for that hash rather than read the file twice at once. If it fails
	// (its caller gave up), hash here.
	var lead *hashCall
	if hc != nil {
		c, leader := hc.join(abs, st, want256, want1)
		switch {
		case leader:
			lead = c
		case c != nil:
			select {
			case <-c.done:
			case <-ctx.Done():
				return Hashes{}, ctx.Err()
			}
			if c.err == nil {
				return Hashes(c.h), nil
			}
		}
	}
	h, err := hashFile(ctx, abs, st.size, want256, want1, progress)
	if err == nil {
		hc.store(abs, st, h)
	}
	if lead != nil {
		hc.finish(abs, lead, h, err)
	}
	if err != nil {
		return Hashes{}, fmt.Errorf("hub: hash %s: %w", path, err)
	}
	return Hashes(h), nil
}
