// Package preinit decides, before the GUI libraries initialise, whether
// this run of modelpub opens the window, and when it does not, keeps those
// libraries quiet and away from the display.
//
// Go runs every package's init before main, whatever the command. Two of
// them act on the environment: Fyne's lang package parses the user's locale
// (and logs "Fyne error: Error parsing user locale C" for LANG=C.UTF-8),
// and github.com/sqweek/dialog calls gtk_init_check, which connects to the
// X server and warns when the C library lacks the locale LANG names. This
// package imports nothing but os, so Go initialises it before both: it
// initialises, in import path order, the packages whose imports are
// ready, and theirs wait for reflect and unicode, which sort after
// "modelpub" and so after this package once os is ready. main imports it,
// and a test of main checks the order in the built binary
// (GODEBUG=inittrace=1). Any other import here may break that.
//
// For a command, init hides DISPLAY and WAYLAND_DISPLAY and sets LC_ALL=C
// while the other packages initialise, so GTK opens no display and neither
// library parses a locale; main calls Restore before it runs the command.
// For the window, init changes nothing but one thing: under a C locale
// with an encoding (C.UTF-8, POSIX.UTF-8), which Fyne cannot parse, it sets
// LANGUAGE=en when LANGUAGE is empty (English, what C means).
package preinit

import "os" // and nothing else: see the package comment

// Commands are the names that run a command rather than open a path:
// cli's commands and the help forms, listed here because this package
// decides before cli registers them. A test of package cli checks that
// each command cli registers is here; main has the last word (cli.IsCommand).
var Commands = []string{
	"card", "convert", "demo", "inspect", "localhub", "login", "logout", "publish", "save", "shard", "validate", "version", "whoami",
	"help", "-h", "-help", "--help",
}

// Window reports whether this run opens the window, and Path is the file
// or folder it opens ("" for none), as Decide says for os.Args.
var (
	Window bool
	Path   string
)

// saved are the variables init changed for a command, as they were.
var saved []envVar

type envVar struct {
	name, value string
	set         bool
}

func init() {
	Window, Path = Decide(os.Args[1:])
	if Window {
		if isCLocaleWithCharset(effectiveLocale(os.Getenv)) && os.Getenv("LANGUAGE") == "" {
			os.Setenv("LANGUAGE", "en")
		}
		return
	}
	change("DISPLAY", "", false)
	change("WAYLAND_DISPLAY", "", false)
	change("LC_ALL", "C", true)
}

// Decide says whether a run with args (without the program name) opens
// the window, and on which path: it does with no arguments, or with
// arguments that all name existing files or folders, the first of which
// is not a command (a command wins over a file of the same name:
// "./inspect" opens that one). The window opens on the first; a desktop
// launcher may pass several (Exec=modelpub %F).
func Decide(args []string) (window bool, path string) {
	if len(args) == 0 {
		return true, ""
	}
	if IsCommand(args[0]) {
		return false, ""
	}
	for _, a := range args {
		if a == "" || a[0] == '-' {
			return false, ""
		}
		if _, err := os.Stat(a); err != nil {
			return false, ""
		}
	}
	return true, args[0]
}

// IsCommand reports whether name is one of Commands.
func IsCommand(name string) bool {
	for _, c := range Commands {
		if c == name {
			return true
		}
	}
	return false
}

// Restore puts back what init changed for a command, so the command and
// the processes it starts see the environment the user gave. It does
// nothing for the window, and the second time.
func Restore() {
	for _, v := range saved {
		if v.set {
			os.Setenv(v.name, v.value)
		} else {
			os.Unsetenv(v.name)
		}
	}
	saved = nil
}

// change sets (or, with set false, unsets) name and remembers its value.
func change(name, value string, set bool) {
	old, had := os.LookupEnv(name)
	if had == set && old == value {
		return
	}
	saved = append(saved, envVar{name, old, had})
	if set {
		os.Setenv(name, value)
	} else {
		os.Unsetenv(name)
	}
}

// effectiveLocale is the locale messages are shown in, as gettext and
// Fyne's locale lookup read it: the first non-empty of LC_ALL,
// LC_MESSAGES and LANG.
func effectiveLocale(getenv func(string) string) string {
	for _, k := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
		if v := getenv(k); v != "" {
			return v
		}
	}
	return ""
}

// isCLocaleWithCharset reports a C or POSIX locale with an encoding or
// modifier ("C.UTF-8", "POSIX.utf8"), which Fyne reads as the language "C".
func isCLocaleWithCharset(loc string) bool {
	for i := 0; i < len(loc); i++ {
		if loc[i] == '.' || loc[i] == '@' {
			return loc[:i] == "C" || loc[:i] == "POSIX"
		}
	}
	return false
}
