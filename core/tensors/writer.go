package tensors

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
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

	plan *layoutPlan
}

// ErrInvalidTensor reports a tensor that cannot be written.
var ErrInvalidTensor = errors.New("invalid tensor")

// PlanLayout lays out tensors exactly as the reference writer does: sorted by
// dtype in descending enum order then by name, packed from offset 0, with a
// compact JSON header whose __metadata__ comes first and whose tensor fields
// come in the order dtype, shape, data_offsets, padded with spaces to a
// multiple of 8 bytes. A nil meta writes no __metadata__.
func PlanLayout(tensors []WriteTensor, meta Metadata) (*Layout, error) {
	lp, err := planOrder(tensors, nil, meta, true)
	if err != nil {
		return nil, err
	}
	header, err := lp.header(tensors, meta)
	if err != nil {
		return nil, err
	}
	l := &Layout{Header: header, Tensors: make([]TensorInfo, len(lp.order)), Size: lp.size, plan: lp}
	var off int64
	for k, i := range lp.order {
		t := &tensors[i]
		size := t.Data.Size()
		l.Tensors[k] = TensorInfo{Name: t.Name, DType: t.DType, Shape: t.Shape, Begin: off, End: off + size}
		off += size
	}
	return l, nil
}

// layoutPlan is a file's layout before its header is written out: the
// order of its tensors and its sizes. Building the header bytes only when
// the file is written keeps one header in memory at a time.
type layoutPlan struct {
	order     []int32 // indices into the tensors, in write order
	headerLen int     // the padded JSON header
	size      int64   // the whole file
}

// planOrder checks the tensors sel picks out of tensors (all of them when
// sel is nil), in sel's order, and lays them out as PlanLayout does;
// checkDups also refuses a name given twice.
func planOrder(tensors []WriteTensor, sel []int32, meta Metadata, checkDups bool) (*layoutPlan, error) {
	n := len(tensors)
	if sel != nil {
		n = len(sel)
	}
	order := make([]int32, n)
	dup := -1
	if checkDups {
		dup = firstRepeat(n, func(k int32) string {
			if sel != nil {
				k = sel[k]
			}
			return tensors[k].Name
		})
	}
	var data int64
	for k := range order {
		i := int32(k)
		if sel != nil {
			i = sel[k]
		}
		order[k] = i
		t := &tensors[i]
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
		if k == dup {
			return nil, fmt.Errorf("%w: %q appears twice", ErrInvalidTensor, t.Name)
		}
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
		data += want
	}
	slices.SortFunc(order, func(a, b int32) int {
		ta, tb := &tensors[a], &tensors[b]
		if ta.DType != tb.DType {
			return int(tb.DType) - int(ta.DType)
		}
		return strings.Compare(ta.Name, tb.Name)
	})

	// The header's length, counted as header writes it.
	js := 2 // {}
	if meta != nil {
		js += len(`"__metadata__":{}`)
		for i, e := range meta {
			if i > 0 {
				js++
			}
			js += jsonStringLen(e.Key) + 1 + jsonStringLen(e.Value)
		}
	}
	var off int64
	for k, i := range order {
		t := &tensors[i]
		if k > 0 || meta != nil {
			js++
		}
		js += jsonStringLen(t.Name) + len(`:{"dtype":"`) + len(t.DType.String()) + len(`","shape":[`)
		for j, d := range t.Shape {
			if j > 0 {
				js++
			}
			js += intLen(d)
		}
		size := t.Data.Size()
		js += len(`],"data_offsets":[`) + intLen(off) + 1 + intLen(off+size) + len(`]}`)
		off += size
	}
	js = (js + 7) / 8 * 8
	if js > MaxHeaderSize {
		return nil, fmt.Errorf("%w: the header would be %d bytes, over the %d-byte limit", ErrInvalidTensor, js, MaxHeaderSize)
	}
	return &layoutPlan{order: order, headerLen: js, size: 8 + int64(js) + data}, nil
}

// header returns the 8-byte length and the padded JSON header of lp.
func (lp *layoutPlan) header(tensors []WriteTensor, meta Metadata) ([]byte, error) {
	b := make([]byte, 0, 8+lp.headerLen)
	err := lp.emitHeader(tensors, meta, func(p []byte) error {
		b = append(b, p...)
		return nil
	})
	return b, err
}

// headerChunk is how much of a header emitHeader gathers before passing it
// on, so that a 100 MB header is written without being held whole.
const headerChunk = 64 << 10

// emitHeader passes the 8-byte length and the padded JSON header of lp to
// out, in pieces; out must not keep them.
func (lp *layoutPlan) emitHeader(tensors []WriteTensor, meta Metadata, out func([]byte) error) error {
	b := make([]byte, 8, min(8+lp.headerLen, headerChunk+512))
	binary.LittleEndian.PutUint64(b, uint64(lp.headerLen))
	n := 0 // bytes passed on
	flush := func() error {
		n += len(b)
		err := out(b)
		b = b[:0]
		return err
	}
	b = append(b, '{')
	first := true
	if meta != nil {
		b = append(b, `"__metadata__":{`...)
		for i, e := range meta {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, e.Key)
			b = append(b, ':')
			b = appendJSONString(b, e.Value)
			if len(b) >= headerChunk {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		b = append(b, '}')
		first = false
	}
	var off int64
	for _, i := range lp.order {
		t := &tensors[i]
		if !first {
			b = append(b, ',')
		}
		first = false
		size := t.Data.Size()
		b = appendJSONString(b, t.Name)
		b = append(b, `:{"dtype":"`...)
		b = append(b, t.DType.String()...)
		b = append(b, `","shape":[`...)
		for k, d := range t.Shape {
			if k > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, d, 10)
		}
		b = append(b, `],"data_offsets":[`...)
		b = strconv.AppendInt(b, off, 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, off+size, 10)
		b = append(b, `]}`...)
		off += size
		if len(b) >= headerChunk {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	b = append(b, '}')
	for (n+len(b))%8 != 0 {
		b = append(b, ' ')
	}
	if n+len(b) != 8+lp.headerLen {
		return fmt.Errorf("tensors: internal error: a header of %d bytes was planned as %d", n+len(b)-8, lp.headerLen)
	}
	return flush()
}

// intLen is the length of strconv.FormatInt(v, 10).
func intLen(v int64) int {
	n := 1
	if v < 0 {
		n++
		if v == math.MinInt64 {
			return 20
		}
		v = -v
	}
	for v >= 10 {
		v /= 10
		n++
	}
	return n
}

// jsonStringLen is the length of what appendJSONString writes for s.
func jsonStringLen(s string) int {
	n := 2
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"', c == '\\', c == '\n', c == '\r', c == '\t', c == '\b', c == '\f':
			n += 2
		case c < 0x20:
			n += 6
		default:
			n++
		}
	}
	return n
}

// appendJSONString appends s as serde_json writes it: only '"', '\\' and
// control characters are escaped; everything else, '/' and non-ASCII
// included, is written as is.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			b = append(b, `\"`...)
		case c == '\\':
			b = append(b, `\\`...)
		case c == '\n':
			b = append(b, `\n`...)
		case c == '\r':
			b = append(b, `\r`...)
		case c == '\t':
			b = append(b, `\t`...)
		case c == '\b':
			b = append(b, `\b`...)
		case c == '\f':
			b = append(b, `\f`...)
		case c < 0x20:
			b = append(b, `\u00`...)
			b = append(b, hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
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
		return writeLayout(ctx, f, l.plan, tensors, meta, opts.Progress)
	}); err != nil {
		return nil, &PathError{Path: path, Err: err}
	}
	return l, nil
}

// coalesceMax bounds a run of tensors copied as one byte range, so that
// progress is still reported every few megabytes.
const coalesceMax = 16 << 20

// smallWrites is the buffer for the output of sources that are not byte
// ranges of a file (converters, bytes): a million tiny converted tensors
// are then a few hundred writes, not a million.
const smallWrites = 256 << 10

// writeLayout writes header and then tensors in order to f, which must end
// up size bytes long, asking the kernel to start writing to disk as it goes.
// Tensors that are byte ranges of one file, one after the other there as
// here, are copied as one range.
func writeLayout(ctx context.Context, f *os.File, lp *layoutPlan, tensors []WriteTensor, meta Metadata, progress func(done, total int64)) error {
	buf := bufio.NewWriterSize(f, smallWrites)
	if err := lp.emitHeader(tensors, meta, func(p []byte) error {
		_, err := buf.Write(p)
		return err
	}); err != nil {
		return err
	}
	order, size := lp.order, lp.size
	done := 8 + int64(lp.headerLen)
	flushed := int64(0)
	for k := 0; k < len(order); {
		if err := ctx.Err(); err != nil {
			return err
		}
		t := &tensors[order[k]]
		next := k + 1
		var err error
		if run, ok := t.Data.(rangeSource); ok {
			for ; next < len(order); next++ {
				r, ok := tensors[order[next]].Data.(rangeSource)
				if !ok || !sameFile(r.r, run.r) || r.off != run.off+run.n || run.n+r.n > coalesceMax {
					break
				}
				run.n += r.n
			}
			if err = buf.Flush(); err == nil {
				err = run.CopyTo(ctx, f)
			}
		} else {
			err = t.Data.CopyTo(ctx, buf)
		}
		if err != nil {
			return fmt.Errorf("tensor %q: %w", failedTensor(f, buf, done, tensors, order[k:next]), err)
		}
		for _, i := range order[k:next] {
			done += tensors[i].Data.Size()
			if done-flushed >= writebackChunk {
				if err := buf.Flush(); err != nil {
					return err
				}
				startWriteback(f, flushed, done-flushed)
				flushed = done
			}
			if progress != nil {
				progress(done, size)
			}
		}
		k = next
	}
	if err := buf.Flush(); err != nil {
		return err
	}
	// A source that wrote more or fewer bytes than it declared would
	// shift every later tensor: check before the file gets its name.
	end, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return err
	}
	if end != size {
		return fmt.Errorf("wrote %d bytes, expected %d: a tensor source wrote the wrong length", end, size)
	}
	return nil
}

// sameFile reports two readers that are the same open file. Only files
// are compared: another ReaderAt might not be comparable.
func sameFile(a, b io.ReaderAt) bool {
	fa, ok := a.(*os.File)
	if !ok {
		return false
	}
	fb, ok := b.(*os.File)
	return ok && fa == fb
}

// failedTensor names the tensor of a run whose copy failed: the one the
// bytes written so far end in. done is the file's length before the run.
func failedTensor(f *os.File, buf *bufio.Writer, done int64, tensors []WriteTensor, run []int32) string {
	at, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return tensors[run[0]].Name
	}
	at += int64(buf.Buffered())
	for _, i := range run {
		done += tensors[i].Data.Size()
		if at < done {
			return tensors[i].Name
		}
	}
	return tensors[run[len(run)-1]].Name
}
