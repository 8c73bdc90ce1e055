package auth_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/godbus/dbus/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/zalando/go-keyring"

	"modelpub/core/auth"
	"modelpub/core/hub"
)

// The tests share go-keyring's global mock, so none runs in parallel.

const (
	tokA = "hf_AAAAaaaaAAAAaaaaAAAAaaaaAAAAaaaa1111" // Hub-length test tokens
	tokB = "hf_BBBBbbbbBBBBbbbbBBBBbbbbBBBBbbbb2222"
	tokC = "hf_CCCCccccCCCCccccCCCCccccCCCCcccc3333"
	tokD = "hf_DDDDddddDDDDddddDDDDddddDDDDdddd4444"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
}

func TestDefaultEndpointMatchesHub(t *testing.T) {
	assert.Equal(t, hub.DefaultEndpoint, auth.DefaultEndpoint)
}

func TestAccount(t *testing.T) {
	tests := []struct{ endpoint, want string }{
		{"", "huggingface.co"},
		{"https://huggingface.co", "huggingface.co"},
		{"https://huggingface.co/", "huggingface.co"},
		{"https://HuggingFace.co:443", "huggingface.co"},
		{"huggingface.co", "huggingface.co"},
		{"https://hub-ci.huggingface.co", "hub-ci.huggingface.co"},
		{"http://127.0.0.1:8765", "127.0.0.1:8765"},
		{"http://localhost:80", "localhost"},
		{"http://localhost:443", "localhost:443"},
		{"https://hub.example.com:8443/prefix/", "hub.example.com:8443"},
		{"http://[::1]:8080", "[::1]:8080"},
		{"https://[::1]", "[::1]"},
		{"https://user:pw@hub.example.com", "hub.example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.endpoint, func(t *testing.T) {
			assert.Equal(t, tt.want, auth.Account(tt.endpoint))
		})
	}
}

func TestEndpointURL(t *testing.T) {
	assert.Equal(t, "https://huggingface.co", auth.Options{Getenv: envOf(nil)}.EndpointURL())
	assert.Equal(t, "http://127.0.0.1:1", auth.Options{Getenv: envOf(map[string]string{"HF_ENDPOINT": "http://127.0.0.1:1/"})}.EndpointURL())
	assert.Equal(t, "http://x:2", auth.Options{Endpoint: "http://x:2", Getenv: envOf(map[string]string{"HF_ENDPOINT": "http://127.0.0.1:1"})}.EndpointURL())
}

func TestResolvePrecedence(t *testing.T) {
	type files map[string]string // path relative to the temp root → content
	tests := []struct {
		name     string
		endpoint string
		stdin    *string
		env      map[string]string // {root} is replaced by the temp root
		keyring  map[string]string // account → token
		files    files
		want     string
		source   auth.Source
		path     string // relative to the root, for SourceFile
		err      error
		errHas   []string
	}{
		{name: "stdin beats everything", stdin: ptr(tokA + "\n"), env: map[string]string{"HF_TOKEN": tokB},
			keyring: map[string]string{"huggingface.co": tokC}, files: files{"home/.cache/huggingface/token": tokD},
			want: tokA, source: auth.SourceStdin},
		{name: "HF_TOKEN beats keyring and file", env: map[string]string{"HF_TOKEN": " " + tokB + "\n"},
			keyring: map[string]string{"huggingface.co": tokC}, files: files{"home/.cache/huggingface/token": tokD},
			want: tokB, source: auth.SourceEnv},
		{name: "keyring beats file", keyring: map[string]string{"huggingface.co": tokC},
			files: files{"home/.cache/huggingface/token": tokD}, want: tokC, source: auth.SourceKeyring},
		{name: "blank HF_TOKEN is absent", env: map[string]string{"HF_TOKEN": "  "},
			keyring: map[string]string{"huggingface.co": tokC}, want: tokC, source: auth.SourceKeyring},
		{name: "home fallback", files: files{"home/.cache/huggingface/token": tokD + "\n"},
			want: tokD, source: auth.SourceFile, path: "home/.cache/huggingface/token"},
		{name: "XDG_CACHE_HOME", env: map[string]string{"XDG_CACHE_HOME": "{root}/xdg"},
			files: files{"xdg/huggingface/token": tokD, "home/.cache/huggingface/token": tokA},
			want:  tokD, source: auth.SourceFile, path: "xdg/huggingface/token"},
		{name: "HF_HOME beats XDG_CACHE_HOME", env: map[string]string{"HF_HOME": "{root}/hfhome", "XDG_CACHE_HOME": "{root}/xdg"},
			files: files{"hfhome/token": tokB, "xdg/huggingface/token": tokD},
			want:  tokB, source: auth.SourceFile, path: "hfhome/token"},
		{name: "HF_TOKEN_PATH beats HF_HOME", env: map[string]string{"HF_TOKEN_PATH": "{root}/elsewhere/tok", "HF_HOME": "{root}/hfhome"},
			files: files{"elsewhere/tok": tokA, "hfhome/token": tokB},
			want:  tokA, source: auth.SourceFile, path: "elsewhere/tok"},
		{name: "HF_TOKEN_PATH with ~", env: map[string]string{"HF_TOKEN_PATH": "~/my/token"},
			files: files{"home/my/token": tokC}, want: tokC, source: auth.SourceFile, path: "home/my/token"},
		{name: "HF_HOME with ~", env: map[string]string{"HF_HOME": "~/hf"},
			files: files{"home/hf/token": tokC}, want: tokC, source: auth.SourceFile, path: "home/hf/token"},
		{name: "keyring is per host", endpoint: "http://127.0.0.1:8765",
			keyring: map[string]string{"huggingface.co": tokA, "127.0.0.1:8765": tokB}, want: tokB, source: auth.SourceKeyring},
		{name: "HF_ENDPOINT picks the keyring account", env: map[string]string{"HF_ENDPOINT": "http://127.0.0.1:8765"},
			keyring: map[string]string{"huggingface.co": tokA, "127.0.0.1:8765": tokB}, want: tokB, source: auth.SourceKeyring},
		{name: "HF_TOKEN goes to any endpoint", endpoint: "http://127.0.0.1:8765", env: map[string]string{"HF_TOKEN": tokA},
			want: tokA, source: auth.SourceEnv},
		{name: "token file only for huggingface.co", endpoint: "http://127.0.0.1:8765",
			keyring: map[string]string{"huggingface.co": tokA}, files: files{"home/.cache/huggingface/token": tokD},
			err: auth.ErrNoToken, errHas: []string{"127.0.0.1:8765", "is read only for https://huggingface.co", "{root}/home/.cache/huggingface/token"}},
		{name: "nothing anywhere", err: auth.ErrNoToken,
			errHas: []string{"huggingface.co", "modelpub login", "HF_TOKEN", "--token-stdin", "hf auth login", "{root}/home/.cache/huggingface/token"}},
		{name: "empty token file is absent", files: files{"home/.cache/huggingface/token": "\n"}, err: auth.ErrNoToken},
		{name: "empty stdin does not fall through", stdin: ptr(""), env: map[string]string{"HF_TOKEN": tokB},
			err: auth.ErrBadToken, errHas: []string{"--token-stdin", "empty"}},
		{name: "bad HF_TOKEN", env: map[string]string{"HF_TOKEN": "hf_ab cd"}, keyring: map[string]string{"huggingface.co": tokC},
			err: auth.ErrBadToken, errHas: []string{"HF_TOKEN"}},
		{name: "bad keyring entry", keyring: map[string]string{"huggingface.co": "hf_\x01x"},
			err: auth.ErrBadToken, errHas: []string{"keyring", "modelpub login"}},
		{name: "bad token file", files: files{"home/.cache/huggingface/token": "hf_a b\n"},
			err: auth.ErrBadToken, errHas: []string{"{root}/home/.cache/huggingface/token", "hf auth login"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			keyring.MockInit()
			for acct, v := range tt.keyring {
				require.NoError(t, keyring.Set(auth.Service, acct, v))
			}
			for p, c := range tt.files {
				writeFile(t, filepath.Join(root, p), c)
			}
			env := map[string]string{}
			for k, v := range tt.env {
				env[k] = strings.ReplaceAll(v, "{root}", root)
			}
			opts := auth.Options{Endpoint: tt.endpoint, Getenv: envOf(env), Keyring: auth.OSKeyring(), Home: filepath.Join(root, "home")}
			if tt.stdin != nil {
				opts.Stdin = strings.NewReader(*tt.stdin)
			}

			tok, err := auth.Resolve(opts)
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				assert.True(t, tok.IsZero())
				for _, s := range tt.errHas {
					if strings.Contains(s, "{root}") { // a path, with the OS's separators
						s = filepath.FromSlash(strings.ReplaceAll(s, "{root}", root))
					}
					assert.Contains(t, err.Error(), s)
				}
				for _, secret := range []string{tokA, tokB, tokC, tokD} {
					assert.NotContains(t, err.Error(), secret)
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, tok.Value())
			assert.Equal(t, tt.source, tok.Source)
			if tt.path != "" {
				assert.Equal(t, filepath.Join(root, tt.path), tok.Path)
			} else {
				assert.Empty(t, tok.Path)
			}
		})
	}
}

func ptr(s string) *string { return &s }

// The no-keyring errors of go-notes §3, as go-keyring returns them.
var keyringFailures = []struct {
	name   string
	err    error
	reason string
}{
	{"no session bus, no dbus-launch", &exec.Error{Name: "dbus-launch", Err: exec.ErrNotFound}, "no D-Bus session bus"},
	{"no session bus address", errors.New("dbus: couldn't determine address of session bus"), "no D-Bus session bus"},
	{"no Secret Service", dbus.Error{Name: "org.freedesktop.DBus.Error.ServiceUnknown",
		Body: []any{"The name org.freedesktop.secrets was not provided by any .service files"}}, "no Secret Service"},
	{"no Secret Service (pointer)", dbus.NewError("org.freedesktop.DBus.Error.ServiceUnknown", nil), "no Secret Service"},
	{"locked", errors.New("failed to unlock correct collection '/org/freedesktop/secrets/aliases/default'"), "locked"},
	{"locked item", dbus.Error{Name: "org.freedesktop.Secret.Error.IsLocked"}, "locked"},
	{"other D-Bus error", dbus.Error{Name: "org.freedesktop.DBus.Error.NoReply"}, "the Secret Service answered org.freedesktop.DBus.Error.NoReply"},
	{"unsupported OS", keyring.ErrUnsupportedPlatform, "no OS keyring"},
	{"anything else", errors.New("boom"), "the OS keyring failed"},
}

func TestResolveWithoutSecretService(t *testing.T) {
	for _, kf := range keyringFailures {
		t.Run(kf.name, func(t *testing.T) {
			root := t.TempDir()
			keyring.MockInitWithError(kf.err)
			opts := auth.Options{Keyring: auth.OSKeyring(), Getenv: envOf(nil), Home: root}

			_, err := auth.Resolve(opts)
			require.ErrorIs(t, err, auth.ErrNoToken)
			require.ErrorIs(t, err, auth.ErrNoKeyring, "a GUI offers a session-only token on this")
			var nt *auth.NoTokenError
			require.ErrorAs(t, err, &nt)
			assert.Contains(t, err.Error(), nt.Keyring.Reason)
			assert.Contains(t, nt.Keyring.Reason, kf.reason)

			// The token file still works without a keyring.
			writeFile(t, filepath.Join(root, ".cache/huggingface/token"), tokD)
			tok, err := auth.Resolve(opts)
			require.NoError(t, err)
			assert.Equal(t, tokD, tok.Value())
			assert.Equal(t, auth.SourceFile, tok.Source)
		})
	}
}

func TestStore(t *testing.T) {
	keyring.MockInit()
	opts := auth.Options{Keyring: auth.OSKeyring(), Endpoint: "http://127.0.0.1:8765", Getenv: envOf(nil)}
	require.NoError(t, auth.Store(opts, "  "+tokA+"\n"))
	got, err := keyring.Get(auth.Service, "127.0.0.1:8765")
	require.NoError(t, err)
	assert.Equal(t, tokA, got, "stored trimmed, under the endpoint's host")

	require.NoError(t, auth.Store(opts, tokB), "a second login replaces the token")
	tok, err := auth.Resolve(opts)
	require.NoError(t, err)
	assert.Equal(t, tokB, tok.Value())
	assert.Equal(t, auth.SourceKeyring, tok.Source)

	_, err = keyring.Get(auth.Service, "huggingface.co")
	assert.ErrorIs(t, err, keyring.ErrNotFound, "other hosts are untouched")

	for _, bad := range []string{"", " \n", "hf_a b", "hf_a\tb", strings.Repeat("x", auth.MaxTokenLen+1)} {
		err := auth.Store(opts, bad)
		require.ErrorIs(t, err, auth.ErrBadToken, "%q", bad)
		if len(bad) > 4 {
			assert.NotContains(t, err.Error(), bad)
		}
	}
	got, _ = keyring.Get(auth.Service, "127.0.0.1:8765")
	assert.Equal(t, tokB, got, "a refused token changes nothing")
}

func TestStoreWithoutSecretService(t *testing.T) {
	for _, kf := range keyringFailures {
		t.Run(kf.name, func(t *testing.T) {
			keyring.MockInitWithError(kf.err)
			err := auth.Store(auth.Options{Keyring: auth.OSKeyring(), Getenv: envOf(map[string]string{"HF_TOKEN_PATH": "/x/token"})}, tokA)
			require.ErrorIs(t, err, auth.ErrNoKeyring)
			var ke *auth.KeyringError
			require.ErrorAs(t, err, &ke)
			assert.Equal(t, kf.err, ke.Err) // D-Bus errors are not comparable, so not errors.Is
			assert.Contains(t, ke.Reason, kf.reason)
			msg := err.Error()
			for _, s := range []string{"cannot store the token in the OS keyring", kf.reason, "HF_TOKEN", "--token-stdin", "hf auth login", filepath.FromSlash("/x/token"), "never writes the token to a plain file"} {
				assert.Contains(t, msg, s)
			}
			assert.NotContains(t, msg, tokA)
		})
	}

	// For another endpoint the token file is not an alternative.
	keyring.MockInitWithError(errors.New("boom"))
	err := auth.Store(auth.Options{Keyring: auth.OSKeyring(), Endpoint: "http://127.0.0.1:1", Getenv: envOf(nil)}, tokA)
	require.ErrorIs(t, err, auth.ErrNoKeyring)
	assert.NotContains(t, err.Error(), "hf auth login")
}

func TestForget(t *testing.T) {
	keyring.MockInit()
	opts := auth.Options{Keyring: auth.OSKeyring(), Endpoint: "http://127.0.0.1:8765", Getenv: envOf(nil)}
	require.NoError(t, keyring.Set(auth.Service, "huggingface.co", tokA))
	require.NoError(t, auth.Store(opts, tokB))

	require.NoError(t, auth.Forget(opts))
	_, err := keyring.Get(auth.Service, "127.0.0.1:8765")
	assert.ErrorIs(t, err, keyring.ErrNotFound)
	got, err := keyring.Get(auth.Service, "huggingface.co")
	require.NoError(t, err)
	assert.Equal(t, tokA, got, "only this endpoint's token goes")

	err = auth.Forget(opts)
	require.ErrorIs(t, err, auth.ErrNotLoggedIn)
	assert.Contains(t, err.Error(), "127.0.0.1:8765")

	keyring.MockInitWithError(keyringFailures[0].err)
	err = auth.Forget(opts)
	require.ErrorIs(t, err, auth.ErrNoKeyring)
	assert.NotErrorIs(t, err, auth.ErrNotLoggedIn)
	assert.Contains(t, err.Error(), "cannot remove the token from the OS keyring: no D-Bus session bus")
}

func TestTokenNeverPrints(t *testing.T) {
	keyring.MockInit()
	require.NoError(t, keyring.Set(auth.Service, "huggingface.co", tokA))
	tok, err := auth.Resolve(auth.Options{Keyring: auth.OSKeyring(), Getenv: envOf(nil), Home: t.TempDir()})
	require.NoError(t, err)
	require.Equal(t, tokA, tok.Value())
	assert.Equal(t, "hf_…1111 (from keyring)", tok.String())

	type wrapper struct {
		Token  auth.Token
		TokPtr *auth.Token
	}
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%10s", "%-40v", "%d"} {
		outs = append(outs, fmt.Sprintf(verb, tok), fmt.Sprintf(verb, &tok), fmt.Sprintf(verb, wrapper{tok, &tok}))
	}
	outs = append(outs, fmt.Sprintf("%T %v", tok, tok), fmt.Sprint(tok), fmt.Sprintln(tok, []auth.Token{tok}, map[string]auth.Token{"k": tok}),
		fmt.Errorf("publish with %v: %w", tok, errors.New("x")).Error())
	for _, v := range []any{tok, &tok, wrapper{tok, &tok}, map[string]any{"t": tok}} {
		b, err := json.Marshal(v)
		require.NoError(t, err)
		outs = append(outs, string(b))
	}
	txt, err := tok.MarshalText()
	require.NoError(t, err)
	outs = append(outs, string(txt))
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("resolved", "token", tok)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("resolved", "token", tok)
	outs = append(outs, logs.String())

	for _, out := range outs {
		assert.NotContains(t, out, tokA)
		assert.NotContains(t, out, tokA[3:20], "not even a part")
		assert.Contains(t, out, "hf_…1111")
	}
	assert.Contains(t, fmt.Sprintf("%#v", tok), `auth.Token{Source:"keyring"`)
	assert.Equal(t, `"hf_…1111 (from keyring)"`, fmt.Sprintf("%q", tok))
	b, _ := json.Marshal(tok)
	assert.JSONEq(t, `{"source":"keyring","masked":"hf_…1111"}`, string(b))

	file := auth.NewToken(tokB, auth.SourceFile)
	file.Path = "/home/u/.cache/huggingface/token"
	assert.Equal(t, "hf_…2222 (from token file /home/u/.cache/huggingface/token)", file.String())
	assert.Equal(t, "no token", auth.Token{}.String())
	assert.True(t, auth.Token{}.IsZero())
}

func TestMask(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{tokA, "hf_…1111"},
		{"hf_x", "hf_…"},
		{"hf_short123", "hf_…"},
		{"api_0123456789abcdef", "api_…cdef"},
		{"0123456789abcdefXYZW", "…XYZW"},
		{"secret", "…"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, auth.Mask(tt.in), tt.in)
	}
}

func TestReadToken(t *testing.T) {
	max := "hf_" + strings.Repeat("a", auth.MaxTokenLen-3)
	tests := []struct {
		name, in, want string
		bad            string // part of the ErrBadToken message
	}{
		{name: "line", in: tokA + "\n", want: tokA},
		{name: "no newline", in: tokA, want: tokA},
		{name: "CRLF and spaces", in: "  " + tokA + " \r\n", want: tokA},
		{name: "first line only", in: tokA + "\n" + tokB + "\n", want: tokA},
		{name: "BOM", in: "\ufeff" + tokA + "\n", want: tokA},
		{name: "1 KiB", in: max + "\n", want: max},
		{name: "empty", in: "", bad: "empty"},
		{name: "empty line", in: "\n" + tokA, bad: "empty"},
		{name: "blank", in: " \t \n", bad: "empty"},
		{name: "inner space", in: "hf_ab cd\n", bad: "whitespace"},
		{name: "inner tab", in: "hf_ab\tcd\n", bad: "whitespace"},
		{name: "control char", in: "hf_ab\x1bcd\n", bad: "control"},
		{name: "NUL", in: "hf_ab\x00cd\n", bad: "control"},
		{name: "DEL", in: "hf_ab\x7fcd\n", bad: "control"},
		{name: "non-ASCII", in: "hf_abécd\n", bad: "non-ASCII"},
		{name: "over 1 KiB", in: max + "b\n", bad: "longer than 1024 bytes"},
		{name: "huge line", in: strings.Repeat("hf_x", 100000), bad: "longer than 1024 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := auth.ReadToken(strings.NewReader(tt.in))
			if tt.bad == "" {
				require.NoError(t, err)
				assert.Equal(t, tt.want, got)
				return
			}
			require.ErrorIs(t, err, auth.ErrBadToken)
			assert.Contains(t, err.Error(), tt.bad)
			assert.Empty(t, got)
			if s := strings.TrimSpace(tt.in); len(s) > 3 {
				assert.NotContains(t, err.Error(), s[3:])
			}
		})
	}

	_, err := auth.ReadToken(iotest.ErrReader(errors.New("disk on fire")))
	require.Error(t, err)
	assert.NotErrorIs(t, err, auth.ErrBadToken)
	assert.Contains(t, err.Error(), "disk on fire")
}

func TestReadTokenTerminalPipe(t *testing.T) {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	_, err = w.WriteString(tokA + "\n")
	require.NoError(t, err)
	w.Close()
	var prompt bytes.Buffer
	got, err := auth.ReadTokenTerminal(r, &prompt)
	require.NoError(t, err)
	assert.Equal(t, tokA, got)
	assert.Empty(t, prompt.String(), "no prompt when not a terminal")
}

func TestTokenFileErrors(t *testing.T) {
	keyring.MockInit()
	root := t.TempDir()
	dir := filepath.Join(root, "dir")
	require.NoError(t, os.Mkdir(dir, 0o700))
	_, err := auth.Resolve(auth.Options{Keyring: auth.OSKeyring(), Getenv: envOf(map[string]string{"HF_TOKEN_PATH": dir}), Home: root})
	require.Error(t, err, "a token path that cannot be read is reported, not skipped")
	assert.NotErrorIs(t, err, auth.ErrNoToken)
	assert.Contains(t, err.Error(), dir)

	big := filepath.Join(root, "big")
	writeFile(t, big, strings.Repeat("a", 5000))
	_, err = auth.Resolve(auth.Options{Keyring: auth.OSKeyring(), Getenv: envOf(map[string]string{"HF_TOKEN_PATH": big}), Home: root})
	require.ErrorIs(t, err, auth.ErrBadToken)
	assert.Contains(t, err.Error(), big)
}

func TestTokenFilePath(t *testing.T) {
	tests := []struct {
		env  map[string]string
		home string
		want string
	}{
		{nil, "/home/u", "/home/u/.cache/huggingface/token"},
		{map[string]string{"XDG_CACHE_HOME": "/c"}, "", "/c/huggingface/token"},
		{map[string]string{"HF_HOME": "/h", "XDG_CACHE_HOME": "/c"}, "/home/u", "/h/token"},
		{map[string]string{"HF_HOME": "~/h"}, "/home/u", "/home/u/h/token"},
		{map[string]string{"HF_TOKEN_PATH": "/t/tok", "HF_HOME": "/h"}, "/home/u", "/t/tok"},
		{map[string]string{"HF_TOKEN_PATH": "~/tok"}, "/home/u", "/home/u/tok"},
		{map[string]string{"HF_TOKEN_PATH": "~other/tok"}, "/home/u", "~other/tok"},
	}
	for _, tt := range tests {
		got := auth.TokenFilePath(auth.Options{Getenv: envOf(tt.env), Home: tt.home})
		assert.Equal(t, filepath.FromSlash(tt.want), got, "%v", tt.env)
	}
}
