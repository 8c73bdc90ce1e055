package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"path/filepath"
	"slices"

	"modelpub/core/folder"
	"modelpub/core/tensors"
)

// ErrNotAsPlanned is wrapped by every *VerifyError.
var ErrNotAsPlanned = errors.New("the saved weights are not what the plan and the source say")

// VerifyError is a difference VerifySet found: in which file, at which
// tensor (when one is concerned), and what.
type VerifyError struct {
	File   string // relative to the output folder, "/"-separated
	Tensor string
	Reason string
}

func (e *VerifyError) Error() string {
	if e.Tensor != "" {
		return fmt.Sprintf("%s: tensor %q: %s", e.File, e.Tensor, e.Reason)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Reason)
}

func (e *VerifyError) Unwrap() error { return ErrNotAsPlanned }

// VerifiedFile is a file of a weight set that VerifySet read and found as
// planned, with what was learnt in that one read.
type VerifiedFile struct {
	Path   string // relative to the output folder, "/"-separated
	Size   int64
	SHA256 string // of the whole file
	Sample []byte // its first ≤512 bytes
	// Content is the whole file for an index (small, and about to be
	// uploaded: it need not be read again); nil for weights files.
	Content []byte
}

// VerifySet checks weight set sp of component cp as Save wrote it into dir
// from p (the plan must come from Plan, which lists each file's tensors).
// Each file is read once, from its first byte to its last, and hashed in
// that read: its header must be the planned one (tensor names, dtypes,
// shapes and offsets; the planned __metadata__), and each tensor's bytes
// the source's, converted as planned (read from the source through p's
// held handles when p is held). The index must map every tensor to its
// planned file. A difference is a *VerifyError (ErrNotAsPlanned); other
// errors are failures to read. progress gets the bytes of the set read.
func VerifySet(ctx context.Context, p *Pipeline, dir string, cp *ComponentPlan, sp *SetPlan, progress func(int64)) ([]VerifiedFile, error) {
	if sp.src == nil || len(sp.Files) > 0 && sp.Files[0].Tensors == nil && len(sp.src.Tensors) > 0 {
		return nil, errors.New("pipeline: VerifySet needs a plan made by Plan")
	}
	src := make(map[string]int, len(sp.src.Tensors))
	for i, t := range sp.src.Tensors {
		src[t.Name] = i
	}
	rd := p.setReader(cp.Name, sp.src.Format)
	rd.windowed = true
	defer rd.Close()
	out := make([]VerifiedFile, 0, len(sp.Files)+1)
	for i := range sp.Files {
		vf, err := verifyFile(ctx, rd, dir, cp, sp, &sp.Files[i], src, progress)
		if err != nil {
			return nil, err
		}
		out = append(out, vf)
	}
	if sp.Index != "" {
		vf, err := verifyIndex(dir, cp, sp)
		if err != nil {
			return nil, err
		}
		out = append(out, vf)
	}
	return out, nil
}

func relPath(component, name string) string { return path.Join(component, name) }

// verifyFile reads one weights file sequentially, hashing every byte and
// comparing it with what the plan and the source say it must hold.
func verifyFile(ctx context.Context, rd *setReader, dir string, cp *ComponentPlan, sp *SetPlan, pf *PlannedFile,
	src map[string]int, progress func(int64)) (VerifiedFile, error) {
	rel := relPath(cp.Name, pf.Name)
	bad := func(tensor, format string, a ...any) (VerifiedFile, error) {
		return VerifiedFile{}, &VerifyError{File: rel, Tensor: tensor, Reason: fmt.Sprintf(format, a...)}
	}
	f, err := folder.OpenRegular(filepath.Join(dir, filepath.FromSlash(rel)))
	if err != nil {
		return VerifiedFile{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return VerifiedFile{}, err
	}
	if st.Size() != pf.Size {
		return bad("", "%d bytes where %d were planned", st.Size(), pf.Size)
	}
	sum := sha256.New()
	seq := &seqReader{r: bufio.NewReaderSize(io.TeeReader(f, sum), 1<<20), progress: progress}

	// The header, parsed from the bytes just read.
	var n [8]byte
	if err := seq.full(n[:]); err != nil {
		return bad("", "cannot read the header length: %v", err)
	}
	hlen := binary.LittleEndian.Uint64(n[:])
	if hlen > tensors.MaxHeaderSize || int64(hlen) > pf.Size-8 {
		return bad("", "header length %d does not fit the file", hlen)
	}
	hb := make([]byte, hlen)
	if err := seq.full(hb); err != nil {
		return bad("", "cannot read the header: %v", err)
	}
	sample := append(append([]byte(nil), n[:]...), hb[:min(len(hb), 504)]...)
	h, err := tensors.ParseHeader(hb, pf.Size)
	if err != nil {
		return bad("", "%v", err)
	}
	if !sameMetadata(h.Metadata, sp.meta) {
		return bad("", "__metadata__ is not the planned one")
	}
	if len(h.Tensors) != len(pf.Tensors) {
		return bad("", "%d tensors where %d were planned", len(h.Tensors), len(pf.Tensors))
	}
	for i, t := range h.Tensors {
		want := pf.Tensors[i]
		if t.Name != want.Name || t.DType != want.DType || !slices.Equal(t.Shape, want.Shape) ||
			h.DataStart+t.Begin != want.Offset || t.Size() != want.Bytes {
			return bad(want.Name, "the header says %q %s %v at %d (%d bytes), the plan %s %v at %d (%d bytes)",
				t.Name, t.DType, t.Shape, h.DataStart+t.Begin, t.Size(), want.DType, want.Shape, want.Offset, want.Bytes)
		}
	}

	// The data, tensor by tensor, against the source.
	cmp := &seqCompare{seq: seq}
	for _, want := range pf.Tensors {
		if err := ctx.Err(); err != nil {
			return VerifiedFile{}, err
		}
		if gap := want.Offset - seq.pos; gap > 0 {
			if err := seq.skip(gap); err != nil {
				return bad(want.Name, "cannot read: %v", err)
			}
		}
		si, ok := src[want.Name]
		if !ok {
			return bad(want.Name, "the source has no such tensor")
		}
		t := sp.src.Tensors[si]
		data, err := rd.source(t)
		if err != nil {
			return VerifiedFile{}, err
		}
		if converts(t.DType, sp.To) {
			if data, err = tensors.Convert(data, t.DType, sp.To); err != nil {
				return VerifiedFile{}, err
			}
		}
		if data.Size() != want.Bytes {
			return bad(want.Name, "the source gives %d bytes, the plan %d", data.Size(), want.Bytes)
		}
		*cmp = seqCompare{seq: seq, start: seq.pos}
		if err := data.CopyTo(ctx, cmp); err != nil {
			if cmp.mismatch {
				what := "is not bit-identical to the source"
				if sp.To != 0 && converts(t.DType, sp.To) {
					what = "is not the exact conversion of the source"
				}
				return bad(want.Name, "%s (first difference at byte %d of the tensor)", what, cmp.at)
			}
			if cmp.readErr != nil {
				return bad(want.Name, "cannot read: %v", cmp.readErr)
			}
			return VerifiedFile{}, err
		}
	}
	if rest := pf.Size - seq.pos; rest > 0 {
		if err := seq.skip(rest); err != nil {
			return bad("", "cannot read: %v", err)
		}
	}
	if k, _ := seq.r.Read(make([]byte, 1)); k > 0 {
		return bad("", "the file grew while it was read")
	}
	return VerifiedFile{Path: rel, Size: pf.Size, SHA256: hex.EncodeToString(sum.Sum(nil)), Sample: sample}, nil
}

// verifyIndex reads the set's index and checks that it maps each planned
// tensor to its planned file.
func verifyIndex(dir string, cp *ComponentPlan, sp *SetPlan) (VerifiedFile, error) {
	rel := relPath(cp.Name, sp.Index)
	data, err := folder.ReadFile(filepath.Join(dir, filepath.FromSlash(rel)), tensors.MaxIndexSize)
	if err != nil {
		return VerifiedFile{}, err
	}
	if int64(len(data)) != sp.IndexSize {
		return VerifiedFile{}, &VerifyError{File: rel, Reason: fmt.Sprintf("%d bytes where %d were planned", len(data), sp.IndexSize)}
	}
	ix, err := tensors.ParseIndex(data)
	if err != nil {
		return VerifiedFile{}, &VerifyError{File: rel, Reason: err.Error()}
	}
	n := 0
	for _, f := range sp.Files {
		for _, t := range f.Tensors {
			if ix.WeightMap[t.Name] != f.Name {
				return VerifiedFile{}, &VerifyError{File: rel, Tensor: t.Name, Reason: fmt.Sprintf("mapped to %q, planned in %q", ix.WeightMap[t.Name], f.Name)}
			}
			n++
		}
	}
	if len(ix.WeightMap) != n {
		return VerifiedFile{}, &VerifyError{File: rel, Reason: fmt.Sprintf("maps %d tensors where %d were planned", len(ix.WeightMap), n)}
	}
	sum := sha256.Sum256(data)
	return VerifiedFile{Path: rel, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]), Sample: data[:min(len(data), 512)], Content: data}, nil
}

// sameMetadata compares two __metadata__ maps, whatever their order.
func sameMetadata(a, b tensors.Metadata) bool {
	ma, mb := map[string]string{}, map[string]string{}
	for _, e := range a {
		ma[e.Key] = e.Value
	}
	for _, e := range b {
		mb[e.Key] = e.Value
	}
	return maps.Equal(ma, mb)
}

// seqReader reads a file front to back, counting the position.
type seqReader struct {
	r        *bufio.Reader
	pos      int64
	progress func(int64)
}

func (s *seqReader) full(b []byte) error {
	n, err := io.ReadFull(s.r, b)
	s.pos += int64(n)
	if s.progress != nil && n > 0 {
		s.progress(int64(n))
	}
	return err
}

func (s *seqReader) skip(n int64) error {
	d, err := s.r.Discard(int(n)) // hashed on its way into the buffer, not copied out
	k := int64(d)
	s.pos += k
	if s.progress != nil && k > 0 {
		s.progress(k)
	}
	return err
}

// seqCompare compares what is written to it with the next bytes of seq.
type seqCompare struct {
	seq      *seqReader
	start    int64
	mismatch bool
	at       int64 // the first difference, from the tensor's start
	readErr  error
}

var errDiffers = errors.New("bytes differ")

func (c *seqCompare) Write(p []byte) (int, error) {
	done := 0
	for done < len(p) {
		// Compared in the reader's own buffer: no copy of the file's bytes.
		want := p[done:]
		n := min(len(want), c.seq.r.Size())
		b, err := c.seq.r.Peek(n)
		if len(b) < n {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			c.readErr = err
			return done, err
		}
		if !bytes.Equal(b, want[:n]) {
			for i := range b {
				if b[i] != want[i] {
					c.mismatch, c.at = true, c.seq.pos-c.start+int64(i)
					return done, errDiffers
				}
			}
		}
		if err := c.seq.skip(int64(n)); err != nil {
			c.readErr = err
			return done, err
		}
		done += n
	}
	return done, nil
}
