package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"modelpub/core/auth"
	"modelpub/core/convert"
	"modelpub/core/folder"
	"modelpub/core/hub"
	"modelpub/core/pipeline"
	"modelpub/core/tensors"
)

func init() {
	register(command{
		name:    "convert",
		args:    "CHECKPOINT OUT [--type auto|sd15|sd15-inpaint|sd2|sd2-inpaint|sdxl|sdxl-inpaint|sdxl-refiner|sd3|sd35|flux-dev|flux-schnell|flux-fill|flux-depth] [--config-from REPO[@REV]] [--endpoint URL] [--dtype f16|bf16|f32] [--variant fp16|bf16] [--max-shard-size SIZE] [--no-verify] [--json]",
		summary: "convert a single-file SD 1.5, SD 2.x, SDXL (base, inpainting, refiner), SD 3/3.5 or FLUX.1 (dev, schnell, Fill, Depth) checkpoint (.safetensors, .ckpt) into a Diffusers folder",
		help:    fmt.Sprintf(convertHelp, typeNames()),
		run:     runConvert,
	})
}

const convertHelp = `Converts a single-file Stable Diffusion 1.x or SDXL base checkpoint (the
original layout: model.diffusion_model.*, first_stage_model.*,
cond_stage_model.* or conditioner.embedders.*) into a Diffusers pipeline
folder at OUT, or a FLUX.1 dev, schnell, Fill or Depth (Canny) transformer
checkpoint (double_blocks.*, single_blocks.*) into a FluxTransformer2DModel folder, as diffusers' from_single_file followed by
save_pretrained would, without loading the model: every tensor is copied as
a byte range of the checkpoint, so memory stays flat and the time is that of
a copy. CHECKPOINT is a .safetensors file or a PyTorch pickle (.ckpt, .pt,
.bin), read without running any pickle code (anything outside the state-dict
allow-list is refused). It is only read.

The model type is detected from key names and shapes as diffusers detects
it, and the reasons are printed. Keys diffusers drops (EMA copies, noise
schedule buffers, CLIP's position_ids, OpenCLIP's logit_scale) are listed.
SDXL's OpenCLIP text encoder has its fused q/k/v projections split (byte
ranges) and its text_projection transposed; Flux's fused projections are
split and its final modulation's halves swapped, as diffusers does. Configs and
CLIP tokenizers are embedded: no network is used. Tensors keep the checkpoint's
dtype.

Stable Diffusion 2.x (a 1024-wide cross-attention and an OpenCLIP ViT-H text
encoder, cond_stage_model.model.*) converts as well, its fused q/k/v split
and its last OpenCLIP layer and text_projection dropped as diffusers does; its
configs are not embedded and are read from the Hub, from
stabilityai/stable-diffusion-2-1 (v-prediction, 768 px) or
stabilityai/stable-diffusion-2-inpainting as diffusers reads them. A 512 px
epsilon model (2.0-base, 2.1-base) needs --config-from
stabilityai/stable-diffusion-2-1-base: the weights cannot tell them apart.
SDXL inpainting (a 9-channel UNet input) converts as SDXL base, with the
configs of diffusers/stable-diffusion-xl-1.0-inpainting-0.1 read from the
Hub, into a StableDiffusionXLInpaintPipeline folder.
The SDXL refiner (its only text encoder, OpenCLIP ViT-bigG, under
conditioner.embedders.0.model.*) becomes a StableDiffusionXLImg2ImgPipeline
folder with that encoder as text_encoder_2, with the configs of
stabilityai/stable-diffusion-xl-refiner-1.0 read from the Hub. SD 3 and 3.5
(joint_blocks.*) give an SD3Transformer2DModel folder (the transformer only;
a bundled VAE or text encoders are listed as dropped), their fused q/k/v
split and the final modulations' halves swapped as diffusers does, with the
transformer config of stabilityai/stable-diffusion-3-medium-diffusers,
-3.5-large or -3.5-medium: gated repositories, so log in (modelpub login) or
set HF_TOKEN with an account that accepted their terms.

OUT must not exist or be an empty folder. It is built in a hidden folder
beside it, validated as diffusers would load it, and every tensor compared
with the checkpoint bytes it comes from; only then is it renamed into place.
A failure or Ctrl-C leaves nothing. Its README.md is a model card (as
publish generates one) that names the checkpoint's file and its sha256.

  --type T              auto (default), or one of: %s
  --config-from REPO[@REV]
                        take model_index.json, the component configs, the
                        scheduler config and the tokenizer files from this
                        Diffusers repository on the Hub (never its weights),
                        rather than the embedded ones; a gated repository
                        needs a token of an account that accepted its terms
                        (modelpub login, or HF_TOKEN)
  --endpoint URL        the Hub for --config-from (default $HF_ENDPOINT or
                        https://huggingface.co)
  --dtype f16|bf16|f32  convert the floating-point tensors of the weights
  --variant fp16|bf16   also write the weights converted to float16 or
                        bfloat16 beside them (diffusion_pytorch_model.fp16.safetensors, ...)
  --max-shard-size SIZE split weights at SIZE (5GB, 500MB, 2GiB or bytes;
                        default 10GB for diffusers models, 5GB for transformers)
  --no-verify           skip the byte-for-byte comparison with the checkpoint
  --json                print the result as JSON

Exit status: 0 converted, 1 the converted folder failed its checks (nothing
was kept), 2 nothing was converted (bad arguments, unreadable or unknown
checkpoint).
`

type convertComponent struct {
	Name    string `json:"name"`
	Dir     string `json:"dir"`
	Library string `json:"library"`
	Class   string `json:"class"`
	Prefix  string `json:"source_prefix"`
	Tensors int    `json:"tensors"`
	Bytes   int64  `json:"bytes"`
}

type convertOutput struct {
	Dir          string                `json:"dir"`
	Checkpoint   string                `json:"checkpoint"`
	Detected     convert.Detection     `json:"detected"`
	Components   []convertComponent    `json:"components"`
	Dropped      []convert.Dropped     `json:"dropped"`
	Bytes        int64                 `json:"bytes"`
	Files        []string              `json:"files"`
	Lossy        []convert.LossyTensor `json:"lossy_tensors"`
	Validation   *pipeline.Report      `json:"validation"`
	Verification *pipeline.Report      `json:"verification,omitempty"`
	Source       convert.SourceFile    `json:"source"`
	ConfigFrom   string                `json:"config_from,omitempty"`
}

func parseDTypeFlag(s string) (tensors.DType, bool) {
	switch strings.ToLower(s) {
	case "":
		return 0, true
	case "f16", "fp16", "float16":
		return tensors.F16, true
	case "bf16", "bfloat16":
		return tensors.BF16, true
	case "f32", "fp32", "float32":
		return tensors.F32, true
	}
	return 0, false
}

func typeNames() string {
	var s []string
	for _, t := range convert.Types() {
		s = append(s, string(t))
	}
	return strings.Join(s, ", ")
}

func runConvert(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("convert", stderr)
	typ := fs.String("type", "auto", "")
	dtype := fs.String("dtype", "", "")
	variant := fs.String("variant", "", "")
	maxSize := fs.String("max-shard-size", "", "")
	noVerify := fs.Bool("no-verify", false, "")
	configFrom := fs.String("config-from", "", "")
	endpoint := fs.String("endpoint", "", "")
	asJSON := fs.Bool("json", false, "")
	pos, ok := parseArgs(fs, args, 2)
	if !ok {
		return ExitUsage
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "modelpub convert: "+format+"\n", a...)
		return ExitUsage
	}
	opts := convert.Options{Variant: *variant, SkipVerify: *noVerify}
	if opts.Type, ok = convert.ParseType(*typ); !ok {
		return fail("--type %q: use auto or one of %s", *typ, typeNames())
	}
	if opts.DType, ok = parseDTypeFlag(*dtype); !ok {
		return fail("--dtype %q: use f16, bf16 or f32", *dtype)
	}
	if *variant != "" && *variant != "fp16" && *variant != "bf16" {
		return fail("--variant %q: use fp16 or bf16", *variant)
	}
	if *maxSize != "" {
		var err error
		if opts.MaxShardSize, err = tensors.ParseSize(*maxSize); err != nil {
			return fail("--max-shard-size: %s", safeText(err))
		}
	}
	if *configFrom != "" {
		opts.ConfigFrom, opts.ConfigRevision, _ = strings.Cut(*configFrom, "@")
	}
	ep, ok := hubEndpoint("convert", *endpoint, stderr)
	if !ok {
		return ExitUsage
	}
	opts.Hub = &lazyHub{endpoint: ep}
	// The checkpoint's sha256 (for the card) comes from the hash cache the
	// publish uses when the file is unchanged since: a second conversion
	// of the same checkpoint does not read it for that. A cache that cannot
	// be read or saved only costs the hash.
	if hc, err := hub.OpenHashCache(""); err == nil {
		opts.HashCache = hc
		defer hc.Save()
	}
	ctx, stop := interruptible()
	defer stop()
	bar := newProgressBar(stderr)
	opts.Progress = func(p convert.Progress) {
		tail := "  writing"
		switch p.Step {
		case "verify":
			tail = "  verifying"
		case "hash":
			tail = "  hashing the checkpoint for the card"
		}
		bar.updateWith(p.Done, p.Total, tail)
	}
	res, err := convert.Convert(ctx, pos[0], pos[1], opts)
	bar.done()
	if err != nil {
		switch {
		case errors.Is(err, context.Canceled):
			fmt.Fprintf(stderr, "modelpub convert: interrupted; %s was not created\n", folder.Printable(pos[1]))
			return ExitUsage
		case errors.Is(err, convert.ErrNotVerified):
			fmt.Fprintf(stderr, "modelpub convert: %s\nmodelpub convert: %s was not created\n", errText(err), folder.Printable(pos[1]))
			return ExitProblems
		}
		return fail("%s", errText(err))
	}
	out := convertOutput{Dir: res.Dir, Checkpoint: pos[0], Detected: res.Plan.Detection, Dropped: res.Plan.Dropped,
		Bytes: res.Bytes, Files: res.Files, Lossy: res.Lossy, Validation: res.Validation, Verification: res.Verification, Source: res.Source,
		ConfigFrom: res.Plan.ConfigFrom}
	if out.Dropped == nil {
		out.Dropped = []convert.Dropped{}
	}
	for _, c := range res.Plan.Components {
		out.Components = append(out.Components, convertComponent{Name: c.Name, Dir: c.Dir, Library: c.Library, Class: c.Class,
			Prefix: c.Prefix, Tensors: len(c.Tensors), Bytes: c.Bytes()})
	}
	if *asJSON {
		printJSON(stdout, out)
		return ExitOK
	}
	printConvert(stdout, out)
	return ExitOK
}

func printConvert(w io.Writer, out convertOutput) {
	d := out.Detected
	how := "detected"
	if d.Forced {
		how = "checked (--type)"
	}
	fmt.Fprintf(w, "%s %s (%s):\n", how, d.Name, d.Type)
	for _, r := range d.Reasons {
		fmt.Fprintf(w, "  %s\n", safeText(r))
	}
	if out.ConfigFrom != "" {
		fmt.Fprintf(w, "configs and tokenizer files from %s on the Hub\n", folder.Printable(out.ConfigFrom))
	}
	if len(out.Dropped) > 0 {
		fmt.Fprintf(w, "dropped %d keys, as diffusers does:\n", len(out.Dropped))
		var reasons []string
		byReason := map[string][]string{}
		for _, k := range out.Dropped {
			if _, seen := byReason[k.Reason]; !seen {
				reasons = append(reasons, k.Reason)
			}
			byReason[k.Reason] = append(byReason[k.Reason], k.Name)
		}
		for _, r := range reasons {
			names := byReason[r]
			shown := names
			if len(shown) > 4 {
				shown = shown[:4]
			}
			var s []string
			for _, n := range shown {
				s = append(s, folder.Printable(n))
			}
			list := strings.Join(s, ", ")
			if len(names) > len(shown) {
				list += fmt.Sprintf(" and %d more", len(names)-len(shown))
			}
			fmt.Fprintf(w, "  %s: %s\n", safeText(r), list)
		}
	}
	fmt.Fprintf(w, "converted %s (%s):\n", folder.Printable(out.Dir), tensors.FormatSize(out.Bytes))
	single := false
	for _, c := range out.Components {
		from := c.Prefix + "*"
		if c.Prefix == "" {
			from = "the top-level keys"
		}
		fmt.Fprintf(w, "  %-14s %-27s %5d tensors  %s  (from %s)\n", c.Name, c.Class, c.Tensors, tensors.FormatSize(c.Bytes), from)
		single = single || c.Dir == ""
	}
	for _, l := range out.Lossy {
		where := l.Component
		if l.Variant != "" {
			where += " " + l.Variant
		}
		fmt.Fprintf(w, "warning: %s: tensor %s: %d values overflowed to ±inf, %d non-zero values became zero\n",
			folder.Printable(where), folder.Printable(l.Tensor), l.Overflow, l.Underflow)
	}
	if out.Validation != nil {
		for _, p := range out.Validation.Warnings {
			fmt.Fprintf(w, "warning: %s\n", safeText(p.Message))
		}
		if single {
			fmt.Fprintln(w, "valid: loads as diffusers loads a model folder")
		} else {
			fmt.Fprintln(w, "valid: loads as diffusers loads a pipeline folder")
		}
	}
	if v := out.Verification; v != nil {
		fmt.Fprintf(w, "verified: %d tensors (%s) match the checkpoint bit for bit (converted ones: its exact conversion)\n", v.Tensors, tensors.FormatSize(v.Bytes))
	} else {
		fmt.Fprintln(w, "not verified against the checkpoint (--no-verify)")
	}
	fmt.Fprintf(w, "card: README.md names the source %s, sha256 %s\n", folder.Printable(out.Source.Name), out.Source.SHA256)
}

// lazyHub is the Hub client convert reads a reference repository with,
// made on first use: a conversion with embedded configs never looks for a
// token. The token, when there is one (HF_TOKEN, the keyring, hf's token
// file), opens gated repositories; without one the repository is read
// anonymously.
type lazyHub struct {
	endpoint string
	once     sync.Once
	c        *hub.Client
	err      error
}

func (l *lazyHub) client() (*hub.Client, error) {
	l.once.Do(func() {
		tok, _ := auth.Resolve(auth.Options{Endpoint: l.endpoint})
		l.c, l.err = hub.NewClient(hub.Options{Endpoint: l.endpoint, Token: tok.Value(), Version: Version})
	})
	return l.c, l.err
}

func (l *lazyHub) ListTree(ctx context.Context, id hub.RepoID, rev, path string, recursive bool) ([]hub.TreeEntry, error) {
	c, err := l.client()
	if err != nil {
		return nil, err
	}
	return c.ListTree(ctx, id, rev, path, recursive)
}

func (l *lazyHub) ReadFile(ctx context.Context, id hub.RepoID, rev, path string) ([]byte, error) {
	c, err := l.client()
	if err != nil {
		return nil, err
	}
	return c.ReadFile(ctx, id, rev, path)
}

var _ convert.HubReader = (*lazyHub)(nil)
