package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Commit is one commit of a revision's history.
type Commit struct {
	ID      string    // 40 hex
	Title   string    // the summary line
	Message string    // the description
	Authors []string  // user names
	Date    time.Time //
}

// Revision is what a revision of a repository is: its head commit and the
// repository's visibility.
type Revision struct {
	Repo    string // the repo id as the Hub writes it, "ns/name"
	Rev     string // the revision asked for ("main" when none was)
	Private bool   //
	Head    Commit // the revision's head commit
}

// Revision returns rev ("" → main) of the repository: the head commit (id,
// title, authors, date) and whether the repository is private. A missing
// repository is ErrRepoNotFound (also for a private one the token cannot
// see), a missing branch or commit ErrRevisionNotFound.
func (c *Client) Revision(ctx context.Context, id RepoID, rev string) (*Revision, error) {
	if rev == "" {
		rev = "main"
	}
	info, err := c.RepoInfo(ctx, id, rev)
	if err != nil {
		return nil, err
	}
	if !isCommitID(info.SHA) {
		return nil, errorf(ErrBadRequest, "repo info "+id.String(), "the Hub answered %q as the head of %s, not a commit id", info.SHA, rev)
	}
	// The history of the commit itself, not of rev: the branch may have
	// moved since.
	commits, err := c.ListCommits(ctx, id, info.SHA, 1)
	if err != nil {
		return nil, err
	}
	if len(commits) == 0 || commits[0].ID != info.SHA {
		return nil, errorf(ErrBadRequest, "list commits "+id.String(), "the Hub's history of %s does not start with that commit", info.SHA)
	}
	return &Revision{Repo: info.ID, Rev: rev, Private: info.Private, Head: commits[0]}, nil
}

func isCommitID(s string) bool {
	if len(s) != 40 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !(s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f') {
			return false
		}
	}
	return true
}

// ListCommits returns the history of rev ("" → main), newest first, at most
// most commits (most ≤ 0: all of them), following the Link pagination of
// GET /api/{type}s/{id}/commits/{rev}.
func (c *Client) ListCommits(ctx context.Context, id RepoID, rev string, most int) ([]Commit, error) {
	if err := id.Validate(); err != nil {
		return nil, err
	}
	if rev == "" {
		rev = "main"
	}
	limit := 1000
	if most > 0 && most < limit {
		limit = most
	}
	next := c.apiURL(id.apiPath()+"/commits/"+escapeRev(rev)) + fmt.Sprintf("?limit=%d", limit)
	var all []Commit
	for page := 1; next != "" && (most <= 0 || len(all) < most); page++ {
		var items []commitJSON
		resp, err := c.doJSON(ctx, &request{op: fmt.Sprintf("list commits of %s (page %d)", id, page), method: http.MethodGet, url: next,
			header: http.Header{"Accept": {"application/json"}}, auth: true, retry: true}, &items)
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			cm := Commit{ID: it.ID, Title: it.Title, Message: it.Message, Date: it.Date}
			for _, a := range it.Authors {
				cm.Authors = append(cm.Authors, a.User)
			}
			all = append(all, cm)
		}
		next = nextLink(next, resp.header.Values("Link"))
		if len(items) == 0 {
			break
		}
	}
	if most > 0 && len(all) > most {
		all = all[:most]
	}
	return all, nil
}

// TreeOptions configures ListTreeWith.
type TreeOptions struct {
	Path      string // a folder (or file) of the repo; "" → the root
	Recursive bool   // the whole tree below Path, not only its direct entries
	Expand    bool   // each entry's LastCommit (slower on the Hub)
}

// YAMLReport is the Hub's verdict on a README.md's metadata.
type YAMLReport struct {
	Errors   []string // what makes the Hub refuse the card
	Warnings []string // what it accepts but reports ("empty or missing yaml metadata in repo card")
}

// ValidateYAML asks the Hub to check a README.md's metadata as it would
// before accepting a commit of it (POST /api/validate-yaml, body
// {"content", "repoType"}), as huggingface_hub does before uploading a
// README.md. It returns the report; when the Hub refuses the card the
// error is an *Error of kind ErrBadRequest carrying the errors, and the
// report lists them too.
func (c *Client) ValidateYAML(ctx context.Context, content string, typ RepoType) (*YAMLReport, error) {
	if typ == "" {
		typ = Model
	}
	var out validateYAMLResponse
	_, err := c.doJSON(ctx, &request{op: "validate README.md metadata", method: http.MethodPost, url: c.apiURL("/api/validate-yaml"),
		header: jsonHeader, body: marshalBody(validateYAMLRequest{Content: content, RepoType: string(typ)}), auth: true, retry: true}, &out)
	var he *Error
	if errors.As(err, &he) && he.StatusCode == http.StatusBadRequest && json.Unmarshal(he.body, &out) == nil && len(out.Errors) > 0 {
		rep := report(out)
		he.Hint = "fix the README.md metadata: " + strings.Join(rep.Errors, "; ")
		return rep, err
	}
	if err != nil {
		return nil, err
	}
	return report(out), nil
}

func report(out validateYAMLResponse) *YAMLReport {
	rep := &YAMLReport{}
	for _, e := range out.Errors {
		rep.Errors = append(rep.Errors, e.Message)
	}
	for _, w := range out.Warnings {
		rep.Warnings = append(rep.Warnings, w.Message)
	}
	return rep
}
