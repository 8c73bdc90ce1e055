package hub

import (
	"errors"
	"net/url"
	"regexp"
	"strings"
)

// RedactURL returns rawURL fit to be shown: without user info
// ("user:token@"), query (presigned URLs carry signatures in it, others may
// carry a token) or fragment. Use it wherever an endpoint or request URL
// reaches text: progress, errors, logs, events, JSON. Something that does
// not parse as a URL is redacted as text (RedactText).
func RedactURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Opaque != "" {
		s := RedactText(rawURL)
		if i := strings.IndexAny(s, "?#"); i >= 0 {
			s = s[:i]
		}
		return s
	}
	u.User = nil
	u.RawQuery, u.ForceQuery = "", false
	u.Fragment, u.RawFragment = "", ""
	return u.String()
}

// userInfo matches the user info of a URL inside text: the scheme, then
// anything up to an '@' before the host's first '/', '?', '#' or space.
var userInfo = regexp.MustCompile(`(?i)\b([a-z][a-z0-9+.\-]*://)[^/?#\s@]*@`)

// RedactText removes the user info of every URL in s ("http://u:p@h" →
// "http://h"), for messages that quote URLs, such as net/http's.
func RedactText(s string) string {
	return userInfo.ReplaceAllString(s, "$1")
}

// redactURL rewrites the URL inside a *url.Error with RedactURL:
// presigned upload URLs carry signatures and an endpoint may carry user
// info, neither of which belongs in an error or a log.
func redactURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return &url.Error{Op: ue.Op, URL: RedactURL(ue.URL), Err: redactedError{ue.Err}}
	}
	return err
}

// redactedError keeps an error's identity for errors.Is/As but shows its
// text without user info (a parse error quotes the URL it failed on).
type redactedError struct{ err error }

func (e redactedError) Error() string {
	if e.err == nil {
		return ""
	}
	return RedactText(e.err.Error())
}

func (e redactedError) Unwrap() error { return e.err }
