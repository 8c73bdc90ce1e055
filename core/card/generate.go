package card

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"modelpub/core/folder"
	"modelpub/core/pipeline"
	"modelpub/core/tensors"
)

// PlaceholderNamespace stands for the namespace in the repo id of a card
// generated without one ("<your-namespace>/<folder name>"); FollowRepo
// replaces that repo id when the target is known.
const PlaceholderNamespace = "<your-namespace>"

// placeholderRepo matches a placeholder repo id: quoted as the loading
// snippet writes it (Go/Python double quotes with escapes, or single
// quotes), or bare with the characters of a repo name.
var placeholderRepo = regexp.MustCompile(`"` + regexp.QuoteMeta(PlaceholderNamespace) + `/(?:[^"\\\n]|\\.)*"` +
	`|'` + regexp.QuoteMeta(PlaceholderNamespace) + `/[^'\\\n]*'` +
	`|` + regexp.QuoteMeta(PlaceholderNamespace) + `/[A-Za-z0-9_.\-]*[A-Za-z0-9_]`)

// FollowRepo returns body with every placeholder repo id (what Generate
// writes without GenerateOptions.RepoID, "<your-namespace>/<folder name>",
// in the loading snippet or anywhere else) replaced by repo, keeping its
// quotes. Text without the placeholder, such as a body whose snippet the
// user removed or rewrote, is returned unchanged.
func FollowRepo(body, repo string) string {
	if repo == "" || !strings.Contains(body, PlaceholderNamespace+"/") {
		return body
	}
	return placeholderRepo.ReplaceAllStringFunc(body, func(m string) string {
		switch m[0] {
		case '"':
			return strconv.Quote(repo)
		case '\'':
			return "'" + repo + "'"
		}
		return repo
	})
}

// GenerateOptions are the facts Generate cannot read from the folder.
type GenerateOptions struct {
	// RepoID is "ns/name", for the title and the loading snippet; ""
	// writes PlaceholderNamespace + "/<folder name>".
	RepoID string
	// License is a license id (see Licenses) or "other"; "" sets none.
	License string
	// LicenseName names an "other" license.
	LicenseName string
	// BaseModel is the repo id of the model this one derives from; ""
	// sets none.
	BaseModel string
	// Variant is a precision variant ("fp16", "bf16") a save is about to
	// add: the card describes it, as planned, beside the folder's own.
	Variant string
}

// Generate writes a card for a pipeline (or single-model) folder.
//
// Metadata: library_name "diffusers" (a single model: its library,
// diffusers or transformers), pipeline_tag from PipelineTag of the pipeline
// class, tags [library, "safetensors" when there are safetensors weights,
// the class, the pipeline_tag], and license, license_name and base_model
// when given.
//
// Body: a title, one sentence saying what it is, a table of the components
// (class, parameters, size of the main weights), a table of the weights
// (main and each variant, with precision and size) and a Python snippet
// that loads it, with variant="fp16" (or "bf16") and the matching
// torch_dtype when that variant exists. The output depends only on the
// folder and opts.
func Generate(p *pipeline.Pipeline, opts GenerateOptions) *Card {
	g := newGen(p, opts)
	c := New()
	m := Metadata{LibraryName: g.library, License: opts.License, LicenseName: opts.LicenseName}
	if p.Index != nil {
		m.PipelineTag = PipelineTag(g.class)
	}
	m.Tags = []string{g.library}
	if g.safetensors {
		m.Tags = append(m.Tags, "safetensors")
	}
	if g.class != "" && !slices.Contains(m.Tags, g.class) {
		m.Tags = append(m.Tags, g.class)
	}
	if m.PipelineTag != "" {
		m.Tags = append(m.Tags, m.PipelineTag)
	}
	if opts.BaseModel != "" {
		m.BaseModel = []string{opts.BaseModel}
	}
	c.SetMetadata(m)
	c.SetBody(g.body(m.PipelineTag, opts.BaseModel))
	return c
}

// gen holds what the body is written from.
type gen struct {
	p           *pipeline.Pipeline
	variant     string // planned, see GenerateOptions.Variant
	repo, name  string
	class       string
	library     string
	safetensors bool
	models      []*pipeline.Component // components with weights, in order
}

func newGen(p *pipeline.Pipeline, opts GenerateOptions) *gen {
	g := &gen{p: p, repo: opts.RepoID, library: "diffusers", variant: opts.Variant}
	folder := filepath.Base(p.Dir)
	if abs, err := filepath.Abs(p.Dir); err == nil {
		folder = filepath.Base(abs)
	}
	if g.repo == "" {
		g.repo = PlaceholderNamespace + "/" + folder
	}
	g.name = g.repo[strings.LastIndexByte(g.repo, '/')+1:]
	if p.Index != nil {
		g.class = p.Index.ClassName
	} else if len(p.Components) > 0 {
		c := p.Components[0]
		g.class = c.Class
		if c.Library != "" {
			g.library = c.Library
		}
	}
	for _, c := range p.Components {
		if c.Null || len(c.Weights) == 0 {
			continue
		}
		g.models = append(g.models, c)
		for _, w := range c.Weights {
			g.safetensors = g.safetensors || w.Format == "safetensors"
		}
	}
	return g
}

func (g *gen) body(task, baseModel string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n# %s\n\n", g.name)

	var params int64
	for _, c := range g.models {
		if w := c.Main(); w != nil && w.Err == nil {
			params += w.Parameters
		}
	}
	fmt.Fprintf(&b, "A ")
	if g.class != "" {
		fmt.Fprintf(&b, "`%s` ", g.class)
	}
	if g.p.Index != nil {
		b.WriteString("pipeline")
	} else {
		b.WriteString("model")
	}
	if task != "" {
		fmt.Fprintf(&b, " (%s)", task)
	}
	fmt.Fprintf(&b, " in the %s format, with %s parameters", libraryLink(g.library), pipeline.FormatParameters(params))
	if g.p.Index != nil {
		fmt.Fprintf(&b, " in %d %s", len(g.models), plural(len(g.models), "model", "models"))
	}
	b.WriteString(".")
	if baseModel != "" {
		fmt.Fprintf(&b, " It derives from [%s](https://huggingface.co/%s).", baseModel, baseModel)
	}
	b.WriteString("\n\n")

	g.components(&b)
	g.weights(&b)
	g.howToUse(&b)
	b.WriteString("Published with Modelpub.\n")
	return b.String()
}

func libraryLink(library string) string {
	switch library {
	case "diffusers":
		return "[Diffusers](https://github.com/huggingface/diffusers)"
	case "transformers":
		return "[Transformers](https://github.com/huggingface/transformers)"
	}
	return library
}

// components writes the table of components.
func (g *gen) components(b *strings.Builder) {
	b.WriteString("## Components\n\n| Component | Class | Parameters | Size |\n| --- | --- | ---: | ---: |\n")
	for _, c := range g.p.Components {
		if c.Null {
			continue
		}
		name := c.Name
		if name == "" {
			name = g.name
		}
		class := "—"
		if c.Class != "" {
			class = "`" + c.Class + "`"
			if c.Library != "" && c.Library != "diffusers" {
				class += " (" + c.Library + ")"
			}
		}
		params, size := "—", "—"
		if w := c.Main(); w != nil && w.Err == nil {
			params, size = pipeline.FormatParameters(w.Parameters), tensors.FormatSize(w.DataBytes)
		}
		fmt.Fprintf(b, "| `%s` | %s | %s | %s |\n", name, class, params, size)
	}
	b.WriteString("\n")
}

// weightRow is the main weights or one variant, over every model.
type weightRow struct {
	variant string
	dtypes  map[string]int64
	bytes   int64
	have    []string // components that have it
}

func (g *gen) weightRows() []weightRow {
	var variants []string
	for _, c := range g.models {
		for _, v := range c.Variants() {
			if !slices.Contains(variants, v) {
				variants = append(variants, v)
			}
		}
	}
	planned := g.plannedVariant(variants)
	if planned != nil {
		variants = append(variants, planned.variant)
	}
	slices.Sort(variants)
	rows := []weightRow{}
	for _, v := range append([]string{""}, variants...) {
		if planned != nil && v == planned.variant {
			rows = append(rows, *planned)
			continue
		}
		r := weightRow{variant: v, dtypes: map[string]int64{}}
		for _, c := range g.models {
			w := c.WeightSet(v, "")
			if w == nil || w.Err != nil {
				continue
			}
			r.have = append(r.have, c.Name)
			r.bytes += w.DataBytes
			for dt, n := range w.DTypeBytes {
				r.dtypes[dt] += n
			}
		}
		rows = append(rows, r)
	}
	return rows
}

// plannedVariant is the row of the variant a save will add, from the plan
// Save writes by; nil when there is none, the folder has it already, or
// the plan cannot be made.
func (g *gen) plannedVariant(have []string) *weightRow {
	if g.variant == "" || slices.Contains(have, g.variant) {
		return nil
	}
	plan, err := pipeline.Plan(g.p, pipeline.SaveOptions{Variant: g.variant})
	if err != nil {
		return nil
	}
	r := &weightRow{variant: g.variant, dtypes: map[string]int64{}}
	for _, cp := range plan.Components {
		for _, set := range cp.Sets {
			if set.Variant != g.variant {
				continue
			}
			r.have = append(r.have, cp.Name)
			for _, f := range set.Files {
				for _, t := range f.Tensors {
					r.bytes += t.Bytes
					r.dtypes[t.DType.String()] += t.Bytes
				}
			}
		}
	}
	if len(r.have) == 0 {
		return nil
	}
	return r
}

// weights writes the table of the main weights and the variants.
func (g *gen) weights(b *strings.Builder) {
	rows := g.weightRows()
	b.WriteString("## Weights\n\n| Weights | Precision | Size | Components |\n| --- | --- | ---: | --- |\n")
	for _, r := range rows {
		label := "main"
		if r.variant != "" {
			label = "`" + r.variant + "` variant"
		}
		comps := "all"
		if len(r.have) < len(g.models) {
			comps = strings.Join(r.have, ", ")
		}
		if len(g.models) == 1 && g.p.Index == nil {
			comps = g.name
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s |\n", label, precision(r.dtypes), tensors.FormatSize(r.bytes), comps)
	}
	b.WriteString("\n")
}

// precision names the dtype holding most of the bytes, as torch does.
func precision(dtypes map[string]int64) string {
	best, most := "", int64(-1)
	keys := make([]string, 0, len(dtypes))
	for k := range dtypes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if dtypes[k] > most {
			best, most = k, dtypes[k]
		}
	}
	if name, ok := torchNames[best]; ok {
		return name
	}
	if best == "" {
		return "—"
	}
	return strings.ToLower(best)
}

var torchNames = map[string]string{"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",
	"F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2", "I64": "int64", "I32": "int32", "I8": "int8", "U8": "uint8"}

// howToUse writes the loading snippet: the fp16 variant when there is one,
// else bf16, else the main weights.
func (g *gen) howToUse(b *strings.Builder) {
	rows := g.weightRows()
	has := func(v string) bool {
		return slices.ContainsFunc(rows, func(r weightRow) bool { return r.variant == v })
	}
	var args []string
	dtype := ""
	other := ""
	switch {
	case has("fp16"):
		args = append(args, `variant="fp16"`)
		dtype = "torch.float16"
		if has("bf16") {
			other = `variant="bf16", torch_dtype=torch.bfloat16`
		}
	case has("bf16"):
		args = append(args, `variant="bf16"`)
		dtype = "torch.bfloat16"
	default:
		switch precision(rows[0].dtypes) {
		case "float16":
			dtype = "torch.float16"
		case "bfloat16":
			dtype = "torch.bfloat16"
		}
	}
	if dtype != "" {
		args = append(args, "torch_dtype="+dtype)
	}
	loader, variable := "DiffusionPipeline", "pipe"
	if g.p.Index == nil {
		loader, variable = g.class, "model"
		if loader == "" {
			loader = "AutoModel"
		}
	} else if g.p.Index.CustomModule != "" {
		// A [module, class] _class_name is a custom pipeline: its code is
		// in the repository.
		args = append(args, "trust_remote_code=True")
	}
	b.WriteString("## How to use\n\n```python\n")
	if dtype != "" {
		b.WriteString("import torch\n")
	}
	fmt.Fprintf(b, "from %s import %s\n\n", g.library, loader)
	call := fmt.Sprintf("%q", g.repo)
	if len(args) > 0 {
		call += ", " + strings.Join(args, ", ")
	}
	fmt.Fprintf(b, "%s = %s.from_pretrained(%s)\n", variable, loader, call)
	if other != "" {
		fmt.Fprintf(b, "# or, in bfloat16: %s.from_pretrained(%q, %s)\n", loader, g.repo, other)
	}
	b.WriteString("```\n\n")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// ForFolder is the card to publish folder p with: Generate's card, merged
// with p's own README.md when it has one (its keys, comments and body win;
// the generated metadata fills in what it lacks). generated says the body
// is the generated one. A README.md that cannot be read or parsed is an
// error naming its path (a *YAMLError for bad metadata), returned with the
// generated card, which callers may use instead.
func ForFolder(p *pipeline.Pipeline, opts GenerateOptions) (c *Card, generated bool, err error) {
	gen := Generate(p, opts)
	path := filepath.Join(p.Dir, FileName)
	var data []byte
	if files := p.Files(); files != nil {
		data, err = files.ReadFile(FileName, 0)
	} else {
		data, err = folder.ReadFile(path, 0)
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return gen, true, nil
	case err != nil:
		return gen, true, err
	}
	own, err := Parse(data)
	if err != nil {
		var ye *YAMLError
		if errors.As(err, &ye) {
			ye.File = path
		}
		return gen, true, err
	}
	merged := Merge(own, gen, true)
	return merged, merged.Body() == gen.Body(), nil
}
