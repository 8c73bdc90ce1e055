package hubemu

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// repoKinds maps the plural used in API URLs to the repo type.
var repoKinds = map[string]string{"models": "model", "datasets": "dataset", "spaces": "space"}

// repoPart is one half of a repo id as huggingface_hub's validate_repo_id
// accepts it: word characters, '-' and '.', starting and ending with a word
// character (the \b of its regular expression).
var repoPart = regexp.MustCompile(`^[A-Za-z0-9_](?:[A-Za-z0-9_.\-]*[A-Za-z0-9_])?$`)

// validateRepoID checks a namespace and a name as huggingface_hub does
// (hub-protocol.md §10): [\w\-.]{1,96}, no "--" or "..", no ".git" suffix.
func validateRepoID(ns, name string) error {
	for _, p := range []struct{ what, v string }{{"namespace", ns}, {"name", name}} {
		switch {
		case p.v == "":
			return fmt.Errorf("repo id: empty %s", p.what)
		case len(p.v) > 96:
			return fmt.Errorf("repo id: %s %q is longer than 96 characters", p.what, p.v)
		case !repoPart.MatchString(p.v):
			return fmt.Errorf("repo id: %s %q may only contain letters, digits, '-', '_' and '.', and must start and end with a letter, digit or '_'", p.what, p.v)
		case strings.Contains(p.v, "--") || strings.Contains(p.v, ".."):
			return fmt.Errorf("repo id: %s %q must not contain \"--\" or \"..\"", p.what, p.v)
		}
	}
	if strings.HasSuffix(name, ".git") {
		return fmt.Errorf("repo id: name %q must not end with \".git\"", name)
	}
	return nil
}

// validatePath checks a path in a repo (hub-protocol.md §10): relative,
// slash-separated, no empty, "." or ".." segments, no ".git" or ".cache"
// segment, no backslash, valid UTF-8 without control characters (a
// newline or an escape sequence in a path would forge lines in listings and
// terminals).
func validatePath(p string) error {
	if p == "" {
		return errors.New("empty path")
	}
	if len(p) > 4096 {
		return fmt.Errorf("path %.40q… is too long", p)
	}
	if !utf8.ValidString(p) {
		return fmt.Errorf("path %q is not valid UTF-8", p)
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 {
			return fmt.Errorf("path %q contains a control character", p)
		}
	}
	if strings.ContainsRune(p, '\\') {
		return fmt.Errorf("path %q contains a backslash", p)
	}
	if strings.HasPrefix(p, "/") {
		return fmt.Errorf("path %q must be relative to the repo root", p)
	}
	for _, seg := range strings.Split(p, "/") {
		switch seg {
		case "":
			return fmt.Errorf("path %q has an empty segment", p)
		case ".", "..":
			return fmt.Errorf("path %q must not contain %q", p, seg)
		case ".git", ".cache":
			return fmt.Errorf("path %q must not contain a %q folder", p, seg)
		}
	}
	return nil
}

// validBranch reports whether b can be a branch name: a git ref name
// without the oddities git refuses, and not in the refs/ namespace.
func validBranch(b string) bool {
	if b == "" || len(b) > 200 || strings.HasPrefix(b, "refs/") || strings.HasPrefix(b, "/") ||
		strings.HasSuffix(b, "/") || strings.HasSuffix(b, ".lock") || strings.HasSuffix(b, ".") ||
		strings.Contains(b, "..") || strings.Contains(b, "//") || strings.Contains(b, "@{") {
		return false
	}
	for _, r := range b {
		if r < 0x20 || r == 0x7f || strings.ContainsRune(" ~^:?*[\\", r) {
			return false
		}
	}
	return !isHex40(b)
}

func isHex40(s string) bool { return len(s) == 40 && isLowerHex(s) }

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func validOid(s string) bool { return len(s) == 64 && isLowerHex(s) }
