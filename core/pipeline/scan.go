package pipeline

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"

	"modelpub/core/tensors"
)

// VariantScan is what converting a pipeline's main weights to a precision
// variant would lose, found by ScanVariant.
type VariantScan struct {
	Variant string
	// SizeBefore and SizeAfter are the size of the whole output of Save
	// without and with the variant (SavePlan.Total, default shard sizes).
	SizeBefore, SizeAfter int64
	// Tensors lists the tensors that lose values, worst first: most
	// overflows, then most underflows.
	Tensors []TensorLoss
	// Overflow and Underflow are the totals over every tensor.
	Overflow, Underflow int64
	// Values counts the elements converted; Scanned the tensors.
	Values  int64
	Scanned int
}

// TensorLoss is one tensor whose conversion overflows values to ±Inf or
// underflows them to ±0: the numbers Save reports as a LossyTensor.
type TensorLoss struct {
	Component, Tensor string
	DType             tensors.DType // before conversion
	tensors.ConvStats
	Values int64 // elements of the tensor
}

// ScanVariant converts every tensor the variant would convert, as Save
// does, into nothing, and counts the values each conversion loses. It
// streams each tensor through the conversion kernel a chunk at a time, so
// memory stays flat whatever the model's size; nothing is written.
// progress, if not nil, is called on the calling goroutine with the source
// bytes read so far and the total, about once per MiB. A cancelled ctx stops
// the scan within a chunk and returns ctx's error.
func ScanVariant(ctx context.Context, p *Pipeline, variant string, progress func(done, total int64)) (*VariantScan, error) {
	if variant == "" {
		return nil, fmt.Errorf("%w: none given", ErrUnsupportedVariant)
	}
	before, err := Plan(p, SaveOptions{})
	if err != nil {
		return nil, err
	}
	after, err := Plan(p, SaveOptions{Variant: variant})
	if err != nil {
		return nil, err
	}
	scan := &VariantScan{Variant: variant, SizeBefore: before.Total(), SizeAfter: after.Total()}
	type job struct {
		c  *Component
		sp *SetPlan
	}
	var jobs []job
	var total int64
	for i := range after.Components {
		cp := &after.Components[i]
		for k := range cp.Sets {
			if sp := &cp.Sets[k]; sp.To != 0 {
				jobs = append(jobs, job{p.Component(cp.Name), sp})
				for _, t := range sp.src.Tensors {
					if converts(t.DType, sp.To) {
						total += t.Size()
					}
				}
			}
		}
	}
	var done int64
	report := func(n int64) {
		done += n
		if progress != nil {
			progress(done, total)
		}
	}
	report(0)
	for _, j := range jobs {
		if err := scanSet(ctx, p, j.c, j.sp, scan, report); err != nil {
			return nil, err
		}
	}
	slices.SortStableFunc(scan.Tensors, func(a, b TensorLoss) int {
		if c := cmp.Compare(b.Overflow, a.Overflow); c != 0 {
			return c
		}
		return cmp.Compare(b.Underflow, a.Underflow)
	})
	return scan, nil
}

func scanSet(ctx context.Context, p *Pipeline, c *Component, sp *SetPlan, scan *VariantScan, report func(int64)) error {
	rd := newSetReader(filepath.Join(p.Dir, c.Name), sp.src.Format)
	defer rd.Close()
	for _, t := range sp.src.Tensors {
		if !converts(t.DType, sp.To) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		src, err := rd.source(t)
		if err != nil {
			return err
		}
		cv, err := tensors.Convert(countingSource{src, report}, t.DType, sp.To)
		if err != nil {
			return err
		}
		if err := cv.CopyTo(ctx, io.Discard); err != nil {
			return fmt.Errorf("%s: tensor %q: %w", displayName(c.Name), t.Name, err)
		}
		st, n := cv.Stats(), t.NumElements()
		scan.Scanned++
		scan.Values += n
		scan.Overflow += st.Overflow
		scan.Underflow += st.Underflow
		if st.Overflow > 0 || st.Underflow > 0 {
			scan.Tensors = append(scan.Tensors, TensorLoss{Component: c.Name, Tensor: t.Name, DType: t.DType, ConvStats: st, Values: n})
		}
	}
	return nil
}

// countingSource reports the bytes its source writes.
type countingSource struct {
	tensors.Source
	report func(int64)
}

func (s countingSource) CopyTo(ctx context.Context, w io.Writer) error {
	return s.Source.CopyTo(ctx, countingWriter{w, s.report})
}

type countingWriter struct {
	w      io.Writer
	report func(int64)
}

func (w countingWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	w.report(int64(n))
	return n, err
}
