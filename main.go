// Command modelpub inspects, reshards and publishes Diffusers model folders.
//
// With no arguments it opens the desktop window, and with one naming a
// file or folder it opens the window on that folder; with a command (see
// "modelpub help") it runs it without a window, and needs no display.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"modelpub/cli"
	"modelpub/cli/preinit" // first: it runs before the GUI libraries' init
	"modelpub/gui"
)

func main() {
	if !preinit.Window || (len(os.Args) > 1 && cli.IsCommand(os.Args[1])) {
		preinit.Restore()
		os.Exit(cli.Run(os.Args[1:], os.Stdout, os.Stderr))
	}
	if msg := noDisplay(os.Getenv); msg != "" {
		fmt.Fprintln(os.Stderr, "modelpub: "+msg)
		os.Exit(cli.ExitUsage)
	}
	path := preinit.Path
	if len(os.Args) > 2 {
		fmt.Fprintf(os.Stderr, "modelpub: opening %s; the window shows one folder at a time\n", path)
	}
	if path != "" {
		if abs, err := filepath.Abs(path); err == nil {
			path = abs
		}
	}
	os.Exit(runWindow(path))
}

// noDisplay says why the window cannot open here, or "" when it can: on
// Linux and the BSDs it needs DISPLAY (X11) or WAYLAND_DISPLAY.
func noDisplay(getenv func(string) string) string {
	switch runtime.GOOS {
	case "darwin", "windows", "android", "ios", "js":
		return ""
	}
	if getenv("DISPLAY") != "" || getenv("WAYLAND_DISPLAY") != "" {
		return ""
	}
	return "no display: the desktop app needs a graphical session (DISPLAY or WAYLAND_DISPLAY is not set); " +
		"the commands work without one: modelpub help"
}

// runWindow runs the window until it is closed. A display that is named
// but cannot be opened makes GLFW panic inside Fyne; that one panic becomes
// a message and exit status 2, any other stays a crash with its trace.
func runWindow(path string) (code int) {
	defer func() {
		if r := recover(); r != nil {
			msg := fmt.Sprint(r)
			if !strings.Contains(msg, "GLFW") {
				panic(r)
			}
			fmt.Fprintf(os.Stderr, "modelpub: cannot open the window on display %q: %s; "+
				"the commands work without one: modelpub help\n", os.Getenv("DISPLAY"), msg)
			code = cli.ExitUsage
		}
	}()
	gui.Run(path)
	return cli.ExitOK
}
