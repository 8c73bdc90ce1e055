package convert

import (
	"context"
	"fmt"
	"io"

	"modelpub/core/tensors"
)

// transposeBand bounds the memory of a transpose: the output is built
// this many bytes of whole rows at a time.
const transposeBand = 4 << 20

// transposeSource streams the transpose of the row-major [a, b] matrix of
// es-byte elements at off in r, as the [b, a] matrix. Output rows are built
// in bands: for a band of output rows (input columns) each input row's
// segment is read once, so memory stays within transposeBand (or one output
// row, if larger) whatever the matrix's size.
type transposeSource struct {
	r        io.ReaderAt
	off      int64
	a, b, es int64
}

func (s *transposeSource) Size() int64 { return s.a * s.b * s.es }

func (s *transposeSource) CopyTo(ctx context.Context, w io.Writer) error {
	rowOut := s.a * s.es // one output row
	k := max(1, min(s.b, transposeBand/max(rowOut, 1)))
	band := make([]byte, k*rowOut)
	seg := make([]byte, k*s.es)
	for i0 := int64(0); i0 < s.b; i0 += k {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := min(k, s.b-i0)
		for j := range s.a {
			part := seg[:n*s.es]
			if m, err := s.r.ReadAt(part, s.off+(j*s.b+i0)*s.es); int64(m) < int64(len(part)) {
				if err == nil || err == io.EOF {
					err = tensors.ErrShortSource
				}
				return fmt.Errorf("reading row %d of the matrix: %w", j, err)
			}
			for ii := range n {
				copy(band[(ii*s.a+j)*s.es:(ii*s.a+j+1)*s.es], part[ii*s.es:(ii+1)*s.es])
			}
		}
		if _, err := w.Write(band[:n*rowOut]); err != nil {
			return err
		}
	}
	return nil
}
