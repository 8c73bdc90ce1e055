package advice_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"modelpub/core/advice"
	"modelpub/core/hub"
	"modelpub/core/publish"
)

const (
	hfHub    = "https://huggingface.co"
	localHub = "http://127.0.0.1:8765"
	ownHub   = "https://hub.example.com/"
)

// hubErr is a Hub refusal as the client returns it, wrapped twice as the
// publish job wraps it.
func hubErr(kind error, status int, code, msg string) error {
	he := &hub.Error{Kind: kind, Op: "whoami", StatusCode: status, Code: code, Message: msg,
		RequestID: "Root=1-abc-request-id", Hint: "what the Hub client says"}
	return &publish.StepError{Step: publish.StepCheck, Err: fmt.Errorf("the Hub refused: %w", he)}
}

// xetUnavailableErr is the Hub client's refusal of --transfer xet by a Hub
// that answered the LFS batch with another transfer, wrapped as the
// publish job wraps it.
func xetUnavailableErr() error {
	he := &hub.Error{Kind: hub.ErrXetUnavailable, Op: "lfs batch",
		Message: "offered only the xet transfer, the Hub answered the transfer basic",
		Hint:    "this Hub does not take Xet uploads; use --transfer auto or lfs"}
	return &publish.StepError{Step: publish.StepUpload, Err: fmt.Errorf("upload: %w", he)}
}

func TestFor(t *testing.T) {
	unauthorized := hubErr(hub.ErrUnauthorized, 401, "", "Invalid credentials in Authorization header")
	forbidden := hubErr(hub.ErrForbidden, 403, "", "You don't have the rights")
	xetUnavailable := xetUnavailableErr()
	for _, tt := range []struct {
		name     string
		err      error
		endpoint string
		has      []string // the advice holds each
		hasNot   []string
	}{
		{"wrong token", unauthorized, hfHub, []string{"Log in again", "https://huggingface.co/settings/tokens"}, nil},
		{"wrong token, default endpoint", unauthorized, "", []string{"https://huggingface.co/settings/tokens"}, nil},
		{"wrong token, local Hub", unauthorized, localHub, []string{"a token the local Hub was started with", "modelpub localhub --token"}, []string{"settings/tokens", "127.0.0.1"}},
		{"wrong token, localhost", unauthorized, "http://localhost:8765", []string{"local Hub"}, []string{"settings/tokens"}},
		{"wrong token, IPv6 loopback", unauthorized, "http://[::1]:8765", []string{"local Hub"}, []string{"settings/tokens"}},
		{"wrong token, own Hub", unauthorized, ownHub, []string{"https://hub.example.com/settings/tokens"}, []string{"huggingface.co"}},
		{"user info never shown", unauthorized, "https://user:secret@hub.example.com", []string{"https://hub.example.com/settings/tokens"}, []string{"secret"}},
		{"read-only token", fmt.Errorf("check: %w", publish.ErrReadOnlyToken), hfHub, []string{"write role", "https://huggingface.co/settings/tokens"}, nil},
		{"read-only token, local Hub", publish.ErrReadOnlyToken, localHub, []string{"write role", "local Hub"}, []string{"settings/tokens"}},
		{"no token", publish.ErrNoToken, hfHub, []string{"Log in", "write role", "settings/tokens"}, nil},
		{"forbidden", forbidden, hfHub, []string{"may write to this repository", "settings/tokens"}, nil},
		{"namespace", fmt.Errorf("%w: alice can write to alice", publish.ErrNamespace), hfHub, []string{"namespace", "write role"}, []string{"settings/tokens"}},
		{"gated repo: no token advice", hubErr(hub.ErrForbidden, 403, "GatedRepo", "Access restricted"), hfHub, nil, []string{"settings/tokens"}},
		{"xet unavailable", xetUnavailable, hfHub, []string{"--transfer auto or lfs", "Advanced ▸ Transfer", "Xet"}, []string{"token"}},
		{"xet unavailable, local Hub", xetUnavailable, localHub, []string{"--transfer auto or lfs"}, []string{"token"}},
		{"network: none", hubErr(hub.ErrNetwork, 0, "", ""), hfHub, nil, []string{"token"}},
		{"other: none", errors.New("boom"), hfHub, nil, []string{"token"}},
		{"nil: none", nil, hfHub, nil, []string{"token"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := advice.For(tt.err, tt.endpoint)
			if len(tt.has) == 0 {
				assert.Empty(t, got)
				return
			}
			for _, s := range tt.has {
				assert.Contains(t, got, s)
			}
			for _, s := range tt.hasNot {
				assert.NotContains(t, got, s)
			}
			assert.Regexp(t, `^[A-Z].*\.$`, got, "one sentence")
			assert.Equal(t, 1, strings.Count(got, ". ")+1, "one sentence: %q", got)
		})
	}
}

// The errors For advises on no longer carry the advice themselves.
func TestErrorsCarryNoTokenPage(t *testing.T) {
	assert.NotContains(t, publish.ErrReadOnlyToken.Error(), "settings/tokens")
}

func TestMessage(t *testing.T) {
	unauthorized := hubErr(hub.ErrUnauthorized, 401, "", "Invalid credentials in Authorization header")
	got := advice.Message(unauthorized, hfHub)
	assert.NotContains(t, got, "request id")
	assert.NotContains(t, got, "Root=1-abc")
	assert.NotContains(t, got, "the Hub refused:", "only the Hub's answer beside the advice")
	assert.Contains(t, got, `HTTP 401; "Invalid credentials in Authorization header"`)

	server := hubErr(hub.ErrServer, 500, "", "boom")
	got = advice.Message(server, hfHub)
	assert.NotContains(t, got, "request id")
	assert.Contains(t, got, "the Hub refused: ", "without advice, the whole text")
	assert.Contains(t, got, "HTTP 500")
	assert.Contains(t, got, "what the Hub client says")

	assert.Equal(t, "boom", advice.Message(errors.New("boom"), hfHub))

	// The refusal of Xet: the Hub's answer, without the client's hint
	// (a flag of the command) that the advice replaces.
	got = advice.Message(xetUnavailableErr(), hfHub)
	assert.Contains(t, got, "answered the transfer basic")
	assert.NotContains(t, got, "use --transfer", "the advice says it, for the app too")
	assert.NotContains(t, got, "upload: ", "only the Hub client's error beside the advice")

	got = advice.Bare(server)
	assert.NotContains(t, got, "request id")
	assert.NotContains(t, got, "what the Hub client says", "the caller advises")
	assert.Contains(t, got, "the Hub refused: ")
	assert.Contains(t, got, `HTTP 500; "boom"`)
	assert.Equal(t, "boom", advice.Bare(errors.New("boom")))
	assert.Empty(t, advice.Bare(nil))
	assert.Empty(t, advice.Message(nil, hfHub))
}

func TestTokenSource(t *testing.T) {
	for _, tt := range []struct{ endpoint, role, want string }{
		{hfHub, "", "create one at https://huggingface.co/settings/tokens"},
		{"https://huggingface.co/", "with the write role", "create one with the write role at https://huggingface.co/settings/tokens"},
		{ownHub, "", "create one at https://hub.example.com/settings/tokens"},
		{localHub, "with the write role", "use a token the local Hub was started with (modelpub localhub --token hf_…=USER)"},
	} {
		assert.Equal(t, tt.want, advice.TokenSource(tt.endpoint, tt.role), tt.endpoint)
	}
}

func TestIsLocal(t *testing.T) {
	for ep, want := range map[string]bool{
		"http://127.0.0.1:8765": true, "http://127.1.2.3": true, "http://localhost": true, "http://[::1]:1": true,
		"127.0.0.1:8765": true, "https://huggingface.co": false, "http://10.0.0.1:8765": false, "": false,
		"http://hub.localhost:80": true, "http://example.com": false,
	} {
		assert.Equal(t, want, advice.IsLocal(ep), ep)
	}
}
