package hub

import "time"

// Wire structs, field for field as hub-protocol.md writes them. Exported
// ones are also the API's results.

// User is the answer of GET /api/whoami-v2 (§1).
type User struct {
	Type     string `json:"type"`     // "user" (or "org" for org tokens)
	ID       string `json:"id"`       //
	Name     string `json:"name"`     // the namespace of the user's repos
	Fullname string `json:"fullname"` //
	Email    string `json:"email"`    //
	Orgs     []Org  `json:"orgs"`     // organizations the user belongs to
	Auth     struct {
		Type        string `json:"type"` // "access_token", "app_token", …
		AccessToken struct {
			DisplayName string `json:"displayName"` //
			Role        string `json:"role"`        // "read", "write", "contributor", "admin"
		} `json:"accessToken"`
	} `json:"auth"`
}

// Org is one of User.Orgs.
type Org struct {
	Type string `json:"type"` // "org"
	ID   string `json:"id"`   //
	Name string `json:"name"` // the namespace of the org's repos
	// RoleInOrg is the user's role in the org: "admin", "write",
	// "contributor" or "read"; "" when the Hub did not say.
	RoleInOrg string `json:"roleInOrg,omitempty"`
}

// createRepoRequest is the body of POST /api/repos/create (§2).
type createRepoRequest struct {
	Name         string  `json:"name"`                 // repo name without namespace
	Organization *string `json:"organization"`         // null → the token's user
	Visibility   string  `json:"visibility,omitempty"` // "public" | "private"
	Type         string  `json:"type"`                 // "model" | "dataset" | "space"
	SDK          string  `json:"sdk,omitempty"`        // spaces only
}

// createRepoResponse is the body of a 200, and of a 409 for an existing repo.
type createRepoResponse struct {
	URL  string `json:"url"`  // {endpoint}/{prefix}{ns}/{name}
	Name string `json:"name"` //
	ID   string `json:"id"`   //
}

// RepoInfo is the answer of GET /api/{type}s/{id}[/revision/{rev}] (§6).
type RepoInfo struct {
	ID       string    `json:"id"`      // "ns/name"
	SHA      string    `json:"sha"`     // head commit of the revision
	Private  bool      `json:"private"` //
	Siblings []Sibling `json:"siblings"`
}

// Sibling is one file of RepoInfo.
type Sibling struct {
	RFilename string `json:"rfilename"` // path in the repo
	Size      int64  `json:"size,omitempty"`
	LFS       *struct {
		SHA256 string `json:"sha256"`
		Size   int64  `json:"size"`
	} `json:"lfs,omitempty"`
}

// TreeEntry is one element of a tree listing or a paths-info answer (§6).
type TreeEntry struct {
	Type       string      `json:"type"` // "file" | "directory"
	OID        string      `json:"oid"`  // git sha1 (of the pointer blob for LFS files)
	Size       int64       `json:"size"` // real size, LFS included
	Path       string      `json:"path"` // relative to the repo root
	LFS        *LFSInfo    `json:"lfs,omitempty"`
	LastCommit *LastCommit `json:"lastCommit,omitempty"` // with TreeOptions.Expand only
}

// LastCommit is the commit that last changed a tree entry (expand=true).
type LastCommit struct {
	ID    string    `json:"id"`
	Title string    `json:"title"`
	Date  time.Time `json:"date"`
}

// commitJSON is one element of GET /api/{type}s/{id}/commits/{rev}, as
// huggingface_hub's list_repo_commits and @huggingface/hub's listCommits
// read it.
type commitJSON struct {
	ID      string `json:"id"`
	Title   string `json:"title"`
	Message string `json:"message"`
	Authors []struct {
		User   string `json:"user"`
		Avatar string `json:"avatar"`
	} `json:"authors"`
	Date time.Time `json:"date"`
}

// validateYAMLRequest is the body of POST /api/validate-yaml.
type validateYAMLRequest struct {
	Content  string `json:"content"`
	RepoType string `json:"repoType"`
}

// validateYAMLResponse is its answer, 200 or 400 alike.
type validateYAMLResponse struct {
	Errors []struct {
		Message string `json:"message"`
	} `json:"errors"`
	Warnings []struct {
		Message string `json:"message"`
	} `json:"warnings"`
}

// LFSInfo describes the LFS object behind a TreeEntry.
type LFSInfo struct {
	OID         string `json:"oid"`         // sha256
	Size        int64  `json:"size"`        //
	PointerSize int64  `json:"pointerSize"` //
}

// PreuploadFile is one file offered to preupload (§3).
type PreuploadFile struct {
	Path   string `json:"path"`   // path in the repo
	Sample []byte `json:"sample"` // first ≤512 bytes (sent as standard base64)
	Size   int64  `json:"size"`   //
}

type preuploadRequest struct {
	Files         []PreuploadFile `json:"files"`
	GitAttributes string          `json:"gitAttributes,omitempty"`
}

// PreuploadResult is the Hub's verdict on one file (§3).
type PreuploadResult struct {
	Path         string `json:"path"`         //
	UploadMode   string `json:"uploadMode"`   // "lfs" | "regular"
	ShouldIgnore bool   `json:"shouldIgnore"` // the repo's .gitignore excludes it
	OID          string `json:"oid"`          // remote oid when the path exists: sha256 (lfs) or git sha1 (regular)
}

type preuploadResponse struct {
	Files     []PreuploadResult `json:"files"`
	CommitOid string            `json:"commitOid"` // head of the revision
}

// LFSObject is one object of an LFS batch request (§4).
type LFSObject struct {
	OID  string `json:"oid"`  // sha256, lowercase hex
	Size int64  `json:"size"` //
}

type lfsRef struct {
	Name string `json:"name"`
}

type lfsBatchRequest struct {
	Operation string      `json:"operation"` // "upload"
	Transfers []string    `json:"transfers"` // ["basic","multipart"]
	Objects   []LFSObject `json:"objects"`   //
	HashAlgo  string      `json:"hash_algo"` // "sha256"
	Ref       *lfsRef     `json:"ref,omitempty"`
}

type lfsBatchResponse struct {
	Transfer string      `json:"transfer"`
	Objects  []LFSAction `json:"objects"`
}

// LFSAction is the batch answer for one object. No Actions (or no upload
// action) means the Hub already stores the object.
type LFSAction struct {
	OID     string `json:"oid"`
	Size    int64  `json:"size"`
	Actions *struct {
		Upload *LFSHref `json:"upload,omitempty"`
		Verify *LFSHref `json:"verify,omitempty"`
	} `json:"actions,omitempty"`
	Error *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

// Upload returns the upload action, or nil when the object needs none.
func (a LFSAction) Upload() *LFSHref {
	if a.Actions == nil {
		return nil
	}
	return a.Actions.Upload
}

// LFSHref is an action: a URL and its header. For multipart uploads Href
// is the completion URL and Header holds "chunk_size" and the part URLs
// under the keys "00001", "00002", ….
type LFSHref struct {
	Href      string            `json:"href"`
	Header    map[string]string `json:"header,omitempty"`
	ExpiresIn int64             `json:"expires_in,omitempty"`
}

type completionPart struct {
	PartNumber int    `json:"partNumber"`
	ETag       string `json:"etag"`
}

type completionRequest struct {
	OID   string           `json:"oid"`
	Parts []completionPart `json:"parts"`
}

type verifyRequest struct {
	OID  string `json:"oid"`
	Size int64  `json:"size"`
}

// commitLine is one NDJSON line of a commit (§5).
type commitLine struct {
	Key   string `json:"key"`   // "header" | "file" | "lfsFile" | "deletedFile" | "deletedFolder"
	Value any    `json:"value"` //
}

type commitHeader struct {
	Summary      string `json:"summary"`
	Description  string `json:"description"`
	ParentCommit string `json:"parentCommit,omitempty"`
}

type commitLFSFile struct {
	Path string `json:"path"`
	Algo string `json:"algo"` // "sha256"
	OID  string `json:"oid"`
	Size int64  `json:"size"`
}

type commitPath struct {
	Path string `json:"path"`
}

type commitResponse struct {
	Success        bool   `json:"success"`
	CommitOid      string `json:"commitOid"`
	CommitURL      string `json:"commitUrl"`
	PullRequestURL string `json:"pullRequestUrl"`
	HookOutput     string `json:"hookOutput"`
}
