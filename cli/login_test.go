package cli

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/zalando/go-keyring"

	"modelpub/core/auth"
	"modelpub/core/hub/hubemu"
)

// login, logout and whoami against a real emulator over loopback, with
// go-keyring's in-memory mock as the OS keyring. None runs in parallel:
// the mock, stdin and the environment are process-wide.

const (
	aliceToken = "hf_aliceAliceAliceAliceAliceAlice1234"
	bobToken   = "hf_bobBobBobBobBobBobBobBobBobBobBob5678"
	carolToken = "hf_carolCarolCarolCarolCarolCarol9012" // read-only
	wrongToken = "hf_wrongWrongWrongWrongWrongWrong0000"
)

var allTokens = []string{aliceToken, bobToken, carolToken, wrongToken}

// loginHub starts an emulator that knows alice (member of studio), bob and
// carol (read-only), and isolates the test from the user's tokens.
func loginHub(t *testing.T) string {
	t.Helper()
	srv, err := hubemu.New(hubemu.Options{Dir: t.TempDir(),
		Tokens:     map[string]string{aliceToken: "alice", bobToken: "bob", carolToken: "carol"},
		ReadTokens: map[string]bool{carolToken: true},
		Orgs:       map[string]map[string]string{"studio": {"alice": "write"}, "zoo": {"alice": "admin", "bob": "read"}}})
	require.NoError(t, err)
	_, err = srv.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })

	keyring.MockInit()
	oldKeyring := userKeyring
	t.Cleanup(func() { userKeyring = oldKeyring })
	userKeyring = auth.OSKeyring() // the mock
	t.Setenv("HF_TOKEN", "")
	t.Setenv("HF_ENDPOINT", "")
	t.Setenv("HF_TOKEN_PATH", filepath.Join(t.TempDir(), "no-token"))
	old := stdin
	t.Cleanup(func() { stdin = old })
	stdin = strings.NewReader("")
	return srv.URL()
}

// runStdin runs a command with input on stdin and checks no output holds a token.
func runStdin(t *testing.T, input string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	stdin = strings.NewReader(input)
	var out, errb bytes.Buffer
	code = Run(args, &out, &errb)
	for _, tok := range allTokens {
		require.NotContains(t, out.String(), tok[3:])
		require.NotContains(t, errb.String(), tok[3:])
	}
	return code, out.String(), errb.String()
}

func storedToken(t *testing.T, url string) (string, bool) {
	t.Helper()
	v, err := keyring.Get(auth.Service, auth.Account(url))
	if err == keyring.ErrNotFound {
		return "", false
	}
	require.NoError(t, err)
	return v, true
}

func TestLoginWhoamiLogout(t *testing.T) {
	url := loginHub(t)
	host := strings.TrimPrefix(url, "http://")

	code, out, errb := runStdin(t, aliceToken+"\n", "login", "--endpoint", url)
	require.Equal(t, ExitOK, code, errb)
	assert.Equal(t, "Logged in to "+host+" as alice (token role: write). The token is kept in the OS keyring.\n", out)
	assert.Empty(t, errb)
	v, ok := storedToken(t, url)
	require.True(t, ok)
	assert.Equal(t, aliceToken, v)

	code, out, errb = runStdin(t, "", "whoami", "--endpoint", url)
	require.Equal(t, ExitOK, code, errb)
	assert.Equal(t, "user:       alice\n"+
		"full name:  alice\n"+
		"orgs:       studio (write), zoo (admin)\n"+
		"token:      \"localhub\", role write\n"+
		"token from: keyring ("+auth.Mask(aliceToken)+")\n"+
		"endpoint:   "+url+"\n", out)

	code, out, errb = runStdin(t, "", "whoami", "--json", "--endpoint", url)
	require.Equal(t, ExitOK, code, errb)
	var who whoamiJSON
	require.NoError(t, json.Unmarshal([]byte(out), &who))
	assert.Equal(t, whoamiJSON{Endpoint: url, User: "alice", Fullname: "alice",
		Orgs:  []orgJSON{{"studio", "write"}, {"zoo", "admin"}},
		Token: tokenJSON{Name: "localhub", Role: "write", Source: auth.SourceKeyring, Masked: "hf_…1234"}}, who)

	// A second login replaces the token.
	code, out, errb = runStdin(t, bobToken, "login", "--endpoint", url+"/")
	require.Equal(t, ExitOK, code, errb)
	assert.Contains(t, out, " as bob ")
	v, _ = storedToken(t, url)
	assert.Equal(t, bobToken, v)

	code, out, errb = runStdin(t, "", "logout", "--endpoint", url)
	require.Equal(t, ExitOK, code, errb)
	assert.Equal(t, "Logged out of "+host+": the token was removed from the OS keyring.\n", out)
	_, ok = storedToken(t, url)
	assert.False(t, ok)

	code, out, errb = runStdin(t, "", "logout", "--endpoint", url)
	assert.Equal(t, ExitProblems, code)
	assert.Empty(t, out)
	assert.Contains(t, errb, "modelpub logout: not logged in to "+host)

	code, _, errb = runStdin(t, "", "whoami", "--endpoint", url)
	assert.Equal(t, ExitProblems, code)
	for _, s := range []string{"no Hub token for " + host, "modelpub login", "HF_TOKEN", "--token-stdin"} {
		assert.Contains(t, errb, s)
	}
}

func TestLoginRefused(t *testing.T) {
	url := loginHub(t)
	require.NoError(t, keyring.Set(auth.Service, auth.Account(url), aliceToken))

	code, out, errb := runStdin(t, wrongToken+"\n", "login", "--endpoint", url)
	assert.Equal(t, ExitProblems, code)
	assert.Empty(t, out)
	assert.Contains(t, errb, "modelpub login: "+auth.Account(url)+" refused this token (HTTP 401")
	assert.Contains(t, errb, "Nothing was stored.")
	v, _ := storedToken(t, url)
	assert.Equal(t, aliceToken, v, "the previous token stays")
}

func TestLoginProblems(t *testing.T) {
	url := loginHub(t)
	tests := []struct {
		name    string
		input   string
		args    []string
		code    int
		stderr  []string
		keyring error // when set, the keyring fails with it
	}{
		{name: "empty stdin", args: []string{"login", "--endpoint", url}, code: ExitProblems,
			stderr: []string{"modelpub login: not a valid Hub token: the input is empty"}},
		{name: "token with a space", input: "hf_abc def\n", args: []string{"login", "--endpoint", url}, code: ExitProblems,
			stderr: []string{"whitespace"}},
		{name: "no keyring", input: aliceToken, args: []string{"login", "--endpoint", url}, code: ExitProblems,
			keyring: &exec.Error{Name: "dbus-launch", Err: exec.ErrNotFound},
			stderr:  []string{"the Hub accepted the token for alice, but it was not kept: cannot store the token in the OS keyring: no D-Bus session bus", "HF_TOKEN", "--token-stdin", "never writes the token to a plain file"}},
		{name: "unreachable Hub", input: aliceToken, args: []string{"login", "--endpoint", "http://127.0.0.1:1"}, code: ExitProblems,
			stderr: []string{"cannot check the token with http://127.0.0.1:1", "Nothing was stored."}},
		{name: "bad endpoint", input: aliceToken, args: []string{"login", "--endpoint", "ftp://x"}, code: ExitUsage,
			stderr: []string{"modelpub login: --endpoint:"}},
		{name: "extra argument", args: []string{"login", "hf_x"}, code: ExitUsage, stderr: []string{"usage: modelpub login"}},
		{name: "unknown flag", args: []string{"whoami", "--token", "x"}, code: ExitUsage, stderr: []string{"usage: modelpub whoami"}},
		{name: "logout without keyring", args: []string{"logout", "--endpoint", url}, code: ExitProblems,
			keyring: &exec.Error{Name: "dbus-launch", Err: exec.ErrNotFound},
			stderr:  []string{"cannot remove the token from the OS keyring: no D-Bus session bus"}},
		{name: "whoami without keyring", args: []string{"whoami", "--endpoint", url}, code: ExitProblems,
			keyring: &exec.Error{Name: "dbus-launch", Err: exec.ErrNotFound},
			stderr:  []string{"no Hub token for", "set HF_TOKEN, or pass one with --token-stdin", "the OS keyring, where `modelpub login` keeps one, is not usable: no D-Bus session bus"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keyring.MockInit()
			if tt.keyring != nil {
				keyring.MockInitWithError(tt.keyring)
			}
			code, out, errb := runStdin(t, tt.input, tt.args...)
			assert.Equal(t, tt.code, code, errb)
			assert.Empty(t, out)
			for _, s := range tt.stderr {
				assert.Contains(t, errb, s)
			}
			keyring.MockInit()
			_, ok := storedToken(t, url)
			assert.False(t, ok)
		})
	}
}

func TestLoginReadOnlyToken(t *testing.T) {
	url := loginHub(t)
	code, out, errb := runStdin(t, carolToken, "login", "--endpoint", url)
	require.Equal(t, ExitOK, code, errb)
	assert.Contains(t, out, "as carol (token role: read)")
	assert.Contains(t, errb, "this token can only read. Publishing needs a token with the write role: use a token the local Hub was started with")
	assert.NotContains(t, errb, "/settings/tokens", "a local Hub has no token page")
	assert.Equal(t, 1, strings.Count(errb, "write role"), "the advice once: %s", errb)
}

func TestWhoamiSources(t *testing.T) {
	url := loginHub(t)
	require.NoError(t, keyring.Set(auth.Service, auth.Account(url), aliceToken))

	// --token-stdin beats HF_TOKEN, which beats the keyring.
	t.Setenv("HF_TOKEN", carolToken)
	code, out, errb := runStdin(t, bobToken+"\n", "whoami", "--token-stdin", "--endpoint", url)
	require.Equal(t, ExitOK, code, errb)
	assert.Contains(t, out, "user:       bob\n")
	assert.Contains(t, out, "orgs:       zoo (read)\n")
	assert.Contains(t, out, "token from: --token-stdin (hf_…5678)\n")

	code, out, errb = runStdin(t, "", "whoami", "--endpoint", url)
	require.Equal(t, ExitOK, code, errb)
	assert.Contains(t, out, "user:       carol\n")
	assert.Contains(t, out, "orgs:       none\n")
	assert.Contains(t, out, "token:      \"localhub\", role read\n")
	assert.Contains(t, out, "token from: HF_TOKEN (hf_…9012)\n")

	t.Setenv("HF_TOKEN", wrongToken)
	code, out, errb = runStdin(t, "", "whoami", "--endpoint", url)
	assert.Equal(t, ExitProblems, code)
	assert.Empty(t, out)
	assert.Contains(t, errb, "modelpub whoami: "+auth.Account(url)+" refused the token hf_…0000 (from HF_TOKEN): HTTP 401")

	code, _, errb = runStdin(t, "", "whoami", "--token-stdin", "--endpoint", url)
	assert.Equal(t, ExitProblems, code)
	assert.Contains(t, errb, "not a valid Hub token from --token-stdin: the input is empty")

	// HF_ENDPOINT is the default endpoint, for the keyring account too.
	t.Setenv("HF_TOKEN", "")
	t.Setenv("HF_ENDPOINT", url)
	code, out, errb = runStdin(t, "", "whoami", "--json")
	require.Equal(t, ExitOK, code, errb)
	var who map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &who))
	assert.Equal(t, "alice", who["user"])
	assert.Equal(t, url, who["endpoint"])
	assert.Equal(t, map[string]any{"name": "localhub", "role": "write", "source": "keyring", "masked": "hf_…1234"}, who["token"])
}

func TestLogoutNotes(t *testing.T) {
	url := loginHub(t)
	require.NoError(t, keyring.Set(auth.Service, auth.Account(url), aliceToken))
	t.Setenv("HF_TOKEN", bobToken)
	code, _, errb := runStdin(t, "", "logout", "--endpoint", url)
	require.Equal(t, ExitOK, code, errb)
	assert.Contains(t, errb, "modelpub logout: note: HF_TOKEN is set in this environment")
}

func TestLoginHelp(t *testing.T) {
	for _, name := range []string{"login", "logout", "whoami"} {
		var out, errb bytes.Buffer
		require.Equal(t, ExitOK, Run([]string{"help", name}, &out, &errb))
		assert.Contains(t, out.String(), "usage: modelpub "+name+" [--endpoint URL]")
		assert.Contains(t, out.String(), "Exit status:")
	}
}

// A refused token gets advice that fits the Hub, once (core/advice): a
// local Hub (the emulator) has no token page; and no request id.
func TestRefusedTokenAdvice(t *testing.T) {
	url := loginHub(t)
	t.Setenv("HF_TOKEN", wrongToken)
	for _, args := range [][]string{{"login", "--endpoint", url}, {"whoami", "--endpoint", url}} {
		t.Run(args[0], func(t *testing.T) {
			code, out, errb := runStdin(t, wrongToken, args...)
			assert.Equal(t, ExitProblems, code)
			assert.Empty(t, out)
			assert.Contains(t, errb, auth.Account(url)+" refused")
			assert.Contains(t, errb, `HTTP 401: "Invalid credentials`)
			assert.Contains(t, errb, "Log in again with a valid token: use a token the local Hub was started with (modelpub localhub --token hf_…=USER).")
			assert.Equal(t, 1, strings.Count(errb, "local Hub was started with"), "the advice once: %s", errb)
			assert.Equal(t, 1, strings.Count(strings.ToLower(errb), "log in again"), "the advice once: %s", errb)
			assert.NotContains(t, errb, "/settings/tokens")
			assert.NotContains(t, errb, "request id")
			assert.NotContains(t, errb, "hub: ", "no package prefix")
			assert.Equal(t, 1, strings.Count(strings.TrimSpace(errb), "\n")+1, "one line: %s", errb)
		})
	}
}
