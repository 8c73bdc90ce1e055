package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/hub/hubemu"
	"modelpub/core/pipeline/pipelinetest"
)

// These tests run the real binary, built once: package init order, the
// environment Fyne and GTK see, and the processes left behind are
// properties of the built program, not of a test binary.

var built struct {
	once sync.Once
	path string
	err  error
}

// binary builds modelpub into a temporary folder, once per test run.
func binary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "modelpub-bin-")
		if err != nil {
			built.err = err
			return
		}
		built.path = filepath.Join(dir, "modelpub")
		// go test puts its own go first in PATH.
		out, err := exec.Command("go", "build", "-o", built.path, ".").CombinedOutput()
		if err != nil {
			built.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	require.NoError(t, built.err)
	return built.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.path != "" {
		os.RemoveAll(filepath.Dir(built.path))
	}
	os.Exit(code)
}

// environ is the test's environment without the variables in drop, plus
// add ("K=V").
func environ(drop []string, add ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !contains(drop, k) {
			env = append(env, kv)
		}
	}
	return append(env, add...)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// run runs the binary with env and stdin and returns its exit code and
// output; it never waits more than a minute.
func run(t *testing.T, env []string, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t), args...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String(), errb.String()
	}
	require.NoError(t, err)
	return 0, out.String(), errb.String()
}

var localeVars = []string{"LANG", "LC_ALL", "LC_MESSAGES", "LANGUAGE"}

// A command prints nothing on stderr it was not asked for, whatever the
// locale: not Fyne's "Error parsing user locale C" (C.UTF-8), not GTK's
// "Locale not supported by C library" (a LANG the C library lacks), with
// or without a display named.
func TestCommandsAreQuiet(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sd15")
	_, err := pipelinetest.WriteSD15(context.Background(), dir, pipelinetest.Options{Scale: 0.001, Seed: 1})
	require.NoError(t, err)
	for _, lang := range []string{"", "C", "C.UTF-8", "en_US.UTF-8", "xx_YY.UTF-8"} {
		for _, display := range []string{"", ":99"} {
			env := environ(append(localeVars, "DISPLAY", "WAYLAND_DISPLAY"))
			if lang != "" {
				env = append(env, "LANG="+lang)
			}
			commands := [][]string{{"version"}, {"help"}, {"inspect", dir}}
			if display != "" {
				env = append(env, "DISPLAY="+display)
				commands = commands[:1]
			}
			for _, args := range commands {
				t.Run(fmt.Sprintf("LANG=%s DISPLAY=%s %s", lang, display, args[0]), func(t *testing.T) {
					code, out, errb := run(t, env, "", args...)
					assert.Equal(t, 0, code)
					assert.NotEmpty(t, out)
					assert.Empty(t, errb)
				})
			}
		}
	}
}

// The quiet rests on Go initialising cli/preinit before the packages that
// read the locale and the display at init.
func TestPreinitRunsFirst(t *testing.T) {
	_, _, errb := run(t, environ([]string{"GODEBUG"}, "GODEBUG=inittrace=1"), "", "version")
	order := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(errb))
	for i := 0; sc.Scan(); i++ {
		if f := strings.Fields(sc.Text()); len(f) > 1 && f[0] == "init" {
			order[f[1]] = i
		}
	}
	pre, ok := order["modelpub/cli/preinit"]
	require.True(t, ok, "no init trace of preinit:\n%s", errb)
	for _, pkg := range []string{"github.com/sqweek/dialog", "fyne.io/fyne/v2/lang"} {
		if i, ok := order[pkg]; ok {
			assert.Less(t, pre, i, "%s initialises before cli/preinit", pkg)
		}
	}
}

// Without a display the window does not try: a message and exit status
// 2, no GLFW panic.
func TestNoDisplay(t *testing.T) {
	if runtime.GOOS == "darwin" || runtime.GOOS == "windows" {
		t.Skip("no DISPLAY there")
	}
	env := environ([]string{"DISPLAY", "WAYLAND_DISPLAY"})
	for _, args := range [][]string{nil, {t.TempDir()}} {
		code, out, errb := run(t, env, "", args...)
		assert.Equal(t, 2, code)
		assert.Empty(t, out)
		assert.Equal(t, "modelpub: no display: the desktop app needs a graphical session (DISPLAY or WAYLAND_DISPLAY is not set); "+
			"the commands work without one: modelpub help\n", errb)
		assert.NotContains(t, errb, "panic")
	}
}

func TestNoDisplayMessage(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	if runtime.GOOS == "darwin" || runtime.GOOS == "windows" {
		assert.Empty(t, noDisplay(env(nil)))
		return
	}
	assert.Contains(t, noDisplay(env(nil)), "no display")
	assert.Empty(t, noDisplay(env(map[string]string{"DISPLAY": ":0"})))
	assert.Empty(t, noDisplay(env(map[string]string{"WAYLAND_DISPLAY": "wayland-0"})))
}

// busProcesses lists the dbus-daemon and gnome-keyring-daemon processes
// whose command line holds mark.
func busProcesses(t *testing.T, mark string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	require.NoError(t, err)
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		name := filepath.Base(args[0])
		if (name == "dbus-daemon" || name == "gnome-keyring-daemon") && strings.Contains(string(cmdline), mark) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// login and whoami without a session bus leave no process behind: the
// keyring is not available, with HF_TOKEN and --token-stdin as the way
// out, and godbus never runs dbus-launch. The dbus-launch first in PATH
// here starts a real dbus-daemon, as the real one would, so a regression
// shows as a process left running.
func TestNoSessionBusLeavesNoProcess(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("counts processes in /proc")
	}
	if _, err := os.Stat(fmt.Sprintf("/run/user/%d/bus", os.Getuid())); err == nil {
		t.Skip("this machine has a session bus in /run/user/UID, which godbus finds whatever the environment says")
	}
	tmp := t.TempDir()
	bin, rundir, marker := filepath.Join(tmp, "bin"), filepath.Join(tmp, "run"), filepath.Join(tmp, "dbus-launch-ran")
	require.NoError(t, os.Mkdir(bin, 0o755))
	require.NoError(t, os.Mkdir(rundir, 0o700))
	daemon, _ := exec.LookPath("dbus-daemon")
	script := "#!/bin/sh\necho ran >> '" + marker + "'\n"
	if daemon != "" {
		script += "addr=$('" + daemon + "' --session --fork --print-address=1 --address='unix:path=" + filepath.Join(tmp, "leaked-bus") + "') || exit 1\n" +
			"echo \"DBUS_SESSION_BUS_ADDRESS=$addr\"\n"
	} else {
		script += "exit 1\n"
	}
	require.NoError(t, os.WriteFile(filepath.Join(bin, "dbus-launch"), []byte(script), 0o755))
	t.Cleanup(func() {
		for _, pid := range busProcesses(t, tmp) { // only what this test started
			syscall.Kill(pid, syscall.SIGTERM)
		}
	})

	const token = "hf_aliceAliceAliceAliceAliceAlice1234"
	srv, err := hubemu.New(hubemu.Options{Dir: t.TempDir(), Tokens: map[string]string{token: "alice"}})
	require.NoError(t, err)
	_, err = srv.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })

	env := environ([]string{"DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR", "PATH", "HF_TOKEN", "HF_TOKEN_PATH", "HF_ENDPOINT", "HF_HOME"},
		"XDG_RUNTIME_DIR="+rundir, "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"HF_TOKEN_PATH="+filepath.Join(tmp, "no-token"))
	before := busProcesses(t, tmp)

	code, out, errb := run(t, env, "", "whoami", "--endpoint", srv.URL())
	assert.Equal(t, 1, code)
	assert.Empty(t, out)
	for _, s := range []string{"set HF_TOKEN, or pass one with --token-stdin", "the OS keyring", "is not available", "no D-Bus session bus"} {
		assert.Contains(t, errb, s)
	}
	code, out, errb = run(t, env, token+"\n", "login", "--endpoint", srv.URL())
	assert.Equal(t, 1, code)
	assert.Empty(t, out)
	for _, s := range []string{"the Hub accepted the token for alice, but it was not kept", "not available", "HF_TOKEN", "--token-stdin"} {
		assert.Contains(t, errb, s)
	}
	code, _, errb = run(t, env, "", "logout", "--endpoint", srv.URL())
	assert.Equal(t, 1, code)
	assert.Contains(t, errb, "not available")

	time.Sleep(100 * time.Millisecond) // a forked daemon may still be starting
	assert.Equal(t, before, busProcesses(t, tmp), "a dbus-daemon or gnome-keyring-daemon was left running")
	assert.NoFileExists(t, marker, "dbus-launch was run")
}

// The desktop entry fyne package writes passes the launched files on:
// Exec=modelpub %F (fyne appends ExecParams to Exec= as it is).
func TestDesktopEntryPassesFiles(t *testing.T) {
	data, err := os.ReadFile("FyneApp.toml")
	require.NoError(t, err)
	section, params := "", ""
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") {
			section = line
		}
		if k, v, ok := strings.Cut(line, "="); ok && section == "[LinuxAndBSD]" && strings.TrimSpace(k) == "ExecParams" {
			params, err = strconv.Unquote(strings.TrimSpace(v))
			require.NoError(t, err)
		}
	}
	assert.Equal(t, "Exec=modelpub %F", "Exec=modelpub"+params)
}

// kill (SIGTERM) stops localhub as Ctrl-C does: its temporary data goes.
func TestLocalhubStopsOnSIGTERM(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no SIGTERM")
	}
	cmd := exec.Command(binary(t), "localhub", "--addr", "127.0.0.1:0", "--quiet")
	cmd.Env = os.Environ()
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill() })
	lines := bufio.NewScanner(stderr)
	data := ""
	for data == "" && lines.Scan() {
		if rest, ok := strings.CutPrefix(lines.Text(), "localhub: data in "); ok {
			data, _, _ = strings.Cut(rest, " (temporary")
		}
	}
	require.NotEmpty(t, data, "localhub did not say where its data is")
	require.DirExists(t, data)
	var rest []string
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	for lines.Scan() {
		rest = append(rest, lines.Text())
	}
	require.NoError(t, cmd.Wait())
	assert.Contains(t, rest, "localhub: stopped")
	assert.NoDirExists(t, data)
}
