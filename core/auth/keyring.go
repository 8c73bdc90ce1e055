package auth

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"github.com/godbus/dbus/v5"
	"github.com/zalando/go-keyring"
)

// Keyring keeps secrets by service and user. Get and Delete of a missing
// item return an error that wraps ErrItemNotFound.
type Keyring interface {
	Get(service, user string) (string, error)
	Set(service, user, secret string) error
	Delete(service, user string) error
}

// ErrItemNotFound is what a Keyring returns for a missing item (go-keyring's
// ErrNotFound).
var ErrItemNotFound = keyring.ErrNotFound

// OSKeyring returns the operating system's keyring through go-keyring as it
// is: the Secret Service over the D-Bus session bus on Linux and the BSDs,
// the Keychain on macOS, the Credential Manager on Windows. After
// keyring.MockInit() it is go-keyring's in-memory mock, for tests.
//
// On Linux without a session bus, godbus starts one with dbus-launch when
// it is installed (the dbus-x11 package), and that bus outlives the
// process: programs use SystemKeyring (the default of Options), which
// never lets that happen.
func OSKeyring() Keyring { return osKeyring{} }

type osKeyring struct{}

func (osKeyring) Get(service, user string) (string, error) { return keyring.Get(service, user) }
func (osKeyring) Set(service, user, secret string) error   { return keyring.Set(service, user, secret) }
func (osKeyring) Delete(service, user string) error        { return keyring.Delete(service, user) }

// KeyringError is a keyring that cannot be used. It wraps ErrNoKeyring and
// the keyring's own error.
type KeyringError struct {
	Op     string // what was attempted: "store the token in", "read the token from", "remove the token from"
	Reason string // what is missing, in words: no D-Bus session, no Secret Service, locked, …
	Hint   string // what to do instead; set by Store
	Err    error  // go-keyring's (or godbus's) error
}

func (e *KeyringError) Error() string {
	s := "auth: cannot " + e.Op + " the OS keyring: " + e.Reason
	if e.Err != nil && !errors.Is(e.Err, ErrNoSessionBus) { // the reason says it all
		s += " (" + e.Err.Error() + ")"
	}
	if e.Hint != "" {
		s += ". " + e.Hint
	}
	return s
}

// Unwrap returns ErrNoKeyring and the cause.
func (e *KeyringError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrNoKeyring, e.Err}
	}
	return []error{ErrNoKeyring}
}

func newKeyringError(op string, err error) *KeyringError {
	return &KeyringError{Op: op, Reason: keyringReason(err), Err: err}
}

// D-Bus error names the Secret Service answers with (go-notes §3).
const (
	dbusServiceUnknown = "org.freedesktop.DBus.Error.ServiceUnknown"
	dbusNameHasNoOwner = "org.freedesktop.DBus.Error.NameHasNoOwner"
	secretIsLocked     = "org.freedesktop.Secret.Error.IsLocked"
)

// keyringReason says in words why err means the keyring cannot be used.
func keyringReason(err error) string {
	name := dbusErrorName(err)
	msg := err.Error()
	var (
		execErr *exec.Error
		exitErr *exec.ExitError
		opErr   *net.OpError
	)
	switch {
	case errors.Is(err, ErrNoSessionBus):
		return "not available: there is no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is not set and $XDG_RUNTIME_DIR/bus does not exist); a desktop login provides one, and in a terminal or over SSH `dbus-run-session` starts one"
	case errors.Is(err, keyring.ErrUnsupportedPlatform):
		return "this system has no OS keyring modelpub can use"
	case errors.As(err, &execErr), errors.As(err, &exitErr),
		strings.Contains(msg, "couldn't determine address of session bus"):
		// No DBUS_SESSION_BUS_ADDRESS, no $XDG_RUNTIME_DIR/bus, and
		// dbus-launch is missing or failed.
		return "no D-Bus session bus: DBUS_SESSION_BUS_ADDRESS is not set (a desktop login sets it; in a terminal or over SSH, `dbus-run-session` starts a session)"
	case errors.As(err, &opErr), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ENOENT):
		return "cannot connect to the D-Bus session bus at " + busAddress()
	case name == dbusServiceUnknown, name == dbusNameHasNoOwner:
		return "no Secret Service on the D-Bus session bus: install and start gnome-keyring (or KeePassXC with its Secret Service integration)"
	case name == secretIsLocked, strings.Contains(msg, "failed to unlock correct collection"):
		return "the keyring is locked and was not unlocked: unlock the login keyring (at the desktop's password prompt, or with `gnome-keyring-daemon --unlock`)"
	case name != "":
		return "the Secret Service answered " + name
	case errors.Is(err, keyring.ErrSetDataTooBig):
		return "the keyring refused the token's size"
	default:
		return "the OS keyring failed"
	}
}

// dbusErrorName returns the D-Bus error name in err's chain, or "".
func dbusErrorName(err error) string {
	var v dbus.Error
	if errors.As(err, &v) {
		return v.Name
	}
	var p *dbus.Error
	if errors.As(err, &p) && p != nil {
		return p.Name
	}
	return ""
}

func busAddress() string {
	if a := os.Getenv("DBUS_SESSION_BUS_ADDRESS"); a != "" {
		return a
	}
	return "$XDG_RUNTIME_DIR/bus"
}

var _ Keyring = osKeyring{}
