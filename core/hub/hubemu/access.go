package hubemu

import (
	"net/http"
	"strings"
)

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
