package auth

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/windows"
)

// ReadTokenTerminal reads a token from in. When in is a console (cmd,
// PowerShell, Windows Terminal) it writes "Token: " to prompt, turns the
// console's echo off while the user types or pastes, keeping line editing
// and Ctrl-C, and restores the console's mode on every path: a read, an
// error, and Ctrl-C or the console closing, which return ErrInterrupted
// (the pending read is then abandoned; the caller is expected to exit).
// When in is not a console (a pipe, a file) it is ReadToken(in) and prints
// nothing.
func ReadTokenTerminal(in *os.File, prompt io.Writer) (string, error) {
	h := windows.Handle(in.Fd())
	var old uint32
	if err := windows.GetConsoleMode(h, &old); err != nil {
		return ReadToken(in)
	}
	// Echo needs line input, never the other way round: line input and
	// processed input (Ctrl-C as a signal) stay on.
	quiet := old&^windows.ENABLE_ECHO_INPUT | windows.ENABLE_LINE_INPUT | windows.ENABLE_PROCESSED_INPUT

	// The handler is in place before echo goes off, so a Ctrl-C can never
	// leave the console without echo. Go delivers the console's close,
	// logoff and shutdown events as SIGTERM.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	if err := windows.SetConsoleMode(h, quiet); err != nil {
		return "", fmt.Errorf("auth: cannot turn off echo in the console: %w", err)
	}
	defer windows.SetConsoleMode(h, old)
	return readQuiet(in, prompt, sigs)
}
