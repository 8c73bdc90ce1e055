package torchbin

import "errors"

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
	// dtypes, pickles over the size limit...).
	ErrUnsupported = errors.New("unsupported PyTorch checkpoint")
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
