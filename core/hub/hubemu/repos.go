package hubemu

import (
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

type createRequest struct {
	Name         string  `json:"name"`
	Organization *string `json:"organization"`
	Type         string  `json:"type"`
	Visibility   string  `json:"visibility"`
	Private      *bool   `json:"private"`
	License      string  `json:"license"`
	Files        []struct {
		Encoding string `json:"encoding"`
		Path     string `json:"path"`
		Content  string `json:"content"`
	} `json:"files"`
}

// target is the repo a create or delete request names: its type ("" is a
// model), and "name" either as namespace/name or as a name in the
// organization's namespace, else in the caller's.
func (req *createRequest) target(user string) repoRef {
	ref := repoRef{typ: req.Type, ns: user, name: req.Name}
	if ref.typ == "" {
		ref.typ = "model"
	}
	if req.Organization != nil && *req.Organization != "" {
		ref.ns = *req.Organization
	}
	if n, nm, ok := strings.Cut(req.Name, "/"); ok {
		ref.ns, ref.name = n, nm
	}
	return ref
}

func (c *call) createRepo() {
	if c.user == "" {
		c.fail(http.StatusUnauthorized, "", "You must be authenticated to create a repo.")
		return
	}
	var req createRequest
	if !c.readJSON(&req, 64<<20) {
		return
	}
	ref := req.target(c.user)
	typ, ns, name := ref.typ, ref.ns, ref.name
	if typ != "model" && typ != "dataset" && typ != "space" {
		c.fail(http.StatusBadRequest, "", "Invalid repo type %q", typ)
		return
	}
	if err := validateRepoID(ns, name); err != nil {
		c.fail(http.StatusBadRequest, "", "Invalid repo name: %v", err)
		return
	}
	if !c.canWrite(ns) {
		c.fail(http.StatusForbidden, "", "You don't have the rights to create a %s under the namespace %q", typ, ns)
		return
	}
	private := req.Visibility == "private" || req.Visibility == "protected" || req.Private != nil && *req.Private
	files := map[string]fileEntry{}
	add := func(p string, data []byte) error {
		sha, err := c.s.storeBlob(data)
		files[p] = fileEntry{Oid: sha, Size: int64(len(data))}
		return err
	}
	if err := add(".gitattributes", defaultGitattributes()); err != nil {
		c.fail(http.StatusInternalServerError, "", "storage: %v", err)
		return
	}
	if req.License != "" {
		add("README.md", []byte("---\nlicense: "+req.License+"\n---\n"))
	}
	for _, f := range req.Files {
		if err := validatePath(f.Path); err != nil {
			c.fail(http.StatusBadRequest, "", "Invalid file: %v", err)
			return
		}
		data, err := decodeContent(f.Content, f.Encoding)
		if err != nil || len(data) > MaxRegularFileSize {
			c.fail(http.StatusBadRequest, "", "Invalid file %s: content must be base64 and at most 10 MiB", f.Path)
			return
		}
		if err := add(f.Path, data); err != nil {
			c.fail(http.StatusInternalServerError, "", "storage: %v", err)
			return
		}
	}

	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	key := repoKey(typ, ns, name)
	if old := s.repos[key]; old != nil {
		c.json(http.StatusConflict, map[string]any{"error": "You already created this " + typ + " repo", "url": c.repoURL(old)})
		return
	}
	rp := &repo{dir: filepath.Join(s.dir, "repos", filepath.FromSlash(key)), commits: map[string]*commitRec{}}
	rp.meta = repoMeta{Type: typ, NS: ns, Name: name, ID: randomHex(12), Private: private, Created: time.Now().UTC(),
		Branches: map[string]string{}, PRs: map[string]string{}, NextPR: 1}
	os.RemoveAll(rp.dir) // a leftover of an interrupted delete
	cm, err := s.newCommit(rp, nil, "initial commit", "", c.user, files)
	if err == nil {
		rp.meta.Branches["main"] = cm.ID
		rp.meta.LastWrite = cm.Date
		err = rp.saveMeta(s)
	}
	if err != nil {
		os.RemoveAll(rp.dir)
		c.fail(http.StatusInternalServerError, "", "storage: %v", err)
		return
	}
	s.repos[key] = rp
	c.json(http.StatusOK, map[string]any{"url": c.repoURL(rp), "name": rp.fullID(), "id": rp.meta.ID})
}

func (c *call) deleteRepo() {
	var req createRequest
	if !c.readJSON(&req, 1<<20) {
		return
	}
	ref := req.target(c.user)
	rp := c.repo(ref, true)
	if rp == nil {
		return
	}
	defer rp.mu.Unlock()
	s := c.s
	s.mu.Lock()
	delete(s.repos, repoKey(ref.typ, ref.ns, ref.name))
	s.mu.Unlock()
	rp.deleted = true
	trash := filepath.Join(s.dir, "tmp", "deleted-"+randomHex(8))
	if err := os.Rename(rp.dir, trash); err == nil {
		os.RemoveAll(trash)
	} else {
		os.RemoveAll(rp.dir)
	}
	c.w.WriteHeader(http.StatusOK)
}

func (c *call) repoInfo(ref repoRef, rest []string) {
	rp := c.repo(ref, false)
	if rp == nil {
		return
	}
	defer rp.mu.Unlock()
	rev := "main"
	if len(rest) > 0 {
		rev = revArg(rest[1:])
	}
	cm, ok := rp.resolveRev(rev)
	if !ok {
		c.revisionNotFound(rev)
		return
	}
	blobs := c.r.URL.Query().Get("blobs") == "true"
	paths := make([]string, 0, len(cm.Files))
	for p := range cm.Files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	siblings := make([]map[string]any, 0, len(paths))
	for _, p := range paths {
		sib := map[string]any{"rfilename": p}
		if blobs {
			te := fileTreeEntry(p, cm.Files[p])
			sib["blobId"], sib["size"] = te.Oid, te.Size
			if te.LFS != nil {
				sib["lfs"] = map[string]any{"sha256": te.LFS.Oid, "size": te.LFS.Size, "pointerSize": te.LFS.PointerSize}
			}
		}
		siblings = append(siblings, sib)
	}
	var gated any = false
	if rp.meta.Gated != "" {
		gated = rp.meta.Gated
	}
	info := map[string]any{
		"_id": rp.meta.ID, "id": rp.fullID(), "author": rp.meta.NS, "sha": cm.ID,
		"lastModified": cm.Date.Format("2006-01-02T15:04:05.000Z"), "createdAt": rp.meta.Created.Format("2006-01-02T15:04:05.000Z"),
		"private": rp.meta.Private, "gated": gated, "disabled": false, "downloads": 0, "likes": 0,
		"tags": []string{}, "siblings": siblings,
	}
	if rp.meta.Type == "model" {
		info["modelId"] = rp.fullID()
	}
	c.json(http.StatusOK, info)
}

func (c *call) settings(ref repoRef, _ []string) {
	rp := c.repo(ref, true)
	if rp == nil {
		return
	}
	defer rp.mu.Unlock()
	var req struct {
		Private *bool `json:"private"`
		Gated   any   `json:"gated"`
	}
	if !c.readJSON(&req, 1<<20) {
		return
	}
	meta := rp.meta
	if req.Private != nil {
		meta.Private = *req.Private
	}
	switch g := req.Gated.(type) {
	case nil:
	case bool:
		if g {
			meta.Gated = "auto"
		} else {
			meta.Gated = ""
		}
	case string:
		if g != "auto" && g != "manual" {
			c.fail(http.StatusBadRequest, "", "gated must be false, \"auto\" or \"manual\"")
			return
		}
		meta.Gated = g
	default:
		c.fail(http.StatusBadRequest, "", "gated must be false, \"auto\" or \"manual\"")
		return
	}
	old := rp.meta
	rp.meta = meta
	if err := rp.saveMeta(c.s); err != nil {
		rp.meta = old
		c.fail(http.StatusInternalServerError, "", "storage: %v", err)
		return
	}
	c.json(http.StatusOK, map[string]any{})
}
