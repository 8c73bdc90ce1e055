package auth

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"

	"github.com/godbus/dbus/v5"
	"github.com/zalando/go-keyring"
)

// ErrNoSessionBus is SystemKeyring's error on Linux and the BSDs when there
// is no D-Bus session bus to reach the Secret Service on. A *KeyringError
// wraps it.
var ErrNoSessionBus = errors.New("auth: no D-Bus session bus")

// usesDBus reports whether go-keyring reaches the keyring over D-Bus here
// (its Secret Service provider).
const usesDBus = runtime.GOOS == "linux" || runtime.GOOS == "freebsd" || runtime.GOOS == "openbsd" ||
	runtime.GOOS == "netbsd" || runtime.GOOS == "dragonfly"

// envSessionBus is where D-Bus clients find the session bus.
const envSessionBus = "DBUS_SESSION_BUS_ADDRESS"

// SystemKeyring returns the OS keyring as Resolve, Store and Forget use it
// when Options.Keyring is nil: OSKeyring, except that on Linux and the BSDs
// it is used only when a D-Bus session bus exists: DBUS_SESSION_BUS_ADDRESS
// is set, or $XDG_RUNTIME_DIR/bus (or /run/user/UID/bus) is a socket, in
// which case DBUS_SESSION_BUS_ADDRESS is set to it. Without one, every call
// fails with ErrNoSessionBus and nothing is started: godbus, left to
// itself, would run dbus-launch, whose dbus-daemon (and the
// gnome-keyring-daemon it activates) would outlive the process.
func SystemKeyring() Keyring { return systemKeyring{} }

type systemKeyring struct{}

func (systemKeyring) Get(service, user string) (string, error) {
	if err := useSessionBus(); err != nil {
		return "", err
	}
	return keyring.Get(service, user)
}

func (systemKeyring) Set(service, user, secret string) error {
	if err := useSessionBus(); err != nil {
		return err
	}
	return keyring.Set(service, user, secret)
}

func (systemKeyring) Delete(service, user string) error {
	if err := useSessionBus(); err != nil {
		return err
	}
	return keyring.Delete(service, user)
}

var sessionBusMu sync.Mutex

// useSessionBus finds the session bus and makes sure godbus connects to it
// (never autolaunches one), or returns ErrNoSessionBus.
func useSessionBus() error {
	if !usesDBus {
		return nil
	}
	sessionBusMu.Lock()
	defer sessionBusMu.Unlock()
	addr, err := sessionBusAddress(os.Getenv, "/run/user/"+strconv.Itoa(os.Getuid()))
	if err != nil {
		return err
	}
	if os.Getenv(envSessionBus) != addr {
		return os.Setenv(envSessionBus, addr)
	}
	return nil
}

// sessionBusAddress returns the session bus address: DBUS_SESSION_BUS_ADDRESS
// unless empty or "autolaunch:" (godbus would start a bus for that), else
// the socket "bus" in $XDG_RUNTIME_DIR or in runUserDir (where godbus
// looks), else ErrNoSessionBus.
func sessionBusAddress(getenv func(string) string, runUserDir string) (string, error) {
	if a := getenv(envSessionBus); a != "" && a != "autolaunch:" {
		return a, nil
	}
	for _, dir := range []string{getenv("XDG_RUNTIME_DIR"), runUserDir} {
		if dir == "" {
			continue
		}
		path := filepath.Join(dir, "bus")
		if st, err := os.Stat(path); err == nil && st.Mode().Type() == os.ModeSocket {
			return "unix:path=" + dbus.EscapeBusAddressValue(path), nil
		}
	}
	return "", ErrNoSessionBus
}

var _ Keyring = systemKeyring{}
