// Package costtest measures what a test's code costs — CPU time and peak
// memory — for the tests that hold Modelpub's linear-time and bounded-memory
// targets (core/tensors, core/pipeline, core/card), and re-runs a test in a
// process of its own to measure its peak memory alone (ChildPeakRSS). It is
// imported by tests only.
package costtest

import (
	"fmt"
	"os"
	"os/exec"
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

// childEnv carries the input of a test re-run in a process of its own.
const childEnv = "MODELPUB_COSTTEST_CHILD"

// ChildInput is the input ChildPeakRSS gave this process, or "" when the
// process is not such a child.
func ChildInput() string { return os.Getenv(childEnv) }

// ReportPeakRSS prints this child's peak RSS for ChildPeakRSS to read; the
// child calls it once its work is done.
func ReportPeakRSS(t testing.TB) { fmt.Printf("peak-rss=%d\n", PeakRSS(t)) }

var peakLine = regexp.MustCompile(`peak-rss=(\d+)`)

// ChildPeakRSS runs test t again in a new process of this test binary, in
// which ChildInput returns input, and returns the peak RSS the child reports
// with ReportPeakRSS: a process's peak cannot be reset, so each measure gets
// its own process. The child runs with GOGC=100 and no memory limit.
func ChildPeakRSS(t *testing.T, input string) int64 {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"="+input, "GOGC=100", "GOMEMLIMIT=off")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	m := peakLine.FindSubmatch(out)
	require.NotNil(t, m, "%s", out)
	n, err := strconv.ParseInt(string(m[1]), 10, 64)
	require.NoError(t, err)
	return n
}
