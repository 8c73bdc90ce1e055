package hubemu

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
)

func (c *call) tree(ref repoRef, rest []string) {
	rp := c.repo(ref, false)
	if rp == nil {
		return
	}
	rev, dir := splitRevPath(rp, rest[1:])
	q := c.r.URL.Query()
	offset := 0
	var cm *commitRec
	ok := false
	if cur := q.Get("cursor"); cur != "" {
		// The cursor pins the commit, so pages stay consistent while the
		// branch moves.
		raw, err := base64.RawURLEncoding.DecodeString(cur)
		id, off, found := strings.Cut(string(raw), ":")
		n, err2 := strconv.Atoi(off)
		if err == nil && found && err2 == nil && n >= 0 {
			cm, ok = rp.commit(id)
			offset = n
		}
		if !ok {
			rp.mu.Unlock()
			c.fail(http.StatusBadRequest, "", "Invalid cursor")
			return
		}
	} else if cm, ok = rp.resolveRev(rev); !ok {
		rp.mu.Unlock()
		c.revisionNotFound(rev)
		return
	}
	rp.mu.Unlock()
	if dir != "" {
		if err := validatePath(dir); err != nil {
			c.fail(http.StatusBadRequest, "", "Invalid path: %v", err)
			return
		}
	}
	recursive := q.Get("recursive") == "true" || q.Get("recursive") == "1"
	var list []treeEntry
	if e, isFile := cm.Files[dir]; isFile {
		list = []treeEntry{fileTreeEntry(dir, e)}
	} else if cm.isDir(dir) {
		prefix := ""
		if dir != "" {
			prefix = dir + "/"
		}
		for _, te := range cm.entries() {
			if !strings.HasPrefix(te.Path, prefix) {
				continue
			}
			if recursive || !strings.Contains(te.Path[len(prefix):], "/") {
				list = append(list, te)
			}
		}
	} else {
		c.w.Header().Set("X-Repo-Commit", cm.ID)
		c.fail(http.StatusNotFound, "EntryNotFound", "Entry not found: %s", dir)
		return
	}
	if offset > len(list) {
		offset = len(list)
	}
	end := min(offset+c.s.opts.TreePageSize, len(list))
	if end < len(list) {
		nq := c.r.URL.Query()
		nq.Set("cursor", base64.RawURLEncoding.EncodeToString([]byte(cm.ID+":"+strconv.Itoa(end))))
		c.w.Header().Set("Link", "<"+c.origin+c.r.URL.EscapedPath()+"?"+nq.Encode()+`>; rel="next"`)
	}
	page := list[offset:end]
	if page == nil {
		page = []treeEntry{}
	}
	if expand := q.Get("expand"); expand == "true" || expand == "1" {
		rp.mu.Lock()
		page = withLastCommits(rp, cm, page)
		rp.mu.Unlock()
	}
	c.json(http.StatusOK, page)
}

func (c *call) pathsInfo(ref repoRef, rest []string) {
	rp := c.repo(ref, false)
	if rp == nil {
		return
	}
	rev := revArg(rest[1:])
	cm, ok := rp.resolveRev(rev)
	rp.mu.Unlock()
	if !ok {
		c.revisionNotFound(rev)
		return
	}
	var paths []string
	expand := false
	if strings.HasPrefix(c.r.Header.Get("Content-Type"), "application/json") {
		var req struct {
			Paths  []string `json:"paths"`
			Expand bool     `json:"expand"`
		}
		if !c.readJSON(&req, 16<<20) {
			return
		}
		paths, expand = req.Paths, req.Expand
	} else {
		c.r.Body = http.MaxBytesReader(c.w, c.r.Body, 16<<20)
		if err := c.r.ParseForm(); err != nil {
			c.fail(http.StatusBadRequest, "", "Invalid form body: %v", err)
			return
		}
		paths = c.r.PostForm["paths"]
		expand = c.r.PostForm.Get("expand") == "true" || c.r.PostForm.Get("expand") == "True"
	}
	if len(paths) > 1000 {
		c.fail(http.StatusBadRequest, "", "Too many paths: %d (at most 1000)", len(paths))
		return
	}
	out := []treeEntry{}
	for _, p := range paths {
		p = strings.Trim(p, "/")
		if e, ok := cm.Files[p]; ok {
			out = append(out, fileTreeEntry(p, e))
			continue
		}
		if p != "" && cm.isDir(p) {
			for _, te := range cm.entries() {
				if te.Path == p {
					out = append(out, te)
				}
			}
		}
	}
	if expand {
		rp.mu.Lock()
		out = withLastCommits(rp, cm, out)
		rp.mu.Unlock()
	}
	c.json(http.StatusOK, out)
}
