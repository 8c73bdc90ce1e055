package tensors

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// WriteTensor is one tensor to write: what the header says about it and
// where its bytes come from.
type WriteTensor struct {
	Name  string
	DType DType
	Shape []int64
	Data  Source
}

// WriteOptions tune WriteFile.
type WriteOptions struct {
	// Verbatim writes Metadata exactly as given. By default the writer sets
	// "format":"pt", which transformers requires on load.
	Verbatim bool
	// Progress, if set, is called after each tensor with the bytes of the
	// file written so far and the file's total size.
	Progress func(done, total int64)
}

// Layout is where a header places each tensor.
type Layout struct {
	Header  []byte       // the 8-byte length, then the padded JSON header
	Tensors []TensorInfo // in write order: dtype descending, then name
	Size    int64        // the whole file
}

// ErrInvalidTensor reports a tensor that cannot be written.
var ErrInvalidTensor = errors.New("invalid tensor")

// PlanLayout lays out tensors exactly as the reference writer does: sorted by
// dtype in descending enum order then by name, packed from offset 0, with a
// compact JSON header whose __metadata__ comes first and whose tensor fields
// come in the order dtype, shape, data_offsets, padded with spaces to a
// multiple of 8 bytes. A nil meta writes no __metadata__.
func PlanLayout(tensors []WriteTensor, meta Metadata) (*Layout, error) {
	order := make([]int, len(tensors))
	seen := make(map[string]struct{}, len(tensors))
	for i, t := range tensors {
		order[i] = i
		switch {
		case t.Name == "":
			return nil, fmt.Errorf("%w: empty name", ErrInvalidTensor)
		case t.Name == "__metadata__":
			return nil, fmt.Errorf("%w: the name __metadata__ is reserved", ErrInvalidTensor)
		case !utf8.ValidString(t.Name):
			return nil, fmt.Errorf("%w: name %q is not valid UTF-8", ErrInvalidTensor, t.Name)
		case t.DType >= numDTypes:
			return nil, fmt.Errorf("%w: %q has unknown dtype %d", ErrInvalidTensor, t.Name, t.DType)
		case t.Data == nil:
			return nil, fmt.Errorf("%w: %q has no data source", ErrInvalidTensor, t.Name)
		}
		if _, dup := seen[t.Name]; dup {
			return nil, fmt.Errorf("%w: %q appears twice", ErrInvalidTensor, t.Name)
		}
		seen[t.Name] = struct{}{}
		for _, d := range t.Shape {
			if d < 0 {
				return nil, fmt.Errorf("%w: %q has negative shape %v", ErrInvalidTensor, t.Name, t.Shape)
			}
		}
		want, err := byteSize(t.DType, t.Shape)
		if err != nil {
			return nil, fmt.Errorf("%w: %q %s %v: %v", ErrInvalidTensor, t.Name, t.DType, t.Shape, err)
		}
		if got := t.Data.Size(); got != want {
			return nil, fmt.Errorf("%w: %q is %s %v (%d bytes) but its source has %d bytes",
				ErrInvalidTensor, t.Name, t.DType, t.Shape, want, got)
		}
	}
	slices.SortFunc(order, func(a, b int) int {
		ta, tb := tensors[a], tensors[b]
		if ta.DType != tb.DType {
			return int(tb.DType) - int(ta.DType)
		}
		return strings.Compare(ta.Name, tb.Name)
	})

	var js bytes.Buffer
	js.WriteByte('{')
	first := true
	if meta != nil {
		js.WriteString(`"__metadata__":{`)
		for i, e := range meta {
			if i > 0 {
				js.WriteByte(',')
			}
			writeJSONString(&js, e.Key)
			js.WriteByte(':')
			writeJSONString(&js, e.Value)
		}
		js.WriteByte('}')
		first = false
	}
	l := &Layout{Tensors: make([]TensorInfo, 0, len(tensors))}
	var off int64
	for _, i := range order {
		t := tensors[i]
		if !first {
			js.WriteByte(',')
		}
		first = false
		size := t.Data.Size()
		info := TensorInfo{Name: t.Name, DType: t.DType, Shape: t.Shape, Begin: off, End: off + size}
		off += size
		l.Tensors = append(l.Tensors, info)
		writeJSONString(&js, t.Name)
		js.WriteString(`:{"dtype":"`)
		js.WriteString(t.DType.String())
		js.WriteString(`","shape":[`)
		for k, d := range t.Shape {
			if k > 0 {
				js.WriteByte(',')
			}
			js.WriteString(strconv.FormatInt(d, 10))
		}
		js.WriteString(`],"data_offsets":[`)
		js.WriteString(strconv.FormatInt(info.Begin, 10))
		js.WriteByte(',')
		js.WriteString(strconv.FormatInt(info.End, 10))
		js.WriteString(`]}`)
	}
	js.WriteByte('}')
	for js.Len()%8 != 0 {
		js.WriteByte(' ')
	}
	if js.Len() > MaxHeaderSize {
		return nil, fmt.Errorf("%w: the header would be %d bytes, over the %d-byte limit", ErrInvalidTensor, js.Len(), MaxHeaderSize)
	}
	l.Header = make([]byte, 8, 8+js.Len())
	binary.LittleEndian.PutUint64(l.Header, uint64(js.Len()))
	l.Header = append(l.Header, js.Bytes()...)
	l.Size = int64(len(l.Header)) + off
	return l, nil
}

// writeJSONString writes s as serde_json does: only '"', '\\' and control
// characters are escaped; everything else, '/' and non-ASCII included, is
// written as is.
func writeJSONString(b *bytes.Buffer, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			b.WriteString(`\"`)
		case c == '\\':
			b.WriteString(`\\`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c == '\t':
			b.WriteString(`\t`)
		case c == '\b':
			b.WriteString(`\b`)
		case c == '\f':
			b.WriteString(`\f`)
		case c < 0x20:
			b.WriteString(`\u00`)
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
}

// EnsureFormatPT returns meta with "format" set to "pt": in place if the key
// exists, first otherwise.
func EnsureFormatPT(meta Metadata) Metadata {
	if v, ok := meta.Get(MetadataKeyFormat); ok {
		if v == "pt" {
			return meta
		}
		return meta.With(MetadataKeyFormat, "pt")
	}
	out := make(Metadata, 0, len(meta)+1)
	out = append(out, MetadataEntry{MetadataKeyFormat, "pt"})
	return append(out, meta...)
}

// writebackChunk is how much the writer lets accumulate in the page cache
// before it starts writing it to disk.
const writebackChunk = 32 << 20

// WriteFile writes a safetensors file at path, streaming each tensor from its
// source so that no tensor is held in memory. The file is written under a
// temporary name in the same folder, synced and renamed: path never holds a
// partial file, and on any error (including cancellation of ctx) the
// temporary file is removed and path is untouched.
func WriteFile(ctx context.Context, path string, tensors []WriteTensor, meta Metadata, opts WriteOptions) (*Layout, error) {
	if !opts.Verbatim {
		meta = EnsureFormatPT(meta)
	}
	l, err := PlanLayout(tensors, meta)
	if err != nil {
		return nil, &PathError{Path: path, Err: err}
	}
	if err := writeAtomic(path, func(f *os.File) error {
		return writeLayout(ctx, f, l, tensors, opts.Progress)
	}); err != nil {
		return nil, &PathError{Path: path, Err: err}
	}
	return l, nil
}

// writeLayout writes the header and then every tensor of l to f, asking the
// kernel to start writing to disk as it goes.
func writeLayout(ctx context.Context, f *os.File, l *Layout, tensors []WriteTensor, progress func(done, total int64)) error {
	byName := make(map[string]Source, len(tensors))
	for _, t := range tensors {
		byName[t.Name] = t.Data
	}
	if _, err := f.Write(l.Header); err != nil {
		return err
	}
	done := int64(len(l.Header))
	flushed := int64(0)
	for _, t := range l.Tensors {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := byName[t.Name].CopyTo(ctx, f); err != nil {
			return fmt.Errorf("tensor %q: %w", t.Name, err)
		}
		done += t.Size()
		if done-flushed >= writebackChunk {
			startWriteback(f, flushed, done-flushed)
			flushed = done
		}
		if progress != nil {
			progress(done, l.Size)
		}
	}
	// A source that wrote more or fewer bytes than it declared would
	// shift every later tensor: check before the file gets its name.
	end, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return err
	}
	if end != l.Size {
		return fmt.Errorf("wrote %d bytes, expected %d: a tensor source wrote the wrong length", end, l.Size)
	}
	return nil
}
