package hub

import (
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"
)

// RepoType is the kind of Hub repository.
type RepoType string

// The three repository types; the zero value means a model.
const (
	Model   RepoType = "model"
	Dataset RepoType = "dataset"
	Space   RepoType = "space"
)

// RepoID names a repository: a type, an optional namespace (user or
// organization) and a name.
type RepoID struct {
	Type      RepoType // "" means Model
	Namespace string   // "" → the token's user (create repo only)
	Name      string
}

// ParseRepoID parses "ns/name", "name", "datasets/ns/name" or
// "spaces/ns/name" (the singular prefixes are rejected, as
// @huggingface/hub's toRepoId does) and validates the result.
func ParseRepoID(s string) (RepoID, error) {
	var id RepoID
	if first, rest, ok := strings.Cut(s, "/"); ok && strings.Contains(rest, "/") {
		switch first {
		case "datasets":
			id.Type, s = Dataset, rest
		case "spaces":
			id.Type, s = Space, rest
		case "models":
			id.Type, s = Model, rest
		case "model", "dataset", "space":
			return RepoID{}, errorf(ErrInvalidRepoID, "parse repo id", "%q: write the type in the plural (datasets/…, spaces/…) or leave it out for a model", s)
		}
	}
	if ns, name, ok := strings.Cut(s, "/"); ok {
		id.Namespace, id.Name = ns, name
	} else {
		id.Name = s
	}
	return id, id.Validate()
}

// repoPart is huggingface_hub's REPO_ID_REGEX piece `\b[\w\-.]+\b`: word
// characters, '-' and '.', starting and ending with a word character.
// Python's \w is Unicode-aware, hence \p{L}\p{N}.
var repoPart = regexp.MustCompile(`^[\p{L}\p{N}_]([\p{L}\p{N}_.\-]*[\p{L}\p{N}_])?$`)

// Validate applies huggingface_hub's validate_repo_id (utils/_validators.py):
// `^(\b[\w\-.]+\b/)?\b[\w\-.]{1,96}\b$`, no "--" or "..", no ".git" suffix.
func (id RepoID) Validate() error {
	bad := func(why string) error {
		return errorf(ErrInvalidRepoID, "validate repo id", "%q %s; use letters, digits, '-', '_' and '.' as in \"user/my-model\"", id.path(), why)
	}
	switch id.Type {
	case "", Model, Dataset, Space:
	default:
		return errorf(ErrInvalidRepoID, "validate repo id", "unknown repo type %q; use model, dataset or space", id.Type)
	}
	s := id.path()
	switch {
	case id.Name == "":
		return bad("has no name")
	case strings.Count(id.Name, "/") > 0:
		return bad("has more than one '/'")
	case !repoPart.MatchString(id.Name):
		return bad("has a name with forbidden characters (or one that starts or ends with '-' or '.')")
	case len([]rune(id.Name)) > 96:
		return bad("has a name longer than 96 characters")
	case id.Namespace != "" && !repoPart.MatchString(id.Namespace):
		return bad("has a namespace with forbidden characters")
	case strings.Contains(s, "--"), strings.Contains(s, ".."):
		return bad("contains '--' or '..'")
	case strings.HasSuffix(s, ".git"):
		return bad("ends with .git")
	}
	return nil
}

// path is "ns/name" or "name".
func (id RepoID) path() string {
	if id.Namespace == "" {
		return id.Name
	}
	return id.Namespace + "/" + id.Name
}

// String returns the id as the Hub writes it: "ns/name", "datasets/ns/name".
func (id RepoID) String() string { return id.urlPrefix() + id.path() }

func (id RepoID) typ() RepoType {
	if id.Type == "" {
		return Model
	}
	return id.Type
}

// urlPrefix is the prefix of git and resolve URLs: "", "datasets/", "spaces/".
func (id RepoID) urlPrefix() string {
	if id.typ() == Model {
		return ""
	}
	return string(id.typ()) + "s/"
}

// apiPath is "/api/{type}s/{ns}/{name}", escaped.
func (id RepoID) apiPath() string {
	return "/api/" + string(id.typ()) + "s/" + escapeSegments(id.path())
}

// gitPath is "/{prefix}{ns}/{name}", escaped.
func (id RepoID) gitPath() string {
	return "/" + id.urlPrefix() + escapeSegments(id.path())
}

// escapeSegments escapes each '/'-separated segment, keeping the slashes.
func escapeSegments(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}

// escapeRev escapes a revision as one path segment, as huggingface_hub's
// quote(revision, safe="") does: refs/pr/1 → refs%2Fpr%2F1.
func escapeRev(rev string) string {
	return strings.ReplaceAll(url.PathEscape(rev), "/", "%2F")
}

// forbiddenFolders are the path segments huggingface_hub refuses in a repo
// path (_commit_api.py FORBIDDEN_FOLDERS).
var forbiddenFolders = []string{".git", ".cache"}

// CleanPath validates a path in the repository as huggingface_hub's
// _validate_path_in_repo does and returns its normal form: a leading "/" and
// "./" are removed; ".", ".." and "../…" are rejected, as is any path with a
// ".git" or ".cache" segment. Empty paths, backslashes, invalid UTF-8 and
// control characters (NUL, newline, escape, DEL, C1) are rejected as well,
// as the Hub does (stricter than huggingface_hub).
func CleanPath(p string) (string, error) {
	orig := p
	p = strings.TrimPrefix(p, "/")
	if p == "." || p == ".." || strings.HasPrefix(p, "../") {
		return "", errorf(ErrInvalidPath, "validate path", "%q points outside the repository; use a path relative to the repo root", orig)
	}
	p = strings.TrimPrefix(p, "./")
	if p == "" || strings.HasSuffix(p, "/") {
		return "", errorf(ErrInvalidPath, "validate path", "%q does not name a file", orig)
	}
	if strings.ContainsAny(p, "\\\x00") {
		return "", errorf(ErrInvalidPath, "validate path", "%q contains a backslash or NUL; use '/' as the separator", orig)
	}
	if !utf8.ValidString(p) {
		return "", errorf(ErrInvalidPath, "validate path", "%q is not valid UTF-8, which the Hub refuses; rename it", orig)
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 {
			return "", errorf(ErrInvalidPath, "validate path", "%q contains a control character, which the Hub refuses; rename it", orig)
		}
	}
	for _, seg := range strings.Split(p, "/") {
		for _, f := range forbiddenFolders {
			if seg == f {
				return "", errorf(ErrInvalidPath, "validate path", "%q contains a %q folder, which the Hub refuses; leave it out of the upload", orig, f)
			}
		}
	}
	return p, nil
}
