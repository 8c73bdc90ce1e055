//go:build unix

package ostest

import (
	"os"
	"syscall"
)

// KillHard ends p at once, as a crash would from the program's side:
// SIGKILL here, TerminateProcess on Windows. The program runs no more code,
// not even its deferred functions.
func KillHard(p *os.Process) error { return p.Signal(syscall.SIGKILL) }

// Killed reports whether the process that ended in state was ended by
// KillHard, rather than exiting on its own.
func Killed(state *os.ProcessState) bool {
	ws, ok := state.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}
