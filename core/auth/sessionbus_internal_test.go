package auth

import (
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// listenUnix makes path a unix socket, as a session bus's is.
func listenUnix(t *testing.T, path string) {
	t.Helper()
	if !usesDBus {
		t.Skipf("modelpub looks for a D-Bus session bus on Linux and the BSDs only, not on %s", runtime.GOOS)
	}
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
	l, err := net.Listen("unix", path)
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
}

func TestSessionBusAddress(t *testing.T) {
	root := t.TempDir()
	xdg, runUser, plain := filepath.Join(root, "xdg"), filepath.Join(root, "run-user"), filepath.Join(root, "plain")
	listenUnix(t, filepath.Join(xdg, "bus"))
	listenUnix(t, filepath.Join(runUser, "bus"))
	require.NoError(t, os.MkdirAll(plain, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(plain, "bus"), nil, 0o600)) // a file is not a bus
	empty := filepath.Join(root, "empty")

	tests := []struct {
		name       string
		env        map[string]string
		runUserDir string
		want       string
	}{
		{name: "address set", env: map[string]string{envSessionBus: "unix:path=/x", "XDG_RUNTIME_DIR": xdg}, runUserDir: runUser, want: "unix:path=/x"},
		{name: "socket in XDG_RUNTIME_DIR", env: map[string]string{"XDG_RUNTIME_DIR": xdg}, runUserDir: empty,
			want: "unix:path=" + filepath.Join(xdg, "bus")},
		{name: "autolaunch: is no address", env: map[string]string{envSessionBus: "autolaunch:", "XDG_RUNTIME_DIR": xdg}, runUserDir: empty,
			want: "unix:path=" + filepath.Join(xdg, "bus")},
		{name: "socket in /run/user/UID", env: map[string]string{"XDG_RUNTIME_DIR": empty}, runUserDir: runUser,
			want: "unix:path=" + filepath.Join(runUser, "bus")},
		{name: "nothing", env: map[string]string{"XDG_RUNTIME_DIR": empty}, runUserDir: empty},
		{name: "no XDG_RUNTIME_DIR", env: map[string]string{}, runUserDir: empty},
		{name: "only autolaunch:", env: map[string]string{envSessionBus: "autolaunch:"}, runUserDir: empty},
		{name: "a plain file called bus", env: map[string]string{"XDG_RUNTIME_DIR": plain}, runUserDir: empty},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := sessionBusAddress(func(k string) string { return tt.env[k] }, tt.runUserDir)
			if tt.want == "" {
				require.ErrorIs(t, err, ErrNoSessionBus)
				assert.Empty(t, got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestSessionBusAddressEscapes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a b,c")
	listenUnix(t, filepath.Join(dir, "bus"))
	got, err := sessionBusAddress(func(k string) string {
		if k == "XDG_RUNTIME_DIR" {
			return dir
		}
		return ""
	}, "")
	require.NoError(t, err)
	assert.NotContains(t, got, " ")
	assert.NotContains(t, got, ",", "a comma separates D-Bus address keys")
	assert.Contains(t, got, "%20")
}
