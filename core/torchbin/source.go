package torchbin

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"

	"modelpub/core/tensors"
)

// Source streams the tensor's bytes in row-major order, as safetensors
// stores them: a byte-range copy when the view is contiguous, a chunked
// gather otherwise. fp16 and bf16 bits are copied unchanged. The source
// reads the checkpoint file, so it must be used before Close.
func (c *Checkpoint) Source(t Tensor) tensors.Source {
	es := int64(t.DType.Bits() / 8)
	loc, ok := c.storages[t.StorageKey]
	if !ok {
		return errSource{n: t.ByteSize(), err: fmt.Errorf("%w: tensor %q: no storage %q", ErrCorrupt, t.Name, t.StorageKey)}
	}
	if loc.dtype != t.DType || len(t.Shape) != len(t.Strides) {
		return errSource{n: t.ByteSize(), err: fmt.Errorf("%w: tensor %q does not match its storage %q", ErrCorrupt, t.Name, t.StorageKey)}
	}
	n, err := checkView(t.Shape, t.Strides, t.Offset, loc.numel)
	if err != nil {
		return errSource{n: t.ByteSize(), err: fmt.Errorf("%w: tensor %q: %v", ErrCorrupt, t.Name, err)}
	}
	if n == 0 {
		return tensors.Bytes(nil)
	}
	if isContiguous(t.Shape, t.Strides) {
		return tensors.Range(c.f, loc.off+t.Offset*es, n*es)
	}
	shape, strides := collapse(t.Shape, t.Strides)
	return &gather{r: c.f, base: loc.off + t.Offset*es, es: es, n: n, shape: shape, strides: strides}
}

type errSource struct {
	n   int64
	err error
}

func (s errSource) Size() int64                             { return s.n }
func (s errSource) CopyTo(context.Context, io.Writer) error { return s.err }

// collapse drops size-1 dimensions and merges dimensions that are
// contiguous with each other, so [4,1,3] with strides [3,3,1] becomes [12]
// with [1]. It keeps the element order.
func collapse(shape, strides []int64) ([]int64, []int64) {
	var sh, st []int64
	for i, d := range shape {
		if d == 1 {
			continue
		}
		if k := len(sh) - 1; k >= 0 && st[k] == strides[i]*d {
			sh[k] *= d
			st[k] = strides[i]
			continue
		}
		sh = append(sh, d)
		st = append(st, strides[i])
	}
	if len(sh) == 0 {
		return []int64{1}, []int64{1}
	}
	return sh, st
}

// Gather tuning: how many output elements one step handles, the largest
// read, and how far apart two needed pieces may be and still be read as
// one. Memory per CopyTo: about 8+4+8 bytes per chunk element plus the
// window, ~9 MB, whatever the tensor's size.
const (
	gatherChunk  = 1 << 18
	gatherWindow = 4 << 20
	gatherGap    = 4 << 10
)

// gather is the Source of a non-contiguous view: the output is produced in
// chunks of consecutive elements; for each chunk the source offsets are
// computed, and the storage is read either as the one span that covers
// them (when it fits the window) or as runs in offset order.
type gather struct {
	r              io.ReaderAt
	base, es, n    int64
	shape, strides []int64
}

func (g *gather) Size() int64 { return g.n * g.es }

func (g *gather) CopyTo(ctx context.Context, w io.Writer) error {
	chunk := min(g.n, gatherChunk)
	nd := len(g.shape)
	// When whole rows of the outermost dimension fit a chunk, chunks are
	// boxes of rows, and visiting a box in order of decreasing stride gives
	// the source offsets sorted for any non-overlapping view (transposes,
	// permutations, slices), so no sort is needed.
	inner := g.n / g.shape[0]
	boxes := nd >= 2 && inner <= gatherChunk
	if boxes {
		chunk = max(1, gatherChunk/inner) * inner
		chunk = min(chunk, g.n)
	}
	offs := make([]int64, chunk) // element offsets from base
	out := make([]byte, chunk*g.es)
	win := make([]byte, min(gatherWindow, max(g.es, g.maxSpan())))
	var perm []int32
	idx := make([]int64, nd)
	cur := int64(0)
	for done := int64(0); done < g.n; {
		if err := ctx.Err(); err != nil {
			return err
		}
		k := min(chunk, g.n-done)
		sorted := true
		for i := int64(0); i < k; i++ {
			offs[i] = cur
			if i > 0 && cur < offs[i-1] {
				sorted = false
			}
			for d := nd - 1; d >= 0; d-- {
				idx[d]++
				cur += g.strides[d]
				if idx[d] < g.shape[d] {
					break
				}
				cur -= g.strides[d] * g.shape[d]
				idx[d] = 0
			}
		}
		o := offs[:k]
		lo, hi := slices.Min(o), slices.Max(o)
		if (hi-lo+1)*g.es <= int64(len(win)) {
			span := win[:(hi-lo+1)*g.es]
			if err := g.read(span, lo); err != nil {
				return err
			}
			for i, off := range o {
				copy(out[int64(i)*g.es:], span[(off-lo)*g.es:(off-lo+1)*g.es])
			}
		} else {
			if cap(perm) < int(k) {
				perm = make([]int32, k)
			}
			p := perm[:k]
			if boxes && !sorted {
				sorted = g.boxOrder(p, o)
			} else {
				for i := range p {
					p[i] = int32(i)
				}
			}
			if !sorted {
				slices.SortFunc(p, func(a, b int32) int {
					return cmp.Compare(o[a], o[b])
				})
			}
			if err := g.readRuns(o, p, win, out); err != nil {
				return err
			}
		}
		if _, err := w.Write(out[:k*g.es]); err != nil {
			return err
		}
		done += k
	}
	return nil
}

// boxOrder fills p with the positions of a box of whole outer rows (k
// elements), visited in order of decreasing stride, and reports whether
// that visits o in non-decreasing order.
func (g *gather) boxOrder(p []int32, o []int64) bool {
	nd := len(g.shape)
	ext := slices.Clone(g.shape)
	ext[0] = int64(len(p)) / (g.n / g.shape[0])
	ostr := make([]int64, nd) // row-major strides of the output box
	ostr[nd-1] = 1
	for d := nd - 2; d >= 0; d-- {
		ostr[d] = ostr[d+1] * ext[d+1]
	}
	ord := make([]int, nd)
	for d := range ord {
		ord[d] = d
	}
	slices.SortStableFunc(ord, func(a, b int) int { return cmp.Compare(g.strides[b], g.strides[a]) })
	idx := make([]int64, nd)
	pos := int64(0)
	for i := range p {
		p[i] = int32(pos)
		for q := nd - 1; q >= 0; q-- {
			d := ord[q]
			idx[d]++
			pos += ostr[d]
			if idx[d] < ext[d] {
				break
			}
			pos -= ostr[d] * ext[d]
			idx[d] = 0
		}
	}
	for i := 1; i < len(p); i++ {
		if o[p[i]] < o[p[i-1]] {
			for j := range p {
				p[j] = int32(j)
			}
			return false
		}
	}
	return true
}

// maxSpan is the number of bytes between the view's first and last element.
func (g *gather) maxSpan() int64 {
	s := int64(1)
	for i, d := range g.shape {
		s += (d - 1) * g.strides[i]
	}
	return s * g.es
}

// readRuns reads the elements o[p[0]], o[p[1]], ... (p orders o by
// offset), grouping close offsets into one read of at most len(win) bytes.
func (g *gather) readRuns(o []int64, p []int32, win, out []byte) error {
	maxElems := int64(len(win)) / g.es
	for i := 0; i < len(p); {
		start := o[p[i]]
		end := start // last element of the run
		j := i + 1
		for j < len(p) {
			next := o[p[j]]
			if (next-end-1)*g.es > gatherGap || next-start+1 > maxElems {
				break
			}
			end = next
			j++
		}
		span := win[:(end-start+1)*g.es]
		if err := g.read(span, start); err != nil {
			return err
		}
		for _, q := range p[i:j] {
			off := o[q] - start
			copy(out[int64(q)*g.es:], span[off*g.es:(off+1)*g.es])
		}
		i = j
	}
	return nil
}

func (g *gather) read(p []byte, elem int64) error {
	at := g.base + elem*g.es
	m, err := g.r.ReadAt(p, at)
	if m < len(p) {
		if err == nil || err == io.EOF {
			err = tensors.ErrShortSource
		}
		return fmt.Errorf("reading %d bytes at offset %d: %w", len(p), at, err)
	}
	return nil
}
