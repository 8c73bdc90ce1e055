package hub

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The closed set of error kinds. Every error the client returns for a Hub
// response wraps exactly one of them, so callers test with errors.Is and read
// the details with errors.As(err, **Error).
var (
	// ErrUnauthorized: the token is missing, malformed, expired or revoked (401).
	ErrUnauthorized = errors.New("hub: unauthorized")
	// ErrForbidden: the token is valid but may not do this (403, gated or disabled repo).
	ErrForbidden = errors.New("hub: forbidden")
	// ErrRepoNotFound: the repository does not exist or the token cannot see it.
	ErrRepoNotFound = errors.New("hub: repository not found")
	// ErrRevisionNotFound: the branch, tag or commit does not exist.
	ErrRevisionNotFound = errors.New("hub: revision not found")
	// ErrEntryNotFound: the file or folder does not exist at that revision.
	ErrEntryNotFound = errors.New("hub: entry not found")
	// ErrRateLimited: the Hub asked the client to slow down (429); Error.RetryAfter holds the wait.
	ErrRateLimited = errors.New("hub: rate limited")
	// ErrConflict: the repository already exists, or the branch moved under a commit (409, 412).
	ErrConflict = errors.New("hub: conflict")
	// ErrTooLarge: the request or a file exceeds a Hub limit (413, or the 10 MiB non-LFS limit).
	ErrTooLarge = errors.New("hub: too large")
	// ErrServer: the Hub failed (5xx, 408) and retries did not help.
	ErrServer = errors.New("hub: server error")
	// ErrBadRequest: the Hub rejected the request for another reason (other 4xx) or sent an invalid answer.
	ErrBadRequest = errors.New("hub: bad request")
	// ErrNetwork: the Hub could not be reached, or the connection broke, and retries did not help.
	ErrNetwork = errors.New("hub: network error")
	// ErrXetUnavailable: the transfer is TransferXet and the Hub answered
	// the LFS batch with another transfer (Error.Message names it).
	ErrXetUnavailable = errors.New("hub: xet transfer unavailable")
	// ErrInvalidRepoID: a repo id fails huggingface_hub's validation; no request was sent.
	ErrInvalidRepoID = errors.New("hub: invalid repo id")
	// ErrInvalidPath: a path in the repo fails huggingface_hub's validation; no request was sent.
	ErrInvalidPath = errors.New("hub: invalid path in repo")
)

// Error is a failed Hub call. It wraps one of the Err* kinds.
type Error struct {
	Kind       error         // one of the Err* sentinels
	Op         string        // what the client was doing: "preupload", "commit", "upload part 3 of a.bin", …
	StatusCode int           // HTTP status, 0 for network errors
	Code       string        // X-Error-Code, when the Hub sent one
	Message    string        // the Hub's own message (X-Error-Message, JSON error), scrubbed of the token
	RequestID  string        // X-Request-Id (or trace id) for bug reports
	RetryAfter time.Duration // for ErrRateLimited: how long the Hub asked to wait
	Hint       string        // what the user should do about it
	Err        error         // an underlying cause (a network error), if any

	body []byte // the response body, for callers that need more than the message
}

// Error renders "hub: <op>: <kind> (HTTP <status> <code>: <message>; request id <id>): <hint>".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Kind.Error())
	if e.Op != "" {
		b.Reset()
		b.WriteString("hub: ")
		b.WriteString(e.Op)
		b.WriteString(": ")
		b.WriteString(strings.TrimPrefix(e.Kind.Error(), "hub: "))
	}
	var detail []string
	if e.StatusCode != 0 {
		s := "HTTP " + strconv.Itoa(e.StatusCode)
		if e.Code != "" {
			s += " " + e.Code
		}
		detail = append(detail, s)
	}
	if e.Message != "" {
		detail = append(detail, strconv.Quote(e.Message))
	}
	if e.Err != nil {
		detail = append(detail, e.Err.Error())
	}
	if e.RetryAfter > 0 {
		detail = append(detail, "retry after "+e.RetryAfter.Round(time.Second).String())
	}
	if e.RequestID != "" {
		detail = append(detail, "request id "+e.RequestID)
	}
	if len(detail) > 0 {
		b.WriteString(" (")
		b.WriteString(strings.Join(detail, "; "))
		b.WriteString(")")
	}
	if e.Hint != "" {
		b.WriteString(": ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

// Unwrap returns the kind and the cause, so errors.Is matches both.
func (e *Error) Unwrap() []error {
	if e.Err != nil {
		return []error{e.Kind, e.Err}
	}
	return []error{e.Kind}
}

// repoURLPath matches the URLs on which huggingface_hub turns an unexplained
// 401 into RepositoryNotFound (utils/_http.py hf_raise_for_status).
var repoURLPath = regexp.MustCompile(`^/api/(models|datasets|spaces)/|/resolve/`)

// invalidCredentials is the 401 message the Hub sends for a bad token.
const invalidCredentials = "Invalid credentials in Authorization header"

// errorMessage extracts the Hub's message as huggingface_hub's _format does:
// X-Error-Message, then JSON error (string or list) + error_description,
// then errors[].message, then a short non-HTML text body.
func errorMessage(h http.Header, body []byte) string {
	var parts []string
	if m := h.Get("X-Error-Message"); m != "" {
		parts = append(parts, m)
	}
	var j struct {
		Error            json.RawMessage `json:"error"`
		Message          string          `json:"message"`
		ErrorDescription string          `json:"error_description"`
		Errors           []struct {
			Message string `json:"message"`
		} `json:"errors"`
	}
	add := func(s string) {
		s = strings.TrimSpace(s)
		for _, p := range parts {
			if p == s {
				return
			}
		}
		if s != "" {
			parts = append(parts, s)
		}
	}
	if json.Unmarshal(body, &j) == nil {
		var s string
		var list []string
		switch {
		case json.Unmarshal(j.Error, &s) == nil:
			add(s)
		case json.Unmarshal(j.Error, &list) == nil:
			add(strings.Join(list, "; "))
		}
		if j.Message != "" {
			add(j.Message)
		}
		if j.ErrorDescription != "" {
			add(j.ErrorDescription)
		}
		for _, e := range j.Errors {
			add(e.Message)
		}
	} else if ct := h.Get("Content-Type"); !strings.Contains(ct, "html") && len(body) > 0 && len(body) < 1000 {
		add(string(body))
	}
	return strings.Join(parts, " ")
}

// requestID returns the first present of the id headers huggingface_hub reports.
func requestID(h http.Header) string {
	for _, k := range []string{"X-Request-Id", "X-Amzn-Trace-Id", "X-Amz-Cf-Id"} {
		if v := h.Get(k); v != "" {
			return v
		}
	}
	return ""
}

// classify turns a non-2xx response into a typed *Error with a hint. It
// follows hub-protocol.md §7 for the kind and adds what to do.
func (c *Client) classify(op, urlPath string, status int, h http.Header, body []byte) *Error {
	e := &Error{
		Op:         op,
		StatusCode: status,
		Code:       h.Get("X-Error-Code"),
		Message:    c.scrub(errorMessage(h, body)),
		RequestID:  requestID(h),
		body:       body,
	}
	switch {
	case e.Code == "RevisionNotFound":
		e.Kind, e.Hint = ErrRevisionNotFound, "check the branch or revision name, or create the branch first"
	case e.Code == "EntryNotFound":
		e.Kind, e.Hint = ErrEntryNotFound, "check the path in the repository and the revision"
	case e.Code == "GatedRepo":
		e.Kind, e.Hint = ErrForbidden, "the repository is gated; request access on its page, then retry with a token of the account that was granted access"
	case e.Message == "Access to this resource is disabled.":
		e.Kind, e.Hint = ErrForbidden, "the repository is disabled by the Hub; contact its owner or the Hub's support"
	case e.Code == "RepoNotFound",
		status == http.StatusUnauthorized && e.Message != invalidCredentials && repoURLPath.MatchString(urlPath):
		e.Kind, e.Hint = ErrRepoNotFound, "check the repo id and type (model, dataset, space), create the repository first, and check that the token's account can see it"
	// Where to get a token is said once, by core/advice, which knows a
	// local Hub has no token page: the hints only say what is wrong.
	case status == http.StatusUnauthorized:
		e.Kind = ErrUnauthorized
		if c.token == "" {
			e.Hint = "no token was given"
		} else {
			e.Hint = "the token is invalid or expired"
		}
	case status == http.StatusForbidden:
		e.Kind = ErrForbidden
		if c.tokenRole() == "read" {
			e.Hint = "the token has read access only"
		} else {
			e.Hint = "the token may not write here (it needs write access to the namespace or repository)"
		}
	case status == http.StatusTooManyRequests:
		e.Kind = ErrRateLimited
		e.RetryAfter, _ = serverWait(status, h)
		e.Hint = "the Hub is rate limiting this account; wait and run again"
	case status == http.StatusConflict:
		e.Kind, e.Hint = ErrConflict, "the repository already exists or another operation is in progress; use it as is, or choose another name"
	case status == http.StatusPreconditionFailed:
		e.Kind, e.Hint = ErrConflict, "the branch moved since the upload started; run the upload again (unchanged files are skipped)"
	case status == http.StatusRequestEntityTooLarge,
		status == http.StatusBadRequest && strings.Contains(e.Message, "larger than 10 MiB"):
		e.Kind, e.Hint = ErrTooLarge, "a file or request exceeds a Hub limit; large files must go through LFS (check .gitattributes)"
	case status == http.StatusNotFound && repoURLPath.MatchString(urlPath):
		e.Kind, e.Hint = ErrRepoNotFound, "check the repo id and type, and that the token's account can see it"
	case status == http.StatusNotFound:
		e.Kind, e.Hint = ErrEntryNotFound, "the Hub does not know this URL; an upload link may have expired, run the upload again"
	case status == http.StatusRequestTimeout || status >= 500:
		e.Kind, e.Hint = ErrServer, "the Hub failed; run the upload again later (finished parts and files are not re-sent)"
	default:
		e.Kind, e.Hint = ErrBadRequest, "the Hub rejected the request; see its message"
	}
	return e
}

// scrub removes the token, the endpoint's user info and any URL's user
// info from text that might be shown or logged.
func (c *Client) scrub(s string) string {
	s = RedactText(s)
	if c == nil {
		return s
	}
	if len(c.token) >= 4 {
		s = strings.ReplaceAll(s, c.token, "hf_***")
	}
	for _, secret := range c.secrets {
		if len(secret) >= 4 {
			s = strings.ReplaceAll(s, secret, "***")
		}
	}
	return s
}

// errorf builds a client-side *Error (validation, malformed Hub answers).
func errorf(kind error, op, format string, args ...any) *Error {
	return &Error{Kind: kind, Op: op, Hint: fmt.Sprintf(format, args...)}
}
