//go:build linux

package crossos

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"modelpub/core/hub"
)

// winPath is the Windows name of the Linux path p under Wine (drive Z: is /).
func winPath(p string) string { return `Z:` + strings.ReplaceAll(p, "/", `\`) }

// wineRun runs the Windows CLI under Wine with args and returns its
// output; it fails the test on a non-zero exit.
func wineRun(t *testing.T, wine, exe string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, wine, append([]string{exe}, args...)...)
	cmd.Stdin = strings.NewReader("")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "modelpub.com %s:\n%s", strings.Join(args, " "), out)
	return string(out)
}

// ptyPair opens a pseudo-terminal: the program under test gets tty as its
// console, the test reads what it shows and types on master.
func ptyPair(t *testing.T) (master, tty *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	require.NoError(t, err)
	t.Cleanup(func() { master.Close() })
	require.NoError(t, unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0))
	n, err := unix.IoctlGetUint32(int(master.Fd()), unix.TIOCGPTN)
	require.NoError(t, err)
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	require.NoError(t, err)
	t.Cleanup(func() { tty.Close() })
	return master, tty
}

// screen collects what a pseudo-terminal shows.
type screen struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *screen) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *screen) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// TestWindowsCommandLine is the Windows acceptance: the bundle's console
// program (modelpub.com) under Wine makes the demo pipeline, saves it into
// a folder past 260 characters, validates it against its source, logs in
// to a `modelpub localhub` running on Linux at a console prompt that does
// not show the token (kept in the Credential Manager), and publishes the
// saved folder with that token; the Hub then holds every saved file, byte
// for byte, under its / path. make test-windows runs it with
// MODELPUB_WINE (wine64, the prefix in WINEPREFIX), MODELPUB_WIN_CLI (the
// built modelpub.com) and MODELPUB_LINUX_CLI (modelpub built here).
func TestWindowsCommandLine(t *testing.T) {
	wine, com, linux := os.Getenv("MODELPUB_WINE"), os.Getenv("MODELPUB_WIN_CLI"), os.Getenv("MODELPUB_LINUX_CLI")
	if wine == "" || com == "" || linux == "" {
		t.Skip("make test-windows runs it (it sets MODELPUB_WINE, MODELPUB_WIN_CLI and MODELPUB_LINUX_CLI)")
	}
	const token = "hf_WindowsAcceptance0123456789abcdef"
	root := t.TempDir()

	// The Hub: modelpub localhub, on Linux.
	hubCmd := exec.Command(linux, "localhub", "--addr", "127.0.0.1:0", "--token", token+"=alice", "--dir", filepath.Join(root, "hub"), "--quiet")
	stdout, err := hubCmd.StdoutPipe()
	require.NoError(t, err)
	var hubLog screen
	hubCmd.Stderr = &hubLog
	require.NoError(t, hubCmd.Start())
	t.Cleanup(func() {
		hubCmd.Process.Signal(os.Interrupt)
		hubCmd.Wait()
	})
	sc := bufio.NewScanner(stdout)
	require.True(t, sc.Scan(), "localhub printed no URL: %s", hubLog.String())
	url := strings.TrimSpace(sc.Text())
	require.True(t, strings.HasPrefix(url, "http://127.0.0.1:"), url)
	go func() {
		for sc.Scan() {
		}
	}()

	// demo, save into a long path, validate --against, on Windows.
	src := filepath.Join(root, "src")
	wineRun(t, wine, com, "demo", winPath(src), "--scale", "0.002")
	dst := longFolder(t, filepath.Join(root, "saved"))
	require.NoError(t, os.MkdirAll(filepath.Dir(dst), 0o755))
	require.Greater(t, len(winPath(dst)), 260)
	out := wineRun(t, wine, com, "save", winPath(src), winPath(dst), "--max-shard-size", "10MB")
	t.Logf("save: %s", out)
	out = wineRun(t, wine, com, "validate", winPath(dst), "--against", winPath(src))
	t.Logf("validate: %s", out)
	saved := hashTree(t, dst)
	require.Contains(t, strings.Join(saved, "\n"), "unet/diffusion_pytorch_model.safetensors ")

	// login at a console: the token is typed, never shown.
	master, tty := ptyPair(t)
	login := exec.Command(wine, com, "login", "--endpoint", url)
	login.Stdin, login.Stdout, login.Stderr = tty, tty, tty
	login.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	var shown screen
	require.NoError(t, login.Start())
	tty.Close()
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			shown.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	require.Eventually(t, func() bool { return strings.Contains(shown.String(), "Token:") }, 2*time.Minute, 100*time.Millisecond,
		"no prompt: %q", shown.String())
	// Wine's console host reads the terminal raw and echoes (or not) by
	// itself; typed before it has taken the terminal, the kernel would
	// echo the token.
	echo := func() bool {
		st, err := unix.IoctlGetTermios(int(master.Fd()), unix.TCGETS)
		require.NoError(t, err)
		return st.Lflag&(unix.ECHO|unix.ICANON) != 0
	}
	t.Logf("terminal echo at the prompt: %v", echo())
	require.Eventually(t, func() bool { return !echo() }, time.Minute, 50*time.Millisecond, "Wine's console never took the terminal")
	_, err = master.WriteString(token + "\r")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- login.Wait() }()
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		login.Process.Kill()
		t.Fatalf("login did not end: %q", shown.String())
	}
	select { // the rest of what it showed, up to the end of the terminal
	case <-copied:
	case <-time.After(10 * time.Second):
	}
	require.NoError(t, err, "login: %q", shown.String())
	assert.Contains(t, shown.String(), "Logged in to 127.0.0.1")
	assert.Contains(t, shown.String(), "alice")
	assert.NotContains(t, shown.String(), token[3:], "the console showed the token")

	// publish, with the token from the Credential Manager.
	out = wineRun(t, wine, com, "whoami", "--endpoint", url)
	assert.Contains(t, out, "token from: keyring", "whoami: %s", out)
	out = wineRun(t, wine, com, "publish", winPath(dst), "--repo", "alice/windows-acceptance", "--endpoint", url)
	t.Logf("publish: %s", out)

	// The Hub holds every saved file under its / path, with its bytes.
	client, err := hub.NewClient(hub.Options{Endpoint: url, Token: token})
	require.NoError(t, err)
	ctx := context.Background()
	repo := hub.RepoID{Namespace: "alice", Name: "windows-acceptance"}
	tree, err := client.ListTree(ctx, repo, "main", "", true)
	require.NoError(t, err)
	onHub := map[string]hub.TreeEntry{}
	for _, e := range tree {
		if e.Type == "file" {
			onHub[e.Path] = e
		}
	}
	for _, line := range saved {
		f := strings.Fields(line) // path sha256 size
		e, ok := onHub[f[0]]
		if !assert.True(t, ok, "%s is not on the Hub", f[0]) || f[0] == "README.md" { // the card publish writes
			continue
		}
		if e.LFS != nil {
			assert.Equal(t, f[1], e.LFS.OID, f[0])
			continue
		}
		b, err := client.ReadFile(ctx, repo, "main", f[0])
		require.NoError(t, err)
		sum := sha256.Sum256(b)
		assert.Equal(t, f[1], hex.EncodeToString(sum[:]), f[0])
	}
	for p := range onHub {
		assert.NotContains(t, p, `\`, "a repo path with \\")
	}
	assert.Contains(t, onHub, "unet/diffusion_pytorch_model.safetensors")
	assert.Contains(t, onHub, "README.md", "the card")

	// logout takes the token out of the Credential Manager again.
	out = wineRun(t, wine, com, "logout", "--endpoint", url)
	assert.Contains(t, out, "Logged out of 127.0.0.1")
}
