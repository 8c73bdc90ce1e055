package convert

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"modelpub/core/pipeline"
	"modelpub/core/tensors"
)

// Verify proves that the Diffusers folder p holds exactly the checkpoint c
// converted by plan: for each component, its main weights (and each fp16
// or bf16 variant present, and the plan's variant, which must be) have
// exactly the planned tensor names, dtypes and shapes, and every tensor's
// bytes equal the checkpoint's bytes it maps from, or their exact
// round-to-nearest-even conversion where the dtype differs. Both files are
// re-read, streamed in chunks. Findings go in the report (codes
// missing-component, missing-weights, missing-tensor, unexpected-tensor,
// tensor-type, tensor-data, unexpected-variant); an error is returned only
// when the check cannot run.
func Verify(ctx context.Context, c *Checkpoint, plan *Plan, p *pipeline.Pipeline, progress func(done, total int64)) (*pipeline.Report, error) {
	v := &verifier{c: c, plan: plan, p: p, progress: progress, files: map[string]*tensors.File{},
		r: &pipeline.Report{Problems: []pipeline.Finding{}, Warnings: []pipeline.Finding{}}}
	defer v.close()
	return v.run(ctx)
}

// VerifyFolder is Verify for a folder converted earlier from the checkpoint
// at path (what "modelpub validate DIR --against CHECKPOINT" needs): the
// type is detected, or t when not empty. The folder's main weights may have
// been converted (convert --dtype): floating-point tensors whose dtype
// differs from the checkpoint's must then be the exact conversion.
func VerifyFolder(ctx context.Context, path string, p *pipeline.Pipeline, t Type, progress func(done, total int64)) (*pipeline.Report, error) {
	c, err := OpenCheckpoint(path)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var d *Detection
	if t == "" {
		d, err = Detect(c)
	} else {
		d, err = DetectAs(c, t)
	}
	if err != nil {
		return nil, err
	}
	// A type without embedded configs is checked against the folder's own
	// (what the conversion read from the Hub, as written).
	var cfg fs.FS
	if NeedsConfigs(d.Type) {
		cfg = os.DirFS(p.Dir)
	}
	plan, err := BuildWith(c, d, 0, "", cfg)
	if err != nil {
		return nil, err
	}
	v := &verifier{c: c, plan: plan, p: p, progress: progress, files: map[string]*tensors.File{}, anyDType: true,
		r: &pipeline.Report{Problems: []pipeline.Finding{}, Warnings: []pipeline.Finding{}}}
	defer v.close()
	return v.run(ctx)
}

type verifier struct {
	c        *Checkpoint
	plan     *Plan
	p        *pipeline.Pipeline
	progress func(done, total int64)
	// anyDType accepts main weights in any float dtype the checkpoint's
	// converts to exactly.
	anyDType    bool
	r           *pipeline.Report
	files       map[string]*tensors.File
	done, total int64
}

func (v *verifier) close() {
	for _, f := range v.files {
		f.Close()
	}
}

func (v *verifier) problem(code, path, format string, a ...any) {
	v.r.Problems = append(v.r.Problems, pipeline.Finding{Code: code, Path: path, Message: fmt.Sprintf(format, a...)})
}

type setCheck struct {
	cp *ComponentPlan
	w  *pipeline.WeightSet
	to tensors.DType // the variant's dtype; 0 for the main weights
}

func (v *verifier) run(ctx context.Context) (*pipeline.Report, error) {
	var checks []setCheck
	for _, cp := range v.plan.Components {
		comp := v.p.Component(cp.Dir)
		if comp == nil || comp.Missing || comp.Null {
			v.problem("missing-component", cp.Name, "%s: the component is missing", cp.Name)
			continue
		}
		main := comp.WeightSet("", "safetensors")
		if main == nil {
			v.problem("missing-weights", cp.Name, "%s: no safetensors main weights", cp.Name)
		} else {
			checks = append(checks, setCheck{cp, main, 0})
		}
		if v.plan.Variant != "" && comp.WeightSet(v.plan.Variant, "safetensors") == nil {
			v.problem("missing-weights", cp.Name, "%s: no %s variant", cp.Name, v.plan.Variant)
		}
		for _, w := range comp.Weights {
			if w == main {
				continue
			}
			to, ok := variantDTypes[w.Variant]
			if !ok || w.Format != "safetensors" || w != comp.WeightSet(w.Variant, "safetensors") {
				v.problem("unexpected-variant", cp.Name, "%s: weights %s (variant %q, %s) are not part of the conversion", cp.Name, tensors.WeightsFileName(w.Base, w.Variant), w.Variant, w.Format)
				continue
			}
			checks = append(checks, setCheck{cp, w, to})
		}
	}
	for _, ch := range checks {
		for _, t := range ch.w.Tensors {
			v.total += t.Size()
		}
	}
	for _, ch := range checks {
		if ch.w.Err != nil {
			v.problem("unreadable-weights", ch.cp.Name, "%s: %v", ch.cp.Name, ch.w.Err)
			continue
		}
		if err := v.compareSet(ctx, ch); err != nil {
			return nil, err
		}
	}
	return v.r, nil
}

func (v *verifier) compareSet(ctx context.Context, ch setCheck) error {
	cp := ch.cp
	label := cp.Name
	if ch.w.Variant != "" {
		label += " variant " + ch.w.Variant
	}
	got := make(map[string]pipeline.Tensor, len(ch.w.Tensors))
	for _, t := range ch.w.Tensors {
		got[t.Name] = t
	}
	planned := make(map[string]bool, len(cp.Tensors))
	for _, pt := range cp.Tensors {
		planned[pt.Name] = true
	}
	for _, t := range ch.w.Tensors {
		if !planned[t.Name] {
			v.problem("unexpected-tensor", cp.Name, "%s: tensor %q is not part of the conversion", label, t.Name)
		}
	}
	for _, pt := range cp.Tensors {
		if err := ctx.Err(); err != nil {
			return err
		}
		dt, ok := got[pt.Name]
		if !ok {
			v.problem("missing-tensor", cp.Name, "%s: tensor %q (from %s) is missing", label, pt.Name, pt.Source)
			continue
		}
		want := pt.DType
		switch {
		case ch.to != 0:
			want = variantDType(pt.SourceDType, ch.to)
		case v.anyDType && convertible(pt.SourceDType) && convertible(dt.DType):
			if canConvert(pt.SourceDType, dt.DType) {
				want = dt.DType
			}
		}
		if dt.DType != want || !slices.Equal(dt.Shape, pt.Shape) {
			v.problem("tensor-type", cp.Name, "%s: tensor %q is %s %v, expected %s %v (from %s)", label, pt.Name, dt.DType, dt.Shape, want, pt.Shape, pt.Source)
			continue
		}
		src, err := v.c.planned(pt)
		if err != nil {
			return err
		}
		converted := want != pt.SourceDType
		if converted {
			cv, err := convertSource(src, pt.SourceDType, want)
			if err != nil {
				return fmt.Errorf("%s: %w", pt.Source, err)
			}
			src = cv
		}
		f, err := v.open(filepath.Join(v.p.Dir, cp.Dir, dt.File))
		if err != nil {
			return err
		}
		cw := &compareWriter{r: f, off: f.Header.DataStart + dt.Begin, end: f.Header.DataStart + dt.End, mismatch: -1}
		if err := src.CopyTo(ctx, cw); err != nil && !errors.Is(err, errMismatch) {
			return fmt.Errorf("comparing %s with %s: %w", pt.Name, pt.Source, err)
		}
		if cw.mismatch < 0 && cw.off != cw.end {
			cw.mismatch = cw.pos
		}
		if cw.mismatch >= 0 {
			what := "differs from"
			if converted {
				what = "is not the exact " + want.String() + " conversion of"
			}
			v.problem("tensor-data", filepath.ToSlash(filepath.Join(cp.Dir, dt.File)), "%s: tensor %q %s %s (first difference at byte %d of the tensor)",
				label, pt.Name, what, pt.Source, cw.mismatch)
		}
		v.r.Tensors++
		v.r.Bytes += dt.Size()
		v.done += dt.Size()
		if v.progress != nil {
			v.progress(v.done, v.total)
		}
	}
	return nil
}

func (v *verifier) open(path string) (*tensors.File, error) {
	if f := v.files[path]; f != nil {
		return f, nil
	}
	f, err := tensors.Open(path)
	if err != nil {
		return nil, err
	}
	v.files[path] = f
	return f, nil
}

// errMismatch stops a comparison at the first difference.
var errMismatch = errors.New("tensor bytes differ")

// compareWriter compares what is written to it with the bytes of r from
// off to end, and records the position of the first difference.
type compareWriter struct {
	r        io.ReaderAt
	off, end int64
	pos      int64
	mismatch int64
	buf      []byte
}

func (w *compareWriter) Write(p []byte) (int, error) {
	if w.off+int64(len(p)) > w.end {
		w.mismatch = w.pos + (w.end - w.off)
		return 0, errMismatch
	}
	if len(w.buf) < len(p) {
		w.buf = make([]byte, len(p))
	}
	b := w.buf[:len(p)]
	if n, err := w.r.ReadAt(b, w.off); n < len(b) {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, err
	}
	if !bytes.Equal(b, p) {
		for i := range p {
			if b[i] != p[i] {
				w.mismatch = w.pos + int64(i)
				break
			}
		}
		return 0, errMismatch
	}
	w.off += int64(len(p))
	w.pos += int64(len(p))
	return len(p), nil
}
