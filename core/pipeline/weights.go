package pipeline

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"

	"modelpub/core/tensors"
	"modelpub/core/torchbin"
)

// setReader opens the files of one weight set, safetensors or PyTorch
// .bin, as they are needed, and gives each tensor's bytes as a Source.
type setReader struct {
	dir    string
	format string
	held   *heldFiles // the pipeline's shared handles while it is held, else nil
	st     map[string]*tensors.File
	pt     map[string]*torchbin.Checkpoint
	// windowed reads safetensors files through a windowReader, for
	// readers that go through the tensors in file order by reading (a
	// comparison, a conversion) rather than by kernel copies.
	windowed bool
	win      map[string]*windowReader
}

func newSetReader(dir, format string) *setReader {
	return &setReader{dir: dir, format: format, st: map[string]*tensors.File{}, pt: map[string]*torchbin.Checkpoint{}}
}

// source streams tensor t of the set.
func (r *setReader) source(t Tensor) (tensors.Source, error) {
	if r.format == "bin" {
		c := r.pt[t.File]
		if c == nil {
			var err error
			if c, err = torchbin.Open(filepath.Join(r.dir, t.File)); err != nil {
				return nil, err
			}
			r.pt[t.File] = c
		}
		bt, ok := c.Tensor(t.Name)
		if !ok {
			return nil, fmt.Errorf("%s: tensor %q is gone", filepath.Join(r.dir, t.File), t.Name)
		}
		return c.Source(bt), nil
	}
	f := r.st[t.File]
	if f == nil {
		var err error
		path := filepath.Join(r.dir, t.File)
		if r.held != nil {
			f, err = r.held.open(path)
		} else {
			f, err = tensors.OpenData(path)
		}
		if err != nil {
			return nil, err
		}
		r.st[t.File] = f
	}
	if !r.windowed {
		return f.TensorSource(t.TensorInfo), nil
	}
	w := r.win[t.File]
	if w == nil {
		if r.win == nil {
			r.win = map[string]*windowReader{}
		}
		w = &windowReader{r: f}
		r.win[t.File] = w
	}
	return tensors.Range(w, f.Header.DataStart+t.Begin, t.Size()), nil
}

// heldFiles are the safetensors files of a pipeline opened once and
// shared by every reader while the pipeline is held (Hold): a publish
// opens each source file for its header (Open) and once more for its
// data, whatever reads it (the save, the verification).
type heldFiles struct {
	mu    sync.Mutex
	files map[string]*tensors.File
}

func (h *heldFiles) open(path string) (*tensors.File, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if f := h.files[path]; f != nil {
		return f, nil
	}
	f, err := tensors.OpenData(path)
	if err != nil {
		return nil, err
	}
	h.files[path] = f
	return f, nil
}

// Hold returns a view of p whose readers of safetensors weights share one
// handle per file, opened at the first read and kept until release is
// called (once nothing reads the view any more): a file is opened once
// however many passes read it (a publish's save and check), and every pass
// reads the same file even if the folder's entry is replaced meanwhile.
// p itself, which other readers may use at the same time, is unchanged.
func (p *Pipeline) Hold() (view *Pipeline, release func()) {
	h := &heldFiles{files: map[string]*tensors.File{}}
	v := *p
	v.held = h
	return &v, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, f := range h.files {
			f.Close()
		}
		h.files = map[string]*tensors.File{}
	}
}

// setReader returns a reader of the weight set in component folder dir
// (relative to p's folder), sharing p's handles while p is held.
func (p *Pipeline) setReader(component, format string) *setReader {
	r := newSetReader(filepath.Join(p.Dir, component), format)
	r.held = p.held
	return r
}

// windowSize is how much of a file a windowReader keeps.
const windowSize = 1 << 20

// windowReader reads r through a window of windowSize bytes, so that the
// tensors of a file with a million tiny ones cost a read each megabyte
// rather than a system call each. Reads of half a window or more go to r
// directly.
type windowReader struct {
	r     io.ReaderAt
	buf   []byte
	start int64 // the file offset of buf[0]
}

func (w *windowReader) ReadAt(p []byte, off int64) (int, error) {
	if len(p) >= windowSize/2 {
		return w.r.ReadAt(p, off)
	}
	if off < w.start || off+int64(len(p)) > w.start+int64(len(w.buf)) {
		if cap(w.buf) < windowSize {
			w.buf = make([]byte, windowSize)
		}
		n, err := w.r.ReadAt(w.buf[:windowSize], off)
		w.start, w.buf = off, w.buf[:n]
		if n < len(p) {
			if err == nil {
				err = io.EOF
			}
			return copy(p, w.buf), err
		}
	}
	return copy(p, w.buf[off-w.start:]), nil
}

func (r *setReader) Close() {
	if r.held == nil {
		for _, f := range r.st {
			f.Close()
		}
	}
	for _, c := range r.pt {
		c.Close()
	}
}

// readBinSet lists the tensors of a .bin weight set from its pickles,
// reading no storage bytes.
func (p *Pipeline) readBinSet(cdir, prefix string, set *WeightSet) {
	set.DTypeBytes = map[string]int64{}
	set.DataBytes = 0
	for _, name := range set.Files {
		c, err := torchbin.Open(filepath.Join(cdir, name))
		if err != nil {
			set.Err = err
			return
		}
		for _, bt := range c.Tensors {
			n := bt.ByteSize()
			set.Tensors = append(set.Tensors, Tensor{
				TensorInfo: tensors.TensorInfo{Name: bt.Name, DType: bt.DType, Shape: bt.Shape, Begin: 0, End: n},
				File:       name,
			})
			set.DataBytes += n
			set.Parameters += bt.NumElements()
			set.DTypeBytes[bt.DType.String()] += n
			if len(bt.SharesStorageWith) > 0 {
				set.Shared++
			}
		}
		if len(c.Skipped) > 0 {
			names := strings.Join(c.Skipped[:min(len(c.Skipped), 5)], ", ")
			if len(c.Skipped) > 5 {
				names += fmt.Sprintf(", … %d in all", len(c.Skipped))
			}
			p.warn("bin-non-tensors", prefix+name, "%s holds entries that are not tensors (%s); they are not carried into safetensors", prefix+name, names)
		}
		c.Close()
	}
	if set.Shared > 0 {
		p.warn("bin-shared-storage", prefix+set.Files[0], "%s: %d tensors share storage with others (tied weights or views); each gets its own copy in safetensors",
			prefix+set.Files[0], set.Shared)
	}
}
