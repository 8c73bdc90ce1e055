package hubemu

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
)

// repoPage is a plain-text view of a repo for people rehearsing a
// publish: refs, then the files of the revision the URL names (main, a
// tree/{rev}, a commit/{id} or a discussions/{n} pull request).
func (c *call) repoPage(ref repoRef, rest []string) {
	rp := c.repo(ref, false)
	if rp == nil {
		return
	}
	defer rp.mu.Unlock()
	rev := "main"
	if len(rest) >= 2 {
		switch rest[0] {
		case "tree", "blob", "commit":
			rev, _ = splitRevPath(rp, rest[1:])
		case "discussions":
			rev = "refs/pr/" + unesc(rest[1])
		}
	}
	cm, ok := rp.resolveRev(rev)
	if !ok {
		c.revisionNotFound(rev)
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s (%s)\n", rp.meta.Type, rp.fullID(), map[bool]string{true: "private", false: "public"}[rp.meta.Private])
	var branches []string
	for name, id := range rp.meta.Branches {
		branches = append(branches, fmt.Sprintf("  branch %s → %s", name, id))
	}
	for n, id := range rp.meta.PRs {
		branches = append(branches, fmt.Sprintf("  refs/pr/%s → %s  (%s/discussions/%s)", n, id, c.repoURL(rp), n))
	}
	sort.Strings(branches)
	b.WriteString(strings.Join(branches, "\n") + "\n\n")
	fmt.Fprintf(&b, "%s at commit %s by %s, %s\n  %s\n\n", rev, cm.ID, cm.Author, cm.Date.Format("2006-01-02 15:04:05Z"), cm.Title)
	for _, te := range cm.entries() {
		if te.Type != "file" {
			continue
		}
		kind := "   "
		if te.LFS != nil {
			kind = "LFS"
		}
		fmt.Fprintf(&b, "%s %12d  %s\n", kind, te.Size, te.Path)
	}
	c.w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	c.w.WriteHeader(http.StatusOK)
	c.w.Write([]byte(b.String()))
}
