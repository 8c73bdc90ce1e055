package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/windows"
)

// syncDir does nothing: Windows has no way to sync a folder (opening one
// to flush it is refused), and replace asks for the rename to be written
// through instead.
func syncDir(dir string) error { return nil }

// syncFile flushes a file's bytes to disk. FlushFileBuffers needs a handle
// open for writing.
func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// How long replace keeps trying while the target is open elsewhere: a
// virus scanner or indexer lets go within a few hundred milliseconds; a
// program that has the file open will not, and the user is told.
var (
	retryFirst = 10 * time.Millisecond  // the first wait, doubled each try
	retryMax   = 500 * time.Millisecond // the longest wait
	retryFor   = 3 * time.Second        // the total wait before giving up
)

// replace renames tmp over target with MoveFileEx: REPLACE_EXISTING, and
// WRITE_THROUGH so the rename is on disk when it returns (there is no
// folder to sync). While the target is open in another program without
// delete sharing (most are), the rename is refused: it is retried with
// backoff, then given up with ErrInUse. The target is never removed first,
// so it is never lost.
func replace(tmp, target string) error {
	from, err := windows.UTF16PtrFromString(longPath(tmp))
	if err != nil {
		return err
	}
	to, err := windows.UTF16PtrFromString(longPath(target))
	if err != nil {
		return err
	}
	start, wait := time.Now(), retryFirst
	for tries := 1; ; tries++ {
		err := windows.MoveFileEx(from, to, windows.MOVEFILE_REPLACE_EXISTING|windows.MOVEFILE_WRITE_THROUGH)
		if err == nil {
			return nil
		}
		if !inUse(err) {
			return err
		}
		if time.Since(start)+wait > retryFor {
			return &inUseError{err: err, tries: tries, wait: time.Since(start)}
		}
		time.Sleep(wait)
		wait = min(2*wait, retryMax)
	}
}

// inUse says whether a rename was refused because the target is open.
func inUse(err error) bool {
	return errors.Is(err, windows.ERROR_SHARING_VIOLATION) ||
		errors.Is(err, windows.ERROR_ACCESS_DENIED) ||
		errors.Is(err, windows.ERROR_LOCK_VIOLATION)
}

// longPath gives an absolute path of 248 characters or more the \\?\
// prefix that lifts the 260-character limit of the Win32 API (os does the
// same for its own calls; MoveFileEx is called directly here).
func longPath(p string) string {
	if len(p) < 248 || strings.HasPrefix(p, `\\?\`) {
		return p
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	if strings.HasPrefix(abs, `\\`) { // UNC: \\server\share\...
		return `\\?\UNC\` + abs[2:]
	}
	return `\\?\` + abs
}
