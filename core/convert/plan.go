package convert

import (
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"modelpub/core/tensors"
)

// Plan is what a conversion writes, decided from the checkpoint's header
// alone: per component its tensors, each a byte range of the checkpoint,
// and the keys left out with the reason.
type Plan struct {
	Detection  Detection        `json:"detected"`
	Components []*ComponentPlan `json:"components"`
	Dropped    []Dropped        `json:"dropped"`
	// DType is the dtype floating-point tensors of the main weights are
	// converted to; 0 keeps the checkpoint's.
	DType tensors.DType `json:"-"`
	// Variant, "fp16" or "bf16", adds converted weights beside the main
	// ones.
	Variant string `json:"variant,omitempty"`
	// ConfigFrom is the Hub repository the configs and tokenizer files
	// were read from; "" for the embedded ones.
	ConfigFrom string `json:"config_from,omitempty"`

	recipe *recipe
	cfg    fs.FS // the configs and tokenizer files, laid out as the output
}

// ComponentPlan is one model component of the output.
type ComponentPlan struct {
	Name string `json:"name"`
	// Dir is the component's folder in the output; "" for a single model
	// folder (its config.json and weights at the root).
	Dir     string `json:"dir"`
	Library string `json:"library"`
	Class   string `json:"class"`
	Base    string `json:"-"` // weights file base name
	// Prefix is where the component's tensors are in the checkpoint.
	Prefix  string   `json:"prefix"`
	Tensors []Tensor `json:"-"`
}

// Tensor is one output tensor and where its bytes come from.
type Tensor struct {
	Name   string // diffusers name
	Source string // checkpoint name (after unwrapping state_dict)
	// DType is the dtype written in the main weights; SourceDType the
	// checkpoint's. They differ only with Options.DType.
	DType, SourceDType tensors.DType
	Shape              []int64
	// SourceShape is the checkpoint's shape when it differs: a 1×1
	// convolution weight [o, i, 1, 1] stored as the linear weight [o, i]
	// (the same bytes), a part of a fused projection, a transposed matrix.
	SourceShape []int64
	// Rows, if not empty, are ranges of rows (first-dimension slices) of
	// the checkpoint tensor, each a first row and a count, written one
	// after the other: one byte range each.
	Rows [][2]int64
	// Transpose writes the checkpoint's [a, b] matrix as [b, a].
	Transpose bool
}

// Dropped is a checkpoint key the conversion leaves out, as diffusers
// does.
type Dropped struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// Component returns the component called name, or nil.
func (p *Plan) Component(name string) *ComponentPlan {
	for _, c := range p.Components {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// componentAt returns the component written in folder dir, or nil.
func (p *Plan) componentAt(dir string) *ComponentPlan {
	for _, c := range p.Components {
		if c.Dir == dir {
			return c
		}
	}
	return nil
}

// Bytes is the size of the component's main tensor data.
func (c *ComponentPlan) Bytes() int64 {
	var n int64
	for _, t := range c.Tensors {
		n += byteSize(t.DType, t.Shape)
	}
	return n
}

// mainFloatDType is the dtype of the first floating-point tensor written,
// what transformers records as a model's torch_dtype.
func (c *ComponentPlan) mainFloatDType() tensors.DType {
	if c == nil {
		return 0
	}
	for _, t := range c.Tensors {
		if t.DType.IsFloat() {
			return t.DType
		}
	}
	return 0
}

func byteSize(d tensors.DType, shape []int64) int64 {
	n := int64(d.Bits())
	for _, s := range shape {
		n *= s
	}
	return n / 8
}

// variantDTypes are the variants Convert writes and the dtype each
// converts floats to, as modelpub save writes them.
var variantDTypes = map[string]tensors.DType{"fp16": tensors.F16, "bf16": tensors.BF16}

// convertible reports the dtypes a dtype change or a variant converts;
// others (integers, bool, F64) are copied unchanged.
func convertible(d tensors.DType) bool {
	return d == tensors.F32 || d == tensors.F16 || d == tensors.BF16
}

// variantDType is the dtype of a tensor of source dtype d in a variant
// converting floats to to.
func variantDType(d, to tensors.DType) tensors.DType {
	if to != 0 && convertible(d) {
		return to
	}
	return d
}

// maxListed bounds the keys an error lists.
const maxListed = 12

func listKeys(keys []string) string {
	s := keys
	if len(s) > maxListed {
		s = s[:maxListed]
	}
	out := strings.Join(s, ", ")
	if len(keys) > maxListed {
		out += fmt.Sprintf(" and %d more", len(keys)-maxListed)
	}
	return out
}

// Build plans the conversion of c, detected as d: every tensor of each
// component's part of the checkpoint renamed as diffusers renames it, and
// checked against the tensor names of the diffusers model its config
// describes. A key of a component's part that has no diffusers name, two
// keys with one name, or a tensor of the model missing from the checkpoint
// is an error naming the keys. Keys outside the components are dropped and
// listed, as are those diffusers drops inside them. to, if not 0, is the
// dtype of the main weights' floating-point tensors; variant ("fp16",
// "bf16") adds a converted set.
func Build(c *Checkpoint, d *Detection, to tensors.DType, variant string) (*Plan, error) {
	return BuildWith(c, d, to, variant, nil)
}

// BuildWith is Build with the configs and tokenizer files taken from cfg
// (laid out as the output folder: FetchConfigs' files, or a converted
// folder's) rather than the embedded ones; cfg nil uses the embedded ones,
// which a type that has none (NeedsConfigs) cannot do.
func BuildWith(c *Checkpoint, d *Detection, to tensors.DType, variant string, cfg fs.FS) (*Plan, error) {
	r := recipeFor(d.Type)
	if r == nil {
		return nil, fmt.Errorf("%w: type %q", ErrUnsupportedType, d.Type)
	}
	if cfg == nil {
		cfg = r.configFS()
	}
	if cfg == nil {
		return nil, fmt.Errorf("%w: %s has no embedded configs: they are read from a Hub repository (--config-from, by default %s)",
			ErrOptions, d.Name, r.repo)
	}
	if to != 0 && !convertible(to) {
		return nil, fmt.Errorf("%w: dtype %s: use F16, BF16 or F32", ErrOptions, to)
	}
	vto, ok := variantDTypes[variant]
	if variant != "" && !ok {
		return nil, fmt.Errorf("%w: variant %q: use fp16 or bf16", ErrOptions, variant)
	}
	comps, err := r.components(cfg, c)
	if err != nil {
		return nil, err
	}
	p := &Plan{Detection: *d, DType: to, Variant: variant, recipe: r, cfg: cfg}
	expected := make([]map[string]int, len(comps))
	filled := make([][]*Tensor, len(comps))
	from := make([][]string, len(comps))
	for i, cr := range comps {
		expected[i] = make(map[string]int, len(cr.names))
		for j, n := range cr.names {
			expected[i][n] = j
		}
		filled[i] = make([]*Tensor, len(cr.names))
		from[i] = make([]string, len(cr.names))
		dir := cr.name
		if r.single {
			dir = ""
		}
		p.Components = append(p.Components, &ComponentPlan{Name: cr.name, Dir: dir, Library: cr.library, Class: cr.class, Base: cr.base, Prefix: cr.prefix})
	}
	var unmapped, badShape, dupes []string
	for _, t := range c.Tensors {
		ci := slices.IndexFunc(comps, func(cr *componentRecipe) bool { return strings.HasPrefix(t.Name, cr.prefix) })
		if ci < 0 {
			p.Dropped = append(p.Dropped, Dropped{t.Name, dropReason(t.Name, d)})
			continue
		}
		cr := comps[ci]
		key := strings.TrimPrefix(t.Name, cr.prefix)
		if cr.drop != nil {
			if why := cr.drop(key); why != "" {
				p.Dropped = append(p.Dropped, Dropped{t.Name, why})
				continue
			}
		}
		pieces, ok := cr.rename(key)
		if !ok {
			unmapped = append(unmapped, t.Name)
			continue
		}
		for _, pc := range pieces {
			pos, ok := expected[ci][pc.name]
			if !ok {
				unmapped = append(unmapped, fmt.Sprintf("%s (→ %s)", t.Name, pc.name))
				continue
			}
			if filled[ci][pos] != nil {
				dupes = append(dupes, fmt.Sprintf("%s and %s (→ %s)", from[ci][pos], t.Name, pc.name))
				continue
			}
			out, why := planPiece(t, pc)
			if why != "" {
				badShape = append(badShape, why)
				continue
			}
			if convertible(t.DType) && to != 0 && to != t.DType {
				if !canConvert(t.DType, to) {
					return nil, fmt.Errorf("%w: --dtype %s: %s is %s and cannot be converted to %s", ErrOptions, to, t.Name, t.DType, to)
				}
				out.DType = to
			}
			if vd := variantDType(t.DType, vto); vd != t.DType {
				if !canConvert(t.DType, vd) {
					return nil, fmt.Errorf("%w: variant %s: %s is %s and cannot be converted to %s", ErrOptions, variant, t.Name, t.DType, vd)
				}
			}
			filled[ci][pos], from[ci][pos] = out, t.Name
		}
	}
	for _, name := range c.OutsideStateDict {
		p.Dropped = append(p.Dropped, Dropped{name, "outside the checkpoint's state_dict, which is all diffusers reads"})
	}
	for _, name := range c.Skipped {
		p.Dropped = append(p.Dropped, Dropped{name, "not a tensor"})
	}
	var errs []string
	if len(unmapped) > 0 {
		errs = append(errs, fmt.Sprintf("%v: %d keys fit no tensor of the diffusers models: %s", ErrUnmappedTensor, len(unmapped), listKeys(unmapped)))
	}
	if len(dupes) > 0 {
		errs = append(errs, fmt.Sprintf("%v: two keys map to one tensor: %s", ErrUnmappedTensor, listKeys(dupes)))
	}
	if len(badShape) > 0 {
		errs = append(errs, fmt.Sprintf("%v: %s", ErrBadShape, listKeys(badShape)))
	}
	anyMissing := false
	for i, cr := range comps {
		var missing []string
		for j, t := range filled[i] {
			if t == nil {
				missing = append(missing, cr.names[j])
				continue
			}
			p.Components[i].Tensors = append(p.Components[i].Tensors, *t)
		}
		if len(missing) > 0 {
			anyMissing = true
			errs = append(errs, fmt.Sprintf("%v: nothing under %s* gives %d tensors of the %s %s: %s",
				ErrMissingTensor, cr.prefix, len(missing), cr.name, cr.class, listKeys(missing)))
		}
	}
	if len(errs) > 0 {
		return nil, &PlanError{Path: c.Path, Type: d.Name, problems: errs, errs: planSentinels(len(unmapped)+len(dupes) > 0, len(badShape) > 0, anyMissing)}
	}
	return p, nil
}

// planPiece plans the output tensor pc of checkpoint tensor t, or says
// why t's shape does not allow it.
func planPiece(t SourceTensor, pc piece) (*Tensor, string) {
	out := &Tensor{Name: pc.name, Source: t.Name, DType: t.DType, SourceDType: t.DType, Shape: t.Shape}
	switch {
	case pc.linear && len(t.Shape) > 2:
		// diffusers takes [:, :, 0, 0] (or [:, :, 0]): the same bytes
		// when the trailing dimensions are 1, a strided slice otherwise,
		// which no real checkpoint has.
		if slices.ContainsFunc(t.Shape[2:], func(s int64) bool { return s != 1 }) {
			return nil, fmt.Sprintf("%s is %v: a 1×1 convolution weight ([out, in, 1, 1]) was expected", t.Name, t.Shape)
		}
		out.SourceShape, out.Shape = t.Shape, slices.Clone(t.Shape[:2])
	case pc.of > 0 || pc.swap:
		of := int64(pc.of)
		if pc.swap {
			of = 2
		}
		if len(t.Shape) == 0 || t.Shape[0]%of != 0 {
			return nil, fmt.Sprintf("%s is %v: its first dimension does not split into %d", t.Name, t.Shape, of)
		}
		unit := t.Shape[0] / of
		if pc.swap {
			out.Rows = [][2]int64{{unit, unit}, {0, unit}}
			break
		}
		n := unit * int64(pc.to-pc.from)
		out.SourceShape, out.Shape = t.Shape, append([]int64{n}, t.Shape[1:]...)
		out.Rows = [][2]int64{{int64(pc.from) * unit, n}}
	case pc.transpose:
		if len(t.Shape) != 2 {
			return nil, fmt.Sprintf("%s is %v: a matrix was expected", t.Name, t.Shape)
		}
		out.SourceShape, out.Shape = t.Shape, []int64{t.Shape[1], t.Shape[0]}
		out.Transpose = true
	}
	return out, ""
}

// PlanError lists everything that keeps a checkpoint from mapping onto its
// diffusers models.
type PlanError struct {
	Path     string
	Type     string
	problems []string
	errs     []error
}

func (e *PlanError) Error() string {
	return fmt.Sprintf("%s: does not map onto %s as diffusers converts it: %s", e.Path, e.Type, strings.Join(e.problems, "; "))
}

// Unwrap returns the sentinels of the problems found.
func (e *PlanError) Unwrap() []error { return e.errs }

func planSentinels(unmapped, badShape, missing bool) []error {
	var out []error
	if unmapped {
		out = append(out, ErrUnmappedTensor)
	}
	if badShape {
		out = append(out, ErrBadShape)
	}
	if missing {
		out = append(out, ErrMissingTensor)
	}
	return out
}

// scheduleBuffers are the noise-schedule buffers the original training
// code (ldm's DDPM) registers on the model and saves with it.
var scheduleBuffers = map[string]bool{
	"betas": true, "alphas_cumprod": true, "alphas_cumprod_prev": true, "sqrt_alphas_cumprod": true,
	"sqrt_one_minus_alphas_cumprod": true, "log_one_minus_alphas_cumprod": true, "sqrt_recip_alphas_cumprod": true,
	"sqrt_recipm1_alphas_cumprod": true, "posterior_variance": true, "posterior_log_variance_clipped": true,
	"posterior_mean_coef1": true, "posterior_mean_coef2": true, "logvar": true, "lvlb_weights": true,
}

// dropReason says why a key outside every component is left out.
func dropReason(name string, d *Detection) string {
	switch {
	case name == "model_ema.decay" || name == "model_ema.num_updates":
		return "EMA bookkeeping (decay, update count)"
	case strings.HasPrefix(name, "model_ema."):
		return "EMA copy of the UNet: diffusers converts the weights under model.diffusion_model"
	case scheduleBuffers[name]:
		return "noise schedule buffer of the training code: the scheduler config describes the schedule"
	case name == "logit_scale":
		return "CLIP's contrastive logit scale, unused by the text encoder"
	}
	return "not part of the components diffusers converts for " + d.Name
}

// canConvert reports whether floats of dtype from can be written as to:
// directly, or through F32 (F16 → BF16: F16 widens to F32 exactly, so the
// result is the round-to-nearest-even conversion of the F16 value).
func canConvert(from, to tensors.DType) bool {
	if _, ok := tensors.Converter(from, to); ok {
		return true
	}
	_, up := tensors.Converter(from, tensors.F32)
	_, down := tensors.Converter(tensors.F32, to)
	return up && down
}

// convertSource streams src (elements of dtype from) as elements of to; the
// returned Converted counts the values the last step lost.
func convertSource(src tensors.Source, from, to tensors.DType) (*tensors.Converted, error) {
	if _, ok := tensors.Converter(from, to); ok {
		return tensors.Convert(src, from, to)
	}
	wide, err := tensors.Convert(src, from, tensors.F32)
	if err != nil {
		return nil, err
	}
	return tensors.Convert(wide, tensors.F32, to)
}
