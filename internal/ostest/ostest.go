// Package ostest tells a test what the operating system it runs on cannot
// do, so that a test of hostile or unusual names skips only the case the OS
// rules out, naming the OS's rule, and runs everywhere else.
package ostest

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"unicode/utf8"
)

// windowsForbidden are the printable characters a Windows file name cannot
// hold; the characters below U+0020 are refused too.
const windowsForbidden = `<>:"|?*`

// WindowsNameRule is why Windows cannot hold name (one path element) as a
// file or folder name, or "" when it can.
func WindowsNameRule(name string) string {
	if !utf8.ValidString(name) {
		return "Windows file names are UTF-16, so invalid UTF-8 cannot be one"
	}
	for _, r := range name {
		if r < 0x20 {
			return fmt.Sprintf("Windows file names cannot hold control characters (%U)", r)
		}
		if strings.ContainsRune(windowsForbidden, r) {
			return fmt.Sprintf("Windows file names cannot hold %q", r)
		}
	}
	if strings.HasSuffix(name, ".") || strings.HasSuffix(name, " ") {
		return "Windows file names cannot end with a dot or a space"
	}
	return ""
}

// SkipUnlessNameFits skips t on Windows when one of names cannot be a file
// or folder name there, naming the rule. Elsewhere it does nothing.
func SkipUnlessNameFits(t testing.TB, names ...string) {
	t.Helper()
	if runtime.GOOS != "windows" {
		return
	}
	for _, n := range names {
		if why := WindowsNameRule(n); why != "" {
			t.Skipf("%s: %q", why, n)
		}
	}
}
