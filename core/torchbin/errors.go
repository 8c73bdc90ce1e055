package torchbin

import (
	"errors"
	"fmt"

	"modelpub/core/tensors"
)

// Sentinel errors. Every error returned by this package wraps one of them
// (use errors.Is) and is a *Error naming the checkpoint file.
var (
	// ErrNotCheckpoint: the file is neither a zip nor a legacy PyTorch
	// checkpoint.
	ErrNotCheckpoint = errors.New("not a PyTorch checkpoint")
	// ErrForbiddenGlobal: the pickle references a Python global outside the
	// state-dict allow-list (os.system, builtins.eval, ...). Nothing was
	// executed: the file is refused before any object is built.
	ErrForbiddenGlobal = errors.New("refusing to load")
	// ErrCorrupt: the checkpoint is truncated or inconsistent (bad zip,
	// missing storage, a tensor pointing outside its storage, a declared
	// size larger than the data...).
	ErrCorrupt = errors.New("corrupt PyTorch checkpoint")
	// ErrUnsupported: a valid checkpoint this package does not convert
	// (TorchScript, big-endian, compressed storages, complex or quantized
	// dtypes...).
	ErrUnsupported = errors.New("unsupported PyTorch checkpoint")
	// ErrPickleLimit: a pickle would cost more to load than its size
	// allows (too many opcodes, stack items, memo entries or container
	// entries, too deep, too much memory, or too large once inflated): a
	// pickle bomb. The error in the chain is a *LimitError saying which
	// limit. See the package documentation for the limits.
	ErrPickleLimit = errors.New("pickle too complex")
)

// Error is the error type of this package: what went wrong with which file.
type Error struct {
	Path string
	Err  error
}

func (e *Error) Error() string { return e.Path + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func pathErr(path string, err error) error {
	if err == nil {
		return nil
	}
	var pe *Error
	if errors.As(err, &pe) && pe.Path == path {
		return err
	}
	return &Error{Path: path, Err: err}
}

// LimitError is the refusal of a pickle that crosses one of the limits of
// the pickle VM (see the package documentation). It wraps ErrPickleLimit.
type LimitError struct {
	// Limit names what was counted: "opcodes", "stack", "nesting",
	// "memo", "container", "memory", "size" (inflated data.pkl), "name"
	// (a flattened tensor name) or "integer" (a LONG of too many bytes).
	Limit string
	// Max is the limit that was crossed, in the unit of Limit (bytes for
	// "memory", "size" and "name").
	Max int64
	// Stored is the number of bytes the pickle takes in the file, which
	// the limits are relative to.
	Stored int64
}

func (e *LimitError) Error() string {
	size := tensors.FormatSize(e.Stored)
	var what string
	switch e.Limit {
	case "opcodes":
		what = fmt.Sprintf("more than %d opcodes for a %s pickle", e.Max, size)
	case "stack":
		what = fmt.Sprintf("more than %d items on the stack for a %s pickle", e.Max, size)
	case "memo":
		what = fmt.Sprintf("more than %d memo entries for a %s pickle", e.Max, size)
	case "container":
		what = fmt.Sprintf("a list, tuple, set or dict of more than %d entries for a %s pickle", e.Max, size)
	case "memory":
		what = fmt.Sprintf("loading it would take more than %s of memory for a %s pickle", tensors.FormatSize(e.Max), size)
	case "size":
		what = fmt.Sprintf("more than %s once inflated from %s", tensors.FormatSize(e.Max), size)
	case "nesting":
		return fmt.Sprintf("%v: nested more than %d levels deep", ErrPickleLimit, e.Max)
	case "name":
		return fmt.Sprintf("%v: a tensor name longer than %d bytes", ErrPickleLimit, e.Max)
	case "integer":
		return fmt.Sprintf("%v: an integer of more than %d bytes or digits", ErrPickleLimit, e.Max)
	default:
		what = fmt.Sprintf("%s over %d for a %s pickle", e.Limit, e.Max, size)
	}
	return fmt.Sprintf("%v: %s (the limit for that size)", ErrPickleLimit, what)
}

func (e *LimitError) Unwrap() error { return ErrPickleLimit }
