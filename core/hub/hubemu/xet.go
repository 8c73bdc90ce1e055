package hubemu

// The Hub side of Xet storage (docs/xet in huggingface/hub-docs): the
// xet-write-token and xet-read-token endpoints, the "xet" transfer of the
// LFS batch, and commits of files whose bytes the emulator's XetCAS holds.
// The CAS itself is served under /v1/ and /v2/ on the same origin.

import (
	"bytes"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"modelpub/core/hub/xet"
)

const (
	xetTokenTTL = time.Hour
	// lfsXetOffered marks an oid the repo's LFS batch answered with the
	// xet transfer: a commit of the repo may then take the file from the
	// CAS (by its sha256).
	lfsXetOffered = "xet"
	// lfsXetShard marks, by Xet file hash, a file a shard uploaded with a
	// token of the repo registered in the CAS.
	lfsXetShard = "xetfile"
)

func isCASPath(p string) bool { return strings.HasPrefix(p, "/v1/") || strings.HasPrefix(p, "/v2/") }

// XetCAS returns the emulator's Xet CAS (served under /v1/ and /v2/).
func (s *Server) XetCAS() *XetCAS { return s.cas }

// xetTokenURL is the Hub URL of the repo's xet-{write|read}-token for rev.
func (c *call) xetTokenURL(ref repoRef, kind, rev string) string {
	return c.origin + "/api/" + ref.typ + "s/" + url.PathEscape(ref.ns) + "/" + url.PathEscape(ref.name) +
		"/xet-" + kind + "-token/" + url.PathEscape(rev)
}

// xetToken answers GET /api/{type}s/{repo}/xet-{write|read}-token/{rev}: a
// CAS token for the repo, after the Hub's access checks (a write token
// needs write access; a read token needs read access to the files).
func (c *call) xetToken(ref repoRef, rest []string, write bool) {
	rp := c.repo(ref, write)
	if rp == nil {
		return
	}
	readable := c.canRead(&rp.meta)
	key := rp.key()
	var ok bool
	rev := revArg(rest[1:])
	if !write {
		_, ok = rp.resolveRev(rev)
	}
	rp.mu.Unlock()
	if !write {
		if !readable {
			status := http.StatusForbidden
			if c.user == "" {
				status = http.StatusUnauthorized
			}
			c.fail(status, "GatedRepo", "Access to %s %s is restricted.", ref.typ, ref.ns+"/"+ref.name)
			return
		}
		if !ok {
			c.revisionNotFound(rev)
			return
		}
	}
	c.w.Header().Set("Content-Type", "application/json; charset=utf-8")
	c.w.WriteHeader(http.StatusOK)
	_, _ = c.w.Write(c.s.cas.TokenJSON(c.origin, key, write, xetTokenTTL))
}

// serveCAS hands a request to the CAS; its bearer token is a CAS token,
// not a Hub one (newCall does not check it). A shard the CAS accepts is
// remembered for the repo its token was issued for: the files it
// registers are the ones a commit of that repo may take from the CAS.
func (c *call) serveCAS() {
	if c.r.Method != http.MethodPost || c.r.URL.Path != "/v1/shards" {
		c.s.cas.ServeHTTP(c.w, c.r)
		return
	}
	body, err := readBody(c.r, xet.MaxShardSize+1)
	if err != nil {
		c.fail(http.StatusBadRequest, "", "reading the shard: %v", err)
		return
	}
	c.r.Body = io.NopCloser(bytes.NewReader(body))
	sw := &casStatus{ResponseWriter: c.w}
	c.s.cas.ServeHTTP(sw, c.r)
	if sw.status >= 300 {
		return
	}
	key, write, ok := c.s.cas.TokenScope(strings.TrimPrefix(c.r.Header.Get("Authorization"), "Bearer "))
	sh, err := xet.ParseShard(body)
	if !ok || !write || err != nil {
		return
	}
	c.s.mu.Lock()
	rp := c.s.repos[key]
	c.s.mu.Unlock()
	if rp == nil {
		return
	}
	for _, f := range sh.Files {
		if err := rp.markLFS(lfsXetShard, f.Hash.String()); err != nil {
			c.s.logf("hubemu: %s: marking Xet file %s: %v", rp.fullID(), f.Hash, err)
		}
	}
}

// casStatus keeps the status the CAS answered.
type casStatus struct {
	http.ResponseWriter
	status int
}

func (w *casStatus) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *casStatus) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

// takeXetFiles stores, as LFS objects the repo may use, the files of the
// commit's lfsFile operations that the repo's LFS batch offered to Xet and
// that the CAS now holds (a shard registered them under that sha256).
func (c *call) takeXetFiles(rp *repo, ops []commitOp, grants map[string]bool) {
	for _, op := range ops {
		oid := op.entry.Oid
		if op.kind != "lfsFile" || !validOid(oid) || grants[oid] || rp.hasLFS(oid) || !rp.hasMarker(lfsXetOffered, oid) {
			continue
		}
		f, ok := c.s.XetFile(oid)
		if !ok || !rp.hasMarker(lfsXetShard, f.Hash.String()) {
			continue // applyOps refuses it as not uploaded
		}
		// The bytes are checked against oid even when the object is
		// stored: the record of its Xet hash says the CAS file is it.
		if err := c.s.storeXetFile(f, oid); err != nil {
			c.s.logf("hubemu: %s: taking %s from the CAS: %v", rp.fullID(), oid, err)
			continue
		}
		if err := rp.markLFS(lfsUploaded, oid); err != nil {
			c.s.logf("hubemu: %s: marking %s: %v", rp.fullID(), oid, err)
		}
	}
}

// XetFile finds the file a shard registered in the CAS under sha256 oid
// (lowercase hex, as LFS pointers name it). Only the spec's form of the
// shard's metadata extension counts: a Xet hash, as xet-core and
// @huggingface/hub write it (xet.ParseShard reads it back to the digest);
// a shard that wrote the digest's raw bytes registered another sha256.
func (s *Server) XetFile(oid string) (xet.FileInfo, bool) {
	b, err := hex.DecodeString(oid)
	if err != nil || len(b) != 32 || !validOid(oid) {
		return xet.FileInfo{}, false
	}
	return s.cas.FileBySHA256([32]byte(b))
}

// storeXetFile writes a CAS file's bytes into the LFS store, checked
// against oid (whatever sha256 the shard declared).
func (s *Server) storeXetFile(f xet.FileInfo, oid string) error {
	tmp, err := s.tempFile()
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := s.cas.WriteFile(tmp, f); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := s.installObject(tmp.Name(), oid, int64(f.Size())); err != nil {
		return err
	}
	rec := s.xetRecordPath(oid)
	if err := os.MkdirAll(filepath.Dir(rec), 0o755); err != nil {
		return err
	}
	return os.WriteFile(rec, []byte(f.Hash.String()), 0o644)
}

// xetRecordPath holds the Xet hash of a CAS file whose bytes were checked
// to be LFS object oid.
func (s *Server) xetRecordPath(oid string) string {
	return filepath.Join(s.dir, "objects", "xet", oid[:2], oid)
}

// checkedXetFile is the CAS file of LFS object oid if its bytes were
// checked against oid when a commit took it.
func (s *Server) checkedXetFile(oid string) (xet.FileInfo, bool) {
	f, ok := s.XetFile(oid)
	if !ok {
		return xet.FileInfo{}, false
	}
	b, err := os.ReadFile(s.xetRecordPath(oid))
	if err != nil || string(b) != f.Hash.String() {
		return xet.FileInfo{}, false
	}
	return f, true
}

// xetFileInfo answers a resolve that accepts
// application/vnd.xet-fileinfo+json for a file stored in the CAS: the
// headers @huggingface/hub's fileDownloadInfo reads (size, Xet hash, the
// reconstruction and xet-read-token links) and no body; the client then
// reads the bytes from the CAS. It reports whether it answered.
func (c *call) xetFileInfo(ref repoRef, e fileEntry, commit string) bool {
	if !e.LFS || !strings.Contains(c.r.Header.Get("Accept"), "application/vnd.xet-fileinfo+json") {
		return false
	}
	f, ok := c.s.checkedXetFile(e.Oid)
	if !ok {
		return false
	}
	h := c.w.Header()
	c.s.cas.SetXetFileInfo(h, f, c.origin, c.xetTokenURL(ref, "read", commit))
	h.Set("ETag", `"`+e.Oid+`"`)
	h.Set("X-Linked-Etag", `"`+e.Oid+`"`)
	h.Set("Content-Length", "0")
	c.w.WriteHeader(http.StatusOK)
	return true
}
