// Package costtest measures what a test's code costs — CPU time and peak
// memory — for the tests that hold Modelpub's linear-time and bounded-memory
// targets (core/tensors, core/pipeline, core/card). It is imported by tests
// only.
package costtest

import (
	"os"
	"regexp"
	"runtime"
	"runtime/debug"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// CPUTime is the least CPU time (user and system) of three runs of f, with
// the garbage collector off: unlike the wall clock it does not count other
// processes, and small runs do not look cheaper for fitting under the
// collector's minimum heap.
func CPUTime(t testing.TB, f func()) time.Duration {
	best := time.Duration(1<<63 - 1)
	for range 3 {
		runtime.GC()
		gc := debug.SetGCPercent(-1)
		t0, err := processCPU()
		require.NoError(t, err)
		f()
		t1, err := processCPU()
		require.NoError(t, err)
		debug.SetGCPercent(gc)
		best = min(best, t1-t0)
	}
	return best
}

var vmHWM = regexp.MustCompile(`VmHWM:\s+(\d+) kB`)

// PeakRSS is the process's peak resident memory (VmHWM), in bytes; the test
// is skipped where /proc/self/status does not exist (peak RSS is measured on
// Linux).
func PeakRSS(t testing.TB) int64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status: peak RSS is measured on Linux")
	}
	m := vmHWM.FindSubmatch(status)
	require.NotNil(t, m)
	kb, err := strconv.ParseInt(string(m[1]), 10, 64)
	require.NoError(t, err)
	return kb << 10
}
