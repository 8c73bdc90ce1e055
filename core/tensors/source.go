package tensors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// A Source produces the bytes of one tensor for the writer, so tensors are
// streamed from where they are (a byte range of another file, a converter)
// and never held whole in memory.
type Source interface {
	// Size is the exact number of bytes CopyTo writes.
	Size() int64
	// CopyTo writes the tensor's bytes to w, checking ctx between chunks.
	CopyTo(ctx context.Context, w io.Writer) error
}

// ErrShortSource reports a source that ended before its declared size: the
// file it reads was truncated or changed after its header was read.
var ErrShortSource = errors.New("source ended before the tensor's last byte")

// chunkSize is the unit of streaming: big enough for full disk throughput,
// small enough to keep memory flat and cancellation prompt.
const chunkSize = 1 << 20

var chunkPool = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

// Range is a Source reading n bytes of r starting at off, for example one
// tensor of an open safetensors file.
func Range(r io.ReaderAt, off, n int64) Source { return rangeSource{r: r, off: off, n: n} }

type rangeSource struct {
	r      io.ReaderAt
	off, n int64
}

func (s rangeSource) Size() int64 { return s.n }

func (s rangeSource) CopyTo(ctx context.Context, w io.Writer) error {
	if src, ok := s.r.(*os.File); ok {
		if dst, ok := w.(*os.File); ok {
			done, err := copyFileRange(ctx, dst, src, s.off, s.n)
			if err != errNoCopyFileRange {
				return err
			}
			s.off, s.n = s.off+done, s.n-done
		}
	}
	_, err := streamRange(ctx, w, s.r, s.off, s.n)
	return err
}

// streamRange copies n bytes of r at off to w through a pooled buffer and
// returns how many it wrote. Like the kernel copy it writes every byte the
// source has before saying it ended, so the writer's position tells which
// tensor was cut.
func streamRange(ctx context.Context, w io.Writer, r io.ReaderAt, off, n int64) (int64, error) {
	bp := chunkPool.Get().(*[]byte)
	defer chunkPool.Put(bp)
	buf := *bp
	var done int64
	for done < n {
		if err := ctx.Err(); err != nil {
			return done, err
		}
		k := min(int64(len(buf)), n-done)
		m, rerr := r.ReadAt(buf[:k], off+done)
		if m > 0 {
			if _, err := w.Write(buf[:m]); err != nil {
				return done, err
			}
			done += int64(m)
		}
		if int64(m) < k {
			if rerr == nil || rerr == io.EOF {
				rerr = ErrShortSource
			}
			return done, fmt.Errorf("copying %d bytes at offset %d: %w", n-done, off+done, rerr)
		}
	}
	return done, nil
}

// Bytes is a Source holding its data in memory; for small tensors and tests.
func Bytes(b []byte) Source { return bytesSource(b) }

type bytesSource []byte

func (b bytesSource) Size() int64 { return int64(len(b)) }

func (b bytesSource) CopyTo(ctx context.Context, w io.Writer) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err := w.Write(b)
	return err
}

// TensorSource is the Source of tensor t of the open file f.
func (f *File) TensorSource(t TensorInfo) Source {
	return Range(f.f, f.Header.DataStart+t.Begin, t.Size())
}

// Converted is a Source that streams another source's elements converted to
// a different dtype, and counts the values the conversion could not keep.
type Converted struct {
	src      Source
	fn       ConvertFunc
	from, to DType
	stats    ConvStats
}

// ErrNoConversion reports a dtype pair no kernel converts.
var ErrNoConversion = errors.New("no conversion between these dtypes")

// Convert returns a Source streaming src, whose elements are of dtype from,
// as elements of dtype to.
func Convert(src Source, from, to DType) (*Converted, error) {
	fn, ok := Converter(from, to)
	if !ok {
		return nil, fmt.Errorf("%w: %s to %s", ErrNoConversion, from, to)
	}
	return &Converted{src: src, fn: fn, from: from, to: to}, nil
}

// Size is the converted size.
func (c *Converted) Size() int64 {
	return c.src.Size() / int64(c.from.Bits()/8) * int64(c.to.Bits()/8)
}

// Stats reports overflows and underflows of the last CopyTo.
func (c *Converted) Stats() ConvStats { return c.stats }

// CopyTo writes the converted elements to w.
func (c *Converted) CopyTo(ctx context.Context, w io.Writer) error {
	in, out := int(c.from.Bits()/8), int(c.to.Bits()/8)
	if c.src.Size()%int64(in) != 0 {
		return fmt.Errorf("%d bytes is not a whole number of %s elements", c.src.Size(), c.from)
	}
	bp := chunkPool.Get().(*[]byte)
	defer chunkPool.Put(bp)
	cw := &convertWriter{w: w, fn: c.fn, in: in, out: out, buf: *bp}
	c.stats = ConvStats{}
	err := c.src.CopyTo(ctx, cw)
	c.stats = cw.stats
	if err != nil {
		return err
	}
	if cw.ncarry != 0 {
		return fmt.Errorf("source ended inside a %s element", c.from)
	}
	return nil
}

// convertWriter converts whatever byte chunks it is given, carrying a
// partial element over to the next Write.
type convertWriter struct {
	w       io.Writer
	fn      ConvertFunc
	in, out int
	buf     []byte // output buffer
	carry   [8]byte
	ncarry  int
	stats   ConvStats
}

func (cw *convertWriter) Write(p []byte) (int, error) {
	n := len(p)
	if cw.ncarry > 0 {
		k := copy(cw.carry[cw.ncarry:cw.in], p)
		cw.ncarry += k
		p = p[k:]
		if cw.ncarry < cw.in {
			return n, nil
		}
		cw.stats.Add(cw.fn(cw.buf[:cw.out], cw.carry[:cw.in]))
		if _, err := cw.w.Write(cw.buf[:cw.out]); err != nil {
			return 0, err
		}
		cw.ncarry = 0
	}
	maxIn := len(cw.buf) / cw.out * cw.in
	for len(p) >= cw.in {
		k := min(len(p)/cw.in*cw.in, maxIn)
		o := k / cw.in * cw.out
		cw.stats.Add(cw.fn(cw.buf[:o], p[:k]))
		if _, err := cw.w.Write(cw.buf[:o]); err != nil {
			return 0, err
		}
		p = p[k:]
	}
	cw.ncarry = copy(cw.carry[:], p)
	return n, nil
}

// errNoCopyFileRange makes rangeSource fall back to reading and writing.
var errNoCopyFileRange = errors.New("copy_file_range not available")
