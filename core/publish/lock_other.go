//go:build !unix && !windows

package publish

import "os"

// lockFile does nothing where advisory locks are not available: two runs on
// one folder are then the user's to avoid.
func lockFile(*os.File) error { return nil }

func unlockFile(*os.File) {}
