package publish

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"modelpub/core/hub"
)

// Remote is the target of a publish as the Hub holds it before anything
// is sent: whether the repository and the branch exist, the head commit
// and the files of the revision the publish is compared with.
type Remote struct {
	Repo    string `json:"repo"`    // "ns/name"
	URL     string `json:"url"`     // the repository's page on the Hub
	Exists  bool   `json:"exists"`  // false: the publish creates the repository
	Private bool   `json:"private"` // the repository's visibility (an existing one keeps it)
	// Revision is the branch the publish commits to, or for a pull
	// request the branch it is opened against.
	Revision string `json:"revision"`
	// BranchExists is false when Revision is a branch the publish creates
	// (from main).
	BranchExists bool `json:"branch_exists"`
	// Base is the revision the plan compares with: Revision, or main for
	// a branch still to create.
	Base  string        `json:"base"`
	Head  *RemoteCommit `json:"head,omitempty"` // Base's head; nil when there is none (no repository)
	Files []RemoteFile  `json:"files"`          // Base's files, in path order
}

// RemoteCommit is the head commit of a revision.
type RemoteCommit struct {
	ID     string    `json:"id"`     // 40 hex
	Title  string    `json:"title"`  // the summary line
	Author string    `json:"author"` // the first author's user name ("" when the Hub names none)
	Date   time.Time `json:"date"`
}

// RemoteFile is one file of a revision.
type RemoteFile struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`              // the content's size (an LFS file's real size)
	LFSOID string `json:"lfs_oid,omitempty"` // sha256 of the content, for an LFS file
	OID    string `json:"oid"`               // git blob sha1 (of the pointer, for an LFS file)
}

// file returns the file at path, or nil.
func (r *Remote) file(path string) *RemoteFile {
	if r == nil {
		return nil
	}
	i := sort.Search(len(r.Files), func(i int) bool { return r.Files[i].Path >= path })
	if i < len(r.Files) && r.Files[i].Path == path {
		return &r.Files[i]
	}
	return nil
}

// Describe says in one line what the target is: new, or existing with
// its visibility, head commit and number of files.
func (r *Remote) Describe() string {
	switch {
	case !r.Exists:
		return fmt.Sprintf("%s does not exist yet: it will be created (%s)", r.Repo, visibility(r.Private))
	case r.Head == nil:
		return fmt.Sprintf("%s (%s) has no commit on %s", r.Repo, visibility(r.Private), r.Base)
	}
	s := fmt.Sprintf("%s (%s): %s is at %s %q", r.Repo, visibility(r.Private), r.Base, shortID(r.Head.ID), r.Head.Title)
	if r.Head.Author != "" {
		s += " by " + r.Head.Author
	}
	if !r.Head.Date.IsZero() {
		s += ", " + r.Head.Date.UTC().Format("2006-01-02 15:04 UTC")
	}
	s += fmt.Sprintf(", %s", plural(len(r.Files), "file"))
	if !r.BranchExists {
		s += fmt.Sprintf("; branch %s will be created from it", r.Revision)
	}
	return s
}

func visibility(private bool) string {
	if private {
		return "private"
	}
	return "public"
}

func shortID(id string) string {
	if len(id) > 7 {
		return id[:7]
	}
	return id
}

// ReadRemote reads the target of a publish with opts (Repo, Branch,
// CreatePR, Endpoint, Token, Private for a repository to create): whether
// the repository exists, its visibility, the head commit and the files of
// the revision a publish would be compared with. A missing repository or
// branch is a state (Exists, BranchExists false), not an error; a branch
// still to create is compared with main, a pull request with the branch it
// is opened against. Repo without a namespace is the token's user's. It
// only reads; the app calls it to show the repository beside the plan.
func ReadRemote(ctx context.Context, opts Options) (*Remote, error) {
	j, err := newJob(opts)
	if err != nil {
		return nil, err
	}
	if j.client == nil {
		return nil, &StepError{StepCheck, ErrNoToken}
	}
	if j.id.Namespace == "" {
		a, err := CheckAccount(ctx, j.client)
		if err != nil {
			return nil, &StepError{StepCheck, err}
		}
		j.id.Namespace = a.User
	}
	r, err := j.readRemote(ctx)
	if err != nil {
		return nil, &StepError{StepCheck, err}
	}
	return r, nil
}

// readRemote reads the target revision with the job's client.
func (j *job) readRemote(ctx context.Context) (*Remote, error) {
	r := &Remote{Repo: j.id.String(), URL: strings.TrimRight(j.client.Endpoint(), "/") + "/" + j.id.String(),
		Revision: j.revision(), Private: j.opts.Private}
	rev, err := j.client.Revision(ctx, j.id, r.Revision)
	switch {
	case err == nil:
		r.Exists, r.BranchExists = true, true
	case errors.Is(err, hub.ErrRepoNotFound):
		r.Base = r.Revision
		return r, nil
	case errors.Is(err, hub.ErrRevisionNotFound) && r.Revision != "main":
		r.Exists = true
		if rev, err = j.client.Revision(ctx, j.id, "main"); err != nil {
			return nil, fmt.Errorf("read main of %s (branch %s is to be created from it): %w", j.id, r.Revision, err)
		}
	default:
		return nil, fmt.Errorf("read %s of %s: %w", r.Revision, j.id, err)
	}
	r.Private = rev.Private
	r.Base = rev.Rev
	if err := j.readTree(ctx, r, rev.Head); err != nil {
		return nil, err
	}
	return r, nil
}

// readTree fills in the head and the files of r at commit head.
func (j *job) readTree(ctx context.Context, r *Remote, head hub.Commit) error {
	r.Head = &RemoteCommit{ID: head.ID, Title: head.Title, Date: head.Date}
	if len(head.Authors) > 0 {
		r.Head.Author = head.Authors[0]
	}
	// The tree of the commit itself: the branch may move meanwhile.
	entries, err := j.client.ListTreeWith(ctx, j.id, head.ID, hub.TreeOptions{Recursive: true})
	if err != nil {
		return fmt.Errorf("list the files of %s at %s: %w", j.id, shortID(head.ID), err)
	}
	r.Files = r.Files[:0]
	for _, e := range entries {
		if e.Type != "file" {
			continue
		}
		f := RemoteFile{Path: e.Path, Size: e.Size, OID: e.OID}
		if e.LFS != nil {
			f.LFSOID = e.LFS.OID
		}
		r.Files = append(r.Files, f)
	}
	sort.Slice(r.Files, func(a, b int) bool { return r.Files[a].Path < r.Files[b].Path })
	return nil
}
