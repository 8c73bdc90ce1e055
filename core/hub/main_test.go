package hub_test

import (
	"fmt"
	"os"
	"testing"
)

// TestMain points the user cache (the hash cache's and the Xet shard
// cache's default folders) at a temporary folder: no test reads or fills
// the real one (XDG_CACHE_HOME on Linux, LocalAppData on Windows).
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hub-test-cache-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("XDG_CACHE_HOME", dir)
	os.Setenv("LocalAppData", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
