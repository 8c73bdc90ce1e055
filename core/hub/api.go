package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// Batch sizes: huggingface_hub's (§3, §4, §6).
const (
	preuploadBatch = 256
	lfsBatchSize   = 256
	pathsInfoBatch = 500
)

var jsonHeader = http.Header{"Content-Type": {"application/json"}, "Accept": {"application/json"}}

// getJSON/postJSON run a call and decode its JSON answer into out.
func (c *Client) doJSON(ctx context.Context, r *request, out any) (*response, error) {
	resp, err := c.call(ctx, r)
	if err != nil {
		return nil, err
	}
	if out != nil {
		if err := json.Unmarshal(resp.body, out); err != nil {
			return resp, &Error{Kind: ErrBadRequest, Op: r.op, StatusCode: resp.status, RequestID: requestID(resp.header),
				Err: err, Hint: "the Hub's answer is not the JSON this client expects; check that the endpoint " + c.endpoint + " is a Hugging Face Hub"}
		}
	}
	return resp, nil
}

func marshalBody(v any) func() (io.ReadCloser, int64, error) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // wire structs always marshal
	}
	return bytesBody(b)
}

// WhoAmI returns the token's user (GET /api/whoami-v2). It is retried like
// every idempotent call; the Hub rate limits it heavily, so its
// Retry-After and RateLimit waits are honoured.
func (c *Client) WhoAmI(ctx context.Context) (*User, error) {
	var u User
	_, err := c.doJSON(ctx, &request{op: "whoami", method: http.MethodGet, url: c.apiURL("/api/whoami-v2"),
		header: http.Header{"Accept": {"application/json"}}, auth: true, retry: true}, &u)
	if err != nil {
		return nil, err
	}
	c.roleMu.Lock()
	c.role = u.Auth.AccessToken.Role
	c.roleMu.Unlock()
	return &u, nil
}

// CreateRepoOptions configures CreateRepo.
type CreateRepoOptions struct {
	Private bool   // visibility "private" instead of "public"
	ExistOK bool   // an existing repo (409) is not an error
	SDK     string // spaces only; "" → "static"
}

// CreateRepo creates the repository and returns its URL. With ExistOK, a
// 409 answer returns the URL from its body (§2), and the call is retried
// like an idempotent one: a retry after a lost answer meets the repository
// the first attempt created. Without ExistOK it is sent once, since a
// retry could turn a success into ErrConflict.
func (c *Client) CreateRepo(ctx context.Context, id RepoID, opts CreateRepoOptions) (string, error) {
	if err := id.Validate(); err != nil {
		return "", err
	}
	body := createRepoRequest{Name: id.Name, Type: string(id.typ()), Visibility: "public"}
	if id.Namespace != "" {
		body.Organization = &id.Namespace
	}
	if opts.Private {
		body.Visibility = "private"
	}
	if id.typ() == Space {
		body.SDK = opts.SDK
		if body.SDK == "" {
			body.SDK = "static"
		}
	}
	var out createRepoResponse
	_, err := c.doJSON(ctx, &request{op: "create repo " + id.String(), method: http.MethodPost, url: c.apiURL("/api/repos/create"),
		header: jsonHeader, body: marshalBody(body), auth: true, retry: opts.ExistOK}, &out)
	var he *Error
	if opts.ExistOK && errors.As(err, &he) {
		switch he.StatusCode {
		case http.StatusConflict:
			// The 409 body of an existing repo carries its url (§2).
			var conflict createRepoResponse
			if json.Unmarshal(he.body, &conflict) == nil && conflict.URL != "" {
				return RedactURL(conflict.URL), nil
			}
			if strings.Contains(he.Message, "conflicting operation is in progress") {
				return "", err
			}
			return c.endpoint + "/" + id.String(), nil
		case http.StatusUnauthorized, http.StatusPaymentRequired, http.StatusForbidden:
			// As huggingface_hub: the token may not create here, but the
			// repo may already exist and be writable.
			if _, ierr := c.RepoInfo(ctx, id, ""); ierr == nil {
				return c.endpoint + "/" + id.String(), nil
			}
		}
	}
	if err != nil {
		return "", err
	}
	if out.URL == "" {
		out.URL = c.endpoint + "/" + id.String()
	}
	return RedactURL(out.URL), nil
}

// RepoInfo returns the repository at rev ("" → its default branch).
func (c *Client) RepoInfo(ctx context.Context, id RepoID, rev string) (*RepoInfo, error) {
	if err := id.Validate(); err != nil {
		return nil, err
	}
	p := id.apiPath()
	if rev != "" {
		p += "/revision/" + escapeRev(rev)
	}
	var info RepoInfo
	if _, err := c.doJSON(ctx, &request{op: "repo info " + id.String(), method: http.MethodGet, url: c.apiURL(p),
		header: http.Header{"Accept": {"application/json"}}, auth: true, retry: true}, &info); err != nil {
		return nil, err
	}
	return &info, nil
}

// CreateBranch creates branch from the revision from ("" → the default
// branch's head). An existing branch is ErrConflict. It is retried like an
// idempotent call, so after a transient failure an ErrConflict may mean
// that the attempt whose answer was lost created the branch.
func (c *Client) CreateBranch(ctx context.Context, id RepoID, branch, from string) error {
	if err := id.Validate(); err != nil {
		return err
	}
	if branch == "" {
		return errorf(ErrBadRequest, "create branch", "the branch name is empty")
	}
	body := map[string]string{}
	if from != "" {
		body["startingPoint"] = from
	}
	_, err := c.call(ctx, &request{op: "create branch " + branch, method: http.MethodPost,
		url: c.apiURL(id.apiPath() + "/branch/" + escapeRev(branch)), header: jsonHeader, body: marshalBody(body), auth: true, retry: true})
	return err
}

// ListTree lists path ("" → the root) at rev, following Link pagination.
func (c *Client) ListTree(ctx context.Context, id RepoID, rev, path string, recursive bool) ([]TreeEntry, error) {
	return c.ListTreeWith(ctx, id, rev, TreeOptions{Path: path, Recursive: recursive})
}

// ListTreeWith lists the tree of rev ("" → main) as opts says, every page
// (GET /api/{type}s/{id}/tree/{rev}[/{path}], Link rel="next"): files with
// their size and, for LFS files, the sha256 and size of the object;
// folders; with Expand, each entry's last commit. A missing path is
// ErrEntryNotFound, a missing revision ErrRevisionNotFound.
func (c *Client) ListTreeWith(ctx context.Context, id RepoID, rev string, opts TreeOptions) ([]TreeEntry, error) {
	if err := id.Validate(); err != nil {
		return nil, err
	}
	if rev == "" {
		rev = "main"
	}
	p := id.apiPath() + "/tree/" + escapeRev(rev)
	if opts.Path != "" {
		clean, err := CleanPath(opts.Path)
		if err != nil {
			return nil, err
		}
		// huggingface_hub quotes the path with safe="" (§6).
		p += "/" + escapeRev(clean)
	}
	next := c.apiURL(p) + fmt.Sprintf("?recursive=%t&expand=%t", opts.Recursive, opts.Expand)
	var all []TreeEntry
	for page := 1; next != ""; page++ {
		var entries []TreeEntry
		resp, err := c.doJSON(ctx, &request{op: fmt.Sprintf("list tree (page %d)", page), method: http.MethodGet, url: next,
			header: http.Header{"Accept": {"application/json"}}, auth: true, retry: true}, &entries)
		if err != nil {
			return nil, err
		}
		all = append(all, entries...)
		next = nextLink(next, resp.header.Values("Link"))
	}
	return all, nil
}

var linkNext = regexp.MustCompile(`<([^>]+)>\s*;\s*rel="?next"?`)

// nextLink returns the absolute URL of rel="next", or "".
func nextLink(base string, links []string) string {
	for _, l := range links {
		for _, part := range strings.Split(l, ",") {
			if m := linkNext.FindStringSubmatch(part); m != nil {
				b, err1 := url.Parse(base)
				u, err2 := url.Parse(m[1])
				if err1 != nil || err2 != nil {
					return ""
				}
				return b.ResolveReference(u).String()
			}
		}
	}
	return ""
}

// PathsInfo returns the entries of paths at rev; missing paths are absent.
func (c *Client) PathsInfo(ctx context.Context, id RepoID, rev string, paths []string) ([]TreeEntry, error) {
	if err := id.Validate(); err != nil {
		return nil, err
	}
	var all []TreeEntry
	for start := 0; start < len(paths); start += pathsInfoBatch {
		batch := paths[start:min(start+pathsInfoBatch, len(paths))]
		var entries []TreeEntry
		if _, err := c.doJSON(ctx, &request{op: "paths info", method: http.MethodPost,
			url: c.apiURL(id.apiPath() + "/paths-info/" + escapeRev(rev)), header: jsonHeader,
			body: marshalBody(map[string]any{"paths": batch, "expand": false}), auth: true, retry: true}, &entries); err != nil {
			return nil, err
		}
		all = append(all, entries...)
	}
	return all, nil
}

// PreuploadOptions configures Preupload.
type PreuploadOptions struct {
	CreatePR      bool   // the files are for a new pull request (?create_pr=1)
	GitAttributes string // content of a .gitattributes being committed, if any
}

// Preupload asks the Hub how to upload each file, in batches of 256
// (§3), and returns one result per file in the order of files plus the
// revision's head commit.
func (c *Client) Preupload(ctx context.Context, id RepoID, rev string, files []PreuploadFile, opts PreuploadOptions) ([]PreuploadResult, string, error) {
	if err := id.Validate(); err != nil {
		return nil, "", err
	}
	if rev == "" {
		rev = "main"
	}
	u := c.apiURL(id.apiPath() + "/preupload/" + escapeRev(rev))
	if opts.CreatePR {
		u += "?create_pr=1"
	}
	results := make([]PreuploadResult, 0, len(files))
	head := ""
	for start := 0; start < len(files); start += preuploadBatch {
		batch := append([]PreuploadFile(nil), files[start:min(start+preuploadBatch, len(files))]...)
		for i := range batch {
			if batch[i].Sample == nil {
				batch[i].Sample = []byte{} // "" rather than null
			}
		}
		var out preuploadResponse
		if _, err := c.doJSON(ctx, &request{op: "preupload", method: http.MethodPost, url: u, header: jsonHeader,
			body: marshalBody(preuploadRequest{Files: batch, GitAttributes: opts.GitAttributes}), auth: true, retry: true}, &out); err != nil {
			return nil, "", err
		}
		byPath := make(map[string]PreuploadResult, len(out.Files))
		for _, f := range out.Files {
			if f.UploadMode != "lfs" && f.UploadMode != "regular" {
				return nil, "", errorf(ErrBadRequest, "preupload", "the Hub answered upload mode %q for %q; expected lfs or regular", f.UploadMode, f.Path)
			}
			byPath[f.Path] = f
		}
		for _, f := range batch {
			r, ok := byPath[f.Path]
			if !ok {
				return nil, "", errorf(ErrBadRequest, "preupload", "the Hub did not answer for %q", f.Path)
			}
			if f.Size == 0 {
				r.UploadMode = "regular" // an empty LFS object fails on S3 (huggingface_hub)
			}
			results = append(results, r)
		}
		if head == "" {
			head = out.CommitOid
		}
	}
	return results, head, nil
}

// LFSBatch asks where to upload objects (§4), in batches of 256, and
// returns one action per object in the order of objects. ref names the
// branch; "" omits it (pull requests). A per-object error fails the call.
func (c *Client) LFSBatch(ctx context.Context, id RepoID, ref string, objects []LFSObject) ([]LFSAction, error) {
	_, actions, err := c.lfsBatch(ctx, id, ref, lfsTransfers, objects)
	return actions, err
}

// The transfers a batch request offers (the order @huggingface/hub 2.x
// sends them in).
var (
	lfsTransfers = []string{"basic", "multipart"}
	autoTransfer = []string{"basic", "multipart", "xet"}
	xetTransfer  = []string{"xet"}
)

// lfsBatch is LFSBatch offering transfers; it also returns the transfer
// the Hub chose (the answer's "transfer", "basic" when it has none, as the
// Git LFS batch API says).
func (c *Client) lfsBatch(ctx context.Context, id RepoID, ref string, transfers []string, objects []LFSObject) (string, []LFSAction, error) {
	if err := id.Validate(); err != nil {
		return "", nil, err
	}
	transfer := ""
	u := c.apiURL(id.gitPath() + ".git/info/lfs/objects/batch")
	h := http.Header{"Accept": {"application/vnd.git-lfs+json"}, "Content-Type": {"application/vnd.git-lfs+json"}}
	out := make([]LFSAction, 0, len(objects))
	for start := 0; start < len(objects); start += lfsBatchSize {
		batch := objects[start:min(start+lfsBatchSize, len(objects))]
		req := lfsBatchRequest{Operation: "upload", Transfers: transfers, Objects: batch, HashAlgo: "sha256"}
		if ref != "" {
			req.Ref = &lfsRef{Name: ref}
		}
		var resp lfsBatchResponse
		if _, err := c.doJSON(ctx, &request{op: "lfs batch", method: http.MethodPost, url: u, header: h,
			body: marshalBody(req), auth: true, retry: true}, &resp); err != nil {
			return "", nil, err
		}
		if resp.Transfer == "" {
			resp.Transfer = "basic"
		}
		if transfer != "" && resp.Transfer != transfer {
			return "", nil, errorf(ErrBadRequest, "lfs batch", "the Hub answered transfer %q to one batch and %q to another", transfer, resp.Transfer)
		}
		transfer = resp.Transfer
		byOID := make(map[string]LFSAction, len(resp.Objects))
		asked := make(map[string]bool, len(batch))
		for _, o := range batch {
			asked[o.OID] = true
		}
		for _, a := range resp.Objects {
			if !asked[a.OID] {
				return "", nil, errorf(ErrBadRequest, "lfs batch", "the Hub answered for object %s, which was not asked for", a.OID)
			}
			if a.Error != nil {
				return "", nil, &Error{Kind: ErrBadRequest, Op: "lfs batch", StatusCode: a.Error.Code, Message: c.scrub(a.Error.Message),
					Hint: fmt.Sprintf("the Hub refused object %s; see its message", a.OID)}
			}
			byOID[a.OID] = a
		}
		for _, o := range batch {
			a, ok := byOID[o.OID]
			if !ok {
				return "", nil, errorf(ErrBadRequest, "lfs batch", "the Hub did not answer for object %s", o.OID)
			}
			out = append(out, a)
		}
	}
	return transfer, out, nil
}

// ReadFile downloads a small file of the repository at rev ("" → main), such
// as README.md (GET /{prefix}{id}/resolve/{rev}/{path}, §9). A missing file is
// ErrEntryNotFound, a missing repository ErrRepoNotFound. Files larger than
// the client's response limit are refused: use it for cards and configs, not
// weights.
func (c *Client) ReadFile(ctx context.Context, id RepoID, rev, path string) ([]byte, error) {
	if err := id.Validate(); err != nil {
		return nil, err
	}
	clean, err := CleanPath(path)
	if err != nil {
		return nil, err
	}
	if rev == "" {
		rev = "main"
	}
	resp, err := c.call(ctx, &request{op: "download " + clean, method: http.MethodGet,
		url:    c.apiURL(id.gitPath() + "/resolve/" + escapeRev(rev) + "/" + escapeSegments(clean)),
		header: http.Header{"Accept-Encoding": {"identity"}}, auth: true, retry: true})
	if err != nil {
		return nil, err
	}
	return resp.body, nil
}
