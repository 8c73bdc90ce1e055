package hubemu

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// MaxRegularFileSize is the Hub's limit for a file committed as a regular
// git blob; larger files must go through LFS.
const MaxRegularFileSize = 10 << 20

const tooLargeMessage = "Your push was rejected because it contains files larger than 10 MiB. " +
	"Please use https://git-lfs.github.com/ to store large files."

// repo returns the repo of ref, locked, after the access checks; on
// failure it has answered and returns nil. Private repos are invisible to
// anyone but their owner; write needs a token allowed on the namespace.
func (c *call) repo(ref repoRef, write bool) *repo {
	if err := validateRepoID(ref.ns, ref.name); err != nil {
		c.fail(http.StatusBadRequest, "", "Invalid repo id: %v", err)
		return nil
	}
	c.s.mu.Lock()
	rp := c.s.repos[repoKey(ref.typ, ref.ns, ref.name)]
	c.s.mu.Unlock()
	if rp != nil {
		rp.mu.Lock()
		if rp.deleted {
			rp.mu.Unlock()
			rp = nil
		}
	}
	if rp == nil || rp.meta.Private && !c.canWrite(rp.meta.NS) {
		if rp != nil {
			rp.mu.Unlock()
		}
		status := http.StatusNotFound
		if c.user == "" {
			status = http.StatusUnauthorized
		}
		c.fail(status, "RepoNotFound", "Repository Not Found for url: %s%s.", c.origin, c.r.URL.Path)
		return nil
	}
	if write && !c.canWrite(rp.meta.NS) {
		rp.mu.Unlock()
		if c.user == "" {
			c.fail(http.StatusUnauthorized, "", "You must be authenticated with a write token to access this resource.")
		} else {
			c.fail(http.StatusForbidden, "", "You don't have the rights to write to %s: the token of %q cannot write to namespace %q.",
				ref.ns+"/"+ref.name, c.user, rp.meta.NS)
		}
		return nil
	}
	return rp
}

// revArg is a revision taken from URL segments: one encoded segment
// (refs%2Fpr%2F1) or raw segments joined.
func revArg(segs []string) string {
	var parts []string
	for _, s := range segs {
		if s != "" {
			parts = append(parts, unesc(s))
		}
	}
	if len(parts) == 0 {
		return "main"
	}
	return strings.Join(parts, "/")
}

// splitRevPath splits the "{rev}/{path}" segments of tree and resolve
// URLs: a first segment holding %2F is the revision; otherwise the longest
// run of segments naming a known ref wins (refs/pr/1, a branch with '/').
func splitRevPath(rp *repo, segs []string) (rev, path string) {
	for len(segs) > 0 && segs[len(segs)-1] == "" {
		segs = segs[:len(segs)-1]
	}
	if len(segs) == 0 {
		return "main", ""
	}
	join := func(ss []string) string {
		out := make([]string, len(ss))
		for i, s := range ss {
			out[i] = unesc(s)
		}
		return strings.Join(out, "/")
	}
	n := 1
	if !strings.Contains(strings.ToUpper(segs[0]), "%2F") {
		for k := len(segs); k >= 1; k-- {
			if rp.knownRev(join(segs[:k])) {
				n = k
				break
			}
		}
	}
	return join(segs[:n]), join(segs[n:])
}

func (c *call) revisionNotFound(rev string) {
	c.fail(http.StatusNotFound, "RevisionNotFound", "Invalid rev id: %s", rev)
}

// --- whoami, create, delete ------------------------------------------------

func (c *call) whoami() {
	if c.user == "" {
		c.fail(http.StatusUnauthorized, "", "Invalid credentials in Authorization header")
		return
	}
	role := "write"
	if c.read {
		role = "read"
	}
	c.json(http.StatusOK, map[string]any{
		"type": "user", "id": stableID("user/" + c.user), "name": c.user, "fullname": c.user,
		"email": nil, "emailVerified": false, "canPay": false, "isPro": false, "periodEnd": nil,
		"avatarUrl": "/avatars/" + c.user + ".svg", "billingMode": "postpaid", "orgs": c.s.orgsOf(c.user),
		"auth": map[string]any{"type": "access_token", "accessToken": map[string]any{
			"displayName": "localhub", "role": role, "createdAt": "2024-01-01T00:00:00.000Z"}},
	})
}

// stableID is a 24-hex id derived from s.
func stableID(s string) string { return gitBlobSHA1([]byte(s))[:24] }

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

func (c *call) createRepo() {
	if c.user == "" {
		c.fail(http.StatusUnauthorized, "", "You must be authenticated to create a repo.")
		return
	}
	var req createRequest
	if !c.readJSON(&req, 64<<20) {
		return
	}
	typ := req.Type
	if typ == "" {
		typ = "model"
	}
	if typ != "model" && typ != "dataset" && typ != "space" {
		c.fail(http.StatusBadRequest, "", "Invalid repo type %q", typ)
		return
	}
	ns, name := c.user, req.Name
	if req.Organization != nil && *req.Organization != "" {
		ns = *req.Organization
	}
	if n, nm, ok := strings.Cut(req.Name, "/"); ok {
		ns, name = n, nm
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
	typ := req.Type
	if typ == "" {
		typ = "model"
	}
	ns, name := c.user, req.Name
	if req.Organization != nil && *req.Organization != "" {
		ns = *req.Organization
	}
	if n, nm, ok := strings.Cut(req.Name, "/"); ok {
		ns, name = n, nm
	}
	rp := c.repo(repoRef{typ, ns, name}, true)
	if rp == nil {
		return
	}
	defer rp.mu.Unlock()
	s := c.s
	s.mu.Lock()
	delete(s.repos, repoKey(typ, ns, name))
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

// --- validate-yaml ---------------------------------------------------------

// validateYAML checks a README.md's metadata (POST /api/validate-yaml, body
// {"content", "repoType"} as JSON, or form-encoded as older huggingface_hub
// sends it): 200 {"errors": [], "warnings": [{"message"}]} when the Hub
// would accept it, else 400 with the errors as {"message"} objects, the
// shape huggingface_hub's create_commit reads.
func (c *call) validateYAML() {
	var req struct {
		Content  *string `json:"content"`
		RepoType string  `json:"repoType"`
	}
	if strings.HasPrefix(c.r.Header.Get("Content-Type"), "application/json") {
		if !c.readJSON(&req, 16<<20) {
			return
		}
	} else {
		c.r.Body = http.MaxBytesReader(c.w, c.r.Body, 16<<20)
		if err := c.r.ParseForm(); err != nil {
			c.fail(http.StatusBadRequest, "", "Invalid form body: %v", err)
			return
		}
		if v, ok := c.r.PostForm["content"]; ok && len(v) > 0 {
			req.Content = &v[0]
		}
		req.RepoType = c.r.PostForm.Get("repoType")
	}
	if req.Content == nil {
		c.fail(http.StatusBadRequest, "", "content is required")
		return
	}
	typ := req.RepoType
	if typ == "" {
		typ = "model"
	}
	if typ != "model" && typ != "dataset" && typ != "space" {
		c.fail(http.StatusBadRequest, "", "Invalid repoType %q: use model, dataset or space", typ)
		return
	}
	p := checkCard(*req.Content, typ)
	messages := func(ss []string) []map[string]string {
		out := make([]map[string]string, 0, len(ss))
		for _, s := range ss {
			out = append(out, map[string]string{"message": s})
		}
		return out
	}
	status := http.StatusOK
	if len(p.errors) > 0 {
		status = http.StatusBadRequest
	}
	c.json(status, map[string]any{"errors": messages(p.errors), "warnings": messages(p.warnings)})
}

// --- repo info, refs, commits, settings ------------------------------------

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

func (c *call) refs(ref repoRef, _ []string) {
	rp := c.repo(ref, false)
	if rp == nil {
		return
	}
	defer rp.mu.Unlock()
	type refJSON struct {
		Name         string `json:"name"`
		Ref          string `json:"ref"`
		TargetCommit string `json:"targetCommit"`
	}
	branches := []refJSON{}
	for b, id := range rp.meta.Branches {
		branches = append(branches, refJSON{b, "refs/heads/" + b, id})
	}
	sort.Slice(branches, func(i, j int) bool { return branches[i].Name < branches[j].Name })
	out := map[string]any{"branches": branches, "converts": []any{}, "tags": []any{}}
	if q := c.r.URL.Query().Get("include_prs"); q == "1" || q == "true" {
		prs := []refJSON{}
		for n, id := range rp.meta.PRs {
			prs = append(prs, refJSON{"refs/pr/" + n, "refs/pr/" + n, id})
		}
		sort.Slice(prs, func(i, j int) bool { return prs[i].Name < prs[j].Name })
		out["pullRequests"] = prs
	}
	c.json(http.StatusOK, out)
}

// hubTime is the Hub's date format in JSON answers.
const hubTime = "2006-01-02T15:04:05.000Z"

// commits lists the history of a revision, newest first, as the Hub does
// (GET /api/{type}s/{id}/commits/{rev}): {id, title, message, authors:
// [{user, avatar}], date}, ?limit= per page (default 100, at most 1000)
// and the next page in a Link header, absolute, rel="next".
func (c *call) commits(ref repoRef, rest []string) {
	rp := c.repo(ref, false)
	if rp == nil {
		return
	}
	defer rp.mu.Unlock()
	rev := revArg(rest[1:])
	cm, ok := rp.resolveRev(rev)
	if !ok {
		c.revisionNotFound(rev)
		return
	}
	q := c.r.URL.Query()
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			c.fail(http.StatusBadRequest, "", "limit must be a number from 1 to 1000")
			return
		}
		limit = n
	}
	page := 0
	if v := q.Get("p"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			c.fail(http.StatusBadRequest, "", "p must be a page number")
			return
		}
		page = n
	}
	out := []map[string]any{}
	skip := page * limit
	for i := 0; ; i++ {
		if i >= skip {
			out = append(out, map[string]any{"id": cm.ID, "title": cm.Title, "message": cm.Message,
				"authors": []map[string]string{{"user": cm.Author, "avatar": "/avatars/" + cm.Author + ".svg"}},
				"date":    cm.Date.Format(hubTime)})
		}
		if len(cm.Parents) == 0 {
			break
		}
		parent, ok := rp.commit(cm.Parents[0])
		if !ok {
			break
		}
		if len(out) == limit {
			nq := c.r.URL.Query()
			nq.Set("p", strconv.Itoa(page+1))
			c.w.Header().Set("Link", "<"+c.origin+c.r.URL.EscapedPath()+"?"+nq.Encode()+`>; rel="next"`)
			break
		}
		cm = parent
	}
	c.json(http.StatusOK, out)
}

// lastCommitJSON is the expand=true lastCommit of a tree or paths-info
// entry: the newest commit of the revision's history that changed it.
type lastCommitJSON struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	Date  string `json:"date"`
}

// withLastCommits returns a copy of entries, each with the commit that
// last changed it in the first-parent history of head (at most 1000
// commits back; older changes are put on the oldest commit looked at).
// Callers hold rp.mu.
func withLastCommits(rp *repo, head *commitRec, entries []treeEntry) []treeEntry {
	chain := []*commitRec{head}
	for cm := head; len(chain) < 1000 && len(cm.Parents) > 0; {
		parent, ok := rp.commit(cm.Parents[0])
		if !ok {
			break
		}
		chain = append(chain, parent)
		cm = parent
	}
	oids := make([]map[string]string, len(chain))
	oidsAt := func(i int) map[string]string {
		if oids[i] == nil {
			m := map[string]string{}
			for _, te := range chain[i].entries() {
				m[te.Path] = te.Oid
			}
			oids[i] = m
		}
		return oids[i]
	}
	out := make([]treeEntry, len(entries))
	for k, te := range entries {
		i := 0
		for ; i+1 < len(chain); i++ {
			if oidsAt(i)[te.Path] != oidsAt(i + 1)[te.Path] {
				break
			}
		}
		cm := chain[i]
		te.LastCommit = &lastCommitJSON{ID: cm.ID, Title: cm.Title, Date: cm.Date.Format(hubTime)}
		out[k] = te
	}
	return out
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

// --- branches --------------------------------------------------------------

func (c *call) branch(ref repoRef, rest []string) {
	rp := c.repo(ref, true)
	if rp == nil {
		return
	}
	defer rp.mu.Unlock()
	name := revArg(rest[1:])
	if len(rest) < 2 || !validBranch(name) {
		c.fail(http.StatusBadRequest, "", "Invalid branch name %q", name)
		return
	}
	if c.r.Method == http.MethodDelete {
		if _, ok := rp.meta.Branches[name]; !ok {
			c.revisionNotFound(name)
			return
		}
		if name == "main" {
			c.fail(http.StatusForbidden, "", "You cannot delete the default branch")
			return
		}
		old := rp.meta.Branches[name]
		delete(rp.meta.Branches, name)
		if err := rp.saveMeta(c.s); err != nil {
			rp.meta.Branches[name] = old
			c.fail(http.StatusInternalServerError, "", "storage: %v", err)
			return
		}
		c.json(http.StatusOK, map[string]any{})
		return
	}
	var req struct {
		StartingPoint string `json:"startingPoint"`
	}
	if c.r.ContentLength != 0 {
		body, err := io.ReadAll(io.LimitReader(c.r.Body, 1<<20))
		if err == nil && len(bytes.TrimSpace(body)) > 0 {
			if err := json.Unmarshal(body, &req); err != nil {
				c.fail(http.StatusBadRequest, "", "Invalid JSON body: %v", err)
				return
			}
		}
	}
	if _, ok := rp.meta.Branches[name]; ok {
		c.fail(http.StatusConflict, "", "Reference already exists")
		return
	}
	start := req.StartingPoint
	if start == "" {
		start = "main"
	}
	cm, ok := rp.resolveRev(start)
	if !ok {
		c.revisionNotFound(start)
		return
	}
	rp.meta.Branches[name] = cm.ID
	if err := rp.saveMeta(c.s); err != nil {
		delete(rp.meta.Branches, name)
		c.fail(http.StatusInternalServerError, "", "storage: %v", err)
		return
	}
	c.json(http.StatusOK, map[string]any{})
}

// --- preupload -------------------------------------------------------------

type preuploadRequest struct {
	Files []struct {
		Path   string `json:"path"`
		Sample string `json:"sample"`
		Size   int64  `json:"size"`
	} `json:"files"`
	GitIgnore     *string `json:"gitIgnore"`
	GitAttributes *string `json:"gitAttributes"`
}

// readSmallFile reads a regular file of a commit for .gitattributes and
// .gitignore, at most 1 MiB.
func (s *Server) readSmallFile(cm *commitRec, p string) string {
	e, ok := cm.Files[p]
	if !ok || e.LFS || e.Size > 1<<20 {
		return ""
	}
	data, err := os.ReadFile(s.blobPath(e.Oid))
	if err != nil {
		return ""
	}
	return string(data)
}

// commitAt looks the repo up (for writing or reading) and resolves rev to
// its commit, answering the error itself when either is missing.
func (c *call) commitAt(ref repoRef, write bool, rev string) (*commitRec, bool) {
	rp := c.repo(ref, write)
	if rp == nil {
		return nil, false
	}
	cm, ok := rp.resolveRev(rev)
	rp.mu.Unlock()
	if !ok {
		c.revisionNotFound(rev)
		return nil, false
	}
	return cm, true
}

func (c *call) preupload(ref repoRef, rest []string) {
	cm, ok := c.commitAt(ref, true, revArg(rest[1:]))
	if !ok {
		return
	}
	var req preuploadRequest
	if !c.readJSON(&req, 16<<20) {
		return
	}
	if len(req.Files) > 1000 {
		c.fail(http.StatusBadRequest, "", "Too many files in one preupload call: %d (at most 1000)", len(req.Files))
		return
	}
	attrs := c.s.readSmallFile(cm, ".gitattributes")
	if req.GitAttributes != nil {
		attrs = *req.GitAttributes
	}
	ignore := c.s.readSmallFile(cm, ".gitignore")
	if req.GitIgnore != nil {
		ignore = *req.GitIgnore
	}
	lfsRules, ignoreRules := parseGitattributes(attrs), parseGitignore(ignore)

	type fileOut struct {
		Path         string `json:"path"`
		UploadMode   string `json:"uploadMode"`
		ShouldIgnore bool   `json:"shouldIgnore"`
		Oid          string `json:"oid,omitempty"`
	}
	out := make([]fileOut, 0, len(req.Files))
	for _, f := range req.Files {
		if err := validatePath(f.Path); err != nil {
			c.fail(http.StatusBadRequest, "", "Invalid path: %v", err)
			return
		}
		if f.Size < 0 {
			c.fail(http.StatusBadRequest, "", "Invalid size %d for %s", f.Size, f.Path)
			return
		}
		sample, err := base64.StdEncoding.DecodeString(f.Sample)
		if err != nil || len(sample) > 1024 {
			c.fail(http.StatusBadRequest, "", "Invalid sample for %s: base64 of the first 512 bytes expected", f.Path)
			return
		}
		mode := "regular"
		if f.Size > 0 && (lfsTracked(lfsRules, f.Path) || f.Size >= MaxRegularFileSize ||
			looksBinary(sample, f.Size > int64(len(sample)))) {
			mode = "lfs"
		}
		fo := fileOut{Path: f.Path, UploadMode: mode, ShouldIgnore: ignored(ignoreRules, f.Path)}
		if e, ok := cm.Files[f.Path]; ok {
			fo.Oid = e.Oid
		}
		out = append(out, fo)
	}
	c.json(http.StatusOK, map[string]any{"files": out, "commitOid": cm.ID})
}

// --- commit ----------------------------------------------------------------

type commitOp struct {
	kind  string // file, lfsFile, deletedFile, deletedFolder
	path  string
	entry fileEntry
}

// readLine reads one NDJSON line of at most max bytes.
func readLine(br *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(line)+len(chunk) > max {
			return nil, errTooLarge
		}
		line = append(line, chunk...)
		if err == bufio.ErrBufferFull {
			continue
		}
		return line, err
	}
}

var errTooLarge = errors.New("line too large")

func decodeContent(content, encoding string) ([]byte, error) {
	switch strings.ToLower(encoding) {
	case "utf-8", "utf8":
		return []byte(content), nil
	case "", "base64":
		data, err := base64.StdEncoding.DecodeString(content)
		if err != nil {
			data, err = base64.RawStdEncoding.DecodeString(content)
		}
		return data, err
	}
	return nil, fmt.Errorf("unknown encoding %q", encoding)
}

// parseCommitBody reads the NDJSON body, storing regular files' content
// as it goes (content-addressed, so an aborted commit leaves nothing
// visible). On failure it has answered.
func (c *call) parseCommitBody() (summary, description, parent string, ops []commitOp, ok bool) {
	// A line holds at most 10 MiB of base64 content plus a path.
	const maxLine = MaxRegularFileSize/3*4 + 64<<10
	br := bufio.NewReaderSize(c.r.Body, 64<<10)
	sawHeader := false
	for {
		line, err := readLine(br, maxLine)
		if errors.Is(err, errTooLarge) {
			c.fail(http.StatusBadRequest, "", tooLargeMessage)
			return
		}
		if err != nil && err != io.EOF {
			c.fail(http.StatusBadRequest, "", "Reading the commit body: %v", err)
			return
		}
		if t := bytes.TrimSpace(line); len(t) > 0 {
			var l struct {
				Key   string `json:"key"`
				Value struct {
					Summary      string `json:"summary"`
					Description  string `json:"description"`
					ParentCommit string `json:"parentCommit"`
					Path         string `json:"path"`
					Content      string `json:"content"`
					Encoding     string `json:"encoding"`
					Algo         string `json:"algo"`
					Oid          string `json:"oid"`
					Size         *int64 `json:"size"`
				} `json:"value"`
			}
			if e := json.Unmarshal(t, &l); e != nil {
				c.fail(http.StatusBadRequest, "", "Invalid NDJSON line: %v", e)
				return
			}
			v := &l.Value
			if !sawHeader && l.Key != "header" {
				c.fail(http.StatusBadRequest, "", "The first line of a commit must be its header")
				return
			}
			if l.Key != "header" {
				p := v.Path
				if l.Key == "deletedFolder" {
					p = strings.TrimSuffix(p, "/")
				}
				if e := validatePath(p); e != nil {
					c.fail(http.StatusBadRequest, "", "Invalid path: %v", e)
					return
				}
				v.Path = p
			}
			switch l.Key {
			case "header":
				if sawHeader {
					c.fail(http.StatusBadRequest, "", "A commit has one header")
					return
				}
				sawHeader = true
				summary, description, parent = v.Summary, v.Description, v.ParentCommit
			case "file":
				data, e := decodeContent(v.Content, v.Encoding)
				if e != nil {
					c.fail(http.StatusBadRequest, "", "Invalid content for %s: %v", v.Path, e)
					return
				}
				if len(data) > MaxRegularFileSize {
					c.fail(http.StatusBadRequest, "", tooLargeMessage)
					return
				}
				sha, e := c.s.storeBlob(data)
				if e != nil {
					c.fail(http.StatusInternalServerError, "", "storage: %v", e)
					return
				}
				ops = append(ops, commitOp{"file", v.Path, fileEntry{Oid: sha, Size: int64(len(data))}})
			case "lfsFile":
				if v.Algo != "" && v.Algo != "sha256" {
					c.fail(http.StatusBadRequest, "", "Unsupported LFS algo %q", v.Algo)
					return
				}
				size := int64(-1)
				if v.Size != nil {
					size = *v.Size
				}
				ops = append(ops, commitOp{"lfsFile", v.Path, fileEntry{LFS: true, Oid: strings.ToLower(v.Oid), Size: size}})
			case "deletedFile", "deletedFolder":
				ops = append(ops, commitOp{l.Key, v.Path, fileEntry{}})
			default:
				c.fail(http.StatusBadRequest, "", "Unknown commit operation %q", l.Key)
				return
			}
		}
		if err == io.EOF {
			break
		}
	}
	if !sawHeader {
		c.fail(http.StatusBadRequest, "", "Empty commit body: a header line is required")
		return
	}
	return summary, description, parent, ops, true
}

// lfsNotFound is the Hub's refusal of an lfsFile whose object the repo
// cannot use; it is the same whether or not the server stores the object,
// so it tells nothing about other repos.
const lfsNotFound = "Your push was rejected because an LFS pointer pointed to a file that does not exist: %s (oid %s). Upload it through the LFS batch first."

// lfsGrants returns, among the oids the commit references that target may
// not use yet, those that another repo the caller can read references in
// one of its commits: the Hub lets a commit point at content the committer
// can already download. Each repo is locked on its own (never two at once).
func (c *call) lfsGrants(target *repo, ops []commitOp) map[string]bool {
	var need []string
	for _, op := range ops {
		if op.kind == "lfsFile" && validOid(op.entry.Oid) && !target.hasLFS(op.entry.Oid) {
			need = append(need, op.entry.Oid)
		}
	}
	grants := map[string]bool{}
	if len(need) == 0 {
		return grants
	}
	c.s.mu.Lock()
	repos := make([]*repo, 0, len(c.s.repos))
	for _, rp := range c.s.repos {
		if rp != target {
			repos = append(repos, rp)
		}
	}
	c.s.mu.Unlock()
	for _, rp := range repos {
		rp.mu.Lock()
		readable := !rp.deleted && c.canRead(&rp.meta)
		rp.mu.Unlock()
		if !readable {
			continue
		}
		for _, oid := range need {
			if !grants[oid] && rp.hasMarker(lfsReferenced, oid) {
				grants[oid] = true
			}
		}
	}
	return grants
}

// applyOps returns the files of base changed by ops, or an answered error.
// An lfsFile must name an object rp may use, or one of grants.
func (c *call) applyOps(rp *repo, base map[string]fileEntry, ops []commitOp, grants map[string]bool) (map[string]fileEntry, bool) {
	files := make(map[string]fileEntry, len(base)+len(ops))
	for p, e := range base {
		files[p] = e
	}
	for _, op := range ops {
		switch op.kind {
		case "file":
			files[op.path] = op.entry
		case "lfsFile":
			stored := int64(-1)
			if rp.hasLFS(op.entry.Oid) || grants[op.entry.Oid] {
				stored = c.s.objectSize(op.entry.Oid)
			}
			if stored < 0 {
				c.fail(http.StatusBadRequest, "", lfsNotFound, op.path, op.entry.Oid)
				return nil, false
			}
			if op.entry.Size >= 0 && op.entry.Size != stored {
				c.fail(http.StatusBadRequest, "", "LFS file %s: size %d does not match the stored object (%d bytes)", op.path, op.entry.Size, stored)
				return nil, false
			}
			e := op.entry
			e.Size = stored
			files[op.path] = e
		case "deletedFile":
			if _, ok := files[op.path]; !ok {
				c.fail(http.StatusNotFound, "EntryNotFound", "A file with this name doesn't exist: %s", op.path)
				return nil, false
			}
			delete(files, op.path)
		case "deletedFolder":
			n := 0
			for p := range files {
				if strings.HasPrefix(p, op.path+"/") {
					delete(files, p)
					n++
				}
			}
			if n == 0 {
				c.fail(http.StatusNotFound, "EntryNotFound", "A folder with this name doesn't exist: %s", op.path)
				return nil, false
			}
		}
	}
	// A path cannot be both a file and a folder.
	for p := range files {
		for d := p; ; {
			i := strings.LastIndexByte(d, '/')
			if i < 0 {
				break
			}
			d = d[:i]
			if _, ok := files[d]; ok {
				c.fail(http.StatusBadRequest, "", "Path conflict: %s is a file, so %s cannot be created", d, p)
				return nil, false
			}
		}
	}
	return files, true
}

func (c *call) commit(ref repoRef, rest []string) {
	rp := c.repo(ref, true)
	if rp == nil {
		return
	}
	rp.mu.Unlock()
	rev := revArg(rest[1:])
	q := c.r.URL.Query().Get("create_pr")
	createPR := q == "1" || q == "true"

	summary, description, parent, ops, ok := c.parseCommitBody()
	if !ok {
		return
	}
	c.s.recordCommit(c.rec, ops)
	grants := c.lfsGrants(rp, ops)
	if rp = c.repo(ref, true); rp == nil {
		return
	}
	defer rp.mu.Unlock()

	var base *commitRec
	var target string // the ref that moves; "" for a new PR
	if createPR {
		if parent != "" {
			base, ok = rp.commit(parent)
			if !ok {
				c.revisionNotFound(parent)
				return
			}
		} else if base, ok = rp.resolveRev(rev); !ok {
			c.revisionNotFound(rev)
			return
		}
	} else {
		id, isRef := rp.refTarget(rev)
		if !isRef {
			if _, isCommit := rp.commit(rev); isCommit {
				c.fail(http.StatusBadRequest, "", "Cannot commit to a commit id (%s): use a branch", rev)
			} else {
				c.revisionNotFound(rev)
			}
			return
		}
		base, _ = rp.commit(id)
		if parent != "" && parent != base.ID {
			c.fail(http.StatusPreconditionFailed, "", "The branch was updated since you opened this page. Please refresh and try again.")
			return
		}
		target = rev
	}
	files, ok := c.applyOps(rp, base.Files, ops, grants)
	if !ok {
		return
	}
	if !c.checkReadme(rp.meta.Type, ops) {
		return
	}
	cm, err := c.s.newCommit(rp, []string{base.ID}, summary, description, c.user, files)
	if err != nil {
		c.fail(http.StatusInternalServerError, "", "storage: %v", err)
		return
	}
	old := rp.meta
	rp.meta.Branches = cloneMap(old.Branches)
	rp.meta.PRs = cloneMap(old.PRs)
	prNum := 0
	switch {
	case createPR:
		prNum = max(rp.meta.NextPR, 1)
		rp.meta.NextPR = prNum + 1
		rp.meta.PRs[strconv.Itoa(prNum)] = cm.ID
	case strings.HasPrefix(target, "refs/pr/"):
		rp.meta.PRs[strings.TrimPrefix(target, "refs/pr/")] = cm.ID
	default:
		rp.meta.Branches[strings.TrimPrefix(target, "refs/heads/")] = cm.ID
	}
	rp.meta.LastWrite = cm.Date
	if err := rp.saveMeta(c.s); err != nil {
		rp.meta = old
		c.fail(http.StatusInternalServerError, "", "storage: %v", err)
		return
	}
	for _, op := range ops {
		if op.kind == "lfsFile" {
			if err := rp.markLFS(lfsReferenced, op.entry.Oid); err != nil {
				c.s.logf("hubemu: %s: marking %s: %v", rp.fullID(), op.entry.Oid, err)
			}
		}
	}
	out := map[string]any{"success": true, "commitOid": cm.ID, "commitUrl": c.repoURL(rp) + "/commit/" + cm.ID, "hookOutput": ""}
	if createPR {
		out["pullRequestUrl"] = c.repoURL(rp) + "/discussions/" + strconv.Itoa(prNum)
	}
	c.json(http.StatusOK, out)
}

// checkReadme refuses a commit that writes a README.md whose metadata the
// Hub would refuse (the rules of validate-yaml). On failure it has answered.
func (c *call) checkReadme(typ string, ops []commitOp) bool {
	for _, op := range ops {
		if op.kind != "file" || op.path != "README.md" {
			continue
		}
		data, err := os.ReadFile(c.s.blobPath(op.entry.Oid))
		if err != nil {
			c.fail(http.StatusInternalServerError, "", "storage: %v", err)
			return false
		}
		if p := checkCard(string(data), typ); len(p.errors) > 0 {
			c.fail(http.StatusBadRequest, "", "Your push was rejected because of invalid metadata in README.md: %s", strings.Join(p.errors, "; "))
			return false
		}
	}
	return true
}

func cloneMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// --- listings --------------------------------------------------------------

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

// --- resolve ---------------------------------------------------------------

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
