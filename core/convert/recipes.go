package convert

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"modelpub/core/tensors"
)

// configs holds the real configuration and tokenizer files of the
// reference repositories diffusers takes configs from, so the types below
// convert offline. configs/*/SOURCES.md says where each file comes from.
//
//go:embed configs
var configs embed.FS

// A recipe is how one model type becomes a Diffusers folder: its pipeline
// class, its components and their configs.
type recipe struct {
	typ Type
	// pipelineClass is model_index.json's _class_name.
	pipelineClass string
	// dir holds the type's configs in the configs FS, laid out as the
	// pipeline folder; "" when they are not embedded and come from the
	// Hub (Options.ConfigFrom, repo by default).
	dir string
	// repo is the repository diffusers takes the type's configs from
	// (DIFFUSERS_DEFAULT_PIPELINE_PATHS), the default of --config-from.
	repo string
	// subfolder is where a single model's configs are in repo.
	subfolder string
	// repoFor, if set, picks the repository by the checkpoint (SD 3.5
	// large or medium); repo is the default named in messages.
	repoFor func(c *Checkpoint) string
	// components builds the components from the configs (and, where the
	// layout varies, the checkpoint's keys).
	components func(cfg fs.FS, c *Checkpoint) ([]*componentRecipe, error)
	// single writes one model folder (config.json and weights at the
	// root) rather than a pipeline: the checkpoint holds one model.
	single bool
	// editConfig, if set, edits the configs further.
	editConfig func(rel string, v map[string]any, p *Plan)
	// nullComponents are set to [null, null] in model_index.json: what the
	// pipeline registers as None after from_single_file.
	nullComponents []string
	// indexFlags are set in model_index.json.
	indexFlags map[string]any
	// unetInChannels, if not 0, replaces the UNet config's in_channels.
	unetInChannels int
}

// componentRecipe is how the tensors of one component are found and named.
type componentRecipe struct {
	name    string // folder and model_index.json key
	library string // "diffusers" or "transformers"
	class   string
	base    string // weights file base name
	prefix  string // the component's keys in the checkpoint
	// rename maps a key (prefix removed) to the diffusers tensors made
	// from it: usually one, renamed; three for a fused q/k/v projection.
	rename func(key string) ([]piece, bool)
	// drop gives the reason diffusers drops a key under prefix (prefix
	// removed), or "".
	drop func(key string) string
	// names are the model's tensors in registration order.
	names []string
}

// piece is one diffusers tensor made from a checkpoint tensor.
type piece struct {
	name string
	// linear marks a 1×1 convolution weight that diffusers stores as a
	// linear one (trailing 1-dimensions dropped: the same bytes).
	linear bool
	// from, to, of: a fused projection split along its first dimension,
	// rows from·n/of to to·n/of of its n rows (a byte range); of is 0 for
	// the whole tensor.
	from, to, of int
	// swap exchanges the two halves of the rows (diffusers'
	// swap_scale_shift: [shift; scale] becomes [scale; shift]): two byte
	// ranges.
	swap bool
	// transpose swaps the two dimensions of a matrix.
	transpose bool
}

func one(name string, linear, ok bool) ([]piece, bool) {
	if !ok {
		return nil, false
	}
	return []piece{{name: name, linear: linear}}, true
}

// sd15Nulls: StableDiffusionPipeline.from_single_file does not load the
// safety checker (SINGLE_FILE_OPTIONAL_COMPONENTS) and the pipeline's
// optional image encoder (IP-Adapter, diffusers ≥ 0.24) is not in the
// reference model_index.json, so both are registered as None and saved as
// [null, null]; requires_safety_checker keeps the pipeline's default, true.
var (
	sd15Nulls = []string{"safety_checker", "image_encoder"}
	sd15Flags = map[string]any{"requires_safety_checker": true}
	// sdxlNulls: StableDiffusionXLPipeline's optional image encoder and
	// feature extractor (diffusers ≥ 0.24).
	sdxlNulls = []string{"image_encoder", "feature_extractor"}
)

// fluxRepos are the repositories diffusers takes Flux configs from
// (DIFFUSERS_DEFAULT_PIPELINE_PATHS).
var fluxRepos = map[Type]string{FluxDev: "black-forest-labs/FLUX.1-dev", FluxSchnell: "black-forest-labs/FLUX.1-schnell",
	FluxFill: "black-forest-labs/FLUX.1-Fill-dev", FluxDepth: "black-forest-labs/FLUX.1-Depth-dev"}

// fluxInChannels are the image input projection's channels of each Flux
// model (img_in.weight's second dimension, the transformer config's
// in_channels): FLUX.1 Fill takes the masked image's latents and the mask
// beside the latents, FLUX.1 Depth (and Canny) the control image's
// latents; their output stays 64 channels (out_channels).
var fluxInChannels = map[Type]int64{FluxDev: 64, FluxSchnell: 64, FluxFill: 384, FluxDepth: 128}

// The repositories are those of DIFFUSERS_DEFAULT_PIPELINE_PATHS in
// diffusers' single_file_utils.py (today's: runwayml's SD 1.5 repositories
// left the Hub for stable-diffusion-v1-5/*); SD 1.x, SDXL base and Flux
// convert with their embedded copies unless --config-from says otherwise.
var recipes = []*recipe{
	{typ: SD15, pipelineClass: "StableDiffusionPipeline", dir: "configs/sd15", repo: "stable-diffusion-v1-5/stable-diffusion-v1-5",
		components: sd15Components, nullComponents: sd15Nulls, indexFlags: sd15Flags},
	{typ: SD15Inpaint, pipelineClass: "StableDiffusionInpaintPipeline", dir: "configs/sd15", repo: "stable-diffusion-v1-5/stable-diffusion-inpainting",
		components: sd15Components, nullComponents: sd15Nulls, indexFlags: sd15Flags, unetInChannels: 9},
	{typ: SDXL, pipelineClass: "StableDiffusionXLPipeline", dir: "configs/sdxl", repo: "stabilityai/stable-diffusion-xl-base-1.0",
		components: sdxlComponents, nullComponents: sdxlNulls},
	// SDXL inpainting: no embedded configs; diffusers takes them from
	// diffusers/stable-diffusion-xl-1.0-inpainting-0.1 ("xl_inpaint").
	{typ: SDXLInpaint, pipelineClass: "StableDiffusionXLInpaintPipeline", repo: "diffusers/stable-diffusion-xl-1.0-inpainting-0.1",
		components: sdxlComponents, nullComponents: sdxlNulls, unetInChannels: 9},
	// SD 2.x: no embedded configs; diffusers takes them from
	// stabilityai/stable-diffusion-2-1 (v-prediction, 768 px) and
	// stabilityai/stable-diffusion-2-inpainting.
	{typ: SD2, pipelineClass: "StableDiffusionPipeline", repo: "stabilityai/stable-diffusion-2-1",
		components: sd2Components, nullComponents: sd15Nulls},
	{typ: SD2Inpaint, pipelineClass: "StableDiffusionInpaintPipeline", repo: "stabilityai/stable-diffusion-2-inpainting",
		components: sd2Components, nullComponents: sd15Nulls, unetInChannels: 9},
	// SDXL refiner: no embedded configs; diffusers takes them from
	// stabilityai/stable-diffusion-xl-refiner-1.0, whose model_index.json
	// has no first text encoder or tokenizer.
	{typ: SDXLRefiner, pipelineClass: "StableDiffusionXLImg2ImgPipeline", repo: "stabilityai/stable-diffusion-xl-refiner-1.0",
		components: sdxlRefinerComponents, nullComponents: sdxlNulls},
	// SD 3 and 3.5 transformers: no embedded configs (the reference
	// repositories are gated: the user's token opens them).
	{typ: SD3, repo: "stabilityai/stable-diffusion-3-medium-diffusers", subfolder: "transformer", components: sd3Components,
		single: true},
	{typ: SD35, repo: sd35LargeRepo, repoFor: sd35Repo, subfolder: "transformer", components: sd3Components, single: true},
	{typ: FluxDev, dir: "configs/flux", repo: fluxRepos[FluxDev], subfolder: "transformer", components: fluxComponents,
		single: true, editConfig: fluxEdit},
	{typ: FluxSchnell, dir: "configs/flux", repo: fluxRepos[FluxSchnell], subfolder: "transformer", components: fluxComponents,
		single: true, editConfig: fluxEdit},
	// FLUX.1 Fill and Depth (or Canny): FLUX.1 dev with a wider image
	// input; the embedded config with their in_channels and out_channels,
	// as their (gated) repositories have them.
	{typ: FluxFill, dir: "configs/flux", repo: fluxRepos[FluxFill], subfolder: "transformer", components: fluxComponents,
		single: true, editConfig: fluxEdit},
	{typ: FluxDepth, dir: "configs/flux", repo: fluxRepos[FluxDepth], subfolder: "transformer", components: fluxComponents,
		single: true, editConfig: fluxEdit},
}

// fluxComponents is the Flux transformer, mapped as diffusers'
// convert_flux_transformer_checkpoint_to_diffusers maps it. Its keys carry
// "model.diffusion_model." or nothing; without a prefix, keys that are not
// the transformer's (a bundled VAE or text encoder) are dropped.
func fluxComponents(cfg fs.FS, c *Checkpoint) ([]*componentRecipe, error) {
	var fc fluxConfig
	if err := readConfig(cfg, "config.json", &fc); err != nil {
		return nil, err
	}
	fc.GuidanceEmbeds = c != nil && (c.Has(fluxPrefix(c) + "guidance_in.in_layer.bias"))
	names, err := fc.names()
	if err != nil {
		return nil, err
	}
	prefix := ""
	if c != nil {
		prefix = fluxPrefix(c)
	}
	return []*componentRecipe{{
		name: "transformer", library: "diffusers", class: "FluxTransformer2DModel", base: "diffusion_pytorch_model",
		prefix: prefix, rename: fluxPieces, names: names,
		drop: func(key string) string {
			head, _, _ := strings.Cut(key, ".")
			switch head {
			case "time_in", "vector_in", "guidance_in", "txt_in", "img_in", "double_blocks", "single_blocks", "final_layer":
				return ""
			}
			return "not part of the Flux transformer (a bundled VAE or text encoder is not converted)"
		},
	}}, nil
}

// fluxPrefix is where a Flux checkpoint's transformer keys are.
func fluxPrefix(c *Checkpoint) string {
	if c.Has(keysFlux[1]) {
		return "model.diffusion_model."
	}
	return ""
}

// fluxEdit makes the transformer config what FluxTransformer2DModel's
// from_single_file (config from the type's reference repository) followed
// by save_pretrained writes: guidance_embeds as the checkpoint has a
// guidance embedder (FLUX.1-dev) or not (FLUX.1-schnell), the repository
// as _name_or_path, and no quantization_config (the embedded file comes
// from a 4-bit quantized copy of FLUX.1-schnell; the weights written here
// are the checkpoint's).
func fluxEdit(rel string, v map[string]any, p *Plan) {
	if rel != "config.json" {
		return
	}
	delete(v, "quantization_config")
	t := p.Detection.Type
	v["guidance_embeds"] = t != FluxSchnell
	v["_name_or_path"] = fluxRepos[t]
	if in := fluxInChannels[t]; in != 64 {
		v["in_channels"] = in
		v["out_channels"] = 64
	}
}

func recipeFor(t Type) *recipe {
	for _, r := range recipes {
		if r.typ == t {
			return r
		}
	}
	return nil
}

// EmbeddedConfigs is the configs and tokenizer files type t converts
// with offline, laid out as the output folder (with their provenance in
// SOURCES.md); nil for a type that has none (NeedsConfigs).
func EmbeddedConfigs(t Type) fs.FS {
	if r := recipeFor(t); r != nil {
		return r.configFS()
	}
	return nil
}

// configFS is the type's embedded configs, nil when it has none.
func (r *recipe) configFS() fs.FS {
	if r.dir == "" {
		return nil
	}
	sub, err := fs.Sub(configs, r.dir)
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return sub
}

// readConfig decodes a JSON config of cfg into v.
func readConfig(cfg fs.FS, rel string, v any) error {
	data, err := fs.ReadFile(cfg, rel)
	if err != nil {
		return fmt.Errorf("config %s: %w", rel, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("config %s: %w", rel, err)
	}
	return nil
}

// sd15Components are SD 1.x's UNet, VAE and CLIP text encoder, mapped as
// diffusers' convert_ldm_unet_checkpoint, convert_ldm_vae_checkpoint and
// convert_ldm_clip_checkpoint map them.
func sd15Components(cfg fs.FS, _ *Checkpoint) ([]*componentRecipe, error) {
	_, clipNames, err := textEncoderConfig(cfg, "text_encoder", false)
	if err != nil {
		return nil, err
	}
	return ldmComponents(cfg, clipL("text_encoder", "cond_stage_model.transformer.", clipNames))
}

// sdxlComponents are SDXL base's UNet, VAE, CLIP ViT-L text encoder and
// OpenCLIP ViT-bigG text encoder with projection, mapped as diffusers'
// convert_ldm_unet_checkpoint, convert_ldm_vae_checkpoint,
// convert_ldm_clip_checkpoint and convert_open_clip_checkpoint map them.
func sdxlComponents(cfg fs.FS, _ *Checkpoint) ([]*componentRecipe, error) {
	_, clipNames, err := textEncoderConfig(cfg, "text_encoder", false)
	if err != nil {
		return nil, err
	}
	_, clip2Names, err := textEncoderConfig(cfg, "text_encoder_2", true)
	if err != nil {
		return nil, err
	}
	return ldmComponents(cfg, clipL("text_encoder", "conditioner.embedders.0.transformer.", clipNames),
		openCLIPWithProjection("conditioner.embedders.1.model.", clip2Names))
}

// sd2Components are SD 2.x's UNet and VAE, mapped as SD 1.x's, and its
// OpenCLIP ViT-H/14 text encoder (cond_stage_model.model.*) as a
// CLIPTextModel, mapped as diffusers' convert_open_clip_checkpoint maps it:
// the fused q/k/v projections split by rows; the last resblock,
// text_projection and logit_scale left out (SD_2_TEXT_ENCODER_KEYS_TO_IGNORE:
// SD 2 conditions on the penultimate layer, so the reference
// text_encoder/config.json has one layer fewer than the checkpoint).
func sd2Components(cfg fs.FS, _ *Checkpoint) ([]*componentRecipe, error) {
	cc, clipNames, err := textEncoderConfig(cfg, "text_encoder", false)
	if err != nil {
		return nil, err
	}
	return ldmComponents(cfg, &componentRecipe{
		name: "text_encoder", library: "transformers", class: "CLIPTextModel", base: "model",
		prefix: "cond_stage_model.model.",
		rename: openCLIPPieces,
		drop: func(key string) string {
			switch {
			case key == "logit_scale":
				return "CLIP's contrastive logit scale, unused by the text encoder"
			case key == "text_projection":
				return "OpenCLIP's text projection: SD 2.x's text encoder is a CLIPTextModel without one (SD_2_TEXT_ENCODER_KEYS_TO_IGNORE)"
			case openCLIPLayer(key) >= cc.NumHiddenLayers:
				return fmt.Sprintf("OpenCLIP's last layer: SD 2.x uses the penultimate layer's output, so its text encoder has %d layers (SD_2_TEXT_ENCODER_KEYS_TO_IGNORE)", cc.NumHiddenLayers)
			case !strings.HasPrefix(key, "transformer.") && openCLIPLayers[key] == "":
				return "not read by diffusers' convert_open_clip_checkpoint"
			}
			return ""
		},
		names: clipNames,
	})
}

// openCLIPLayer is the resblock index of an OpenCLIP text tower key
// ("transformer.resblocks.{i}.…"), or -1.
func openCLIPLayer(key string) int {
	rest, ok := strings.CutPrefix(key, "transformer.resblocks.")
	if !ok {
		return -1
	}
	num, _, _ := strings.Cut(rest, ".")
	i, err := strconv.Atoi(num)
	if err != nil || num != strconv.Itoa(i) {
		return -1
	}
	return i
}

// sdxlRefinerComponents are the SDXL refiner's UNet and VAE, mapped as
// SDXL base's, and its only text encoder, OpenCLIP ViT-bigG
// (conditioner.embedders.0.model.*), as text_encoder_2: a
// CLIPTextModelWithProjection mapped as diffusers'
// convert_open_clip_checkpoint maps it (prefix
// "conditioner.embedders.0.model."), text_projection transposed.
func sdxlRefinerComponents(cfg fs.FS, _ *Checkpoint) ([]*componentRecipe, error) {
	_, clipNames, err := textEncoderConfig(cfg, "text_encoder_2", true)
	if err != nil {
		return nil, err
	}
	return ldmComponents(cfg, openCLIPWithProjection("conditioner.embedders.0.model.", clipNames))
}

// dropOpenCLIPExtras gives the reason diffusers leaves out a key of an
// OpenCLIP text tower converted with its projection.
func dropOpenCLIPExtras(key string) string {
	switch {
	case key == "logit_scale":
		return "CLIP's contrastive logit scale, unused by the text encoder"
	case !strings.HasPrefix(key, "transformer.") && openCLIPLayers[key] == "":
		return "not read by diffusers' convert_open_clip_checkpoint"
	}
	return ""
}

// ldmComponents are the UNet and VAE of an LDM checkpoint, from their
// configs in cfg, followed by the text encoders.
func ldmComponents(cfg fs.FS, textEncoders ...*componentRecipe) ([]*componentRecipe, error) {
	var uc unetConfig
	var vc vaeConfig
	if err := readConfig(cfg, "unet/config.json", &uc); err != nil {
		return nil, err
	}
	if err := readConfig(cfg, "vae/config.json", &vc); err != nil {
		return nil, err
	}
	unetNames, err := uc.names()
	if err != nil {
		return nil, err
	}
	vaeNames, err := vc.names()
	if err != nil {
		return nil, err
	}
	return append([]*componentRecipe{ldmUNet(&uc, unetNames), ldmVAE(&vc, vaeNames)}, textEncoders...), nil
}

// textEncoderConfig reads the CLIP config in dir and the names of the
// model it describes (with its text projection or not).
func textEncoderConfig(cfg fs.FS, dir string, withProjection bool) (clipConfig, []string, error) {
	var cc clipConfig
	if err := readConfig(cfg, dir+"/config.json", &cc); err != nil {
		return cc, nil, err
	}
	names, err := cc.names(withProjection)
	return cc, names, err
}

// clipL is a CLIP ViT-L text encoder held under prefix with the Hub's
// text_model.* names, mapped as convert_ldm_clip_checkpoint maps it.
func clipL(name, prefix string, names []string) *componentRecipe {
	return &componentRecipe{
		name: name, library: "transformers", class: "CLIPTextModel", base: "model",
		prefix: prefix,
		rename: func(key string) ([]piece, bool) { return one(key, false, true) },
		drop:   dropPositionIDs,
		names:  names,
	}
}

// openCLIPWithProjection is OpenCLIP ViT-bigG under prefix as SDXL's
// text_encoder_2, a CLIPTextModelWithProjection mapped as
// convert_open_clip_checkpoint maps it (q/k/v split, text_projection
// transposed).
func openCLIPWithProjection(prefix string, names []string) *componentRecipe {
	return &componentRecipe{
		name: "text_encoder_2", library: "transformers", class: "CLIPTextModelWithProjection", base: "model",
		prefix: prefix,
		rename: openCLIPPieces,
		drop:   dropOpenCLIPExtras,
		names:  names,
	}
}

func ldmUNet(uc *unetConfig, names []string) *componentRecipe {
	return &componentRecipe{
		name: "unet", library: "diffusers", class: "UNet2DConditionModel", base: "diffusion_pytorch_model",
		prefix: "model.diffusion_model.",
		rename: func(key string) ([]piece, bool) {
			n, ok := unetLDMName(key, uc.LayersPerBlock)
			return one(n, false, ok)
		},
		names: names,
	}
}

func ldmVAE(vc *vaeConfig, names []string) *componentRecipe {
	return &componentRecipe{
		name: "vae", library: "diffusers", class: "AutoencoderKL", base: "diffusion_pytorch_model",
		prefix: "first_stage_model.",
		rename: func(key string) ([]piece, bool) { return one(vaeLDMName(key, len(vc.UpBlockTypes))) },
		drop: func(key string) string {
			if strings.HasPrefix(key, "loss.") {
				return "the VAE's training loss (discriminator, LPIPS), not part of AutoencoderKL"
			}
			return ""
		},
		names: names,
	}
}

// dropPositionIDs drops CLIP's position_ids: transformers registers them
// as a non-persistent buffer (since 4.31), so loading ignores them and
// save_pretrained does not write them.
func dropPositionIDs(key string) string {
	if key == "text_model.embeddings.position_ids" {
		return "CLIP's position_ids buffer: transformers rebuilds it and does not save it"
	}
	return ""
}

// edit makes the configs what the pipeline's from_single_file followed by
// save_pretrained writes: model_index.json with the pipeline class, the
// components from_single_file leaves unset as [null, null] and the
// pipeline's flags; each transformers model's torch_dtype the dtype its
// weights are written in (save_pretrained records it); the inpainting
// UNet's 9 input channels.
func (r *recipe) edit(rel string, v map[string]any, p *Plan) {
	if r.editConfig != nil {
		r.editConfig(rel, v, p)
	}
	if rel == "model_index.json" {
		v["_class_name"] = r.pipelineClass
		for _, name := range r.nullComponents {
			v[name] = []any{nil, nil}
		}
		for k, val := range r.indexFlags {
			v[k] = val
		}
		return
	}
	dir, file := path.Split(rel)
	if file != "config.json" {
		return
	}
	c := p.componentAt(strings.TrimSuffix(dir, "/"))
	switch {
	case c == nil:
	case c.Library == "transformers":
		if d := c.mainFloatDType(); d != 0 {
			v["torch_dtype"] = torchDTypeName(d)
		}
	case c.Name == "unet" && r.unetInChannels != 0:
		v["in_channels"] = r.unetInChannels
	}
}

// torchDTypeName is how transformers writes a dtype in config.json.
func torchDTypeName(d tensors.DType) string {
	switch d {
	case tensors.F16:
		return "float16"
	case tensors.BF16:
		return "bfloat16"
	case tensors.F64:
		return "float64"
	}
	return "float32"
}

// isConfig reports the JSON files written re-encoded as save_pretrained
// writes them; the rest (tokenizer, feature extractor) are copied as they
// are.
func isConfig(rel string) bool {
	switch path.Base(rel) {
	case "model_index.json", "config.json", "scheduler_config.json":
		return true
	}
	return false
}
