package publish

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"modelpub/core/atomicfile"
	"modelpub/core/folder"
	"modelpub/core/hub"
	"modelpub/core/pipeline"
	"modelpub/core/tensors"
)

// readmeName is the model card's file at a folder's root.
const readmeName = "README.md"

// localFile is one file of the published layout: where its bytes are, and
// what the pass that read or wrote them learnt.
type localFile struct {
	FileInfo
	abs     string // on disk; "" for README.md, which is bytes
	sha256  string // "" when not known yet
	sample  []byte // first ≤512 bytes, when known
	content []byte // README.md, and index files read whole by the check
}

// hashes are the digests the Hub compares: sha256 for an LFS file (known,
// cached or read), the git sha1 of a regular one (from its bytes).
func (f *localFile) hashes(ctx context.Context, hc *hub.HashCache, lfs bool, progress func(int64)) (hub.Hashes, error) {
	switch {
	case lfs && f.sha256 != "":
		return hub.Hashes{SHA256: f.sha256}, nil
	case lfs:
		return hub.HashFile(ctx, hc, f.abs, true, progress)
	}
	b := f.content
	if b == nil {
		var err error
		if b, err = folder.ReadFile(f.abs, 10<<20); err != nil {
			return hub.Hashes{}, err
		}
	}
	return hub.Hashes{SHA1: hub.GitBlobSHA1(b), SHA256: f.sha256}, nil
}

// addition is the file as the hub client takes it.
func (f *localFile) addition() hub.Addition {
	a := hub.Addition{Path: f.Path, Size: f.Size, Local: f.abs, Hashes: hub.Hashes{SHA256: f.sha256}, Sample: f.sample}
	if f.content != nil {
		a.Bytes, a.Local = f.content, ""
	}
	return a
}

// producer makes the files of the published layout and hands each one on
// as soon as it is complete and checked: saved into the staging folder
// (OnFile, OnSet), each weight set checked against the source by
// pipeline.VerifySet in the same read that hashes it; or, for a reused
// staging, the files the stamp vouches for and the sets checked again; or
// the source's own files when it is uploaded as it is.
type producer struct {
	j    *job
	src  *pipeline.Pipeline
	s    *staging
	plan *pipeline.SavePlan
	emit func(localFile) error // goroutine-safe

	mu       sync.Mutex
	verified int64 // weights bytes read by the checks, for progress
	report   pipeline.Report
	stamp    *stamp // the staging's checked files, kept as sets pass
}

// run produces every file; it returns once all are handed on, or at the
// first failure (after every goroutine it started has ended).
func (pr *producer) run(ctx context.Context) error {
	if !pr.s.asIs {
		if pr.stamp = readStamp(pr.s.stamp); pr.stamp.Key != pr.s.key || pr.stamp.Files == nil {
			pr.stamp = &stamp{Key: pr.s.key, Files: map[string]stampEntry{}}
		}
	}
	switch {
	case pr.s.asIs:
		return pr.asIs(ctx)
	case pr.s.reused:
		return pr.reuse(ctx)
	}
	return pr.save(ctx)
}

// asIs hands on the source's own files after checking the folder loads.
func (pr *producer) asIs(ctx context.Context) error {
	j := pr.j
	j.ev.emit(Event{Step: StepValidate, Message: "checking that the folder loads as diffusers would load it"})
	r, err := pipeline.Validate(ctx, pr.src, pipeline.ValidateOptions{})
	if err != nil {
		return &StepError{StepValidate, err}
	}
	if err := j.checkReport(r); err != nil {
		return &StepError{StepValidate, err}
	}
	j.ev.emit(Event{Step: StepValidate, Done: true, Message: "valid"})
	return pr.walk(ctx, pr.src.Files(), nil)
}

// walk hands on every file of root but README.md, with the digest the
// stamp has for it (if any); weights listed in skip are left to their set's
// check.
func (pr *producer) walk(ctx context.Context, root *folder.Root, skip map[string]bool) error {
	return root.Walk(ctx, func(rel string, e folder.Entry) error {
		if e.IsDir() || rel == readmeName || skip[rel] {
			return nil
		}
		f := localFile{FileInfo: FileInfo{Path: rel, Size: e.Info.Size()}, abs: filepath.Join(root.Dir(), filepath.FromSlash(rel))}
		if pr.stamp != nil {
			if st, ok := pr.stamp.current(root.Dir(), rel); ok {
				f.sha256 = st.SHA256
			}
		}
		return pr.emit(f)
	})
}

// save runs the save into the staging folder and checks each weight set
// as soon as it is written, while later ones are still being written.
func (pr *producer) save(ctx context.Context) error {
	j := pr.j
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sets := make(chan setDone, countSets(pr.plan))
	var checkErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for sd := range sets {
			if checkErr != nil {
				continue
			}
			if checkErr = pr.check(ctx, sd); checkErr != nil {
				cancel()
			}
		}
	}()
	var emitErr error
	var emitMu sync.Mutex
	res, err := pipeline.Save(ctx, pr.src, pr.s.dir, pipeline.SaveOptions{
		MaxShardSize: j.opts.MaxShardSize, Variant: j.opts.Variant, Resume: true, InPlace: true, Inputs: pr.s.key,
		Progress: func(p pipeline.Progress) {
			j.ev.progress(Event{Step: StepStage, File: p.File, Bytes: p.Done, Total: p.Total})
		},
		OnFile: func(f pipeline.SavedFile) {
			if f.Path == readmeName {
				return // the card is published instead
			}
			if err := pr.emit(localFile{FileInfo: FileInfo{Path: f.Path, Size: f.Size}, sha256: f.SHA256,
				abs: filepath.Join(pr.s.dir, filepath.FromSlash(f.Path))}); err != nil {
				emitMu.Lock()
				emitErr = err
				emitMu.Unlock()
				cancel()
			}
		},
		OnSet: func(c string, sp *pipeline.SetPlan) { sets <- setDone{c, sp.Variant} },
	})
	if err == nil { // said at once: the checks of the last sets go on
		msg := "staged in " + pr.s.dir
		if res.Kept > 0 {
			msg += fmt.Sprintf(" (resumed: %s kept from the interrupted run)", tensors.FormatSize(res.Kept))
		}
		j.ev.emit(Event{Step: StepStage, Done: true, Bytes: res.Bytes, Total: res.Bytes, Message: msg})
	}
	close(sets)
	wg.Wait()
	// The first cause, not the cancellations it made of the others.
	cause := func(e error) bool { return e != nil && !errors.Is(e, context.Canceled) }
	switch {
	case cause(checkErr):
		return checkErr
	case cause(emitErr):
		return emitErr
	case err != nil:
		return &StepError{StepStage, err}
	case checkErr != nil:
		return checkErr
	case emitErr != nil:
		return emitErr
	}
	j.res.Folder = pr.s.dir
	for _, l := range res.Lossy {
		pr.report.Warnings = append(pr.report.Warnings, pipeline.Finding{Code: "lossy-variant", Path: l.Component,
			Message: fmt.Sprintf("%s variant %s: tensor %q: %d values overflowed to ±inf and %d non-zero values became zero",
				displayName(l.Component), l.Variant, l.Tensor, l.Overflow, l.Underflow)})
	}
	return nil
}

// reuse hands on the files of a complete staging: each weight set through
// check (from the stamp when it vouches for the set, else checked against
// the source again), the other files with the digests the stamp has.
func (pr *producer) reuse(ctx context.Context) error {
	j := pr.j
	j.res.Folder, j.res.Reused = pr.s.dir, true
	j.ev.emit(Event{Step: StepStage, Done: true, Message: "reusing the staged folder " + pr.s.dir})
	root, err := folder.New(pr.s.dir, folder.Options{})
	if err != nil {
		return &StepError{StepStage, err}
	}
	weights := map[string]bool{}
	for _, cp := range pr.plan.Components {
		for _, sp := range cp.Sets {
			for _, name := range setFiles(&sp) {
				weights[joinRel(cp.Name, name)] = true
			}
		}
	}
	if err := pr.walk(ctx, root, weights); err != nil {
		return err
	}
	pr.report.Warnings = pr.stamp.Report.Warnings // those of the save that made the staging
	for _, cp := range pr.plan.Components {
		for _, sp := range cp.Sets {
			if err := pr.check(ctx, setDone{cp.Name, sp.Variant}); err != nil {
				return err
			}
		}
	}
	if pr.verified == 0 {
		j.ev.emit(Event{Step: StepValidate, Message: "already checked; unchanged since"})
	}
	return nil
}

// setDone names a weight set Save finished.
type setDone struct{ component, variant string }

func countSets(plan *pipeline.SavePlan) int {
	n := 0
	for _, cp := range plan.Components {
		n += len(cp.Sets)
	}
	return n
}

func setFiles(sp *pipeline.SetPlan) []string {
	var out []string
	for _, f := range sp.Files {
		out = append(out, f.Name)
	}
	if sp.Index != "" {
		out = append(out, sp.Index)
	}
	return out
}

func joinRel(component, name string) string {
	if component == "" {
		return name
	}
	return component + "/" + name
}

// check verifies one written weight set against the source and hands its
// files on with their digests.
func (pr *producer) check(ctx context.Context, sd setDone) error {
	j := pr.j
	cp := pr.plan.Component(sd.component)
	var sp *pipeline.SetPlan
	for i := range cp.Sets {
		if cp.Sets[i].Variant == sd.variant {
			sp = &cp.Sets[i]
		}
	}
	if sp == nil {
		return &StepError{StepValidate, fmt.Errorf("%s: no planned set %q", displayName(sd.component), sd.variant)}
	}
	// A set checked by an interrupted run and unchanged since is not read
	// again.
	if files, ok := pr.stamped(cp.Name, sp); ok {
		pr.count(sp)
		for _, f := range files {
			if err := pr.emit(f); err != nil {
				return err
			}
		}
		return nil
	}
	files, err := pipeline.VerifySet(ctx, pr.src, pr.s.dir, cp, sp, func(n int64) {
		pr.mu.Lock()
		pr.verified += n
		done := pr.verified
		pr.mu.Unlock()
		j.ev.progress(Event{Step: StepValidate, Bytes: done, Total: pr.plan.Bytes})
	})
	if err != nil {
		var ve *pipeline.VerifyError
		if errors.As(err, &ve) {
			return &StepError{StepValidate, fmt.Errorf("%w: %w", ErrInvalid, err)}
		}
		return &StepError{StepValidate, err}
	}
	pr.count(sp)
	var out []localFile
	for _, f := range files {
		out = append(out, localFile{FileInfo: FileInfo{Path: f.Path, Size: f.Size}, sha256: f.SHA256, sample: f.Sample,
			content: f.Content, abs: filepath.Join(pr.s.dir, filepath.FromSlash(f.Path))})
	}
	pr.remember(out)
	for _, f := range out {
		if err := pr.emit(f); err != nil {
			return err
		}
	}
	return nil
}

// count adds a checked set to the report.
func (pr *producer) count(sp *pipeline.SetPlan) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	for _, f := range sp.Files {
		pr.report.Tensors += len(f.Tensors)
		for _, t := range f.Tensors {
			pr.report.Bytes += t.Bytes
		}
	}
}

// stamped returns the files of a set the stamp vouches for, all of them
// or none.
func (pr *producer) stamped(component string, sp *pipeline.SetPlan) ([]localFile, bool) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	var out []localFile
	for _, name := range setFiles(sp) {
		rel := joinRel(component, name)
		e, ok := pr.stamp.current(pr.s.dir, rel)
		if !ok {
			return nil, false
		}
		out = append(out, localFile{FileInfo: FileInfo{Path: rel, Size: e.Size}, sha256: e.SHA256,
			abs: filepath.Join(pr.s.dir, filepath.FromSlash(rel))})
	}
	return out, true
}

// remember records checked files in the stamp at once: a run killed later
// does not check them again.
func (pr *producer) remember(files []localFile) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	for _, f := range files {
		if f.sha256 == "" || f.abs == "" {
			continue
		}
		if st, err := os.Stat(f.abs); err == nil {
			pr.stamp.Files[f.Path] = stampEntry{Size: st.Size(), MtimeNs: st.ModTime().UnixNano(), SHA256: f.sha256}
		}
	}
	pr.stamp.Report = pr.report
	if b, err := json.Marshal(pr.stamp); err == nil {
		atomicfile.WriteFile(pr.s.stamp, b, 0o644)
	}
}

// checkReport turns a validation report with problems into ErrInvalid.
func (j *job) checkReport(r *pipeline.Report) error {
	j.res.Report = r
	for _, w := range r.Warnings {
		j.ev.emit(Event{Step: StepValidate, File: w.Path, Message: w.Message})
	}
	if r.OK() {
		return nil
	}
	var b strings.Builder
	for i, p := range r.Problems {
		if i == 5 {
			fmt.Fprintf(&b, "; and %d more", len(r.Problems)-5)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		if p.Path != "" {
			b.WriteString(p.Path + ": ")
		}
		b.WriteString(p.Message)
	}
	return fmt.Errorf("%w: %s", ErrInvalid, b.String())
}

// stamp records the staged files that passed their check, by identity,
// with their digests: a re-run after a failed upload reads each of them
// only to send it.
type stamp struct {
	Key    string                `json:"key"`
	Files  map[string]stampEntry `json:"files"`
	Report pipeline.Report       `json:"report"`
}

type stampEntry struct {
	Size    int64  `json:"size"`
	MtimeNs int64  `json:"mtime_ns"`
	SHA256  string `json:"sha256"`
}

func readStamp(path string) *stamp {
	var s stamp
	if b, err := os.ReadFile(path); err == nil && json.Unmarshal(b, &s) == nil {
		return &s
	}
	return &stamp{}
}

// current returns the entry of rel if the file is as it was stamped.
func (s *stamp) current(dir, rel string) (stampEntry, bool) {
	e, ok := s.Files[rel]
	if !ok || e.SHA256 == "" {
		return e, false
	}
	st, err := os.Stat(filepath.Join(dir, filepath.FromSlash(rel)))
	return e, err == nil && st.Mode().IsRegular() && st.Size() == e.Size && st.ModTime().UnixNano() == e.MtimeNs
}

// collector keeps the produced files, in path order on demand.
type collector struct {
	mu    sync.Mutex
	files []localFile
}

func (c *collector) add(f localFile) {
	c.mu.Lock()
	c.files = append(c.files, f)
	c.mu.Unlock()
}

func (c *collector) sorted() []localFile {
	c.mu.Lock()
	defer c.mu.Unlock()
	sort.Slice(c.files, func(a, b int) bool { return c.files[a].Path < c.files[b].Path })
	return c.files
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
