package convert

import (
	"fmt"
	"slices"
	"strings"
)

// Type is a model type a checkpoint can hold, named as the CLI names it.
type Type string

// The types Convert writes.
const (
	SD15        Type = "sd15"         // Stable Diffusion 1.x: StableDiffusionPipeline
	SD15Inpaint Type = "sd15-inpaint" // SD 1.x inpainting (9-channel UNet input): StableDiffusionInpaintPipeline
)

// More types Convert writes.
const (
	// SDXL is Stable Diffusion XL base: StableDiffusionXLPipeline.
	SDXL Type = "sdxl"
	// FluxDev and FluxSchnell are the FLUX.1 transformers (with and
	// without a guidance embedder): a FluxTransformer2DModel folder.
	FluxDev     Type = "flux-dev"
	FluxSchnell Type = "flux-schnell"
)

// SD 2.x, whose configs Convert reads from the Hub (NeedsConfigs).
const (
	// SD2 is Stable Diffusion 2.x: StableDiffusionPipeline, with the
	// configs of stabilityai/stable-diffusion-2-1 by default.
	SD2 Type = "sd2"
	// SD2Inpaint is SD 2.x inpainting: StableDiffusionInpaintPipeline.
	SD2Inpaint Type = "sd2-inpaint"
)

// SDXLRefiner is the SDXL refiner: StableDiffusionXLImg2ImgPipeline, with
// the configs of stabilityai/stable-diffusion-xl-refiner-1.0 (NeedsConfigs).
const SDXLRefiner Type = "sdxl-refiner"

// Types recognised by Detect that Convert does not write (yet).
const (
	SDXLInpaint Type = "sdxl-inpaint"
	Playground  Type = "playground-v2.5"
	Upscale     Type = "sd-x4-upscaler"
	ControlNet  Type = "controlnet"
	Cascade     Type = "stable-cascade"
	AnimateDiff Type = "animatediff"
	FluxFill    Type = "flux-fill"
	FluxDepth   Type = "flux-depth"
)

// Types lists the types Convert writes, for --type.
func Types() []Type {
	var out []Type
	for _, r := range recipes {
		out = append(out, r.typ)
	}
	return out
}

// ParseType returns the type named s ("auto" and "" give 0, true).
func ParseType(s string) (Type, bool) {
	if s == "" || s == "auto" {
		return "", true
	}
	if recipeFor(Type(s)) != nil {
		return Type(s), true
	}
	return "", false
}

// Detection is what Detect found and why.
type Detection struct {
	Type Type   `json:"type"`
	Name string `json:"name"` // "Stable Diffusion 1.x"
	// Reasons are the observations that decided, one per key looked at.
	Reasons []string `json:"reasons"`
	// Forced is set when the type was given rather than detected.
	Forced bool `json:"forced,omitempty"`
}

// Signature keys, as diffusers' CHECKPOINT_KEY_NAMES names them.
const (
	keyInpainting   = "model.diffusion_model.input_blocks.0.0.weight"
	keyV2           = "model.diffusion_model.input_blocks.2.1.transformer_blocks.0.attn2.to_k.weight"
	keyXLBase       = "conditioner.embedders.1.model.transformer.resblocks.9.mlp.c_proj.bias"
	keyXLRefiner    = "conditioner.embedders.0.model.transformer.resblocks.9.mlp.c_proj.bias"
	keyUpscale      = "model.diffusion_model.input_blocks.10.0.skip_connection.bias"
	keyControlNet   = "control_model.time_embed.0.weight"
	keyPlayground   = "edm_mean"
	keyCascadeB     = "down_blocks.1.0.channelwise.0.weight"
	keyCascadeC     = "clip_txt_mapper.weight"
	keySD3          = "model.diffusion_model.joint_blocks.0.context_block.adaLN_modulation.1.bias"
	keyAnimateDiff  = "down_blocks.0.motion_modules.0.temporal_transformer.transformer_blocks.0.attention_blocks.1.pos_encoder.pe"
	keyAnimateDiff2 = "mid_block.motion_modules.0.temporal_transformer.norm.bias"
	keyCLIP         = "cond_stage_model.transformer.text_model.embeddings.position_embedding.weight"
	keyOpenCLIP     = "cond_stage_model.model.token_embedding.weight"
	keyRefinerProj  = "conditioner.embedders.0.model.text_projection"
	keyVAE          = "first_stage_model.encoder.conv_in.weight"
	keyCLIPXL       = "conditioner.embedders.0.transformer.text_model.embeddings.position_embedding.weight"
	keyOpenCLIPXL   = "conditioner.embedders.1.model.positional_embedding"
	keyAddEmbedding = "model.diffusion_model.label_emb.0.0.weight"
)

// Flux checkpoints (black-forest-labs' layout), with or without the
// "model.diffusion_model." prefix.
var keysFlux = []string{"double_blocks.0.img_attn.norm.key_norm.scale", "model.diffusion_model.double_blocks.0.img_attn.norm.key_norm.scale"}

var typeNames = map[Type]string{
	SD15: "Stable Diffusion 1.x", SD15Inpaint: "Stable Diffusion 1.x inpainting",
	SD2: "Stable Diffusion 2.x", SD2Inpaint: "Stable Diffusion 2.x inpainting",
	SDXL: "Stable Diffusion XL base", SDXLRefiner: "Stable Diffusion XL refiner", SDXLInpaint: "Stable Diffusion XL inpainting",
	Playground: "Playground v2.5", Upscale: "Stable Diffusion x4 upscaler", ControlNet: "a ControlNet",
	Cascade: "Stable Cascade", SD3: "Stable Diffusion 3 (transformer)", SD35: "Stable Diffusion 3.5 (transformer)", AnimateDiff: "an AnimateDiff motion module",
	FluxDev: "FLUX.1 dev (transformer)", FluxSchnell: "FLUX.1 schnell (transformer)", FluxFill: "FLUX.1 Fill", FluxDepth: "FLUX.1 Depth",
}

// Detect names the checkpoint's model type from its keys and shapes, as
// diffusers' infer_diffusers_model_type does and in the same order: a
// 9-channel UNet input is inpainting, a 1024-wide cross-attention is
// SD 2.x, then Playground, SDXL base and refiner, the upscaler, ControlNet,
// Stable Cascade, SD 3, AnimateDiff and Flux by their signature keys.
// Where diffusers falls back to SD 1.x for anything else, Detect requires
// SD 1.x's own signature (its UNet, CLIP text encoder and VAE keys) and
// otherwise fails with ErrUnknownArchitecture naming the keys it looked
// for. A recognised type that Convert does not write fails with
// ErrUnsupportedType.
func Detect(c *Checkpoint) (*Detection, error) {
	d := &Detection{}
	t := detectType(c, d)
	d.Type, d.Name = t, typeNames[t]
	if t == "" {
		return nil, fmt.Errorf("%s: %w: %s", c.Path, ErrUnknownArchitecture, unknownLayout(c))
	}
	if recipeFor(t) == nil {
		return nil, fmt.Errorf("%s: %w: detected %s (%s); modelpub converts %s", c.Path, ErrUnsupportedType, d.Name,
			strings.Join(d.Reasons, "; "), typeList())
	}
	if err := checkSignature(c, t, d); err != nil {
		return nil, err
	}
	return d, nil
}

// DetectAs checks that the checkpoint carries the signature of type t and
// returns the detection, marked Forced; a checkpoint whose signature is of
// another type fails with ErrTypeMismatch naming the keys that differ.
func DetectAs(c *Checkpoint, t Type) (*Detection, error) {
	if recipeFor(t) == nil {
		return nil, fmt.Errorf("%w: type %q (modelpub converts %s)", ErrOptions, t, typeList())
	}
	d := &Detection{Type: t, Name: typeNames[t], Forced: true}
	if err := checkSignature(c, t, d); err != nil {
		return nil, err
	}
	return d, nil
}

func typeList() string {
	var s []string
	for _, t := range Types() {
		s = append(s, string(t))
	}
	return strings.Join(s, ", ")
}

func shapeOf(c *Checkpoint, key string) ([]int64, bool) {
	t, ok := c.Tensor(key)
	return t.Shape, ok
}

// detectType follows infer_diffusers_model_type; it returns "" where
// diffusers would assume SD 1.x, leaving checkSignature to confirm it.
func detectType(c *Checkpoint, d *Detection) Type {
	has := func(key, why string) bool {
		if c.Has(key) {
			d.Reasons = append(d.Reasons, fmt.Sprintf("%s is present: %s", key, why))
			return true
		}
		return false
	}
	v2 := false
	if s, ok := shapeOf(c, keyV2); ok && len(s) > 0 && s[len(s)-1] == 1024 {
		v2 = true
	}
	if s, ok := shapeOf(c, keyInpainting); ok && len(s) >= 2 && s[1] == 9 {
		d.Reasons = append(d.Reasons, fmt.Sprintf("%s is %v: a UNet with 9 input channels (latents, mask and masked image), which is inpainting", keyInpainting, s))
		switch {
		case v2:
			d.Reasons = append(d.Reasons, fmt.Sprintf("%s ends in 1024: SD 2.x's cross-attention width", keyV2))
			return SD2Inpaint
		case has(keyXLBase, "SDXL's OpenCLIP ViT-bigG text encoder"):
			return SDXLInpaint
		}
		return SD15Inpaint
	}
	switch {
	case v2:
		d.Reasons = append(d.Reasons, fmt.Sprintf("%s ends in 1024: SD 2.x's cross-attention width (SD 1.x has 768)", keyV2))
		return SD2
	case has(keyPlayground, "the EDM latent statistics of Playground v2.5"):
		return Playground
	case has(keyXLBase, "SDXL base's second text encoder (OpenCLIP ViT-bigG)"):
		return SDXL
	case has(keyXLRefiner, "SDXL refiner's only text encoder (OpenCLIP ViT-bigG)"):
		return SDXLRefiner
	case has(keyUpscale, "the x4 upscaler's extra input block"):
		return Upscale
	case has(keyControlNet, "a ControlNet's control model"):
		return ControlNet
	case has(keyCascadeC, "Stable Cascade stage C"), has(keyCascadeB, "Stable Cascade stage B"):
		return Cascade
	case c.Has(keySD3), c.Has(keySD3Block):
		return detectSD3(c, d)
	case has(keyAnimateDiff, "an AnimateDiff motion module"), has(keyAnimateDiff2, "an AnimateDiff v2 motion module"):
		return AnimateDiff
	case has(keysFlux[0], "Flux's double-stream blocks"), has(keysFlux[1], "Flux's double-stream blocks"):
		p := fluxPrefix(c)
		if !c.Has(p + "guidance_in.in_layer.bias") {
			d.Reasons = append(d.Reasons, fmt.Sprintf("%sguidance_in.in_layer.bias is absent: no guidance embedder, which is FLUX.1 schnell", p))
			return FluxSchnell
		}
		d.Reasons = append(d.Reasons, fmt.Sprintf("%sguidance_in.in_layer.bias is present: a guidance embedder, as FLUX.1 dev has", p))
		if s, ok := shapeOf(c, p+"img_in.weight"); ok && len(s) == 2 {
			switch s[1] {
			case 384:
				d.Reasons = append(d.Reasons, fmt.Sprintf("%simg_in.weight takes 384 channels: FLUX.1 Fill", p))
				return FluxFill
			case 128:
				d.Reasons = append(d.Reasons, fmt.Sprintf("%simg_in.weight takes 128 channels: FLUX.1 Depth", p))
				return FluxDepth
			}
		}
		return FluxDev
	}
	if c.Has(keyInpainting) || c.Has(keyCLIP) || c.Has(keyVAE) {
		return SD15 // to be confirmed by its signature
	}
	return ""
}

// signature is one key a type needs, with a check of its shape.
type signature struct {
	key   string
	what  string
	check func(shape []int64) string // "" when the shape fits, else what is wrong
	// absent: the type is recognised by the key's absence.
	absent bool
}

func signatures(c *Checkpoint, t Type) []signature {
	unetIn := func(ch int64) func([]int64) string {
		return func(s []int64) string {
			if len(s) != 4 || s[1] != ch {
				return fmt.Sprintf("is %v, want [*, %d, 3, 3] (%d input channels)", s, ch, ch)
			}
			return ""
		}
	}
	switch t {
	case SD15, SD15Inpaint:
		ch := int64(4)
		if t == SD15Inpaint {
			ch = 9
		}
		return []signature{
			{key: keyInpainting, what: fmt.Sprintf("the UNet's conv_in, %d input channels", ch), check: unetIn(ch)},
			{key: keyV2, what: "the cross-attention on CLIP ViT-L/14's text embeddings (768 wide in SD 1.x; 1024 would be SD 2.x)", check: func(s []int64) string {
				if len(s) != 2 || s[1] == 1024 {
					return fmt.Sprintf("is %v, want [*, 768]", s)
				}
				return ""
			}},
			{key: keyCLIP, what: "the CLIP ViT-L/14 text encoder"},
			{key: keyVAE, what: "the VAE"},
		}
	case SD2, SD2Inpaint:
		ch := int64(4)
		if t == SD2Inpaint {
			ch = 9
		}
		return []signature{
			{key: keyInpainting, what: fmt.Sprintf("the UNet's conv_in, %d input channels", ch), check: unetIn(ch)},
			{key: keyV2, what: "the cross-attention on OpenCLIP ViT-H/14's 1024-wide text embeddings", check: func(s []int64) string {
				if len(s) != 2 || s[1] != 1024 {
					return fmt.Sprintf("is %v, want [*, 1024]", s)
				}
				return ""
			}},
			{key: keyOpenCLIP, what: "the OpenCLIP ViT-H/14 text encoder"},
			{key: keyVAE, what: "the VAE"},
		}
	case SDXLRefiner:
		return []signature{
			{key: keyXLRefiner, what: "OpenCLIP ViT-bigG, the SDXL refiner's only text encoder"},
			{key: keyRefinerProj, what: "its text projection"},
			{key: keyInpainting, what: "the UNet's conv_in, 4 input channels", check: unetIn(4)},
			{key: keyAddEmbedding, what: "the UNet's add_embedding (text_time conditioning)"},
			{key: keyVAE, what: "the VAE"},
		}
	case SD3, SD35:
		return sd3Signatures(c, t)
	case FluxDev, FluxSchnell, FluxFill, FluxDepth:
		p := fluxPrefix(c)
		in, what := fluxInChannels[t], "64 channels (16 latent channels in 2×2 patches)"
		switch t {
		case FluxFill:
			what = "384 channels (the latents, the masked image's latents and the mask, in 2×2 patches)"
		case FluxDepth:
			what = "128 channels (the latents and the control image's latents, in 2×2 patches)"
		}
		sigs := []signature{
			{key: p + "double_blocks.0.img_attn.norm.key_norm.scale", what: "Flux's double-stream blocks"},
			{key: p + "img_in.weight", what: "the image input projection: " + what, check: func(s []int64) string {
				if len(s) != 2 || s[1] != in {
					return fmt.Sprintf("is %v, want [*, %d]", s, in)
				}
				return ""
			}},
			{key: p + "final_layer.adaLN_modulation.1.weight", what: "the final layer's modulation"},
		}
		g := signature{key: p + "guidance_in.in_layer.bias", what: "the guidance embedder of FLUX.1 dev"}
		if t == FluxSchnell {
			g = signature{key: p + "guidance_in.in_layer.bias", what: "FLUX.1 schnell has no guidance embedder", absent: true}
		}
		return append(sigs, g)
	case SDXL, SDXLInpaint:
		ch := int64(4)
		if t == SDXLInpaint {
			ch = 9
		}
		return []signature{
			{key: keyXLBase, what: "OpenCLIP ViT-bigG, SDXL base's second text encoder"},
			{key: keyCLIPXL, what: "CLIP ViT-L/14, SDXL's first text encoder"},
			{key: keyOpenCLIPXL, what: "OpenCLIP ViT-bigG's position embedding"},
			{key: keyInpainting, what: fmt.Sprintf("the UNet's conv_in, %d input channels", ch), check: unetIn(ch)},
			{key: keyAddEmbedding, what: "the UNet's add_embedding (text_time conditioning)"},
			{key: keyVAE, what: "the VAE"},
		}
	}
	return nil
}

// checkSignature checks every signature key of t and records why each
// fits; a key missing or of the wrong shape makes the type not match.
func checkSignature(c *Checkpoint, t Type, d *Detection) error {
	var bad []string
	for _, s := range signatures(c, t) {
		shape, ok := shapeOf(c, s.key)
		if s.absent {
			if ok {
				bad = append(bad, fmt.Sprintf("%s is present (%s)", s.key, s.what))
			} else if !slices.ContainsFunc(d.Reasons, func(r string) bool { return strings.HasPrefix(r, s.key+" ") }) {
				d.Reasons = append(d.Reasons, fmt.Sprintf("%s is absent: %s", s.key, s.what))
			}
			continue
		}
		if !ok {
			bad = append(bad, fmt.Sprintf("%s (%s) is missing", s.key, s.what))
			continue
		}
		if s.check != nil {
			if why := s.check(shape); why != "" {
				bad = append(bad, fmt.Sprintf("%s (%s) %s", s.key, s.what, why))
				continue
			}
		}
		if !slices.ContainsFunc(d.Reasons, func(r string) bool { return strings.HasPrefix(r, s.key+" ") }) {
			d.Reasons = append(d.Reasons, fmt.Sprintf("%s is %v: %s", s.key, shape, s.what))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	err := ErrTypeMismatch
	if !d.Forced {
		err = ErrUnknownArchitecture
	}
	return fmt.Errorf("%s: %w: not %s: %s", c.Path, err, typeNames[t], strings.Join(bad, "; "))
}

// unknownLayout describes a checkpoint no signature matched: the keys
// looked for, and what the checkpoint's keys start with.
func unknownLayout(c *Checkpoint) string {
	prefixes := map[string]int{}
	for _, t := range c.Tensors {
		p, _, _ := strings.Cut(t.Name, ".")
		prefixes[p]++
	}
	var top []string
	for p, n := range prefixes {
		top = append(top, fmt.Sprintf("%s.* (%d)", p, n))
	}
	slices.Sort(top)
	if len(top) > 8 {
		top = append(top[:8], "…")
	}
	have := "no tensors"
	if len(top) > 0 {
		have = "its keys are " + strings.Join(top, ", ")
	}
	return fmt.Sprintf("none of the keys that identify a model type is present (%s for SD 1.x; %s for SD 2.x; %s for SDXL; %s for SD 3; %s for Flux); %s",
		strings.Join([]string{keyInpainting, keyCLIP, keyVAE}, ", "), keyV2, keyXLBase, keySD3, keysFlux[0], have)
}
