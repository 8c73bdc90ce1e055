//go:build !unix

package convert

import "errors"

// freeSpace is unknown here: the conversion is trusted to fit.
var freeSpace = func(string) (int64, error) { return 0, errors.ErrUnsupported }
