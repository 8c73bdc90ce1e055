package auth

import (
	"fmt"
	"io"
	"os"
)

// readQuiet prompts on prompt and reads a token from in, whose echo the
// caller has turned off; a signal on sigs (Ctrl-C, the console or terminal
// closing) ends the wait with ErrInterrupted, abandoning the pending read
// (the caller is expected to exit).
func readQuiet(in *os.File, prompt io.Writer, sigs <-chan os.Signal) (string, error) {
	io.WriteString(prompt, "Token: ")
	type result struct {
		token string
		err   error
	}
	done := make(chan result, 1)
	go func() {
		v, err := ReadToken(in)
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		io.WriteString(prompt, "\n") // the user's Enter was not echoed
		return r.token, r.err
	case s := <-sigs:
		io.WriteString(prompt, "\n")
		return "", fmt.Errorf("%w (%v) while waiting for the token", ErrInterrupted, s)
	}
}
