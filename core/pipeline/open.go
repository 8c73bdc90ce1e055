package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"modelpub/core/folder"
	"modelpub/core/tensors"
)

// FileKind says what a file in a pipeline folder is.
type FileKind string

const (
	KindConfig       FileKind = "config"        // config.json, scheduler_config.json, …
	KindTokenizer    FileKind = "tokenizer"     // vocab.json, merges.txt, …
	KindWeights      FileKind = "weights"       // a safetensors or .bin weights file
	KindWeightsIndex FileKind = "weights-index" // *.safetensors.index.json, *.bin.index.json
	KindOtherFormat  FileKind = "other-format"  // Flax, ONNX, OpenVINO weights, carried untouched
	KindCheckpoint   FileKind = "checkpoint"    // a root-level single-file checkpoint, carried untouched
	KindOther        FileKind = "other"         // anything else, carried untouched
)

// File is one file of a pipeline folder.
type File struct {
	Path string // relative to the pipeline folder, with '/' separators
	Size int64
	Kind FileKind
	// LFSPointer is set for a Git LFS pointer file standing in for a weights
	// file: the folder was cloned without git-lfs.
	LFSPointer bool
}

// Tensor is one tensor of a weight set and the file it is in.
type Tensor struct {
	tensors.TensorInfo
	File string // bare file name inside the component folder
}

// WeightSet is one loadable set of weights of a component: a single file or
// an index with its shards, for one variant and one format.
type WeightSet struct {
	Base    string // diffusion_pytorch_model, model or pytorch_model
	Variant string // "" for the main weights
	Format  string // "safetensors" or "bin"
	Index   string // the index's bare file name; "" for a single file
	Files   []string
	// LegacyNames is set when the files use the deprecated
	// "{base}-00001-of-00002.{variant}" naming.
	LegacyNames bool
	// Tensors in file order: from safetensors headers, or from .bin pickles
	// (Begin is then 0 and End the tensor's size); no tensor data is read.
	Tensors []Tensor
	// Metadata is the __metadata__ of the first safetensors file (the
	// files a save writes from the set carry it); Formats holds each
	// file's "format" value, in the order of Files ("" when absent).
	Metadata   tensors.Metadata
	Formats    []string
	DataBytes  int64            // tensor data bytes
	Parameters int64            // elements
	DTypeBytes map[string]int64 // data bytes per dtype
	// Shared counts .bin tensors that share a storage with another tensor.
	Shared int
	// Err is why the set cannot be read: LFS pointers, a broken file, an
	// index that disagrees with its shards.
	Err error
}

// Component is one entry of model_index.json and its folder.
type Component struct {
	Name    string // "" for a single-model folder
	Library string
	Class   string
	Role    Role
	// Null marks a [null, null] entry: an optional component left out.
	Null bool
	// Missing is set when the folder does not exist.
	Missing bool
	Files   []File
	Weights []*WeightSet
}

// Main returns the component's main weights (no variant), preferring
// safetensors, or nil.
func (c *Component) Main() *WeightSet { return c.WeightSet("", "") }

// WeightSet returns the set for variant and format; an empty format
// prefers safetensors over .bin. Of two layouts of the same set (an index
// and a single file), it returns the one the component's loader reads.
func (c *Component) WeightSet(variant, format string) *WeightSet {
	var found *WeightSet
	for _, w := range c.Weights {
		if w.Variant != variant || (format != "" && w.Format != format) {
			continue
		}
		switch {
		case found == nil,
			w.Format == "safetensors" && found.Format != "safetensors",
			w.Format == found.Format && c.loadsBefore(w, found):
			found = w
		}
	}
	return found
}

// loadsBefore reports whether the component's loader reads set a rather
// than b, two layouts of one variant and format: diffusers looks for the
// index first (the current name, then the legacy one), transformers for
// the single file first.
func (c *Component) loadsBefore(a, b *WeightSet) bool {
	if (a.Index == "") != (b.Index == "") {
		if c.Library == "transformers" {
			return a.Index == ""
		}
		return a.Index != ""
	}
	return !a.LegacyNames && b.LegacyNames
}

// Ambiguous lists, per variant and format that has more than one layout
// in the folder (an index beside a single file, or a legacy index beside a
// current one), the set the loader reads first and the ones it ignores.
func (c *Component) Ambiguous() [][]*WeightSet {
	var out [][]*WeightSet
	seen := map[[2]string]bool{}
	for _, w := range c.Weights {
		key := [2]string{w.Variant, w.Format}
		if seen[key] {
			continue
		}
		seen[key] = true
		loaded := c.WeightSet(w.Variant, w.Format)
		group := []*WeightSet{loaded}
		for _, o := range c.Weights {
			if o != loaded && o.Variant == w.Variant && o.Format == w.Format {
				group = append(group, o)
			}
		}
		if len(group) > 1 {
			out = append(out, group)
		}
	}
	return out
}

// describeAmbiguity says which files of a weight set's layouts load and
// which do not.
func describeAmbiguity(c *Component, group []*WeightSet) string {
	name := func(w *WeightSet) string {
		if w.Index != "" {
			return path.Join(c.Name, w.Index) + " (with its shards)"
		}
		return path.Join(c.Name, w.Files[0])
	}
	var ignored []string
	for _, w := range group[1:] {
		ignored = append(ignored, name(w))
	}
	what := "main weights"
	if group[0].Variant != "" {
		what = "variant " + group[0].Variant
	}
	return fmt.Sprintf("%s holds two layouts of its %s (%s): %s loads %s and ignores %s; remove the stale files",
		displayName(c.Name), what, group[0].Format, loaderName(c), name(group[0]), strings.Join(ignored, ", "))
}

func loaderName(c *Component) string {
	if c.Library == "transformers" {
		return "transformers"
	}
	return "diffusers"
}

// Variants lists the variants present, sorted, "" excluded.
func (c *Component) Variants() []string {
	var vs []string
	for _, w := range c.Weights {
		if w.Variant != "" && !slices.Contains(vs, w.Variant) {
			vs = append(vs, w.Variant)
		}
	}
	sort.Strings(vs)
	return vs
}

// Warning is something worth telling the user that does not stop Modelpub.
type Warning struct {
	Code    string `json:"code"`
	Path    string `json:"path,omitempty"` // the file or folder concerned, relative
	Message string `json:"message"`
}

// Pipeline is an opened Diffusers folder.
type Pipeline struct {
	Dir string
	// Index is nil for a single-model folder (config.json and weights).
	Index      *ModelIndex
	Components []*Component
	// RootFiles are the files at the folder's root other than
	// model_index.json and component folders: README.md, single-file
	// checkpoints, … They are carried along untouched.
	RootFiles []File
	// Unlisted are folders at the root that model_index.json does not list.
	Unlisted []string
	Warnings []Warning

	root *folder.Root
	held *heldFiles // a view made by Hold; nil otherwise
}

// Component returns the component called name.
func (p *Pipeline) Component(name string) *Component {
	for _, c := range p.Components {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// ErrNotPipeline reports a folder that is neither a pipeline nor a model.
var ErrNotPipeline = errors.New("not a Diffusers pipeline or model folder")

// ErrLFSPointer reports a Git LFS pointer file where weights should be.
var ErrLFSPointer = errors.New("a Git LFS pointer, not the file: the folder was cloned without git-lfs (run \"git lfs pull\")")

// MissingFileError is a weights file an index names that the folder lacks.
// It is a tensors.ErrMissingShard and an fs.ErrNotExist.
type MissingFileError struct {
	File  string // relative to the pipeline folder, slash-separated
	Index string // the index's bare file name
	Err   error  // what looking for it said
}

func (e *MissingFileError) Error() string { return e.File + " is missing: " + e.Index + " names it" }

func (e *MissingFileError) Unwrap() []error { return []error{tensors.ErrMissingShard, e.Err} }

// ErrMissingComponent reports a component model_index.json lists whose
// folder is missing.
var ErrMissingComponent = errors.New("component listed in model_index.json is missing")

// Open reads a pipeline folder: model_index.json, every component's file
// list, and the headers of every safetensors weights file (never tensor
// data). A folder with a config.json and weights but no model_index.json
// opens as a single-model pipeline with one component named "".
//
// Files are reached through the file policy (core/folder): a folder holding
// a symbolic link that leads outside it, or a FIFO, device or socket, is
// refused with a *PolicyError listing every such entry.
func Open(ctx context.Context, dir string) (*Pipeline, error) {
	return OpenWith(ctx, dir, OpenOptions{})
}

// OpenOptions say how Open reaches files.
type OpenOptions struct {
	// AllowOutsideLinks follows links that lead outside the folder (the user
	// trusts it). Special files are refused all the same.
	AllowOutsideLinks bool
}

// PolicyError lists the entries of a folder the file policy refuses.
type PolicyError struct {
	Dir      string
	Problems []*folder.Error
}

func (e *PolicyError) Error() string {
	var b strings.Builder
	what := "entries"
	if len(e.Problems) == 1 {
		what = "entry"
	}
	fmt.Fprintf(&b, "%s: %d %s refused by the file policy:", e.Dir, len(e.Problems), what)
	for i, p := range e.Problems {
		if i == 5 {
			fmt.Fprintf(&b, "\n  … and %d more", len(e.Problems)-5)
			break
		}
		b.WriteString("\n  ")
		b.WriteString(p.Error())
	}
	return b.String()
}

// Unwrap gives the problems, so errors.Is(err, folder.ErrOutsideLink)
// tells whether opting in to outside links would help.
func (e *PolicyError) Unwrap() []error {
	out := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		out[i] = p
	}
	return out
}

// OnlyLinks reports whether every problem is a link leading outside (which
// the user may choose to allow), rather than a special file (never read).
func (e *PolicyError) OnlyLinks() bool {
	for _, p := range e.Problems {
		if !errors.Is(p, folder.ErrOutsideLink) {
			return false
		}
	}
	return true
}

// OpenWith is Open with options.
func OpenWith(ctx context.Context, dir string, opts OpenOptions) (*Pipeline, error) {
	// Paths are absolute from here on: the file policy reads a relative
	// path as relative to the folder, not to the working directory.
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s: %w: it is a file", dir, ErrNotPipeline)
	}
	root, err := folder.New(dir, folder.Options{AllowOutsideLinks: opts.AllowOutsideLinks})
	if err != nil {
		return nil, err
	}
	problems, err := root.Problems(ctx)
	if err != nil {
		return nil, err
	}
	if len(problems) > 0 {
		return nil, &PolicyError{Dir: dir, Problems: problems}
	}
	p := &Pipeline{Dir: dir, root: root}
	data, err := root.ReadFile(ModelIndexFile, 0)
	switch {
	case err == nil:
		if p.Index, err = ParseModelIndex(data); err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(dir, ModelIndexFile), err)
		}
		if err := p.openComponents(ctx); err != nil {
			return nil, err
		}
	case errors.Is(err, os.ErrNotExist):
		if err := p.openSingleModel(ctx); err != nil {
			return nil, err
		}
	default:
		return nil, err
	}
	return p, nil
}

// Files is the file policy the pipeline's files are reached through.
func (p *Pipeline) Files() *folder.Root { return p.root }

func (p *Pipeline) openComponents(ctx context.Context) error {
	listed := map[string]bool{}
	for _, ref := range p.Index.Components {
		listed[ref.Name] = true
		c := &Component{Name: ref.Name, Library: ref.Library, Class: ref.Class, Null: ref.IsNull(),
			Role: RoleOf(ref.Library, ref.Class)}
		p.Components = append(p.Components, c)
		if c.Null {
			continue
		}
		cdir := filepath.Join(p.Dir, ref.Name)
		st, err := p.root.Stat(cdir)
		if err != nil || !st.IsDir() {
			c.Missing = true
			return fmt.Errorf("%s: %w: %q (%s.%s) has no folder %s", p.Dir, ErrMissingComponent, ref.Name, ref.Library, ref.Class, cdir)
		}
		if err := p.scanComponent(ctx, c, cdir, ref.Name+"/"); err != nil {
			return err
		}
	}
	entries, err := p.root.ReadDir(p.Dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name
		switch {
		case name == ModelIndexFile, listed[name] && e.IsDir():
		case e.IsDir():
			if strings.HasPrefix(name, ".") {
				continue // .git, .cache: never part of a model
			}
			p.Unlisted = append(p.Unlisted, name)
			p.warn("unlisted-folder", name, "folder %s is not listed in model_index.json; it is carried along untouched", name)
		default:
			f, err := p.rootFile(name)
			if err != nil {
				return err
			}
			p.RootFiles = append(p.RootFiles, f)
		}
	}
	p.crossChecks()
	return nil
}

func (p *Pipeline) rootFile(name string) (File, error) {
	path := filepath.Join(p.Dir, name)
	st, err := p.root.Stat(path)
	if err != nil {
		return File{}, err
	}
	f := File{Path: name, Size: st.Size(), Kind: KindOther}
	if strings.HasSuffix(name, ".safetensors") || strings.HasSuffix(name, ".ckpt") || strings.HasSuffix(name, ".bin") ||
		strings.HasSuffix(name, ".pt") || strings.HasSuffix(name, ".pth") {
		f.Kind = KindCheckpoint
		f.LFSPointer = p.isLFSPointer(path, f.Size)
		p.warn("single-file-checkpoint", name, "%s is a single-file checkpoint at the root; it is carried along untouched", name)
	}
	return f, nil
}

// openSingleModel opens a folder holding one model: config.json and weights.
func (p *Pipeline) openSingleModel(ctx context.Context) error {
	cfg, err := p.root.ReadFile("config.json", 0)
	if err != nil {
		var fe *folder.Error
		if errors.As(err, &fe) {
			return err
		}
		return fmt.Errorf("%s: %w: there is neither a %s nor a config.json", p.Dir, ErrNotPipeline, ModelIndexFile)
	}
	c := &Component{Role: RoleModel}
	var probe struct {
		ClassName     string   `json:"_class_name"`
		Architectures []string `json:"architectures"`
	}
	if err := json.Unmarshal(cfg, &probe); err != nil {
		return fmt.Errorf("%s: config.json: %w", p.Dir, err)
	}
	switch {
	case probe.ClassName != "":
		c.Library, c.Class = "diffusers", probe.ClassName
	case len(probe.Architectures) > 0:
		c.Library, c.Class = "transformers", probe.Architectures[0]
	}
	if err := p.scanComponent(ctx, c, p.Dir, ""); err != nil {
		return err
	}
	if len(c.Weights) == 0 {
		return fmt.Errorf("%s: %w: config.json but no weights and no %s", p.Dir, ErrNotPipeline, ModelIndexFile)
	}
	p.Components = []*Component{c}
	p.crossChecks()
	return nil
}

// scanComponent lists a component folder, classifies its files and reads
// the headers of its weights.
func (p *Pipeline) scanComponent(ctx context.Context, c *Component, cdir, prefix string) error {
	entries, err := p.root.ReadDir(cdir)
	if err != nil {
		return err
	}
	indexed := map[string]bool{} // shard files claimed by an index
	var sets []*WeightSet
	var singles []string
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		name := e.Name
		if e.IsDir() {
			if prefix != "" && !strings.HasPrefix(name, ".") {
				c.Files = append(c.Files, File{Path: prefix + name + "/", Kind: KindOther})
				p.warn("subfolder", prefix+name, "subfolder %s is carried along untouched", prefix+name)
			}
			continue
		}
		path := filepath.Join(cdir, name)
		f := File{Path: prefix + name, Size: e.Info.Size(), Kind: KindOther}
		if prefix == "" && name == ModelIndexFile {
			continue
		}
		if ix, ok := tensors.ParseIndexFileName(name); ok && weightBases[ix.Base] {
			f.Kind = KindWeightsIndex
			set := &WeightSet{Base: ix.Base, Variant: ix.Variant, Format: ix.Ext, Index: name, LegacyNames: ix.Legacy}
			data, err := p.root.ReadFile(path, tensors.MaxIndexSize)
			if err == nil && isLFSPointerBytes(data) {
				f.LFSPointer = true
				set.Err = fmt.Errorf("%s: %w", prefix+name, ErrLFSPointer)
			} else if err != nil {
				set.Err = err
			} else if index, err := tensors.ParseIndex(data); err != nil {
				set.Err = fmt.Errorf("%s: %w", prefix+name, err)
			} else {
				set.Files = index.Shards()
				for _, s := range set.Files {
					indexed[s] = true
				}
			}
			sets = append(sets, set)
		} else if wn, ok := tensors.ParseWeightsFileName(name); ok && weightBases[wn.Base] {
			f.Kind = KindWeights
			f.LFSPointer = p.isLFSPointer(path, f.Size)
			singles = append(singles, name)
		} else if configFiles[name] {
			f.Kind = KindConfig
		} else if tokenizerFiles[name] {
			f.Kind = KindTokenizer
		} else if _, ok := otherFormat(name); ok {
			f.Kind = KindOtherFormat
		}
		if !strings.Contains(name, ".") && prefix != "" {
			p.warn("dotless-file", f.Path, "%s has no dot in its name: diffusers' variant detection fails on it (IndexError) when loading with variant=; rename it or move it out", f.Path)
		}
		c.Files = append(c.Files, f)
	}
	for _, name := range singles {
		if indexed[name] {
			continue
		}
		wn, _ := tensors.ParseWeightsFileName(name)
		if wn.Sharded() {
			p.warn("orphan-shard", prefix+name, "%s is a shard but no index names it; loaders ignore it", prefix+name)
			continue
		}
		sets = append(sets, &WeightSet{Base: wn.Base, Variant: wn.Variant, Format: wn.Ext, Files: []string{name}})
	}
	for _, set := range sets {
		p.readWeightSet(c, cdir, prefix, set)
	}
	sort.SliceStable(sets, func(i, j int) bool {
		a, b := sets[i], sets[j]
		if a.Variant != b.Variant {
			return a.Variant < b.Variant
		}
		return a.Format > b.Format // safetensors before bin
	})
	c.Weights = sets
	for _, f := range c.Files {
		if f.Kind == KindOtherFormat {
			p.warn("other-format", f.Path, "%s is a Flax/ONNX/OpenVINO file; it is carried along untouched", f.Path)
		}
	}
	return nil
}

// readWeightSet reads the headers of a set's safetensors files.
func (p *Pipeline) readWeightSet(c *Component, cdir, prefix string, set *WeightSet) {
	if set.Err != nil {
		return
	}
	for _, name := range set.Files {
		path := filepath.Join(cdir, name)
		st, err := p.root.Stat(path)
		if err == nil && !st.Mode().IsRegular() {
			err = &folder.Error{Path: path, Err: folder.ErrNotRegular}
		}
		if errors.Is(err, fs.ErrNotExist) && set.Index != "" {
			set.Err = &MissingFileError{File: prefix + name, Index: set.Index, Err: err}
			return
		}
		if err != nil {
			set.Err = fmt.Errorf("%s: %w", prefix+name, err)
			return
		}
		if p.isLFSPointer(path, st.Size()) {
			set.Err = fmt.Errorf("%s: %w", prefix+name, ErrLFSPointer)
			return
		}
	}
	if set.Format == "bin" {
		p.readBinSet(cdir, prefix, set)
		return
	}
	set.DTypeBytes = map[string]int64{}
	add := func(file string, h *tensors.Header) {
		if len(set.Formats) == 0 {
			set.Metadata = h.Metadata
		}
		format, _ := h.Metadata.Get(tensors.MetadataKeyFormat)
		set.Formats = append(set.Formats, format)
		set.Tensors = slices.Grow(set.Tensors, len(h.Tensors))
		for _, t := range h.Tensors {
			set.Tensors = append(set.Tensors, Tensor{TensorInfo: t, File: file})
			set.DataBytes += t.Size()
			set.Parameters += t.NumElements()
			set.DTypeBytes[t.DType.String()] += t.Size()
		}
	}
	if set.Index == "" {
		h, err := tensors.ReadHeaderFile(filepath.Join(cdir, set.Files[0]))
		if err != nil {
			set.Err = err
			return
		}
		add(set.Files[0], h)
		return
	}
	// One shard's header at a time (a set of a million tensors has
	// headers of 100 MB), in the order of set.Files.
	if err := tensors.ReadShardedSet(filepath.Join(cdir, set.Index), add); err != nil {
		set.Tensors, set.DataBytes, set.Parameters, set.DTypeBytes = nil, 0, 0, map[string]int64{}
		set.Metadata, set.Formats = nil, nil
		set.Err = err
	}
}

// crossChecks adds the warnings that need every component.
func (p *Pipeline) crossChecks() {
	variants := map[string][]string{} // variant → components that have it
	var weighted []string
	for _, c := range p.Components {
		if c.Role != RoleModel || c.Null {
			continue
		}
		weighted = append(weighted, c.Name)
		formats := map[string]map[string]bool{}
		for _, w := range c.Weights {
			if formats[w.Variant] == nil {
				formats[w.Variant] = map[string]bool{}
			}
			formats[w.Variant][w.Format] = true
			if w.Err != nil && !errors.Is(w.Err, ErrLFSPointer) {
				p.warn("unreadable-weights", c.Name, "%v", w.Err)
			}
			if w.LegacyNames {
				p.warn("legacy-variant-names", c.Name, "%s uses the deprecated variant naming; Modelpub writes the current one", c.Name)
			}
		}
		both := false
		for v, fm := range formats {
			if v != "" && !slices.Contains(variants[v], c.Name) {
				variants[v] = append(variants[v], c.Name)
			}
			both = both || fm["bin"] && fm["safetensors"]
		}
		for _, group := range c.Ambiguous() {
			p.warn("ambiguous-layout", c.Name, "%s", describeAmbiguity(c, group))
		}
		if both {
			p.warn("bin-and-safetensors", c.Name, "%s has .bin and .safetensors weights side by side; Modelpub reads and writes the safetensors", displayName(c.Name))
		}
		if len(c.Weights) == 0 && c.Name != "" {
			p.warn("no-weights", c.Name, "model component %s has no weights file", c.Name)
		}
	}
	for v, have := range variants {
		if len(have) < len(weighted) {
			var missing []string
			for _, n := range weighted {
				if !slices.Contains(have, n) {
					missing = append(missing, n)
				}
			}
			p.warn("partial-variant", "", "variant %s exists for %s but not for %s: those load full-precision weights with variant=%s",
				v, strings.Join(have, ", "), strings.Join(missing, ", "), v)
		}
	}
	var pointers []string
	for _, f := range p.RootFiles {
		if f.LFSPointer {
			pointers = append(pointers, f.Path)
		}
	}
	for _, c := range p.Components {
		for _, f := range c.Files {
			if f.LFSPointer {
				pointers = append(pointers, f.Path)
			}
		}
	}
	if len(pointers) > 0 {
		example := strings.Join(pointers[:min(3, len(pointers))], ", ")
		if len(pointers) > 3 {
			example += ", …"
		}
		p.warn("lfs-pointer", pointers[0], "%d files are Git LFS pointers, not the files (%s): the folder was cloned without git-lfs; run \"git lfs pull\" in it",
			len(pointers), example)
	}
	sort.SliceStable(p.Warnings, func(i, j int) bool { return p.Warnings[i].Code < p.Warnings[j].Code })
}

func displayName(name string) string {
	if name == "" {
		return "the model"
	}
	return name
}

func (p *Pipeline) warn(code, path, format string, a ...any) {
	p.Warnings = append(p.Warnings, Warning{Code: code, Path: path, Message: fmt.Sprintf(format, a...)})
}

// lfsPointerPrefix starts every Git LFS pointer file.
var lfsPointerPrefix = []byte("version https://git-lfs.github.com/spec/")

// isLFSPointer reports a small file that is a Git LFS pointer.
func (p *Pipeline) isLFSPointer(path string, size int64) bool {
	if size > 1024 {
		return false
	}
	f, err := p.root.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	buf := make([]byte, len(lfsPointerPrefix))
	if _, err := io.ReadFull(f, buf); err != nil {
		return false
	}
	return isLFSPointerBytes(buf)
}

func isLFSPointerBytes(b []byte) bool { return bytes.HasPrefix(b, lfsPointerPrefix) }
