//go:build !(linux || darwin || dragonfly || freebsd || netbsd || openbsd || windows)

package auth

import (
	"io"
	"os"
)

// ReadTokenTerminal reads a token from in with ReadToken. On this system
// modelpub cannot turn terminal echo off, so prompt is unused and a typed
// token is visible; pipe it in instead.
func ReadTokenTerminal(in *os.File, prompt io.Writer) (string, error) {
	return ReadToken(in)
}
