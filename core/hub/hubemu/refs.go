package hubemu

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strconv"
)

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
