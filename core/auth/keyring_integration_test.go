package auth_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/auth"
)

// TestKeyringIntegration runs Store, Resolve and Forget against the real
// Secret Service and checks each step from outside with secret-tool
// (libsecret-tools). `make test-keyring` runs it in a private D-Bus session
// with an unlocked gnome-keyring (go-notes §3). It is the only test whose
// name contains "Keyring": go-keyring's mock, once installed by another
// test, cannot be removed from the process, so it must run alone
// (-run Keyring). The secret-tool checks also catch a mock.
//
// Without MODELPUB_KEYRING_IT=1 it skips, so plain `go test` never starts a
// bus; with it, a keyring that does not work is a failure.
func TestKeyringIntegration(t *testing.T) {
	if os.Getenv("MODELPUB_KEYRING_IT") != "1" {
		t.Skip("set MODELPUB_KEYRING_IT=1 inside a D-Bus session with an unlocked keyring (make test-keyring)")
	}
	require.NotEmpty(t, os.Getenv("DBUS_SESSION_BUS_ADDRESS"),
		"MODELPUB_KEYRING_IT=1 but there is no D-Bus session: run it through `make test-keyring`")
	_, err := exec.LookPath("secret-tool")
	require.NoError(t, err, "install libsecret-tools (make deps-keyring)")

	const endpoint = "https://keyring-it.modelpub.invalid"
	account := auth.Account(endpoint)
	opts := auth.Options{Endpoint: endpoint, Getenv: envOf(nil), Home: t.TempDir(), Keyring: auth.OSKeyring()}
	t.Cleanup(func() { _ = auth.OSKeyring().Delete(auth.Service, account) })

	lookup := func() (string, bool) {
		t.Helper()
		out, err := exec.Command("secret-tool", "lookup", "service", auth.Service, "username", account).Output()
		var exit *exec.ExitError
		if errors.As(err, &exit) && exit.ExitCode() == 1 {
			return "", false
		}
		require.NoError(t, err)
		return string(out), true
	}

	require.NoError(t, auth.Store(opts, tokA), "the real keyring must accept a token")
	got, ok := lookup()
	require.True(t, ok, "secret-tool does not see the stored token: was the mock in use?")
	assert.Equal(t, tokA, got)

	tok, err := auth.Resolve(opts)
	require.NoError(t, err)
	assert.Equal(t, tokA, tok.Value())
	assert.Equal(t, auth.SourceKeyring, tok.Source)

	// An entry written by another program is read back: Resolve reads the
	// Secret Service, not a cache of its own.
	store := exec.Command("secret-tool", "store", "--label=modelpub integration test",
		"service", auth.Service, "username", account)
	store.Stdin = strings.NewReader(tokB)
	var stderr bytes.Buffer
	store.Stderr = &stderr
	require.NoError(t, store.Run(), stderr.String())
	tok, err = auth.Resolve(opts)
	require.NoError(t, err)
	assert.Equal(t, tokB, tok.Value())

	require.NoError(t, auth.Forget(opts))
	_, ok = lookup()
	assert.False(t, ok, "the entry is gone from the real keyring")
	require.ErrorIs(t, auth.Forget(opts), auth.ErrNotLoggedIn)

	_, err = auth.Resolve(opts)
	require.ErrorIs(t, err, auth.ErrNoToken)
	assert.NotErrorIs(t, err, auth.ErrNoKeyring, "the keyring worked; it is just empty")
}
