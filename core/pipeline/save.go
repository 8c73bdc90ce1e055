package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"modelpub/core/folder"
	"modelpub/core/tensors"
)

// Default shard sizes of save_pretrained.
const (
	DiffusersMaxShardSize    int64 = 10_000_000_000 // ModelMixin.save_pretrained, "10GB"
	TransformersMaxShardSize int64 = 5_000_000_000  // PreTrainedModel.save_pretrained (v4), "5GB"
)

// Variants Modelpub can write, and the dtype each converts floats to.
var variantDTypes = map[string]tensors.DType{"fp16": tensors.F16, "bf16": tensors.BF16}

// SaveOptions tune Save.
type SaveOptions struct {
	// MaxShardSize applies to every model; 0 keeps each library's default.
	MaxShardSize int64
	// Variant, "fp16" or "bf16", writes converted weights beside the
	// full-precision ones, named as diffusers expects.
	Variant string
	// Overwrite allows a destination that exists and is not empty; it is
	// replaced only once the new folder is complete.
	Overwrite bool
	// Progress, if set, is called as bytes are written.
	Progress func(Progress)
	// Resume keeps the work of a save that fails, is cancelled or killed
	// in a hidden folder beside dst (".{dst}.modelpub-partial"), and a
	// later Save to the same dst picks it up: weight sets and files already
	// complete there are kept, the rest is written. The caller must make
	// dst name the source's state (publish puts a fingerprint of the source
	// in it): a partial folder is trusted to come from the same source.
	Resume bool
	// Inputs, for a resumable save, is the caller's fingerprint of the
	// source and the options (see Resume); "" → Save fingerprints the
	// source's files itself.
	Inputs string
	// InPlace builds the output in dst itself instead of beside it, for a
	// cache folder that only its caller reads (publish's staging): every
	// file is in its final place as soon as it is complete (OnFile, OnSet
	// can hand it on at once), and with Resume a marker in dst says it is
	// incomplete until Save returns (Complete).
	InPlace bool
	// OnFile is called for each file other than weights once it is
	// complete in the output (copied or written; kept from an interrupted
	// save), and OnSet for each weight set once all its files and its
	// index are. They may be called from two goroutines at once.
	OnFile func(SavedFile)
	OnSet  func(component string, set *SetPlan)
}

// SavedFile is a file of the output other than weights.
type SavedFile struct {
	Path string // relative to the output folder, "/"-separated
	Size int64
	// SHA256 is the digest of the bytes read from the source and written
	// (or generated): "" for a file kept from an interrupted save.
	SHA256 string
}

// Complete reports whether dst holds a finished save: it exists and no
// resume marker says a save into it (InPlace) is still unfinished.
func Complete(dst string) bool {
	st, err := os.Stat(dst)
	if err != nil || !st.IsDir() {
		return false
	}
	_, err = os.Lstat(filepath.Join(dst, resumeMarker))
	return errors.Is(err, fs.ErrNotExist)
}

// partialSuffix ends the name of the folder a resumable save builds in.
const partialSuffix = ".modelpub-partial"

// PartialDir is the folder a resumable save to dst builds in, and keeps
// when it is interrupted.
func PartialDir(dst string) string {
	dst = filepath.Clean(dst)
	return filepath.Join(filepath.Dir(dst), "."+filepath.Base(dst)+partialSuffix)
}

// Progress is the state of a running save.
type Progress struct {
	Done, Total int64
	File        string // the file being written, relative to the destination
}

// SaveResult describes a finished save.
type SaveResult struct {
	Dir   string
	Bytes int64
	// Lossy lists the variant tensors whose conversion lost values (in the
	// weight sets written by this call; see Kept).
	Lossy []LossyTensor
	// Kept counts the bytes a resumed save found complete from an earlier
	// attempt and did not write again.
	Kept int64
}

// LossyTensor is a tensor whose precision conversion overflowed or
// underflowed values.
type LossyTensor struct {
	Component, Tensor string
	Variant           string
	tensors.ConvStats
}

// Errors of Save.
var (
	ErrDestinationNotEmpty = errors.New("destination exists and is not empty (use --overwrite to replace it)")
	ErrUnsupportedVariant  = errors.New("unsupported variant: use fp16 or bf16")
	ErrUnreadableWeights   = errors.New("weights cannot be read")
	ErrNoSpace             = errors.New("not enough free disk space")
	ErrInsideSource        = errors.New("the destination is inside the folder being saved")
	ErrSourceChanged       = errors.New("the source file changed while it was read")
)

// Save writes p to dst as save_pretrained would: weights as safetensors,
// sharded at the chosen size, with an optional precision variant beside
// them; configs, tokenizers and everything else copied. The result is
// built in a temporary folder beside dst and renamed into place at the
// end: a failure or cancellation leaves no partial dst, and p's folder is
// only ever read.
func Save(ctx context.Context, p *Pipeline, dst string, opts SaveOptions) (*SaveResult, error) {
	if _, ok := variantDTypes[opts.Variant]; opts.Variant != "" && !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnsupportedVariant, opts.Variant)
	}
	dst = filepath.Clean(dst)
	if err := checkDestination(p.Dir, dst, opts.Overwrite || opts.InPlace && opts.Resume); err != nil {
		return nil, err
	}
	plan, err := makePlan(p, opts, false)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return nil, err
	}
	inputs := ""
	if opts.Resume {
		if inputs = opts.Inputs; inputs == "" {
			if inputs, err = Fingerprint(p.Dir, true, "save", fmt.Sprint(opts.MaxShardSize), opts.Variant); err != nil {
				return nil, err
			}
		}
	}
	stage, kept, err := makeStage(dst, inputs, opts.InPlace)
	if err != nil {
		return nil, err
	}
	done, keep := false, false
	defer func() {
		if !done && !keep && !opts.InPlace {
			os.RemoveAll(stage)
		}
	}()
	if err := checkSpace(filepath.Dir(dst), plan.Total()-kept); err != nil {
		return nil, err
	}
	s := &saver{p: p, stage: stage, opts: opts, plan: plan, res: &SaveResult{Dir: dst}, resume: opts.Resume}
	s.total = plan.Total()
	if err := s.run(ctx); err != nil {
		// A resumable save keeps its work when it was stopped (Ctrl-C, a
		// cancel; a kill never reaches here), not when it failed: a full
		// disk or a broken source is not made better by a second attempt.
		keep = opts.Resume && errors.Is(err, context.Canceled)
		return nil, err
	}
	if opts.Resume {
		if err := os.Remove(filepath.Join(stage, resumeMarker)); err != nil {
			return nil, err
		}
	}
	s.total = s.done
	s.progress("", 0)
	if err := tensors.SyncTree(stage); err != nil {
		return nil, err
	}
	if !opts.InPlace {
		if err := replaceDir(stage, dst, p.Dir); err != nil {
			return nil, err
		}
	}
	done = true
	s.res.Bytes = s.done
	return s.res, nil
}

// checkDestination refuses a dst inside or equal to the source, and a
// non-empty dst unless overwrite.
func checkDestination(src, dst string, overwrite bool) error {
	if err := checkOutsideSource(src, dst); err != nil {
		return err
	}
	entries, err := os.ReadDir(dst)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("%s: %w", dst, err)
	case len(entries) > 0 && !overwrite:
		return fmt.Errorf("%s: %w", dst, ErrDestinationNotEmpty)
	case len(entries) > 0:
		return checkReplaceable(dst, src)
	}
	return nil
}

// sourceWeights returns the weight set Save reads a model component from:
// its safetensors main weights, or its PyTorch .bin ones.
func sourceWeights(c *Component) (*WeightSet, error) {
	main := c.Main()
	if main == nil {
		return nil, fmt.Errorf("%s: %w: no main weights file", displayName(c.Name), ErrUnreadableWeights)
	}
	if main.Err != nil {
		return nil, fmt.Errorf("%s: %w: %w", displayName(c.Name), ErrUnreadableWeights, main.Err)
	}
	return main, nil
}

type saver struct {
	mu          sync.Mutex // guards done, total, res.Lossy and calls to opts.Progress
	p           *Pipeline
	stage       string
	opts        SaveOptions
	plan        *SavePlan
	res         *SaveResult
	done, total int64
	// resume keeps files of the stage that are already complete.
	resume bool
}

// resumeMarker, inside a partial folder, holds the fingerprint of the
// source and options it was made from; it is removed before the folder
// becomes the destination.
const resumeMarker = ".modelpub-inputs"

// makeStage creates the folder a save builds in: a new temporary one, or
// for a resumable save (inputs, the fingerprint of its source and options,
// not empty) the partial folder of dst kept from an earlier attempt with
// the same inputs (kept counts its bytes); a partial folder made from
// other inputs is emptied. Temporary files an interrupted writer left are
// removed: only complete files are kept.
func makeStage(dst, inputs string, inPlace bool) (stage string, kept int64, err error) {
	if inputs == "" && inPlace {
		return dst, 0, os.MkdirAll(dst, 0o755)
	}
	if inputs == "" {
		stage, err = os.MkdirTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".modelpub-*")
		if err == nil {
			err = os.Chmod(stage, 0o755)
		}
		return stage, 0, err
	}
	stage = PartialDir(dst)
	if inPlace {
		stage = dst
	}
	marker := filepath.Join(stage, resumeMarker)
	if b, err := os.ReadFile(marker); err != nil || string(b) != inputs {
		if err := os.RemoveAll(stage); err != nil {
			return "", 0, err
		}
	}
	if err := os.MkdirAll(stage, 0o755); err != nil {
		return "", 0, err
	}
	if err := os.WriteFile(marker, []byte(inputs), 0o644); err != nil {
		return "", 0, err
	}
	err = filepath.WalkDir(stage, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path == marker {
			return err
		}
		if strings.HasPrefix(d.Name(), ".") && strings.Contains(d.Name(), ".tmp-") {
			return os.Remove(path)
		}
		if info, err := d.Info(); err == nil {
			kept += info.Size()
		}
		return nil
	})
	return stage, kept, err
}

// complete reports whether the stage already holds rel with size bytes,
// from an earlier attempt of a resumable save; a file of another size is
// removed, to be written again.
func (s *saver) complete(rel string, size int64) bool {
	if !s.resume {
		return false
	}
	path := filepath.Join(s.stage, filepath.FromSlash(rel))
	st, err := os.Stat(path)
	if err != nil {
		return false
	}
	if st.Mode().IsRegular() && st.Size() == size {
		return true
	}
	os.RemoveAll(path)
	return false
}

func (s *saver) progress(file string, n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done += n
	s.total = max(s.total, s.done) // the plan does not count folders carried whole
	if s.opts.Progress != nil {
		s.opts.Progress(Progress{Done: s.done, Total: s.total, File: file})
	}
}

func (s *saver) run(ctx context.Context) error {
	if s.p.Index != nil {
		data, err := s.p.Index.MarshalPython()
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(s.stage, ModelIndexFile), data, 0o644); err != nil {
			return err
		}
		s.progress(ModelIndexFile, int64(len(data)))
		if s.opts.OnFile != nil {
			sum := sha256.Sum256(data)
			s.opts.OnFile(SavedFile{Path: ModelIndexFile, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])})
		}
	}
	for _, f := range s.p.RootFiles {
		if err := s.copyFile(ctx, f.Path); err != nil {
			return err
		}
	}
	for _, name := range s.p.Unlisted {
		if err := s.copyTree(ctx, name); err != nil {
			return err
		}
	}
	for _, c := range s.p.Components {
		if c.Null {
			continue
		}
		if err := s.component(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

func (s *saver) component(ctx context.Context, c *Component) error {
	dir := filepath.Join(s.stage, c.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	model := c.Role == RoleModel
	for _, f := range c.Files {
		if model && (f.Kind == KindWeights || f.Kind == KindWeightsIndex) {
			continue // rewritten below
		}
		var err error
		if strings.HasSuffix(f.Path, "/") {
			err = s.copyTree(ctx, strings.TrimSuffix(f.Path, "/"))
		} else {
			err = s.copyFile(ctx, f.Path)
		}
		if err != nil {
			return err
		}
	}
	if !model {
		return nil
	}
	cp := s.plan.Component(c.Name)
	sets := cp.Sets
	// The main weights (copied in the kernel) and the precision variant
	// (converted on a CPU) are written at the same time: the stage is a new
	// folder, so no clean-up order matters, and the two use different
	// resources. The variants the folder had follow.
	if s.opts.Variant == "" {
		if err := s.writeSet(ctx, c, cp, &sets[0]); err != nil {
			return err
		}
		sets = sets[1:]
	} else {
		ctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		var variantErr error
		wg.Add(1)
		go func() {
			defer wg.Done()
			if variantErr = s.writeSet(ctx, c, cp, &sets[1]); variantErr != nil {
				cancel()
			}
		}()
		mainErr := s.writeSet(ctx, c, cp, &sets[0])
		if mainErr != nil {
			cancel()
		}
		wg.Wait()
		cancel()
		if err := errors.Join(mainErr, variantErr); err != nil {
			return firstCause(mainErr, variantErr)
		}
		sets = sets[2:]
	}
	for i := range sets {
		if err := s.writeSet(ctx, c, cp, &sets[i]); err != nil {
			return err
		}
	}
	return nil
}

// firstCause picks the error to report when two writers failed: the one
// that is not merely the other's cancellation.
func firstCause(a, b error) error {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	case errors.Is(a, context.Canceled):
		return b
	}
	return a
}

// carriedSets are the weight sets a save writes for c: per variant the
// safetensors set, or the .bin one when there is no safetensors twin; the
// variant being generated is left out.
func carriedSets(c *Component, generated string) []*WeightSet {
	var out []*WeightSet
	for _, w := range c.Weights {
		if w.Variant == generated && generated != "" {
			continue
		}
		if best := c.WeightSet(w.Variant, ""); best == w {
			out = append(out, w)
		}
	}
	return out
}

// errPlanMismatch reports weights files that differ from the plan: a bug,
// since Plan lays them out with the same functions as the writer.
var errPlanMismatch = errors.New("pipeline: the weights written differ from the plan")

// writeSet writes the weight set sp of component c as planned, reading the
// tensors of its source set and converting floats when sp.To is set.
func (s *saver) writeSet(ctx context.Context, c *Component, cp *ComponentPlan, sp *SetPlan) error {
	if s.setComplete(c, sp) {
		n := sp.IndexSize
		for _, f := range sp.Files {
			n += f.Size
		}
		s.mu.Lock()
		s.res.Kept += n
		s.mu.Unlock()
		s.progress(filepath.Join(c.Name, tensors.WeightsFileName(cp.Base, sp.Variant)), n)
		if s.opts.OnSet != nil {
			s.opts.OnSet(c.Name, sp)
		}
		return nil
	}
	rd := s.p.setReader(c.Name, sp.src.Format)
	rd.windowed = sp.To != 0 // converted tensors are read, not copied by the kernel
	defer rd.Close()
	ws := make([]tensors.WriteTensor, 0, len(sp.src.Tensors))
	type conv struct {
		name string
		c    *tensors.Converted
	}
	var convs []conv
	for _, t := range sp.src.Tensors {
		data, err := rd.source(t)
		if err != nil {
			return err
		}
		w := tensors.WriteTensor{Name: t.Name, DType: t.DType, Shape: t.Shape, Data: data}
		if converts(t.DType, sp.To) {
			cv, err := tensors.Convert(w.Data, t.DType, sp.To)
			if err != nil {
				return err
			}
			w.DType, w.Data = sp.To, cv
			convs = append(convs, conv{t.Name, cv})
		}
		ws = append(ws, w)
	}
	out := filepath.Join(s.stage, c.Name)
	var last int64
	file := filepath.Join(c.Name, tensors.WeightsFileName(cp.Base, sp.Variant))
	res, err := tensors.WriteSharded(ctx, out, ws, tensors.ShardedOptions{
		MaxShardSize: cp.MaxShardSize, Base: cp.Base, Variant: sp.Variant, Metadata: sp.meta,
		Progress: func(done, total int64) {
			s.progress(file, done-last)
			last = done
		},
	})
	if err != nil {
		return err
	}
	names := make([]string, len(sp.Files))
	for i, f := range sp.Files {
		names[i] = f.Name
	}
	if res.Bytes != sp.Bytes || res.IndexFile != sp.Index || !slices.Equal(res.Files, names) {
		return fmt.Errorf("%s: %w: planned %v (%d bytes), wrote %v (%d bytes)",
			filepath.Join(c.Name, tensors.WeightsFileName(cp.Base, sp.Variant)), errPlanMismatch, names, sp.Bytes, res.Files, res.Bytes)
	}
	if res.IndexFile != "" {
		s.progress(filepath.Join(c.Name, res.IndexFile), sp.IndexSize)
	}
	s.mu.Lock()
	for _, cv := range convs {
		if st := cv.c.Stats(); st.Overflow > 0 || st.Underflow > 0 {
			s.res.Lossy = append(s.res.Lossy, LossyTensor{Component: c.Name, Tensor: cv.name, Variant: sp.Variant, ConvStats: st})
		}
	}
	s.mu.Unlock()
	if s.opts.OnSet != nil {
		s.opts.OnSet(c.Name, sp)
	}
	return nil
}

// convertible reports the dtypes a precision variant converts; integers,
// bools, F64 and the 8-bit and packed float types are copied unchanged.
func convertible(d tensors.DType) bool {
	return d == tensors.F32 || d == tensors.F16 || d == tensors.BF16
}

func variantBytes(t tensors.TensorInfo, to tensors.DType) int64 {
	if convertible(t.DType) && t.DType != to {
		return t.NumElements() * int64(to.Bits()/8)
	}
	return t.Size()
}

// setComplete reports whether an earlier attempt of a resumable save
// wrote the whole set: every planned file and the index, at their planned
// sizes (shards are committed together and the index last, so a set cut
// short has no index).
func (s *saver) setComplete(c *Component, sp *SetPlan) bool {
	if !s.resume {
		return false
	}
	if sp.Index != "" && !s.complete(c.Name+"/"+sp.Index, sp.IndexSize) {
		return false
	}
	for _, f := range sp.Files {
		if !s.complete(c.Name+"/"+f.Name, f.Size) {
			return false
		}
	}
	return true
}

// copyFile copies a file of the source, relative path rel, into the stage.
func (s *saver) copyFile(ctx context.Context, rel string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	in, err := s.p.root.Open(filepath.FromSlash(rel))
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	if s.complete(rel, st.Size()) {
		s.mu.Lock()
		s.res.Kept += st.Size()
		s.mu.Unlock()
		s.progress(rel, st.Size())
		if s.opts.OnFile != nil {
			s.opts.OnFile(SavedFile{Path: filepath.ToSlash(rel), Size: st.Size()})
		}
		return nil
	}
	var h hash.Hash
	if s.opts.OnFile != nil {
		h = sha256.New() // the bytes read from the source, for whoever reads the copy
	}
	n, err := copyFile(in, st.Size(), filepath.Join(s.stage, filepath.FromSlash(rel)), h)
	if err != nil {
		return err
	}
	s.progress(rel, n)
	if s.opts.OnFile != nil {
		s.opts.OnFile(SavedFile{Path: filepath.ToSlash(rel), Size: n, SHA256: hex.EncodeToString(h.Sum(nil))})
	}
	return nil
}

// copyTree copies a folder of the source, relative path rel, into the stage,
// through the file policy (links followed only inside the folder; dot
// folders such as .git left out).
func (s *saver) copyTree(ctx context.Context, rel string) error {
	sub, err := s.p.root.Sub(filepath.FromSlash(rel))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(s.stage, filepath.FromSlash(rel)), 0o755); err != nil {
		return err
	}
	return sub.Walk(ctx, func(r string, e folder.Entry) error {
		r = rel + "/" + r
		if e.IsDir() {
			return os.MkdirAll(filepath.Join(s.stage, filepath.FromSlash(r)), 0o755)
		}
		return s.copyFile(ctx, r)
	})
}

// copyFile copies exactly size bytes of in (opened by the policy) to a new
// file dst: never more than planned, and a file that shrank or grew while
// it was copied is an error, not a silently different copy. With h, the
// bytes go through h too (and through user space: no kernel copy).
func copyFile(in *os.File, size int64, dst string, h hash.Hash) (int64, error) {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return 0, err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return 0, err
	}
	var w io.Writer = out
	if h != nil {
		w = io.MultiWriter(out, h)
	}
	n, err := io.Copy(w, io.NewSectionReader(in, 0, size)) // copy_file_range on Linux when not hashed
	if err == nil && n != size {
		err = fmt.Errorf("%w: %d bytes where %d were listed", ErrSourceChanged, n, size)
	}
	if err == nil {
		if st, serr := in.Stat(); serr == nil && st.Size() != size {
			err = fmt.Errorf("%w: it is now %d bytes, %d when listed", ErrSourceChanged, st.Size(), size)
		}
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("copying %s: %w", in.Name(), err)
	}
	return n, nil
}

// replaceDir renames the complete stage to dst. An existing dst (empty, or
// replaced with --overwrite) is moved aside first and removed only after the
// rename, so a crash leaves either the old or the new folder; nothing in it
// that reaches src is removed.
func replaceDir(stage, dst, src string) error {
	old := ""
	if _, err := os.Lstat(dst); err == nil {
		old = stage + ".old"
		if err := os.Rename(dst, old); err != nil {
			return err
		}
	}
	if err := os.Rename(stage, dst); err != nil {
		if old != "" {
			os.Rename(old, dst)
		}
		return err
	}
	if old != "" {
		if err := removeReplaced(old, src); err != nil {
			return err
		}
	}
	d, err := os.Open(filepath.Dir(dst))
	if err != nil {
		return err
	}
	defer d.Close()
	_ = d.Sync()
	return nil
}

// spaceMargin is kept free beyond the output's size: file system metadata,
// and room for the rest of the system.
const spaceMargin = 64 << 20

// checkSpace refuses to start a save that cannot fit in dir, before any
// byte is written. A file system that cannot say is trusted.
func checkSpace(dir string, need int64) error {
	free, err := freeSpace(dir)
	if err != nil {
		return nil
	}
	if free < need+spaceMargin {
		return fmt.Errorf("%w in %s: the output needs %s and %s are free; free some space or choose another destination",
			ErrNoSpace, dir, tensors.FormatSize(need), tensors.FormatSize(free))
	}
	return nil
}
