package auth_test

import (
	"errors"
	"os"
	"os/exec"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/windows"

	"modelpub/core/auth"
)

// credential is advapi32's CREDENTIALW.
type credential struct {
	Flags              uint32
	Type               uint32
	TargetName         *uint16
	Comment            *uint16
	LastWritten        windows.Filetime
	CredentialBlobSize uint32
	CredentialBlob     *byte
	Persist            uint32
	AttributeCount     uint32
	Attributes         uintptr
	TargetAlias        *uint16
	UserName           *uint16
}

const (
	credTypeGeneric      = 1
	credPersistLocalHost = 2
)

var (
	advapi32  = windows.NewLazySystemDLL("advapi32.dll")
	credReadW = advapi32.NewProc("CredReadW")
	credWrite = advapi32.NewProc("CredWriteW")
	credFree  = advapi32.NewProc("CredFree")
)

// readCredential reads the generic credential target straight from the
// Credential Manager, past go-keyring; ok is false when there is none.
func readCredential(t *testing.T, target string) (secret string, ok bool) {
	t.Helper()
	name, err := windows.UTF16PtrFromString(target)
	require.NoError(t, err)
	var c *credential
	r, _, err := credReadW.Call(uintptr(unsafe.Pointer(name)), credTypeGeneric, 0, uintptr(unsafe.Pointer(&c)))
	if r == 0 {
		require.ErrorIs(t, err, windows.ERROR_NOT_FOUND, "CredReadW %s", target)
		return "", false
	}
	defer credFree.Call(uintptr(unsafe.Pointer(c)))
	return string(unsafe.Slice(c.CredentialBlob, c.CredentialBlobSize)), true
}

// writeCredential stores secret as another program would.
func writeCredential(t *testing.T, target, user, secret string) {
	t.Helper()
	name, err := windows.UTF16PtrFromString(target)
	require.NoError(t, err)
	u, err := windows.UTF16PtrFromString(user)
	require.NoError(t, err)
	b := []byte(secret)
	c := credential{Type: credTypeGeneric, TargetName: name, UserName: u, Persist: credPersistLocalHost,
		CredentialBlobSize: uint32(len(b)), CredentialBlob: &b[0]}
	r, _, err := credWrite.Call(uintptr(unsafe.Pointer(&c)), 0)
	require.NotZero(t, r, "CredWriteW: %v", err)
}

// childEnv marks the process TestCredentialManager runs itself in.
const childEnv = "MODELPUB_CREDMAN_CHILD"

// TestCredentialManager runs Store, Resolve and Forget with the default
// keyring (SystemKeyring, go-keyring's wincred) and checks each step in the
// Credential Manager itself through CredReadW and CredWriteW. It writes
// into the user's Credential Manager, so it runs only with
// MODELPUB_CREDMAN_IT=1: make test-windows sets it in its own Wine prefix.
// It reruns itself alone in a child process: another test's
// keyring.MockInit cannot be undone in this one.
func TestCredentialManager(t *testing.T) {
	if os.Getenv("MODELPUB_CREDMAN_IT") != "1" {
		t.Skip("set MODELPUB_CREDMAN_IT=1 to let it write into this user's Credential Manager (make test-windows does, in its Wine prefix)")
	}
	if os.Getenv(childEnv) != "1" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCredentialManager$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), childEnv+"=1")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		require.Contains(t, string(out), "--- PASS: TestCredentialManager", "%s", out)
		return
	}

	const endpoint = "https://credman-it.modelpub.invalid"
	account := auth.Account(endpoint)
	target := auth.Service + ":" + account
	opts := auth.Options{Endpoint: endpoint, Getenv: envOf(nil), Home: t.TempDir()}
	t.Cleanup(func() { _ = auth.Forget(opts) })

	require.NoError(t, auth.Store(opts, tokA), "the Credential Manager must accept a token")
	got, ok := readCredential(t, target)
	require.True(t, ok, "CredReadW does not see the stored token: was the mock in use?")
	assert.Equal(t, tokA, got)

	tok, err := auth.Resolve(opts)
	require.NoError(t, err)
	assert.Equal(t, tokA, tok.Value())
	assert.Equal(t, auth.SourceKeyring, tok.Source)

	// A credential written by another program is read back: Resolve reads
	// the Credential Manager, not a cache of its own.
	writeCredential(t, target, account, tokB)
	tok, err = auth.Resolve(opts)
	require.NoError(t, err)
	assert.Equal(t, tokB, tok.Value())

	require.NoError(t, auth.Forget(opts))
	_, ok = readCredential(t, target)
	assert.False(t, ok, "the credential is gone")
	require.ErrorIs(t, auth.Forget(opts), auth.ErrNotLoggedIn)

	_, err = auth.Resolve(opts)
	require.ErrorIs(t, err, auth.ErrNoToken)
	assert.False(t, errors.Is(err, auth.ErrNoKeyring), "the Credential Manager worked; it is just empty")
}
