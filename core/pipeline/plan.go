package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"modelpub/core/tensors"
)

// SavePlan is what Save writes for a pipeline's weights, computed by Plan
// before anything is written: every weights file with its exact size and
// the tensors it holds, in the order they are laid out on disk.
type SavePlan struct {
	// MaxShardSize and Variant are the options the plan was made for;
	// MaxShardSize 0 means each library's default (see ComponentPlan).
	MaxShardSize int64
	Variant      string
	// Components are the model components, in model_index.json order.
	Components []ComponentPlan
	// Bytes is the size of every weights file and index to write.
	Bytes int64
	// CopyBytes is what Save writes besides the weights: model_index.json
	// and the files carried unchanged (configs, tokenizers, root files).
	// Folders carried whole (unlisted folders, component subfolders) are
	// not counted: their size is not known without walking them.
	CopyBytes int64
}

// Total is the size of the whole output folder as far as it is known:
// Bytes plus CopyBytes.
func (p *SavePlan) Total() int64 { return p.Bytes + p.CopyBytes }

// Component returns the plan of the component called name, or nil.
func (p *SavePlan) Component(name string) *ComponentPlan {
	for i := range p.Components {
		if p.Components[i].Name == name {
			return &p.Components[i]
		}
	}
	return nil
}

// ComponentPlan is the weights one model component gets.
type ComponentPlan struct {
	Name    string // "" for a single-model folder
	Library string
	// MaxShardSize is the limit applied: the chosen one, or the default
	// of the component's library (DiffusersMaxShardSize,
	// TransformersMaxShardSize).
	MaxShardSize int64
	// Base names the files: diffusion_pytorch_model or model
	// (pytorch_model becomes model, as save_pretrained names it today).
	Base string
	// Sets are the weight sets written: the main weights first, then the
	// variant converted from them if one was asked for, then the
	// variants the folder already has, carried over (resharded).
	Sets []SetPlan
	// Bytes is the size of the sets' files and indexes.
	Bytes int64
}

// SetPlan is one weight set as written: a single file, or shards and
// their index.
type SetPlan struct {
	Variant string // "" for the main weights
	// To is the dtype the set's floating-point tensors are converted to,
	// 0 when they are copied as they are.
	To tensors.DType
	// Index is the index's bare file name, "" for a single file;
	// IndexSize is its size in bytes.
	Index     string
	IndexSize int64
	Files     []PlannedFile
	// Bytes is the size of the files and the index.
	Bytes int64

	src  *WeightSet       // the set the tensors are read from
	meta tensors.Metadata // __metadata__ of every file, "format":"pt" included
}

// PlannedFile is one weights file.
type PlannedFile struct {
	Name string // bare file name inside the component folder
	// Size is the file's size on disk: the header and the tensor data.
	Size int64
	// Tensors in the order of their bytes in the file.
	Tensors []PlannedTensor
}

// PlannedTensor is one tensor of a weights file.
type PlannedTensor struct {
	Name  string
	DType tensors.DType
	Shape []int64
	// Offset is where the tensor's bytes start in the file, header
	// included; Bytes is their count.
	Offset, Bytes int64
}

// Plan computes, without writing anything, the weights files Save writes
// for p with opts (Overwrite and Progress are ignored): which sets, how
// they are sharded, what each file holds and its exact size in bytes. It
// reads nothing: the __metadata__ the written files carry is the one Open
// kept. Save itself follows this plan.
//
// Errors are those Save reports before writing: an unsupported variant, a
// model component with no readable main weights, a carried variant that
// cannot be read, a shard limit the shard names cannot express.
func Plan(p *Pipeline, opts SaveOptions) (*SavePlan, error) { return makePlan(p, opts, true) }

// makePlan is Plan; without tensors, PlannedFile.Tensors stay nil (Save
// needs the files and their sizes, not a second list of every tensor).
func makePlan(p *Pipeline, opts SaveOptions, withTensors bool) (*SavePlan, error) {
	to, ok := variantDTypes[opts.Variant]
	if opts.Variant != "" && !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnsupportedVariant, opts.Variant)
	}
	plan := &SavePlan{MaxShardSize: opts.MaxShardSize, Variant: opts.Variant}
	if p.Index != nil {
		data, err := p.Index.MarshalPython()
		if err != nil {
			return nil, err
		}
		plan.CopyBytes += int64(len(data))
	}
	for _, f := range p.RootFiles {
		plan.CopyBytes += f.Size
	}
	for _, c := range p.Components {
		if c.Null {
			continue
		}
		model := c.Role == RoleModel
		for _, f := range c.Files {
			if !model || f.Kind != KindWeights && f.Kind != KindWeightsIndex {
				plan.CopyBytes += f.Size
			}
		}
		if !model {
			continue
		}
		cp, err := planComponent(c, opts, to, withTensors)
		if err != nil {
			return nil, err
		}
		plan.Bytes += cp.Bytes
		plan.Components = append(plan.Components, cp)
	}
	return plan, nil
}

func planComponent(c *Component, opts SaveOptions, to tensors.DType, withTensors bool) (ComponentPlan, error) {
	main, err := sourceWeights(c)
	if err != nil {
		return ComponentPlan{}, err
	}
	cp := ComponentPlan{Name: c.Name, Library: c.Library, MaxShardSize: opts.MaxShardSize, Base: main.Base}
	if cp.Base == "pytorch_model" {
		cp.Base = "model"
	}
	if cp.MaxShardSize == 0 {
		cp.MaxShardSize = DiffusersMaxShardSize
		if c.Library == "transformers" {
			cp.MaxShardSize = TransformersMaxShardSize
		}
	}
	add := func(src *WeightSet, variant string, to tensors.DType) error {
		sp, err := planSet(src, setMetadata(src), cp.Base, variant, cp.MaxShardSize, to, withTensors)
		if err != nil {
			return fmt.Errorf("%s: %w", displayName(c.Name), err)
		}
		cp.Sets = append(cp.Sets, sp)
		cp.Bytes += sp.Bytes
		return nil
	}
	if err := add(main, "", 0); err != nil {
		return ComponentPlan{}, err
	}
	if opts.Variant != "" {
		if err := add(main, opts.Variant, to); err != nil {
			return ComponentPlan{}, err
		}
	}
	for _, w := range carriedSets(c, opts.Variant) {
		if w.Variant == "" {
			continue // the main weights, planned above
		}
		if w.Err != nil {
			return ComponentPlan{}, fmt.Errorf("%s variant %s: %w: %w", displayName(c.Name), w.Variant, ErrUnreadableWeights, w.Err)
		}
		if err := add(w, w.Variant, 0); err != nil {
			return ComponentPlan{}, err
		}
	}
	return cp, nil
}

// setMetadata is the __metadata__ the files written from src carry: that of
// src's first safetensors file as Open read it (none for .bin), with
// "format":"pt".
func setMetadata(src *WeightSet) tensors.Metadata {
	return tensors.EnsureFormatPT(src.Metadata)
}

// planSet lays out the tensors of src as the set (base, variant) exactly as
// tensors.WriteSharded writes them, with tensors.PlanSharded: shards in the
// order of src.Tensors, each file's layout, the index with its
// total_parameters.
func planSet(src *WeightSet, meta tensors.Metadata, base, variant string, maxShard int64, to tensors.DType, withTensors bool) (SetPlan, error) {
	sp := SetPlan{Variant: variant, To: to, src: src, meta: meta}

	// The sizes live in one slice; a *sizeOnly in an interface costs no
	// allocation per tensor.
	sizes := make([]sizeOnly, len(src.Tensors))
	ws := make([]tensors.WriteTensor, len(src.Tensors))
	for i, t := range src.Tensors {
		sizes[i] = sizeOnly(t.Size())
		ws[i] = tensors.WriteTensor{Name: t.Name, DType: t.DType, Shape: t.Shape, Data: &sizes[i]}
		if converts(t.DType, to) {
			sizes[i] = sizeOnly(variantBytes(t.TensorInfo, to))
			ws[i].DType = to
		}
	}
	l, err := tensors.PlanSharded(ws, tensors.ShardedOptions{MaxShardSize: maxShard, Base: base, Variant: variant, Metadata: meta})
	if err != nil {
		return SetPlan{}, err
	}
	sp.Files = make([]PlannedFile, len(l.Files))
	for i, fl := range l.Files {
		f := PlannedFile{Name: fl.Name, Size: fl.Size}
		if withTensors {
			f.Tensors = make([]PlannedTensor, 0, fl.Count)
			for _, t := range l.Tensors(i, ws) {
				f.Tensors = append(f.Tensors, PlannedTensor{Name: t.Name, DType: t.DType, Shape: t.Shape, Offset: fl.DataStart + t.Begin, Bytes: t.Size()})
			}
		}
		sp.Files[i] = f
	}
	sp.Index, sp.IndexSize, sp.Bytes = l.Index, l.IndexSize, l.Bytes
	return sp, nil
}

// converts reports whether a tensor of dtype d is converted when writing a
// set whose floats become to (0: none are).
func converts(d, to tensors.DType) bool { return to != 0 && convertible(d) && d != to }

// sizeOnly is a tensors.Source that only has a size: enough to lay out a
// file, never to write one.
type sizeOnly int64

func (s sizeOnly) Size() int64 { return int64(s) }

func (s sizeOnly) CopyTo(context.Context, io.Writer) error {
	return errors.New("pipeline: a planned tensor has no data")
}

// CurrentLayout describes the weight set of c for variant as it is in the
// folder (safetensors preferred over .bin), in the shape Plan gives, so the
// two can be shown side by side; nil when c has no such set. A set that
// cannot be read has its files with their sizes but no tensors.
func CurrentLayout(c *Component, variant string) *SetPlan {
	w := c.WeightSet(variant, "")
	if w == nil {
		return nil
	}
	prefix := ""
	if c.Name != "" {
		prefix = c.Name + "/"
	}
	sizes := make(map[string]int64, len(c.Files))
	for _, f := range c.Files {
		if _, seen := sizes[f.Path]; !seen {
			sizes[f.Path] = f.Size
		}
	}
	size := func(name string) int64 { return sizes[prefix+name] }
	// The tensors by file, in one pass: a set of a million tensors in
	// hundreds of shards.
	byFile := map[string][]PlannedTensor{}
	if w.Err == nil {
		for _, t := range w.Tensors {
			byFile[t.File] = append(byFile[t.File], PlannedTensor{Name: t.Name, DType: t.DType, Shape: t.Shape, Offset: t.Begin, Bytes: t.Size()})
		}
	}
	sp := &SetPlan{Variant: variant, Index: w.Index}
	if w.Index != "" {
		sp.IndexSize = size(w.Index)
		sp.Bytes += sp.IndexSize
	}
	listed := map[string]bool{}
	for _, name := range w.Files {
		f := PlannedFile{Name: name, Size: size(name), Tensors: byFile[name]}
		if listed[name] { // each file has its own list, whose offsets are set below
			f.Tensors = slices.Clone(f.Tensors)
		}
		listed[name] = true
		var data int64
		for _, t := range f.Tensors {
			data += t.Bytes
		}
		// A safetensors data buffer ends the file and tensors cover it
		// whole, so the header is what comes before; .bin offsets are
		// not known and the tensors are laid out one after the other.
		header := f.Size - data
		var next int64
		for i := range f.Tensors {
			if w.Format == "safetensors" {
				f.Tensors[i].Offset += header
			} else {
				f.Tensors[i].Offset = next
				next += f.Tensors[i].Bytes
			}
		}
		sp.Files = append(sp.Files, f)
		sp.Bytes += f.Size
	}
	return sp
}

// CurrentVariants lists the variants c has in the folder: "" for the main
// weights first, then the others sorted.
func CurrentVariants(c *Component) []string {
	out := []string{}
	if c.Main() != nil {
		out = append(out, "")
	}
	return slices.Concat(out, c.Variants())
}
