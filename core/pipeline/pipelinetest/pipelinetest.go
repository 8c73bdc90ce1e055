// Package pipelinetest writes synthetic Stable Diffusion 1.5 pipeline
// folders for tests and benchmarks: the real component layout, the real
// configuration and tokenizer files (embedded from sd15/, see its
// SOURCES.md), and the real tensor names, counts, dtypes and, at Scale 1,
// shapes, filled with deterministic random values.
//
// At Scale 1 a pipeline is about 4.27 GB of F32 (5.48 GB with the safety
// checker); at Scale 0.001 it is about 6 MB, 1.6 MB of which is the
// tokenizer. The configuration files always describe the full-size model:
// at Scale < 1 the tensor shapes are smaller than config.json says.
package pipelinetest

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"

	"modelpub/core/tensors"
)

// files are the real files of SD-1.5 that WriteSD15 writes unchanged.
//
//go:embed sd15/*.json sd15/*/*
var files embed.FS

// Options describe the pipeline WriteSD15 writes.
type Options struct {
	// Scale is about the fraction of the full size, in bytes: 1 gives the
	// real SD-1.5 shapes (UNet 3.44 GB, text encoder 492 MB, VAE 335 MB,
	// all F32), 0.001 gives a few MB. Tensor names and counts never
	// change. See ScaleWidth for the rule. It must be > 0.
	Scale float64
	// Seed picks the random values. The same Options give the same bytes.
	Seed int64
	// SafetyChecker also writes safety_checker/ (CLIP ViT-L/14 vision
	// tower, 1.22 GB at Scale 1) and the real model_index.json. Without it,
	// model_index.json gets "safety_checker": [null, null] and
	// "requires_safety_checker": true, which is what diffusers writes for
	// a StableDiffusionPipeline loaded with safety_checker=None (the flag
	// defaults to true). The other keys stay as in the real file, so
	// "_diffusers_version" is still "0.6.0" and there is no
	// "image_encoder": [null, null], which diffusers 0.22 and later would
	// add. feature_extractor/ is written in both cases.
	SafetyChecker bool
	// FP16Variant names weight components (UNet, TextEncoder, VAE,
	// SafetyChecker) that also get an fp16 variant beside the main
	// weights, e.g. unet/diffusion_pytorch_model.fp16.safetensors: every
	// F32 tensor converted to F16 (so FP16UnsafeTensor holds ±Inf and ±0
	// there), the I64 position ids unchanged.
	FP16Variant []string
	// MaxShardSize, when > 0, writes every weight set with
	// tensors.WriteSharded at this max_shard_size (bytes of tensor data):
	// shards and an index when the set is larger, otherwise a single file.
	// When 0 every weight set is a single file.
	MaxShardSize int64
	// LegacyVAENames names the VAE's mid-block attention tensors as the
	// real SD-1.5 vae/diffusion_pytorch_model.safetensors does, with the
	// names of diffusers' deprecated attention block (query, key, value,
	// proj_attn instead of to_q, to_k, to_v, to_out.0; diffusers renames
	// them on load). The fp16 variant uses the same names as the main file.
	LegacyVAENames bool
	// Progress, if set, is called as tensor data is written, with the bytes
	// written so far and the total of every weights file; it may be
	// called from several goroutines at once.
	Progress func(done, total int64)
}

// ComponentManifest describes one component folder as written.
type ComponentManifest struct {
	Name string
	// Files are all files of the folder, as slash paths relative to the
	// pipeline folder ("unet/config.json"), sorted.
	Files []string
	// WeightFiles are the main weights: one file or the shards, in order;
	// IndexFile is their index, "" for a single file.
	WeightFiles []string
	IndexFile   string
	// VariantFiles and VariantIndexFile are the same for the fp16
	// variant, when one was asked for.
	VariantFiles     []string
	VariantIndexFile string
	// Specs are the tensors of the weights, Tensors their names, both in
	// state-dict order (the order sharding follows); nil for a folder
	// without weights.
	Specs   []Spec
	Tensors []string
	// Parameters counts the elements of the floating-point tensors.
	Parameters int64
	// DataBytes is the tensor data of the main weights: their files' size
	// without headers, the index's metadata.total_size.
	DataBytes int64
	// Bytes is the size of all files of the folder.
	Bytes int64
}

// Manifest describes a pipeline folder as written.
type Manifest struct {
	Dir string
	// Files are all files written, as sorted slash paths relative to Dir,
	// model_index.json included.
	Files []string
	// Bytes is the size of all files.
	Bytes int64
	// Components maps each component folder name (unet, text_encoder, vae,
	// safety_checker, scheduler, tokenizer, feature_extractor) to what was
	// written into it.
	Components map[string]ComponentManifest
}

// WeightsBase is the base of the weights file names of a component:
// "diffusion_pytorch_model" for diffusers models, "model" for transformers
// ones.
func WeightsBase(component string) string {
	switch component {
	case UNet, VAE:
		return "diffusion_pytorch_model"
	}
	return "model"
}

// ErrDirNotEmpty is returned by WriteSD15 for a folder that has entries.
var ErrDirNotEmpty = errors.New("pipelinetest: folder is not empty")

// WriteSD15 writes a Stable Diffusion 1.5 pipeline folder into dir, which is
// created if missing and must be empty, and returns what it wrote. A
// tensor's values depend only on opts.Seed, the component and the tensor
// name (and its length, through opts.Scale), so sharding and variants do not
// change them. No tensor is ever held in memory: values are generated
// 1 MiB at a time (in parallel for large tensors) as the file is written.
// On an error the folder may hold part of the pipeline.
func WriteSD15(ctx context.Context, dir string, opts Options) (*Manifest, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !ValidScale(opts.Scale) {
		return nil, fmt.Errorf("pipelinetest: invalid scale %v: it must be finite and > 0", opts.Scale)
	}
	if opts.MaxShardSize < 0 {
		return nil, fmt.Errorf("pipelinetest: negative MaxShardSize %d", opts.MaxShardSize)
	}
	weights := []string{UNet, TextEncoder, VAE}
	if opts.SafetyChecker {
		weights = append(weights, SafetyChecker)
	}
	for _, c := range opts.FP16Variant {
		if !slices.Contains(weights, c) {
			return nil, fmt.Errorf("pipelinetest: FP16Variant names %q, which is not a weight component written (%s)", c, strings.Join(weights, ", "))
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if entries, err := os.ReadDir(dir); err != nil {
		return nil, err
	} else if len(entries) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrDirNotEmpty, dir)
	}

	count := progressCounter(weights, opts)
	m := &Manifest{Dir: dir, Components: map[string]ComponentManifest{}}
	err := fs.WalkDir(files, "sd15", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel := strings.TrimPrefix(p, "sd15/")
		comp, _, inFolder := strings.Cut(rel, "/")
		if comp == SafetyChecker && !opts.SafetyChecker {
			return nil
		}
		data, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		if rel == "model_index.json" && !opts.SafetyChecker {
			if data, err = modelIndexWithoutSafetyChecker(data); err != nil {
				return err
			}
		}
		if err := writeFile(filepath.Join(dir, filepath.FromSlash(rel)), data); err != nil {
			return err
		}
		m.add(rel, int64(len(data)))
		if inFolder {
			c := m.Components[comp]
			c.Name = comp
			c.Files = append(c.Files, rel)
			c.Bytes += int64(len(data))
			m.Components[comp] = c
		}
		return nil
	})
	if err != nil {
		return nil, err
	}

	for _, comp := range weights {
		c, err := writeWeights(ctx, dir, comp, opts, count)
		if err != nil {
			return nil, err
		}
		m.Files = append(m.Files, c.Files...)
		m.Bytes += c.Bytes
		configs := m.Components[comp]
		c.Name = comp
		c.Files = append(c.Files, configs.Files...)
		c.Bytes += configs.Bytes
		slices.Sort(c.Files)
		m.Components[comp] = c
	}
	slices.Sort(m.Files)
	return m, nil
}

func (m *Manifest) add(rel string, size int64) {
	m.Files = append(m.Files, rel)
	m.Bytes += size
}

// weightFiles are all weights and index files of c.
func (c *ComponentManifest) weightFiles() []string {
	out := slices.Concat(c.WeightFiles, c.VariantFiles)
	for _, ix := range []string{c.IndexFile, c.VariantIndexFile} {
		if ix != "" {
			out = append(out, ix)
		}
	}
	return out
}

// writeWeights writes the weights of one component, and the fp16 variant
// if asked, and returns them with Files and Bytes covering these files only.
// count, if not nil, is told every tensor byte written.
func writeWeights(ctx context.Context, dir, comp string, opts Options, count func(int64)) (ComponentManifest, error) {
	specs := SD15TensorSpecs(comp, opts.Scale)
	if comp == VAE && opts.LegacyVAENames {
		specs = LegacyVAENames(specs)
	}
	c := ComponentManifest{
		Specs:      specs,
		Tensors:    make([]string, len(specs)),
		Parameters: Parameters(specs),
		DataBytes:  DataBytes(specs),
	}
	for i, s := range specs {
		c.Tensors[i] = s.Name
	}
	folder := filepath.Join(dir, comp)
	// write writes one weight set and returns its files and index, as
	// paths relative to dir.
	write := func(variant string) (files []string, index string, err error) {
		wt, err := writeTensors(opts.Seed, comp, specs, variant)
		if err != nil {
			return nil, "", err
		}
		if count != nil {
			for i := range wt {
				wt[i].Data = countedSource{wt[i].Data, count}
			}
		}
		base := WeightsBase(comp)
		if opts.MaxShardSize == 0 {
			name := tensors.WeightsFileName(base, variant)
			if _, err := tensors.WriteFile(ctx, filepath.Join(folder, name), wt, nil, tensors.WriteOptions{}); err != nil {
				return nil, "", err
			}
			return []string{path.Join(comp, name)}, "", nil
		}
		res, err := tensors.WriteSharded(ctx, folder, wt, tensors.ShardedOptions{MaxShardSize: opts.MaxShardSize, Base: base, Variant: variant})
		if err != nil {
			return nil, "", err
		}
		for _, f := range res.Files {
			files = append(files, path.Join(comp, f))
		}
		if res.IndexFile != "" {
			index = path.Join(comp, res.IndexFile)
		}
		return files, index, nil
	}
	var err error
	if c.WeightFiles, c.IndexFile, err = write(""); err != nil {
		return c, err
	}
	if slices.Contains(opts.FP16Variant, comp) {
		if c.VariantFiles, c.VariantIndexFile, err = write("fp16"); err != nil {
			return c, err
		}
	}
	for _, rel := range c.weightFiles() {
		st, err := os.Stat(filepath.Join(dir, filepath.FromSlash(rel)))
		if err != nil {
			return c, err
		}
		c.Files = append(c.Files, rel)
		c.Bytes += st.Size()
	}
	return c, nil
}

// writeTensors returns the tensors of a weights file: random F32 and I64
// sources, and for the fp16 variant the F32 ones converted to F16.
func writeTensors(seed int64, comp string, specs []Spec, variant string) ([]tensors.WriteTensor, error) {
	wt := make([]tensors.WriteTensor, len(specs))
	for i, s := range specs {
		src := newSource(seed, comp, s)
		dt := s.DType
		if variant == "fp16" && dt == tensors.F32 {
			conv, err := tensors.Convert(src, tensors.F32, tensors.F16)
			if err != nil {
				return nil, err
			}
			src, dt = conv, tensors.F16
		}
		wt[i] = tensors.WriteTensor{Name: s.Name, DType: dt, Shape: s.Shape, Data: src}
	}
	return wt, nil
}

// LegacyVAENames returns a copy of VAE specs whose mid-block attention
// tensors have the names of diffusers' deprecated attention block, as the
// real SD-1.5 VAE file has them: to_q, to_k, to_v and to_out.0 become
// query, key, value and proj_attn. Shapes and order do not change.
func LegacyVAENames(specs []Spec) []Spec {
	r := strings.NewReplacer(".to_q.", ".query.", ".to_k.", ".key.", ".to_v.", ".value.", ".to_out.0.", ".proj_attn.")
	out := slices.Clone(specs)
	for i := range out {
		if strings.Contains(out[i].Name, ".mid_block.attentions.") {
			out[i].Name = r.Replace(out[i].Name)
		}
	}
	return out
}

// modelIndexWithoutSafetyChecker rewrites the real model_index.json for a
// pipeline saved without a safety checker: "safety_checker": [null, null]
// and "requires_safety_checker": true (StableDiffusionPipeline registers the
// flag, which defaults to true), in diffusers' format (sorted keys, 2-space
// indent, trailing newline). The other keys, _diffusers_version included,
// stay as they are.
func modelIndexWithoutSafetyChecker(data []byte) ([]byte, error) {
	v, err := tensors.ParsePythonJSON(data)
	if err != nil {
		return nil, fmt.Errorf("pipelinetest: model_index.json: %w", err)
	}
	ix, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("pipelinetest: model_index.json is not an object")
	}
	ix[SafetyChecker] = []any{nil, nil}
	ix["requires_safety_checker"] = true
	return tensors.MarshalPythonJSON(ix)
}

// writeFile writes data at path, creating its folder.
func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// progressCounter returns the function told the bytes of each write,
// which reports to opts.Progress the bytes written so far against the
// tensor data of every weights file to write; nil without opts.Progress.
// It is safe for concurrent use.
func progressCounter(weights []string, opts Options) func(int64) {
	if opts.Progress == nil {
		return nil
	}
	var total int64
	for _, comp := range weights {
		specs := SD15TensorSpecs(comp, opts.Scale)
		total += DataBytes(specs)
		if slices.Contains(opts.FP16Variant, comp) {
			for _, s := range specs {
				if s.DType == tensors.F32 {
					total += s.Size() / 2
				} else {
					total += s.Size()
				}
			}
		}
	}
	var done atomic.Int64
	return func(n int64) { opts.Progress(done.Add(n), total) }
}

// countedSource tells count every byte its source writes.
type countedSource struct {
	tensors.Source
	count func(int64)
}

func (c countedSource) CopyTo(ctx context.Context, w io.Writer) error {
	return c.Source.CopyTo(ctx, countingWriter{w, c.count})
}

type countingWriter struct {
	w     io.Writer
	count func(int64)
}

func (c countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.count(int64(n))
	return n, err
}
