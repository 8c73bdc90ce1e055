//go:build !unix

package folder

import "os"

// openNoBlock opens path for reading; outside Unix no special file blocks an
// open (the caller checks the type).
func openNoBlock(path string) (*os.File, error) { return os.Open(path) }
