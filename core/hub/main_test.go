package hub_test

import (
	"os"
	"testing"

	"modelpub/internal/ostest"
)

// TestMain keeps the tests off the user's caches (the hash cache's and the
// Xet shard cache's default folders): os.UserCacheDir is a temporary
// folder.
func TestMain(m *testing.M) { os.Exit(ostest.RunWithTempCache(m)) }
