package hubemu

import (
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

func (c *call) resolve(ref repoRef, segs []string, raw bool) {
	rp := c.repo(ref, false)
	if rp == nil {
		return
	}
	gated := rp.meta.Gated != "" && !c.canWrite(rp.meta.NS)
	rev, p := splitRevPath(rp, segs)
	cm, ok := rp.resolveRev(rev)
	rp.mu.Unlock()
	if gated {
		status := http.StatusForbidden
		if c.user == "" {
			status = http.StatusUnauthorized
		}
		c.fail(status, "GatedRepo", "Access to %s %s is restricted. You must have access to it and be authenticated to access it. Please log in.", ref.typ, ref.ns+"/"+ref.name)
		return
	}
	if !ok {
		c.revisionNotFound(rev)
		return
	}
	h := c.w.Header()
	h.Set("X-Repo-Commit", cm.ID)
	if err := validatePath(p); err != nil {
		c.fail(http.StatusBadRequest, "", "Invalid path: %v", err)
		return
	}
	e, ok := cm.Files[p]
	if !ok {
		c.fail(http.StatusNotFound, "EntryNotFound", "Entry not found")
		return
	}
	if !raw && c.xetFileInfo(ref, e, cm.ID) {
		return
	}
	var content io.ReadSeeker
	size, etag := e.Size, e.Oid
	if raw && e.LFS {
		ptr := lfsPointer(e.Oid, e.Size)
		content, size, etag = strings.NewReader(ptr), int64(len(ptr)), gitBlobSHA1([]byte(ptr))
	} else {
		f, err := c.s.openContent(e)
		if err != nil {
			c.fail(http.StatusInternalServerError, "", "storage: %v", err)
			return
		}
		defer f.Close()
		content = f
	}
	h.Set("ETag", `"`+etag+`"`)
	h.Set("X-Linked-Etag", `"`+etag+`"`)
	h.Set("X-Linked-Size", strconv.FormatInt(size, 10))
	h.Set("Accept-Ranges", "bytes")
	if size == 0 && c.r.Header.Get("Range") != "" {
		// ServeContent would answer 416; clients probe with bytes=0-0.
		h.Set("Content-Range", "bytes */0")
		h.Set("Content-Length", "0")
		c.w.WriteHeader(http.StatusOK)
		return
	}
	if h.Get("Content-Type") == "" && !e.LFS {
		if ct := contentTypeByName(p); ct != "" {
			h.Set("Content-Type", ct)
		}
	}
	if e.LFS && h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/octet-stream")
	}
	http.ServeContent(c.w, c.r, url.PathEscape(p), time.Time{}, content)
}

func contentTypeByName(p string) string {
	switch strings.ToLower(filepath.Ext(p)) {
	case ".json":
		return "application/json; charset=utf-8"
	case ".md", ".txt", ".gitattributes", ".gitignore", ".py", ".yaml", ".yml":
		return "text/plain; charset=utf-8"
	}
	return ""
}
