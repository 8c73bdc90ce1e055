package tensors

import (
	"errors"
	"strconv"
	"strings"

	"modelpub/core/folder"
)

// Errors a safetensors file can fail validation with. Every error returned
// by the reader is a *FormatError wrapping one of these, so callers test the
// kind with errors.Is and get the file and tensor with errors.As.
var (
	ErrFileTooSmall    = errors.New("file is shorter than the 8-byte header length")
	ErrHeaderTooLarge  = errors.New("header length is over the 100,000,000-byte limit")
	ErrHeaderLength    = errors.New("header length runs past the end of the file")
	ErrHeaderUTF8      = errors.New("header is not valid UTF-8")
	ErrHeaderJSON      = errors.New("header is not valid JSON")
	ErrHeaderNotObject = errors.New("header is not a JSON object")
	ErrMissingField    = errors.New("tensor entry is missing a field")
	ErrInvalidField    = errors.New("tensor entry has an invalid field")
	ErrUnknownDType    = errors.New("unknown dtype")
	ErrInvalidShape    = errors.New("invalid shape")
	ErrOverflow        = errors.New("size overflows 64 bits")
	ErrMisaligned      = errors.New("tensor does not fill a whole number of bytes")
	ErrSizeMismatch    = errors.New("data_offsets do not match dtype and shape")
	ErrOffsetGap       = errors.New("hole between tensors in the data buffer")
	ErrOffsetOverlap   = errors.New("tensors overlap in the data buffer")
	ErrTruncated       = errors.New("file is truncated")
	ErrTrailingBytes   = errors.New("trailing bytes after the last tensor")
	ErrDuplicateName   = errors.New("duplicate tensor name")
	ErrEmptyName       = errors.New("empty tensor name")
	ErrInvalidMetadata = errors.New("__metadata__ must map strings to strings")
)

// FormatError reports a safetensors file that breaks the format. Path and
// Tensor are empty when unknown or not relevant.
type FormatError struct {
	Path   string // the file, as given to the reader
	Tensor string // the tensor the problem is in, if any
	Err    error  // one of the Err* sentinels above
	Detail string // what exactly was found
}

func (e *FormatError) Error() string { return describe(e.Path, e.Tensor, e.Err, e.Detail) }

// describe writes the message of a problem in a file: `path: tensor "t":
// what went wrong: detail`, leaving out the empty parts. Names come from
// untrusted files and messages reach terminals, so nothing is written raw:
// the path goes through folder.Printable, the tensor name is always quoted
// (strconv.Quote escapes every control character), and the detail, built
// from what the file holds, through folder.PrintableText.
func describe(path, tensor string, err error, detail string) string {
	var b strings.Builder
	if path != "" {
		b.WriteString(folder.Printable(path))
		b.WriteString(": ")
	}
	if tensor != "" {
		b.WriteString("tensor ")
		b.WriteString(strconv.Quote(tensor))
		b.WriteString(": ")
	}
	b.WriteString(folder.PrintableText(err.Error()))
	if detail != "" {
		b.WriteString(": ")
		b.WriteString(folder.PrintableText(detail))
	}
	return b.String()
}

func (e *FormatError) Unwrap() error { return e.Err }

func formatErr(err error, tensor, detail string) *FormatError {
	return &FormatError{Tensor: tensor, Err: err, Detail: detail}
}

// withPath sets the file name on a *FormatError (or wraps any other error
// with it) so messages always say which file is at fault.
func withPath(err error, path string) error {
	if err == nil {
		return nil
	}
	var fe *FormatError
	if errors.As(err, &fe) && fe.Path == "" {
		fe.Path = path
		return err
	}
	if fe != nil {
		return err
	}
	return &PathError{Path: path, Err: err}
}

// PathError is an I/O or other non-format error on a named file. Its
// message prints the path through folder.Printable and the error through
// folder.PrintableText, as describe does.
type PathError struct {
	Path string
	Err  error
}

func (e *PathError) Error() string {
	return folder.Printable(e.Path) + ": " + folder.PrintableText(e.Err.Error())
}
func (e *PathError) Unwrap() error { return e.Err }
