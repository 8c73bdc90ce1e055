package ostest

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// cacheEnv names the folder RunWithTempCache made, for child processes.
const cacheEnv = "MODELPUB_TEST_CACHE"

// RunWithTempCache runs m with os.UserCacheDir at a new temporary folder,
// removed afterwards, and returns m.Run's code: no test reads or fills the
// user's caches (the Hub hash cache, the Xet shard cache, the app's).
// It sets XDG_CACHE_HOME (Linux and the BSDs) and LocalAppData (Windows);
// on macOS, where the folder is under HOME, it leaves HOME alone. Go's
// build cache keeps its folder (GOCACHE), for tests that run the go
// command. For TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(ostest.RunWithTempCache(m)) }
//
// A test binary that a test runs again as a child process (to kill it
// mid-upload, say) finds the folder in the environment and uses it as it
// is, as a real second run would the user's: the parent removes it.
func RunWithTempCache(m *testing.M) int {
	dir := os.Getenv(cacheEnv)
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "modelpub-test-cache-"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		os.Setenv(cacheEnv, dir)
	}
	if os.Getenv("GOCACHE") == "" {
		if base, err := os.UserCacheDir(); err == nil {
			os.Setenv("GOCACHE", filepath.Join(base, "go-build"))
		}
	}
	os.Setenv("XDG_CACHE_HOME", dir)
	os.Setenv("LocalAppData", dir)
	return m.Run()
}
