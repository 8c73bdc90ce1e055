package convert

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"modelpub/core/atomicfile"
	"modelpub/core/hub"
	"modelpub/core/pipeline"
	"modelpub/core/tensors"
)

// Default shard sizes of save_pretrained.
const (
	diffusersMaxShardSize    int64 = 10_000_000_000 // ModelMixin.save_pretrained, "10GB"
	transformersMaxShardSize int64 = 5_000_000_000  // PreTrainedModel.save_pretrained, "5GB"
)

// Options tune Convert.
type Options struct {
	// Type is the model type; "" detects it (see Detect). A type given is
	// checked against the checkpoint's signature keys all the same.
	Type Type
	// DType, if not 0, converts the main weights' floating-point tensors
	// (F16, BF16 or F32). By default they keep the checkpoint's dtype.
	DType tensors.DType
	// Variant, "fp16" or "bf16", also writes the weights converted to that
	// precision beside the main ones, named as diffusers expects
	// (diffusion_pytorch_model.fp16.safetensors, ...).
	Variant string
	// MaxShardSize splits every model's weights at this many bytes; 0 keeps
	// save_pretrained's defaults (10GB for diffusers models, 5GB for
	// transformers ones).
	MaxShardSize int64
	// SkipVerify skips the byte-for-byte proof against the checkpoint
	// (the folder is still validated).
	SkipVerify bool
	// Progress, if set, is called as bytes are written and verified.
	Progress func(Progress)
	// ConfigFrom, a Hub repository id, takes the configs and tokenizer
	// files from that Diffusers repository (FetchConfigs, through Hub)
	// rather than the embedded ones. A type without embedded configs
	// (NeedsConfigs) reads them from DefaultConfigRepo when it is "".
	ConfigFrom string
	// ConfigRevision is the branch, tag or commit of ConfigFrom; "" is
	// main.
	ConfigRevision string
	// Hub reads ConfigFrom (a *hub.Client with the user's token, for gated
	// repositories); nil allows no download.
	Hub HubReader
	// HashCache, when set, gives the checkpoint's sha256 (for the card)
	// without reading it if the cache knows the file unchanged, and keeps
	// it for the next conversion or publish; the caller saves it. nil
	// hashes the checkpoint on every conversion.
	HashCache *hub.HashCache
}

// Progress is the state of a running conversion.
type Progress struct {
	Step        string // "write", "verify", or "hash" while the card waits for the checkpoint's sha256
	Done, Total int64
	File        string // the file being written, relative to the output
}

// Result describes a finished conversion.
type Result struct {
	Dir  string `json:"dir"`
	Plan *Plan  `json:"plan"`
	// Bytes is the size of everything written.
	Bytes int64 `json:"bytes"`
	// Files are the files written, relative to Dir, sorted.
	Files []string `json:"files"`
	// Lossy lists converted tensors (Options.DType, Options.Variant) whose
	// values overflowed to ±inf or underflowed to zero.
	Lossy []LossyTensor `json:"lossy_tensors"`
	// Validation is pipeline.Validate's report on the result.
	Validation *pipeline.Report `json:"validation"`
	// Verification is Verify's report: tensors and bytes compared with the
	// checkpoint; nil with Options.SkipVerify.
	Verification *pipeline.Report `json:"verification,omitempty"`
	// Source is the checkpoint's name, size and sha256, as the folder's
	// model card (README.md) records them.
	Source SourceFile `json:"source"`
}

// LossyTensor is a converted tensor that lost values.
type LossyTensor struct {
	Component string `json:"component"`
	Tensor    string `json:"tensor"`
	Variant   string `json:"variant,omitempty"`
	tensors.ConvStats
}

// Convert converts the checkpoint at src into a Diffusers pipeline folder
// at dst, which must not exist or be an empty folder. The folder is built
// in a hidden staging folder beside dst (".dst.modelpub-convert-*"), every
// file synced, validated (pipeline.Validate) and verified against the
// checkpoint (Verify), and only then renamed into place: a failure, a
// folder that does not check out (ErrNotVerified) or a cancellation leaves
// no dst and no staging folder. src is only read. The error of a
// checkpoint that cannot be converted names it and what was found.
func Convert(ctx context.Context, src, dst string, opts Options) (*Result, error) {
	dst = filepath.Clean(dst)
	if err := checkDestination(dst); err != nil {
		return nil, err
	}
	c, err := OpenCheckpoint(src)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var d *Detection
	if opts.Type == "" {
		d, err = Detect(c)
	} else {
		d, err = DetectAs(c, opts.Type)
	}
	if err != nil {
		return nil, err
	}
	cfg, repo, err := configsFor(ctx, c, d, opts)
	if err != nil {
		return nil, err
	}
	plan, err := BuildWith(c, d, opts.DType, opts.Variant, cfg)
	if err != nil {
		if repo != "" {
			return nil, fmt.Errorf("with the configs of %s: %w", repo, err)
		}
		return nil, err
	}
	plan.ConfigFrom = repo
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return nil, err
	}
	h := hashSource(ctx, opts.HashCache, src)
	defer h.stop()
	w := &writer{c: c, plan: plan, opts: opts, res: &Result{Dir: dst, Plan: plan, Lossy: []LossyTensor{}}}
	files, err := plan.configFiles()
	if err != nil {
		return nil, err
	}
	w.total = w.planBytes(files)
	if err := checkSpace(filepath.Dir(dst), w.total); err != nil {
		return nil, err
	}
	stage, err := os.MkdirTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".modelpub-convert-*")
	if err != nil {
		return nil, err
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(stage)
		}
	}()
	if err := os.Chmod(stage, 0o755); err != nil {
		return nil, err
	}
	w.stage = stage
	if err := w.run(ctx, files); err != nil {
		return nil, err
	}
	p, err := w.check(ctx)
	if err != nil {
		return nil, err
	}
	if err := w.writeCard(ctx, p, dst, h); err != nil {
		return nil, err
	}
	if err := tensors.SyncTree(stage); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// dst is missing or an empty folder (checked above): remove the empty
	// folder so the rename can take its place.
	if err := os.Remove(dst); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", dst, err)
	}
	if err := os.Rename(stage, dst); err != nil {
		return nil, err
	}
	done = true
	// The rename is durable once the parent folder is synced; a failure
	// there leaves a complete folder, so it is not reported.
	_ = atomicfile.SyncDir(filepath.Dir(dst))
	sort.Strings(w.res.Files)
	return w.res, nil
}

// configsFor reads the configs from the Hub when opts asks for a
// repository or the type has none embedded; nil (and "") keeps the
// embedded ones.
func configsFor(ctx context.Context, c *Checkpoint, d *Detection, opts Options) (fs.FS, string, error) {
	r := recipeFor(d.Type)
	repo := opts.ConfigFrom
	if repo == "" && r != nil && r.dir == "" {
		repo = r.repo
		if r.repoFor != nil {
			repo = r.repoFor(c)
		}
	}
	if repo == "" || r == nil {
		return nil, "", nil
	}
	if opts.Hub == nil {
		return nil, "", fmt.Errorf("%w: the configs of %s are read from %s on the Hub, and no download is allowed here",
			ErrOptions, d.Name, repo)
	}
	cfg, err := FetchConfigs(ctx, opts.Hub, repo, opts.ConfigRevision)
	if err != nil {
		return nil, "", err
	}
	if r.single && r.subfolder != "" {
		if _, err := fs.Stat(cfg, path.Join(r.subfolder, "config.json")); err == nil {
			if cfg, err = fs.Sub(cfg, r.subfolder); err != nil {
				return nil, "", err
			}
		}
	}
	return cfg, repo, nil
}

// checkDestination refuses a dst that exists and is not an empty folder
// (a file, the checkpoint itself, a folder with anything in it).
func checkDestination(dst string) error {
	st, err := os.Stat(dst)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case !st.IsDir():
		return fmt.Errorf("%s: %w (it is a file)", dst, ErrDestination)
	}
	entries, err := os.ReadDir(dst)
	if err != nil {
		return fmt.Errorf("%s: %w", dst, err)
	}
	if len(entries) > 0 {
		return fmt.Errorf("%s: %w", dst, ErrDestination)
	}
	return nil
}

// configFile is a non-weights file of the output.
type configFile struct {
	rel  string
	data []byte
}

// configFiles are the embedded configs and tokenizer files of the type,
// configs re-encoded as save_pretrained writes them (json.dumps with
// indent=2 and sorted keys, then a newline) after the recipe's edits, the
// others as they are.
func (p *Plan) configFiles() ([]configFile, error) {
	cfg := p.cfg
	var out []configFile
	err := fs.WalkDir(cfg, ".", func(rel string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || rel == "SOURCES.md" {
			return err
		}
		// A reference repository's folder of a component the pipeline
		// registers as None (its safety checker) is not written.
		if top, _, ok := strings.Cut(rel, "/"); ok && slices.Contains(p.recipe.nullComponents, top) {
			return nil
		}
		data, err := fs.ReadFile(cfg, rel)
		if err != nil {
			return err
		}
		if isConfig(rel) {
			v, err := tensors.ParsePythonJSON(data)
			m, ok := v.(map[string]any)
			if err != nil || !ok {
				return fmt.Errorf("config %s: not a JSON object", rel)
			}
			p.recipe.edit(rel, m, p)
			if data, err = tensors.MarshalPythonJSON(m); err != nil {
				return fmt.Errorf("config %s: %w", rel, err)
			}
		}
		out = append(out, configFile{rel, data})
		return nil
	})
	return out, err
}

// writer writes a plan into the staging folder.
type writer struct {
	c     *Checkpoint
	plan  *Plan
	opts  Options
	stage string
	res   *Result

	mu          sync.Mutex // guards done and calls to opts.Progress
	done, total int64
}

func (w *writer) progress(step, file string, done, total int64) {
	if w.opts.Progress == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.opts.Progress(Progress{Step: step, Done: done, Total: total, File: file})
}

// planBytes estimates the bytes written: tensor data (main and variant)
// and configs; headers are small and not counted.
func (w *writer) planBytes(files []configFile) int64 {
	var n int64
	for _, f := range files {
		n += int64(len(f.data))
	}
	vto := variantDTypes[w.plan.Variant]
	for _, cp := range w.plan.Components {
		n += cp.Bytes()
		if vto != 0 {
			for _, t := range cp.Tensors {
				n += byteSize(variantDType(t.SourceDType, vto), t.Shape)
			}
		}
	}
	return n
}

func (w *writer) run(ctx context.Context, files []configFile) error {
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		p := filepath.Join(w.stage, filepath.FromSlash(f.rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, f.data, 0o644); err != nil {
			return err
		}
		w.res.Files = append(w.res.Files, f.rel)
		w.res.Bytes += int64(len(f.data))
		w.done += int64(len(f.data))
		w.progress("write", f.rel, w.done, w.total)
	}
	for _, cp := range w.plan.Components {
		if err := w.component(ctx, cp); err != nil {
			return err
		}
	}
	return nil
}

// component writes the main weights of cp and, with a variant, the
// converted ones.
func (w *writer) component(ctx context.Context, cp *ComponentPlan) error {
	dir := filepath.Join(w.stage, cp.Dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	shardMax := w.opts.MaxShardSize
	if shardMax == 0 {
		shardMax = diffusersMaxShardSize
		if cp.Library == "transformers" {
			shardMax = transformersMaxShardSize
		}
	}
	sets := []string{""}
	if w.plan.Variant != "" {
		sets = append(sets, w.plan.Variant)
	}
	for _, variant := range sets {
		ws, convs, err := w.writeTensors(cp, variant)
		if err != nil {
			return err
		}
		label := path.Join(cp.Dir, tensors.WeightsFileName(cp.Base, variant))
		before := w.done
		res, err := tensors.WriteSharded(ctx, dir, ws, tensors.ShardedOptions{
			MaxShardSize: shardMax, Base: cp.Base, Variant: variant,
			Progress: func(done, _ int64) { w.progress("write", label, before+done, w.total) },
		})
		if err != nil {
			return err
		}
		for _, f := range res.Files {
			w.res.Files = append(w.res.Files, path.Join(cp.Dir, f))
		}
		if res.IndexFile != "" {
			w.res.Files = append(w.res.Files, path.Join(cp.Dir, res.IndexFile))
		}
		w.res.Bytes += res.Bytes
		w.done += res.Bytes
		w.total = max(w.total, w.done)
		for _, cv := range convs {
			if st := cv.c.Stats(); st.Overflow > 0 || st.Underflow > 0 {
				w.res.Lossy = append(w.res.Lossy, LossyTensor{Component: cp.Name, Tensor: cv.name, Variant: variant, ConvStats: st})
			}
		}
	}
	return nil
}

type conversion struct {
	name string
	c    *tensors.Converted
}

// writeTensors gives the writer the tensors of one weight set of cp: byte
// ranges of the checkpoint, wrapped in a converter where the set's dtype
// differs from the checkpoint's.
func (w *writer) writeTensors(cp *ComponentPlan, variant string) ([]tensors.WriteTensor, []conversion, error) {
	vto := variantDTypes[variant]
	var ws []tensors.WriteTensor
	var convs []conversion
	for _, t := range cp.Tensors {
		to := t.DType
		if variant != "" {
			to = variantDType(t.SourceDType, vto)
		}
		data, err := w.c.planned(t)
		if err != nil {
			return nil, nil, err
		}
		if to != t.SourceDType {
			cv, err := convertSource(data, t.SourceDType, to)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %w", t.Source, err)
			}
			data = cv
			convs = append(convs, conversion{t.Name, cv})
		}
		ws = append(ws, tensors.WriteTensor{Name: t.Name, DType: to, Shape: t.Shape, Data: data})
	}
	return ws, convs, nil
}

// check validates the staged folder as diffusers would load it, and
// verifies it against the checkpoint; it returns the folder opened.
func (w *writer) check(ctx context.Context) (*pipeline.Pipeline, error) {
	p, err := pipeline.Open(ctx, w.stage)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotVerified, err)
	}
	rep, err := pipeline.Validate(ctx, p, pipeline.ValidateOptions{})
	if err != nil {
		return nil, err
	}
	w.res.Validation = rep
	if !rep.OK() {
		return nil, fmt.Errorf("%w: %s", ErrNotVerified, findings(rep.Problems))
	}
	if w.opts.SkipVerify {
		return p, nil
	}
	ver, err := Verify(ctx, w.c, w.plan, p, func(done, total int64) { w.progress("verify", "", done, total) })
	if err != nil {
		return nil, err
	}
	w.res.Verification = ver
	if !ver.OK() {
		return nil, fmt.Errorf("%w: %s", ErrNotVerified, findings(ver.Problems))
	}
	return p, nil
}

func findings(fs []pipeline.Finding) string {
	var s []string
	for _, f := range fs {
		s = append(s, f.Message)
	}
	return listKeys(s)
}

// spaceMargin is kept free beyond the output's size.
const spaceMargin = 64 << 20

// checkSpace refuses to start a conversion that cannot fit in dir, before
// any byte is written. A file system that cannot say is trusted.
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
