package preinit

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDecide(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	require.NoError(t, os.Mkdir("model", 0o755))
	require.NoError(t, os.WriteFile("inspect", nil, 0o644))     // a file named like a command
	require.NoError(t, os.WriteFile("-dashed", nil, 0o644))     // a file named like a flag
	require.NoError(t, os.WriteFile("weights.bin", nil, 0o644)) // a file inside a folder

	tests := []struct {
		args   []string
		window bool
		path   string
	}{
		{nil, true, ""},
		{[]string{"model"}, true, "model"},
		{[]string{"./model/"}, true, "./model/"},
		{[]string{filepath.Join(dir, "weights.bin")}, true, filepath.Join(dir, "weights.bin")},
		{[]string{"inspect"}, false, ""},
		{[]string{"./inspect"}, true, "./inspect"},
		{[]string{"-dashed"}, false, ""},
		{[]string{"--help"}, false, ""},
		{[]string{"missing"}, false, ""},
		{[]string{""}, false, ""},
		{[]string{"model", "weights.bin"}, true, "model"},
		{[]string{"model", "missing"}, false, ""},
		{[]string{"model", "-dashed"}, false, ""},
		{[]string{"inspect", "model"}, false, ""},
	}
	for _, tt := range tests {
		window, path := Decide(tt.args)
		assert.Equal(t, tt.window, window, "%q", tt.args)
		assert.Equal(t, tt.path, path, "%q", tt.args)
	}
}

func TestIsCLocaleWithCharset(t *testing.T) {
	for loc, want := range map[string]bool{
		"C.UTF-8": true, "C.utf8": true, "POSIX.UTF-8": true, "C@euro": true,
		"C": false, "POSIX": false, "": false, "en_US.UTF-8": false, "Cx.UTF-8": false, "c.UTF-8": false,
	} {
		assert.Equal(t, want, isCLocaleWithCharset(loc), loc)
	}
	env := map[string]string{"LANG": "de_DE.UTF-8", "LC_MESSAGES": "C.UTF-8"}
	assert.Equal(t, "C.UTF-8", effectiveLocale(func(k string) string { return env[k] }))
	env["LC_ALL"] = "fr_FR.UTF-8"
	assert.Equal(t, "fr_FR.UTF-8", effectiveLocale(func(k string) string { return env[k] }))
}

func TestChangeAndRestore(t *testing.T) {
	// This test binary runs as a command: init changed the environment.
	Restore()
	const a, b = "MODELPUB_PREINIT_TEST_A", "MODELPUB_PREINIT_TEST_B"
	t.Setenv(a, "set")
	t.Setenv(b, "")
	require.NoError(t, os.Unsetenv(b))

	change(a, "", false)
	change(b, "C", true)
	change(b, "C", true) // the same again: nothing more to remember
	_, ok := os.LookupEnv(a)
	assert.False(t, ok)
	assert.Equal(t, "C", os.Getenv(b))
	assert.Len(t, saved, 2)

	Restore()
	v, ok := os.LookupEnv(a)
	assert.True(t, ok)
	assert.Equal(t, "set", v)
	_, ok = os.LookupEnv(b)
	assert.False(t, ok, "unset again, not set to empty")
	Restore()
	assert.Equal(t, "set", os.Getenv(a), "a second Restore does nothing")
}

// What the package's init left, seen from this file's init, which runs
// after it (files initialise in name order).
var atInit struct {
	window                bool
	lcAll, display, wland string
}

func init() {
	atInit.window, atInit.lcAll = Window, os.Getenv("LC_ALL")
	atInit.display, atInit.wland = os.Getenv("DISPLAY"), os.Getenv("WAYLAND_DISPLAY")
}

// A command hides the display and the locale from the packages initialised
// after this one; this test binary is run as a command.
func TestInitHidesDisplayForACommand(t *testing.T) {
	assert.False(t, atInit.window)
	assert.Equal(t, "C", atInit.lcAll)
	assert.Empty(t, atInit.display)
	assert.Empty(t, atInit.wland)
}
