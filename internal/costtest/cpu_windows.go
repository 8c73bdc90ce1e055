package costtest

import (
	"syscall"
	"time"
)

// processCPU is the CPU time (user and kernel) the process has used.
func processCPU() (time.Duration, error) {
	var created, exited, kernel, user syscall.Filetime
	h, err := syscall.GetCurrentProcess()
	if err != nil {
		return 0, err
	}
	if err := syscall.GetProcessTimes(h, &created, &exited, &kernel, &user); err != nil {
		return 0, err
	}
	// A Filetime counts 100 ns intervals; Nanoseconds would read it as a
	// date since 1601.
	ticks := func(f syscall.Filetime) int64 { return int64(f.HighDateTime)<<32 | int64(f.LowDateTime) }
	return time.Duration((ticks(kernel) + ticks(user)) * 100), nil
}
