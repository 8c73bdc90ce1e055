package publish

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// errLocked is lockFile's answer when another process holds the lock.
var errLocked = errors.New("locked")

// lockSource takes the cache's lock for src, so two runs never stage or
// upload the same folder at once. The lock goes with the process: a killed
// run leaves nothing to clean.
func lockSource(cache, src string) (func(), error) {
	dir := filepath.Join(cache, "locks")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, sourceKey(src)+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := lockFile(f); err != nil {
		f.Close()
		if errors.Is(err, errLocked) {
			return nil, fmt.Errorf("%w (%s): wait for it to finish or cancel it", ErrBusy, src)
		}
		return nil, err
	}
	return func() { unlockFile(f); f.Close() }, nil
}
