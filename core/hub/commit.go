package hub

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"sync"
)

// Operation is one change in a commit: AddFile, AddLFS, DeleteFile or
// DeleteFolder. Operations are plain data; Commit validates their paths
// before sending anything.
type Operation interface {
	// PathInRepo is the path the operation touches.
	PathInRepo() string
	// ndjson returns the line's JSON around the streamed content (AddFile)
	// or the whole line (prefix only).
	ndjson() (prefix, suffix []byte, content int64)
	withPath(p string) Operation
}

// AddFile adds or replaces a regular git file; its content is streamed
// from Open, base64-encoded, when the commit is sent.
type AddFile struct {
	Path string                        // path in the repo
	Size int64                         // exact content length
	Open func() (io.ReadCloser, error) // called once per commit attempt
	SHA1 string                        // git blob sha1 of the content, if known (lets a lost commit response be checked)
}

// AddBytes returns an AddFile holding b.
func AddBytes(path string, b []byte) AddFile {
	return AddFile{Path: path, Size: int64(len(b)), Open: func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}, SHA1: GitBlobSHA1(b)}
}

// AddLFS adds or replaces a file whose content is an LFS object already
// stored on the Hub (uploaded, or answered without actions by LFSBatch).
type AddLFS struct {
	Path string // path in the repo
	OID  string // sha256, lowercase hex
	Size int64  //
}

// DeleteFile deletes one file.
type DeleteFile struct{ Path string }

// DeleteFolder deletes a folder and everything below it.
type DeleteFolder struct{ Path string }

func (o AddFile) PathInRepo() string      { return o.Path }
func (o AddLFS) PathInRepo() string       { return o.Path }
func (o DeleteFile) PathInRepo() string   { return o.Path }
func (o DeleteFolder) PathInRepo() string { return o.Path }

func (o AddFile) withPath(p string) Operation      { o.Path = p; return o }
func (o AddLFS) withPath(p string) Operation       { o.Path = p; return o }
func (o DeleteFile) withPath(p string) Operation   { o.Path = p; return o }
func (o DeleteFolder) withPath(p string) Operation { o.Path = p; return o }

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func (o AddFile) ndjson() ([]byte, []byte, int64) {
	// {"key":"file","value":{"content":"<base64>","path":"…","encoding":"base64"}}
	return []byte(`{"key":"file","value":{"content":"`),
		append(append([]byte(`","path":`), mustJSON(o.Path)...), []byte(`,"encoding":"base64"}}`+"\n")...),
		int64(base64.StdEncoding.EncodedLen(int(o.Size)))
}

func (o AddLFS) ndjson() ([]byte, []byte, int64) {
	return append(mustJSON(commitLine{Key: "lfsFile", Value: commitLFSFile{Path: o.Path, Algo: "sha256", OID: o.OID, Size: o.Size}}), '\n'), nil, 0
}

func (o DeleteFile) ndjson() ([]byte, []byte, int64) {
	return append(mustJSON(commitLine{Key: "deletedFile", Value: commitPath{Path: o.Path}}), '\n'), nil, 0
}

func (o DeleteFolder) ndjson() ([]byte, []byte, int64) {
	return append(mustJSON(commitLine{Key: "deletedFolder", Value: commitPath{Path: o.Path}}), '\n'), nil, 0
}

// CommitOptions configures Commit.
type CommitOptions struct {
	Summary      string // first line of the message; "" → "Upload folder using modelpub"
	Description  string // rest of the message
	ParentCommit string // when set, the Hub refuses (412, ErrConflict) if the branch moved past it
	CreatePR     bool   // open a pull request against the revision instead of committing to it
}

// CommitInfo describes a commit made (or, with NoChanges, the head found).
type CommitInfo struct {
	OID            string // commit id
	URL            string // {endpoint}/{prefix}{id}/commit/{oid}
	PullRequestURL string // {endpoint}/{prefix}{id}/discussions/{n}, for pull requests
	PRRevision     string // "refs/pr/{n}", for pull requests
	PRNumber       int    //
	HookOutput     string //
	NoChanges      bool   // nothing differed from the Hub: no commit was made, OID is the head
	// Upload is what UploadFolder did with each file (nil from Commit).
	Upload *UploadReport
}

var prNumber = regexp.MustCompile(`/discussions/(\d+)$`)

// Commit sends ops as one NDJSON commit to rev (§5). LFS contents must
// already be on the Hub.
//
// The commit is not retried blindly, since a lost response could duplicate
// it. After a network error or a 5xx, Commit reads the revision's head: if
// it is still the parent, the commit did not land and is sent again; if it
// moved and the files now match ops, the commit landed and its info is
// returned; otherwise the error is returned. A 429 is waited out and sent
// again. Pull requests are never re-sent after an unclear failure.
func (c *Client) Commit(ctx context.Context, id RepoID, rev string, opts CommitOptions, ops []Operation) (*CommitInfo, error) {
	if err := id.Validate(); err != nil {
		return nil, err
	}
	if rev == "" {
		rev = "main"
	}
	clean := make([]Operation, len(ops))
	for i, op := range ops {
		p := op.PathInRepo()
		if _, isDir := op.(DeleteFolder); isDir {
			p = trimSlash(p)
		}
		cp, err := CleanPath(p)
		if err != nil {
			return nil, err
		}
		if _, isDir := op.(DeleteFolder); isDir {
			cp += "/"
		}
		if a, ok := op.(AddFile); ok && (a.Open == nil || a.Size < 0) {
			return nil, errorf(ErrBadRequest, "commit", "AddFile %q needs Open and a size", cp)
		}
		clean[i] = op.withPath(cp)
	}
	if opts.Summary == "" {
		opts.Summary = "Upload folder using modelpub"
	}
	parent := opts.ParentCommit
	if parent == "" && !opts.CreatePR {
		// Remember the head, without sending it, to tell later whether a
		// commit whose answer was lost has landed.
		info, err := c.RepoInfo(ctx, id, rev)
		if err != nil {
			return nil, err
		}
		parent = info.SHA
	}
	for attempt := 0; ; attempt++ {
		ci, err := c.commitOnce(ctx, id, rev, opts, clean)
		if err == nil {
			return ci, nil
		}
		var he *Error
		if ctx.Err() != nil || !errors.As(err, &he) || !retryable(he) || attempt >= c.retry.MaxRetries {
			return nil, err
		}
		wait := c.retry.backoff(attempt)
		if he.StatusCode == http.StatusTooManyRequests {
			// A rate-limited commit was refused, not applied.
			if he.RetryAfter > c.retry.MaxServerWait {
				return nil, err
			}
			if he.RetryAfter > 0 {
				wait = he.RetryAfter
			}
		} else {
			if opts.CreatePR {
				he.Hint = "the answer to the pull request was lost; check the repository's pull requests before running again"
				return nil, err
			}
			if err := c.sleep(ctx, wait); err != nil {
				return nil, err
			}
			landed, head, cerr := c.commitLanded(ctx, id, rev, parent, clean)
			if cerr != nil {
				return nil, err
			}
			if landed {
				c.logf("hub: commit: the answer was lost but the commit landed as %s", head)
				return &CommitInfo{OID: head, URL: c.commitURL(id, head)}, nil
			}
			if head != parent {
				if opts.ParentCommit != "" {
					return nil, &Error{Kind: ErrConflict, Op: "commit", Err: err,
						Hint: "the branch moved since the upload started and the commit did not land; run the upload again"}
				}
				parent = head
			}
			c.logf("hub: commit: %s; the head is unchanged, so the commit did not land; retry %d/%d", shortReason(he), attempt+1, c.retry.MaxRetries)
			continue
		}
		c.logf("hub: commit: %s; retry %d/%d in %s", shortReason(he), attempt+1, c.retry.MaxRetries, wait)
		if err := c.sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

func trimSlash(p string) string {
	for len(p) > 1 && p[len(p)-1] == '/' {
		p = p[:len(p)-1]
	}
	return p
}

func (c *Client) commitURL(id RepoID, oid string) string {
	return c.endpoint + "/" + id.String() + "/commit/" + oid
}

// commitLanded reads the head of rev and, when it moved away from parent,
// checks whether the files match ops.
func (c *Client) commitLanded(ctx context.Context, id RepoID, rev, parent string, ops []Operation) (bool, string, error) {
	info, err := c.RepoInfo(ctx, id, rev)
	if err != nil {
		return false, "", err
	}
	if info.SHA == parent {
		return false, info.SHA, nil
	}
	paths := make([]string, 0, len(ops))
	for _, op := range ops {
		if _, ok := op.(DeleteFolder); !ok {
			paths = append(paths, op.PathInRepo())
		}
	}
	entries, err := c.PathsInfo(ctx, id, info.SHA, paths)
	if err != nil {
		return false, info.SHA, err
	}
	remote := make(map[string]TreeEntry, len(entries))
	for _, e := range entries {
		remote[e.Path] = e
	}
	for _, op := range ops {
		e, ok := remote[op.PathInRepo()]
		switch o := op.(type) {
		case AddLFS:
			if !ok || e.LFS == nil || e.LFS.OID != o.OID {
				return false, info.SHA, nil
			}
		case AddFile:
			if !ok || o.SHA1 == "" || e.OID != o.SHA1 {
				return false, info.SHA, nil
			}
		case DeleteFile:
			if ok {
				return false, info.SHA, nil
			}
		}
	}
	return true, info.SHA, nil
}

// commitOnce streams the NDJSON body and sends it once.
func (c *Client) commitOnce(ctx context.Context, id RepoID, rev string, opts CommitOptions, ops []Operation) (*CommitInfo, error) {
	header := append(mustJSON(commitLine{Key: "header", Value: commitHeader{Summary: opts.Summary, Description: opts.Description,
		ParentCommit: opts.ParentCommit}}), '\n')
	length := int64(len(header))
	for _, op := range ops {
		pre, suf, n := op.ndjson()
		length += int64(len(pre)+len(suf)) + n
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	body := func() (io.ReadCloser, int64, error) {
		pr, pw := io.Pipe()
		wg.Add(1)
		go func() {
			defer wg.Done()
			pw.CloseWithError(writeCommit(pw, header, ops))
		}()
		return pr, length, nil
	}
	u := c.apiURL(id.apiPath() + "/commit/" + escapeRev(rev))
	if opts.CreatePR {
		u += "?create_pr=1"
	}
	var out commitResponse
	_, err := c.doJSON(ctx, &request{op: "commit", method: http.MethodPost, url: u,
		header: http.Header{"Content-Type": {"application/x-ndjson"}, "Accept": {"application/json"}},
		body:   body, auth: true}, &out)
	if err != nil {
		return nil, err
	}
	ci := &CommitInfo{OID: out.CommitOid, URL: RedactURL(out.CommitURL), PullRequestURL: RedactURL(out.PullRequestURL), HookOutput: c.scrub(out.HookOutput)}
	if ci.URL == "" && ci.OID != "" {
		ci.URL = c.commitURL(id, ci.OID)
	}
	if opts.CreatePR {
		m := prNumber.FindStringSubmatch(out.PullRequestURL)
		if m == nil {
			return ci, errorf(ErrBadRequest, "commit", "the Hub opened a pull request but its url %q does not end in /discussions/N", out.PullRequestURL)
		}
		ci.PRNumber, _ = strconv.Atoi(m[1])
		ci.PRRevision = "refs/pr/" + m[1]
	}
	return ci, nil
}

// writeCommit writes the NDJSON lines, streaming AddFile contents through
// a base64 encoder and checking each declared size.
func writeCommit(w io.Writer, header []byte, ops []Operation) error {
	if _, err := w.Write(header); err != nil {
		return err
	}
	for _, op := range ops {
		pre, suf, _ := op.ndjson()
		if _, err := w.Write(pre); err != nil {
			return err
		}
		if a, ok := op.(AddFile); ok {
			if err := streamBase64(w, a); err != nil {
				return err
			}
		}
		if _, err := w.Write(suf); err != nil {
			return err
		}
	}
	return nil
}

func streamBase64(w io.Writer, a AddFile) error {
	rc, err := a.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	enc := base64.NewEncoder(base64.StdEncoding, w)
	n, err := io.Copy(enc, io.LimitReader(rc, a.Size+1))
	if err != nil {
		return err
	}
	if n != a.Size {
		return fmt.Errorf("hub: %s changed during the upload (%d bytes, expected %d): %w", a.Path, n, a.Size, io.ErrUnexpectedEOF)
	}
	return enc.Close()
}
