package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"slices"
	"sort"

	"modelpub/core/tensors"
)

// Finding is one result of Validate: a problem (the folder would not load,
// or differs from its source) or a warning.
type Finding struct {
	Code    string `json:"code"`
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
}

// Report is the outcome of Validate.
type Report struct {
	Problems []Finding `json:"problems"`
	Warnings []Finding `json:"warnings"`
	// Tensors and Bytes count what was compared against the source.
	Tensors int   `json:"tensors_compared"`
	Bytes   int64 `json:"bytes_compared"`
}

// OK reports a folder without problems.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

func (r *Report) problem(code, path, format string, a ...any) {
	r.Problems = append(r.Problems, Finding{code, path, fmt.Sprintf(format, a...)})
}

func (r *Report) warning(code, path, format string, a ...any) {
	r.Warnings = append(r.Warnings, Finding{code, path, fmt.Sprintf(format, a...)})
}

// ValidateOptions tune Validate.
type ValidateOptions struct {
	// Against, if set, is the source the folder was saved from: tensors
	// are compared with it, bit for bit.
	Against *Pipeline
	// Strict makes values lost by a precision variant (overflow to ±inf,
	// underflow to zero) problems rather than warnings.
	Strict bool
	// Progress, if set, is called with the bytes compared so far.
	Progress func(done, total int64)
}

// Validate checks that p loads as diffusers would load it, and with
// opts.Against that it holds the same model as its source: the same tensor
// names, shapes and dtypes, main weights bit-identical, variant tensors
// equal to the exact round-to-nearest-even conversion of the source, and
// equivalent configs. Tensors are streamed, never held in memory. An error
// is returned only when the check cannot run.
func Validate(ctx context.Context, p *Pipeline, opts ValidateOptions) (*Report, error) {
	r := &Report{Problems: []Finding{}, Warnings: []Finding{}}
	if err := validateAlone(p, r); err != nil {
		return nil, err
	}
	if opts.Against != nil {
		v := &comparer{dst: p, src: opts.Against, r: r, opts: opts}
		if err := v.run(ctx); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// validateAlone checks what from_pretrained needs of the folder itself.
func validateAlone(p *Pipeline, r *Report) error {
	if p.Index != nil {
		if _, err := p.root.ReadFile(ModelIndexFile, 0); err != nil {
			return err
		}
	}
	for _, c := range p.Components {
		if c.Null {
			continue
		}
		for _, f := range c.Files {
			if f.Kind == KindConfig || (f.Kind == KindTokenizer && filepath.Ext(f.Path) == ".json") {
				data, err := p.root.ReadFile(filepath.FromSlash(f.Path), 0)
				if err != nil {
					return err
				}
				if !json.Valid(data) {
					r.problem("invalid-config", f.Path, "%s is not valid JSON", f.Path)
				}
			}
		}
		if c.Role != RoleModel {
			continue
		}
		for _, group := range c.Ambiguous() {
			r.problem("ambiguous-layout", c.Name, "%s", describeAmbiguity(c, group))
		}
		if c.WeightSet("", "safetensors") == nil {
			r.problem("no-safetensors", c.Name, "%s has no safetensors main weights: the Hub download then falls back to .bin for the whole pipeline", displayName(c.Name))
		}
		for _, w := range c.Weights {
			if w.Err != nil {
				r.problem("unreadable-weights", c.Name, "%v", w.Err)
				continue
			}
			if w.LegacyNames {
				r.problem("legacy-variant-names", c.Name, "%s variant %s uses the deprecated file naming", displayName(c.Name), w.Variant)
			}
			if w.Format != "safetensors" {
				continue
			}
			// Open read and checked every header; it kept each file's format.
			for i, f := range w.Files {
				if v := w.Formats[i]; v != "pt" {
					rel := filepath.ToSlash(filepath.Join(c.Name, f)) // a repo path: / on every OS
					r.problem("format-metadata", rel,
						"%s has __metadata__ format %q; transformers refuses anything but pt, tf, flax or mlx", rel, v)
				}
			}
		}
	}
	return nil
}

type comparer struct {
	dst, src    *Pipeline
	r           *Report
	opts        ValidateOptions
	done, total int64
}

func (v *comparer) run(ctx context.Context) error {
	r := v.r
	if (v.src.Index == nil) != (v.dst.Index == nil) {
		r.problem("model-index", ModelIndexFile, "one folder has a model_index.json and the other has not")
	} else if v.src.Index != nil {
		if !jsonFilesEqual(v.src, v.dst, ModelIndexFile) {
			r.problem("model-index", ModelIndexFile, "model_index.json differs from the source's")
		}
	}
	for _, sc := range v.src.Components {
		if sc.Null || sc.Role != RoleModel {
			continue
		}
		if main := sc.Main(); main != nil {
			v.total += main.DataBytes
		}
	}
	for _, sc := range v.src.Components {
		if sc.Null {
			continue
		}
		dc := v.dst.Component(sc.Name)
		if dc == nil || dc.Null {
			r.problem("missing-component", sc.Name, "component %s of the source is missing", displayName(sc.Name))
			continue
		}
		for _, f := range sc.Files {
			if f.Kind == KindConfig {
				if !jsonFilesEqual(v.src, v.dst, filepath.FromSlash(f.Path)) {
					r.problem("config", f.Path, "%s differs from the source's", f.Path)
				}
			}
		}
		if sc.Role != RoleModel {
			continue
		}
		srcMain := sc.Main()
		dstMain := dc.WeightSet("", "safetensors")
		if srcMain == nil || srcMain.Err != nil || dstMain == nil || dstMain.Err != nil {
			continue // reported by the checks above, or not comparable
		}
		if err := v.compareSet(ctx, sc, srcMain, dc, dstMain, 0); err != nil {
			return err
		}
		for _, dw := range dc.Weights {
			if dw.Variant == "" || dw.Format != "safetensors" || dw.Err != nil {
				continue
			}
			sw := sc.WeightSet(dw.Variant, "")
			if sw != nil && sw.Err != nil {
				sw = nil
			}
			to, precision := variantDTypes[dw.Variant]
			switch {
			case precision && sw != nil:
				// Either regenerated from the main weights or carried over
				// from the source's own variant: one of them must match.
				conv, err := v.trial(ctx, sc, srcMain, dc, dw, to)
				if err != nil {
					return err
				}
				if len(conv.Problems) > 0 {
					carried, err := v.trial(ctx, sc, sw, dc, dw, 0)
					if err != nil {
						return err
					}
					if len(carried.Problems) == 0 {
						conv = carried
					}
				}
				v.merge(conv)
			case precision:
				if err := v.compareSet(ctx, sc, srcMain, dc, dw, to); err != nil {
					return err
				}
			case sw != nil:
				if err := v.compareSet(ctx, sc, sw, dc, dw, 0); err != nil {
					return err
				}
			default:
				r.problem("unknown-variant", dc.Name, "%s variant %s is neither in the source nor a precision variant Modelpub writes", displayName(dc.Name), dw.Variant)
			}
		}
	}
	sort.SliceStable(r.Problems, func(i, j int) bool { return r.Problems[i].Path < r.Problems[j].Path })
	return nil
}

// trial runs compareSet into a separate report.
func (v *comparer) trial(ctx context.Context, sc *Component, sw *WeightSet, dc *Component, dw *WeightSet, to tensors.DType) (*Report, error) {
	saved := v.r
	v.r = &Report{}
	defer func() { v.r = saved }()
	err := v.compareSet(ctx, sc, sw, dc, dw, to)
	return v.r, err
}

func (v *comparer) merge(o *Report) {
	v.r.Problems = append(v.r.Problems, o.Problems...)
	v.r.Warnings = append(v.r.Warnings, o.Warnings...)
	v.r.Tensors += o.Tensors
	v.r.Bytes += o.Bytes
}

// compareSet compares weight set dw of the destination with set sw of the
// source; with to != 0, dw must hold sw's floats converted to dtype to.
func (v *comparer) compareSet(ctx context.Context, sc *Component, sw *WeightSet, dc *Component, dw *WeightSet, to tensors.DType) error {
	r := v.r
	label := displayName(dc.Name)
	if dw.Variant != "" {
		label += " variant " + dw.Variant
	}
	// dst's tensors by name, as indices: a million tensors make a map of
	// ints, not of Tensor values. src's names are gathered only when some
	// of dst's are not among them, to name those.
	dstT := make(map[string]int32, len(dw.Tensors))
	for i, t := range dw.Tensors {
		dstT[t.Name] = int32(i)
	}
	matched := make([]bool, len(dw.Tensors))
	found := 0
	for _, t := range sw.Tensors {
		if i, ok := dstT[t.Name]; ok && !matched[i] {
			matched[i] = true
			found++
		}
	}
	if found != len(dstT) {
		srcT := make(map[string]struct{}, len(sw.Tensors))
		for _, t := range sw.Tensors {
			srcT[t.Name] = struct{}{}
		}
		for _, t := range dw.Tensors {
			if _, ok := srcT[t.Name]; !ok {
				r.problem("unexpected-tensor", dc.Name, "%s: tensor %q is not in the source", label, t.Name)
			}
		}
	}
	matched = nil
	srcRd := v.src.setReader(sc.Name, sw.Format)
	srcRd.windowed = true
	defer srcRd.Close()
	dstDir := filepath.Join(v.dst.Dir, dc.Name)
	files := map[string]*tensors.File{} // dst's files by bare name
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	windows := map[string]*windowReader{}
	open := func(name string) (*tensors.File, *windowReader, error) {
		if f := files[name]; f != nil {
			return f, windows[name], nil
		}
		f, err := tensors.OpenData(filepath.Join(dstDir, name))
		if err != nil {
			return nil, nil, err
		}
		files[name] = f
		windows[name] = &windowReader{r: f}
		return f, windows[name], nil
	}
	cw := &compareWriter{}
	for _, st := range sw.Tensors {
		di, ok := dstT[st.Name]
		if !ok {
			r.problem("missing-tensor", dc.Name, "%s: tensor %q of the source is missing", label, st.Name)
			continue
		}
		dt := &dw.Tensors[di]
		wantDType := st.DType
		if to != 0 && convertible(st.DType) {
			wantDType = to
		}
		if dt.DType != wantDType || !slices.Equal(dt.Shape, st.Shape) {
			r.problem("tensor-type", dc.Name, "%s: tensor %q is %s %v, expected %s %v", label, st.Name, dt.DType, dt.Shape, wantDType, st.Shape)
			continue
		}
		want, err := srcRd.source(st)
		if err != nil {
			return err
		}
		df, dr, err := open(dt.File)
		if err != nil {
			return err
		}
		var conv *tensors.Converted
		if wantDType != st.DType {
			if conv, err = tensors.Convert(want, st.DType, wantDType); err != nil {
				return err
			}
			want = conv
		}
		*cw = compareWriter{r: dr, off: df.Header.DataStart + dt.Begin, end: df.Header.DataStart + dt.End, mismatch: -1, buf: cw.buf}
		if err := want.CopyTo(ctx, cw); err != nil && err != errMismatch {
			return err
		}
		if cw.mismatch >= 0 {
			what := "is not bit-identical to the source"
			if conv != nil {
				what = "is not the exact conversion of the source"
			}
			r.problem("tensor-data", filepath.ToSlash(filepath.Join(dc.Name, dt.File)), "%s: tensor %q %s (first difference at byte %d of the tensor)",
				label, st.Name, what, cw.mismatch)
		}
		r.Tensors++
		r.Bytes += dt.Size()
		if to == 0 {
			v.done += st.Size()
			if v.opts.Progress != nil {
				v.opts.Progress(v.done, v.total)
			}
		}
		if conv != nil {
			if s := conv.Stats(); s.Overflow > 0 || s.Underflow > 0 {
				msg := fmt.Sprintf("%s: tensor %q: %d values overflowed to ±inf and %d non-zero values became zero in %s",
					label, st.Name, s.Overflow, s.Underflow, wantDType)
				if v.opts.Strict {
					r.problem("lossy-variant", dc.Name, "%s", msg)
				} else {
					r.warning("lossy-variant", dc.Name, "%s", msg)
				}
			}
		}
	}
	return nil
}

// errMismatch stops a comparison at the first difference.
var errMismatch = errors.New("tensor bytes differ")

// compareWriter compares what is written to it with bytes of r from off,
// and records the position of the first difference.
type compareWriter struct {
	r        io.ReaderAt
	off, end int64
	pos      int64
	mismatch int64
	buf      []byte
}

func (w *compareWriter) Write(p []byte) (int, error) {
	if len(w.buf) < len(p) {
		w.buf = make([]byte, len(p))
	}
	if w.off+int64(len(p)) > w.end {
		w.mismatch = w.pos
		return 0, errMismatch
	}
	b := w.buf[:len(p)]
	if _, err := w.r.ReadAt(b, w.off); err != nil && err != io.EOF {
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

// jsonFilesEqual reports that file rel of a and of b decode to the same
// JSON value.
func jsonFilesEqual(a, b *Pipeline, rel string) bool {
	da, err1 := a.root.ReadFile(rel, 0)
	db, err2 := b.root.ReadFile(rel, 0)
	if err1 != nil || err2 != nil {
		return false
	}
	var va, vb any
	if json.Unmarshal(da, &va) != nil || json.Unmarshal(db, &vb) != nil {
		return bytes.Equal(da, db)
	}
	return reflect.DeepEqual(va, vb)
}
