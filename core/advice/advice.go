// Package advice is the one place that says what a user should do about a
// failure, for the command line and the app alike. Errors say what went
// wrong; For adds the one sentence of advice, naming the token page of the
// Hub the error came from, so a message never repeats it.
package advice

import (
	"errors"
	"net"
	"net/url"
	"strings"

	"modelpub/core/auth"
	"modelpub/core/hub"
	"modelpub/core/publish"
)

// For returns the advice for err from the Hub at endpoint ("" is
// huggingface.co): one sentence, capitalised and ending with a full stop,
// in words that suit a command and a window alike. It is "" for an error
// it has no advice for; such errors carry their own.
func For(err error, endpoint string) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, publish.ErrReadOnlyToken):
		return "Publishing needs a token with the write role: " + TokenSource(endpoint, "") +
			", and log in with it."
	case errors.Is(err, publish.ErrNoToken):
		return "Log in with a Hub token that has the write role: " + TokenSource(endpoint, "with the write role") + "."
	case errors.Is(err, hub.ErrUnauthorized):
		return "Log in again with a valid token: " + TokenSource(endpoint, "") + "."
	case errors.Is(err, publish.ErrNamespace):
		return "Publish to a namespace the token may write to (your own, or an organisation where you have the " +
			"write role), or ask an admin of the organisation for that role."
	case errors.Is(err, hub.ErrForbidden) && !isGatedOrDisabled(err):
		return "Use a token that may write to this repository (a fine-grained token needs write access to it): " +
			TokenSource(endpoint, "with the write role") + "."
	case errors.Is(err, hub.ErrXetUnavailable):
		return "This Hub does not take Xet uploads: publish with the transfer auto or Git LFS " +
			"(--transfer auto or lfs; in the app, Advanced ▸ Transfer)."
	}
	return ""
}

// TokenSource says where to get a token for the Hub at endpoint, as a
// clause: "create one at https://huggingface.co/settings/tokens". role
// qualifies the token ("with the write role"), "" for any. A local Hub
// (an emulator on a loopback address, modelpub localhub) has no token
// page: its tokens are the ones it was started with.
func TokenSource(endpoint, role string) string {
	if role != "" {
		role = " " + role
	}
	if IsLocal(endpoint) {
		return "use a token the local Hub was started with (modelpub localhub --token hf_…=USER)"
	}
	return "create one" + role + " at " + TokenPage(endpoint)
}

// TokenPage is the page where the Hub at endpoint ("" is huggingface.co)
// makes tokens: its /settings/tokens, without any user information, query
// or fragment of the endpoint.
func TokenPage(endpoint string) string {
	ep := strings.TrimRight(strings.TrimSpace(endpoint), "/")
	if ep == "" {
		ep = auth.DefaultEndpoint
	}
	return strings.TrimRight(hub.RedactURL(ep), "/") + "/settings/tokens"
}

// IsLocal reports whether endpoint is a Hub on this machine: localhost or
// a loopback address.
func IsLocal(endpoint string) bool {
	ep := strings.TrimSpace(endpoint)
	if ep == "" {
		return false
	}
	if !strings.Contains(ep, "://") {
		ep = "http://" + ep
	}
	u, err := url.Parse(ep)
	if err != nil {
		return false
	}
	host := strings.ToLower(u.Hostname())
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// isGatedOrDisabled reports whether a refusal is about the repository (a
// gated or disabled one) rather than the token's rights: another token
// does not help there, and the Hub's error says what does.
func isGatedOrDisabled(err error) bool {
	var he *hub.Error
	return errors.As(err, &he) && (he.Code == "GatedRepo" || he.Message == "Access to this resource is disabled.")
}

// Message is err's text to show beside For's advice: without the Hub's
// request id (a detail for bug reports, kept in the full text), and, when
// For has advice, only the Hub's answer, since the layers around it may
// carry a hint of their own that For's sentence replaces.
func Message(err error, endpoint string) string {
	if err == nil {
		return ""
	}
	var he *hub.Error
	if !errors.As(err, &he) {
		return err.Error()
	}
	short := *he
	short.RequestID = ""
	if For(err, endpoint) != "" {
		if errors.Is(err, hub.ErrXetUnavailable) {
			// Its hint names the command's flag only; For's sentence
			// says the same for a command and the app alike.
			short.Hint = ""
		}
		return short.Error()
	}
	return strings.Replace(err.Error(), he.Error(), short.Error(), 1)
}

// Bare is err's text without the Hub's request id and without its hint,
// for a caller that says what to do in its own words (the app's advice on
// a network error or a full disk), so the advice is not given twice.
func Bare(err error) string {
	if err == nil {
		return ""
	}
	var he *hub.Error
	if !errors.As(err, &he) {
		return err.Error()
	}
	short := *he
	short.RequestID, short.Hint = "", ""
	return strings.Replace(err.Error(), he.Error(), short.Error(), 1)
}
