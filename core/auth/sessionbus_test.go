package auth_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/auth"
)

// envHelperOp makes the test binary run TestNoSessionBusHelper as a child
// process: go-keyring's real provider is needed, and the mock other tests
// install cannot be removed from a process.
const envHelperOp = "MODELPUB_AUTH_HELPER_OP"

// TestDefaultKeyringWithoutSessionBus runs Resolve, Store and Forget with the
// default keyring in a child without a session bus, with a dbus-launch
// first in PATH that records being run: the keyring must be "not
// available", with HF_TOKEN and --token-stdin as the way out, and no bus
// may be started.
func TestDefaultKeyringWithoutSessionBus(t *testing.T) {
	switch runtime.GOOS {
	case "linux", "freebsd", "openbsd", "netbsd", "dragonfly":
	default:
		t.Skip("the keyring is not reached over D-Bus on " + runtime.GOOS)
	}
	if _, err := os.Stat(fmt.Sprintf("/run/user/%d/bus", os.Getuid())); err == nil {
		t.Skip("this machine has a session bus in /run/user/UID, which godbus finds whatever the environment says")
	}
	dir := t.TempDir()
	bin, run, marker := filepath.Join(dir, "bin"), filepath.Join(dir, "run"), filepath.Join(dir, "dbus-launch-ran")
	require.NoError(t, os.Mkdir(bin, 0o755))
	require.NoError(t, os.Mkdir(run, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(bin, "dbus-launch"),
		[]byte("#!/bin/sh\necho \"$@\" >> '"+marker+"'\nexit 1\n"), 0o755))

	for _, op := range []string{"resolve", "store", "forget"} {
		t.Run(op, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestNoSessionBusHelper$", "-test.count=1")
			for _, kv := range os.Environ() {
				k, _, _ := strings.Cut(kv, "=")
				switch k {
				case "DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR", "PATH", "HF_TOKEN", "HF_TOKEN_PATH", "HF_HOME", "HF_ENDPOINT":
					continue
				}
				cmd.Env = append(cmd.Env, kv)
			}
			cmd.Env = append(cmd.Env, envHelperOp+"="+op, "XDG_RUNTIME_DIR="+run,
				"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "HF_TOKEN_PATH="+filepath.Join(dir, "no-token"))
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "%s", out)
			assert.Contains(t, string(out), "helper: "+op+": no session bus: ok")
			assert.NoFileExists(t, marker, "dbus-launch was run")
		})
	}
}

// TestNoSessionBusHelper is the child of TestDefaultKeyringWithoutSessionBus.
func TestNoSessionBusHelper(t *testing.T) {
	op := os.Getenv(envHelperOp)
	if op == "" {
		return // only ever run as a child
	}
	opts := auth.Options{Endpoint: "http://127.0.0.1:1", Home: t.TempDir()}
	var err error
	switch op {
	case "resolve":
		_, err = auth.Resolve(opts)
		require.ErrorIs(t, err, auth.ErrNoToken)
		for _, s := range []string{"set HF_TOKEN, or pass one with --token-stdin", "OS keyring", "is not available", "no D-Bus session bus"} {
			assert.Contains(t, err.Error(), s)
		}
	case "store":
		err = auth.Store(opts, "hf_AAAAaaaaAAAAaaaaAAAAaaaaAAAAaaaa1111")
		for _, s := range []string{"cannot store the token in the OS keyring: not available", "HF_TOKEN", "--token-stdin"} {
			assert.Contains(t, err.Error(), s)
		}
		assert.NotContains(t, err.Error(), "(auth: no D-Bus session bus)", "the reason is said once")
	case "forget":
		err = auth.Forget(opts)
		assert.NotErrorIs(t, err, auth.ErrNotLoggedIn)
	}
	require.ErrorIs(t, err, auth.ErrNoKeyring)
	require.ErrorIs(t, err, auth.ErrNoSessionBus)
	if !t.Failed() {
		fmt.Printf("helper: %s: no session bus: ok\n", op)
	}
}
