//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package auth

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// ReadTokenTerminal reads a token from in. When in is a terminal it writes
// "Token: " to prompt, turns echo off while the user types or pastes, and
// restores the terminal on every path: a read, an error, and Ctrl-C,
// SIGTERM or SIGHUP, which return ErrInterrupted instead of killing the
// process with echo off (the pending read is then abandoned; the caller
// is expected to exit). When in is not a terminal (a pipe, a file) it is
// ReadToken(in) and prints nothing.
func ReadTokenTerminal(in *os.File, prompt io.Writer) (string, error) {
	fd := int(in.Fd())
	old, err := unix.IoctlGetTermios(fd, ioctlReadTermios)
	if err != nil {
		return ReadToken(in)
	}
	quiet := *old
	quiet.Lflag &^= unix.ECHO
	quiet.Lflag |= unix.ICANON | unix.ISIG
	quiet.Iflag |= unix.ICRNL

	// The handler is in place before echo goes off, so a Ctrl-C can never
	// leave the terminal without echo.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	if err := unix.IoctlSetTermios(fd, ioctlWriteTermios, &quiet); err != nil {
		return "", fmt.Errorf("auth: cannot turn off echo on the terminal: %w", err)
	}
	defer unix.IoctlSetTermios(fd, ioctlWriteTermios, old)

	return readQuiet(in, prompt, sigs)
}
