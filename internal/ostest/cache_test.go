package ostest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { os.Exit(RunWithTempCache(m)) }

func TestRunWithTempCache(t *testing.T) {
	if runtime.GOOS == "darwin" {
		t.Skip("on macOS the user cache is under HOME, which RunWithTempCache leaves alone")
	}
	dir, err := os.UserCacheDir()
	require.NoError(t, err)
	assert.DirExists(t, dir)
	assert.True(t, strings.HasPrefix(filepath.Base(dir), "modelpub-test-cache-"), dir)
	assert.Equal(t, filepath.Clean(os.TempDir()), filepath.Dir(dir), "a temporary folder")
	assert.NotEmpty(t, os.Getenv("GOCACHE"))
	assert.False(t, strings.HasPrefix(os.Getenv("GOCACHE"), dir), "go's build cache stays where it was")
}

// A child process of the test binary uses its parent's folder.
func TestRunWithTempCacheInAChild(t *testing.T) {
	if os.Getenv(childEnv) == "cache" {
		dir, err := os.UserCacheDir()
		require.NoError(t, err)
		fmt.Print("cache=" + dir + "\n")
		return
	}
	if runtime.GOOS == "darwin" {
		t.Skip("on macOS the user cache is under HOME, which RunWithTempCache leaves alone")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestRunWithTempCacheInAChild$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"=cache")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	dir, err := os.UserCacheDir()
	require.NoError(t, err)
	assert.Contains(t, string(out), "cache="+dir+"\n")
	assert.DirExists(t, dir, "the child left the folder to its parent")
}
