package publish

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"modelpub/core/pipeline"
	"modelpub/core/tensors"
)

// stagingFormat changes when Save's output for the same inputs changes, so
// stagings made by an older Modelpub are not reused.
const stagingFormat = "1"

// staging is the folder the upload is made from.
type staging struct {
	dir  string             // the staged folder, or the source itself when AsIs
	p    *pipeline.Pipeline // dir, opened
	asIs bool
	key  string // fingerprint of dir's files, for the validation stamp
	// stamp is where a passed validation of dir is recorded.
	stamp string
}

// sourceKey names a source folder in the cache: a hash of its absolute path.
func sourceKey(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	sum := sha256.Sum256([]byte(abs))
	return hex.EncodeToString(sum[:6])
}

// stage saves src into the staging folder, reuses a current one, or picks
// the source itself when it is already in the wanted form.
func (j *job) stage(ctx context.Context, src *pipeline.Pipeline) (*staging, error) {
	if ok, why := inWantedForm(src, j.opts); ok {
		key, err := pipeline.Fingerprint(src.Dir, false, "as-is", stagingFormat)
		if err != nil {
			return nil, err
		}
		j.res.Folder, j.res.AsIs = src.Dir, true
		j.ev.emit(Event{Step: StepStage, Done: true, Message: "the folder is already safetensors in the wanted layout: its files are uploaded as they are"})
		stamp := filepath.Join(j.cache, "staging", sourceKey(src.Dir)+"-as-is.valid.json")
		return &staging{dir: src.Dir, p: src, asIs: true, key: key, stamp: stamp}, nil
	} else {
		j.ev.emit(Event{Step: StepStage, Message: "staging: " + why})
	}

	key, err := pipeline.Fingerprint(src.Dir, false, "staged", stagingFormat, j.opts.Version,
		fmt.Sprint(j.opts.MaxShardSize), j.opts.Variant)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", src.Dir, err)
	}
	root := filepath.Join(j.cache, "staging")
	skey := sourceKey(src.Dir)
	dst := filepath.Join(root, skey+"-"+key)
	defer cleanStagings(root, skey, filepath.Base(dst))

	if st, err := os.Stat(filepath.Join(dst, pipeline.ModelIndexFile)); err == nil && st.Mode().IsRegular() || isSingleModel(src) && dirExists(dst) {
		p, err := pipeline.Open(ctx, dst)
		if err == nil {
			if err := syncReadme(src, dst); err != nil {
				return nil, err
			}
			j.res.Folder, j.res.Reused = dst, true
			j.ev.emit(Event{Step: StepStage, Done: true, Message: "reusing the staged folder " + dst})
			return stagedAt(dst, p)
		}
		// A damaged staging: build it again.
		if err := os.RemoveAll(dst); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	res, err := pipeline.Save(ctx, src, dst, pipeline.SaveOptions{
		MaxShardSize: j.opts.MaxShardSize, Variant: j.opts.Variant, Resume: true,
		Progress: func(p pipeline.Progress) {
			j.ev.progress(Event{Step: StepStage, File: p.File, Bytes: p.Done, Total: p.Total})
		},
	})
	if err != nil {
		return nil, err
	}
	if err := syncReadme(src, dst); err != nil { // a resumed save may hold an older one
		return nil, err
	}
	p, err := pipeline.Open(ctx, dst)
	if err != nil {
		return nil, fmt.Errorf("reopen the staged folder: %w", err)
	}
	j.res.Folder = dst
	msg := "staged in " + dst
	if res.Kept > 0 {
		msg += fmt.Sprintf(" (resumed: %s kept from the interrupted run)", tensors.FormatSize(res.Kept))
	}
	j.ev.emit(Event{Step: StepStage, Done: true, Bytes: res.Bytes, Total: res.Bytes, Message: msg})
	return stagedAt(dst, p)
}

// readmeName is the model card's file at a folder's root.
const readmeName = "README.md"

// syncReadme makes the staged folder's README.md the source's (or none),
// as the card is made from it: the staging key leaves the README out.
func syncReadme(src *pipeline.Pipeline, staged string) error {
	want, err := src.Files().ReadFile(readmeName, 0)
	path := filepath.Join(staged, readmeName)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	case err != nil:
		return err
	}
	if have, err := os.ReadFile(path); err == nil && string(have) == string(want) {
		return nil
	}
	return writeFileAtomic(path, want)
}

// stagedAt describes the staged folder dst.
func stagedAt(dst string, p *pipeline.Pipeline) (*staging, error) {
	key, err := pipeline.Fingerprint(dst, false, "staged-output")
	if err != nil {
		return nil, err
	}
	return &staging{dir: dst, p: p, key: key, stamp: dst + ".valid.json"}, nil
}

func isSingleModel(p *pipeline.Pipeline) bool { return p.Index == nil }

func dirExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// cleanStagings removes the other stagings of the same source (older
// inputs) and the temporary folders of interrupted saves, keeping keep.
func cleanStagings(root, skey, keep string) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		if name == keep || name == keep+".valid.json" || name == filepath.Base(pipeline.PartialDir(filepath.Join(root, keep))) {
			continue
		}
		if strings.HasPrefix(name, skey+"-") || strings.HasPrefix(name, "."+skey+"-") {
			os.RemoveAll(filepath.Join(root, name))
		}
	}
}

// inWantedForm reports whether src can be uploaded as it is: every model's
// weights in safetensors with format "pt" metadata, current file names,
// the wanted variant present, and every file within the wanted shard size.
// If not, it says why.
func inWantedForm(src *pipeline.Pipeline, opts Options) (bool, string) {
	for _, c := range src.Components {
		if c.Null || c.Role != pipeline.RoleModel {
			continue
		}
		name := c.Name
		if name == "" {
			name = "the model"
		}
		for _, f := range c.Files {
			if f.LFSPointer {
				return false, f.Path + " is a Git LFS pointer"
			}
		}
		if c.Main() == nil {
			return false, name + " has no main weights in safetensors"
		}
		if len(c.Ambiguous()) > 0 {
			return false, name + " holds two layouts of the same weights"
		}
		if opts.Variant != "" && c.WeightSet(opts.Variant, "safetensors") == nil {
			return false, name + " has no " + opts.Variant + " variant yet"
		}
		for _, ws := range c.Weights {
			switch {
			case ws.Err != nil:
				return false, ws.Err.Error()
			case ws.Format != "safetensors":
				return false, name + " has " + ws.Format + " weights to convert to safetensors"
			case ws.LegacyNames:
				return false, name + " uses the deprecated variant file names"
			}
			dir := filepath.Join(src.Dir, filepath.FromSlash(c.Name))
			for _, f := range ws.Files {
				path := filepath.Join(dir, f)
				h, err := tensors.ReadHeaderFile(path)
				if err != nil {
					return false, err.Error()
				}
				if v, _ := h.Metadata.Get(tensors.MetadataKeyFormat); v != "pt" {
					return false, fmt.Sprintf("%s/%s lacks the {\"format\": \"pt\"} metadata transformers needs", c.Name, f)
				}
			}
		}
	}
	if opts.MaxShardSize > 0 {
		// The wanted layout is the one Save would write: same files, same names.
		plan, err := pipeline.Plan(src, pipeline.SaveOptions{MaxShardSize: opts.MaxShardSize, Variant: opts.Variant})
		if err != nil {
			return false, err.Error()
		}
		for _, cp := range plan.Components {
			c := src.Component(cp.Name)
			if c == nil {
				continue
			}
			for _, set := range cp.Sets {
				cur := pipeline.CurrentLayout(c, set.Variant)
				if cur == nil || !sameFiles(cur.Files, set.Files) {
					return false, fmt.Sprintf("%s is not split as %s shards would be", displayName(cp.Name), tensors.FormatSize(opts.MaxShardSize))
				}
			}
		}
	}
	return true, ""
}

func sameFiles(a, b []pipeline.PlannedFile) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name {
			return false
		}
	}
	return true
}

func displayName(component string) string {
	if component == "" {
		return "the model"
	}
	return component
}

// dropStaging removes the staged folder, its validation stamp and the
// upload view once the Hub has everything: a model's worth of disk is not
// kept in the cache for nothing. The source itself (as-is) is never touched.
func (j *job) dropStaging(s *staging, view string) {
	os.RemoveAll(view)
	if s.asIs {
		return
	}
	size, _ := dirSize(s.dir)
	if err := os.RemoveAll(s.dir); err != nil {
		j.ev.emit(Event{Step: StepDone, Message: "could not remove the staging folder: " + err.Error()})
		return
	}
	os.Remove(s.stamp)
	j.res.StagingRemoved = true
	j.ev.emit(Event{Step: StepDone, Message: fmt.Sprintf("removed the staging folder (%s); keep it next time with --keep-staging", tensors.FormatSize(size))})
}

func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			n += info.Size()
		}
		return nil
	})
	return n, err
}

// validationStamp records a validation that passed, so an unchanged staged
// folder is not compared with its source again.
type validationStamp struct {
	Key    string           `json:"key"`
	Report *pipeline.Report `json:"report"`
}

// validate checks the staged folder against the source (or the source
// alone when it is uploaded as it is).
func (j *job) validate(ctx context.Context, src *pipeline.Pipeline, s *staging) error {
	stampPath := s.stamp
	if b, err := os.ReadFile(stampPath); err == nil {
		var st validationStamp
		if json.Unmarshal(b, &st) == nil && st.Key == s.key && st.Report != nil && st.Report.OK() {
			j.res.Report = st.Report
			j.ev.emit(Event{Step: StepValidate, Done: true, Message: "already validated; unchanged since"})
			return nil
		}
	}
	opts := pipeline.ValidateOptions{Progress: func(done, total int64) {
		j.ev.progress(Event{Step: StepValidate, Bytes: done, Total: total})
	}}
	if !s.asIs {
		opts.Against = src
	}
	if s.asIs {
		j.ev.emit(Event{Step: StepValidate, Message: "checking that the folder loads as diffusers would load it"})
	} else {
		j.ev.emit(Event{Step: StepValidate, Message: "checking that the staged folder loads and matches the source, tensor by tensor"})
	}
	r, err := pipeline.Validate(ctx, s.p, opts)
	if err != nil {
		return err
	}
	j.res.Report = r
	for _, w := range r.Warnings {
		j.ev.emit(Event{Step: StepValidate, File: w.Path, Message: w.Message})
	}
	if !r.OK() {
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
	if b, err := json.Marshal(validationStamp{Key: s.key, Report: r}); err == nil {
		if err := os.MkdirAll(filepath.Dir(stampPath), 0o755); err == nil {
			writeFileAtomic(stampPath, b)
		}
	}
	msg := "valid"
	if r.Tensors > 0 {
		msg = fmt.Sprintf("valid: %d tensors (%s) match the source", r.Tensors, tensors.FormatSize(r.Bytes))
	}
	j.ev.emit(Event{Step: StepValidate, Done: true, Bytes: r.Bytes, Total: r.Bytes, Message: msg})
	return nil
}

// writeFileAtomic writes data to path through a temporary file and a rename.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}
