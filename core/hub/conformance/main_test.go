package conformance_test

import (
	"os"
	"testing"

	"modelpub/internal/ostest"
)

// TestMain keeps the tests off the user's caches (the Hub hash cache, the
// Xet shard cache): os.UserCacheDir is a temporary folder.
func TestMain(m *testing.M) { os.Exit(ostest.RunWithTempCache(m)) }
