package ostest

import (
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const childEnv = "MODELPUB_OSTEST_CHILD"

// TestChildWaits is not a test: TestKillHard runs the test binary again
// with only this function selected, as a process that waits to be killed.
func TestChildWaits(t *testing.T) {
	switch os.Getenv(childEnv) {
	case "":
		t.Skip("the child process of TestKillHard")
	case "exit":
		os.Exit(1)
	}
	time.Sleep(time.Minute)
}

func TestKillHard(t *testing.T) {
	run := func(kill bool) *os.ProcessState {
		mode := "wait"
		if !kill {
			mode = "exit"
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestChildWaits$", "-test.count=1")
		cmd.Env = append(os.Environ(), childEnv+"="+mode)
		require.NoError(t, cmd.Start())
		if kill {
			require.NoError(t, KillHard(cmd.Process))
		}
		_ = cmd.Wait()
		return cmd.ProcessState
	}
	assert.True(t, Killed(run(true)), "a process ended by KillHard is Killed")
	assert.False(t, Killed(run(false)), "a process that exits on its own is not")
}
