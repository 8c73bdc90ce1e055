package ostest

import (
	"os"
	"syscall"
)

// killedExitCode is the exit code KillHard gives the process it ends: not
// 1, which os.Process.Kill gives and a program exits with on its own, but
// the 128+9 a shell reports for SIGKILL.
const killedExitCode = 137

// KillHard ends p at once, as a crash would from the program's side:
// TerminateProcess here, SIGKILL on Unix. The program runs no more code,
// not even its deferred functions.
func KillHard(p *os.Process) error {
	h, err := syscall.OpenProcess(syscall.PROCESS_TERMINATE, false, uint32(p.Pid))
	if err != nil {
		return os.NewSyscallError("OpenProcess", err)
	}
	defer syscall.CloseHandle(h)
	return os.NewSyscallError("TerminateProcess", syscall.TerminateProcess(h, killedExitCode))
}

// Killed reports whether the process that ended in state was ended by
// KillHard, rather than exiting on its own.
func Killed(state *os.ProcessState) bool { return state.ExitCode() == killedExitCode }
