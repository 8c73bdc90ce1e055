// Package cli implements modelpub's command-line commands. Each command is a
// function of its arguments and output streams, so it runs the same from
// main and from tests.
package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"modelpub/core/folder"
)

// Exit codes shared by every command.
const (
	ExitOK       = 0 // success
	ExitProblems = 1 // the command ran and found problems (validate)
	ExitUsage    = 2 // bad arguments, or the command could not run
)

type command struct {
	name    string
	args    string // argument synopsis for help
	summary string // one line for the command list
	help    string // the whole story, for "help <command>"
	run     func(args []string, stdout, stderr io.Writer) int
}

// commands is filled by the init functions of the command files.
var commands = map[string]command{}

func register(c command) { commands[c.name] = c }

// Run executes the command named by args[0] and returns the process exit code.
// What it writes to stdout and stderr passes through a safeWriter: names
// from a hostile model folder cannot drive the terminal or forge lines.
func Run(args []string, stdout, stderr io.Writer) int {
	so, se := newSafeWriter(stdout), newSafeWriter(stderr)
	defer so.flush()
	defer se.flush()
	return run(args, so, se)
}

// IsCommand reports whether name runs a command (or help) rather than
// naming a folder for the window.
func IsCommand(name string) bool {
	switch name {
	case "help", "-h", "-help", "--help":
		return true
	}
	_, ok := commands[name]
	return ok
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return ExitUsage
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			if c, ok := commands[args[1]]; ok {
				commandUsage(stdout, c)
				return ExitOK
			}
		}
		usage(stdout)
		return ExitOK
	}
	c, ok := commands[name]
	if !ok {
		if looksLikePath(name) {
			// main opens the window on existing paths; one is not there.
			missing := name
			for _, a := range args {
				if _, err := os.Stat(a); err != nil {
					missing = a
					break
				}
			}
			fmt.Fprintf(stderr, "modelpub: %s: no such file or folder (and no command of that name; see modelpub help)\n", folder.Printable(missing))
			return ExitUsage
		}
		fmt.Fprintf(stderr, "modelpub: unknown command %q\n\n", name)
		usage(stderr)
		return ExitUsage
	}
	return c.run(args[1:], stdout, stderr)
}

func commandUsage(w io.Writer, c command) {
	fmt.Fprintf(w, "usage: modelpub %s %s\n\n", c.name, c.args)
	if c.help != "" {
		io.WriteString(w, c.help)
	} else {
		fmt.Fprintln(w, c.summary)
	}
}

func usage(w io.Writer) {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("Modelpub inspects, reshards and publishes Diffusers model folders.\n\n")
	b.WriteString("usage:\n" +
		"  modelpub                 open the desktop app\n" +
		"  modelpub PATH            open the desktop app on the Diffusers folder PATH\n" +
		"                           (a file inside one opens its folder)\n" +
		"  modelpub <command> [arguments]\n" +
		"                           run a command; no window, no display needed\n\ncommands:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  %-12s %s\n", n, commands[n].summary)
	}
	b.WriteString("  help         show this list, or \"help <command>\" for one command\n")
	io.WriteString(w, b.String())
}

// looksLikePath reports whether an unknown first argument was meant as a
// file or folder to open rather than a command.
func looksLikePath(arg string) bool {
	return strings.ContainsAny(arg, `/\`) || strings.HasPrefix(arg, ".") || strings.HasPrefix(arg, "~") ||
		filepath.Ext(arg) != ""
}

// newFlagSet returns the flag set of command name; errors and usage go to
// stderr.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { commandUsage(stderr, commands[name]) }
	return fs
}

// parseArgs parses flags placed anywhere among args and checks that want
// positional arguments remain; on failure it has printed why.
func parseArgs(fs *flag.FlagSet, args []string, want int) ([]string, bool) {
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return nil, false
	}
	if len(pos) != want {
		fs.Usage()
		return nil, false
	}
	return pos, true
}

// parseInterleaved parses flags that may come before, between or after the
// positional arguments, and returns the positional ones.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// interruptible is a context cancelled by Ctrl-C or SIGTERM (kill, a
// service manager stopping localhub), so long commands stop cleanly and
// leave nothing half-written, and localhub removes its temporary data.
func interruptible() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}
