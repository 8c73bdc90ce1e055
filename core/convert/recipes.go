package convert

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
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
	// pipeline folder.
	dir string
	// components builds the components from the configs.
	components func(cfg fs.FS) ([]*componentRecipe, error)
	// edit changes a config (model_index.json, <component>/config.json,
	// scheduler/scheduler_config.json; rel is its path) before it is
	// written.
	edit func(rel string, v map[string]any, p *Plan)
}

// componentRecipe is how the tensors of one component are found and named.
type componentRecipe struct {
	name    string // folder and model_index.json key
	library string // "diffusers" or "transformers"
	class   string
	base    string // weights file base name
	prefix  string // the component's keys in the checkpoint
	// rename maps a key (prefix removed) to its diffusers name; linear
	// marks a 1×1 convolution weight that diffusers stores as a linear
	// one (trailing 1-dimensions dropped).
	rename func(key string) (name string, linear, ok bool)
	// drop gives the reason diffusers drops a key under prefix (prefix
	// removed), or "".
	drop func(key string) string
	// names are the model's tensors in registration order.
	names []string
}

var recipes = []*recipe{
	{typ: SD15, pipelineClass: "StableDiffusionPipeline", dir: "configs/sd15", components: sd15Components, edit: sd15Edit},
	{typ: SD15Inpaint, pipelineClass: "StableDiffusionInpaintPipeline", dir: "configs/sd15", components: sd15Components, edit: sd15Edit},
}

func recipeFor(t Type) *recipe {
	for _, r := range recipes {
		if r.typ == t {
			return r
		}
	}
	return nil
}

func (r *recipe) configFS() fs.FS {
	sub, err := fs.Sub(configs, r.dir)
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return sub
}

// readConfig decodes an embedded JSON config into v.
func readConfig(cfg fs.FS, rel string, v any) error {
	data, err := fs.ReadFile(cfg, rel)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("embedded %s: %w", rel, err)
	}
	return nil
}

// sd15Components are SD 1.x's UNet, VAE and CLIP text encoder, mapped as
// diffusers' convert_ldm_unet_checkpoint, convert_ldm_vae_checkpoint and
// convert_ldm_clip_checkpoint map them.
func sd15Components(cfg fs.FS) ([]*componentRecipe, error) {
	var uc unetConfig
	var vc vaeConfig
	var cc clipConfig
	for rel, v := range map[string]any{"unet/config.json": &uc, "vae/config.json": &vc, "text_encoder/config.json": &cc} {
		if err := readConfig(cfg, rel, v); err != nil {
			return nil, err
		}
	}
	unetNames, err := uc.names()
	if err != nil {
		return nil, err
	}
	vaeNames, err := vc.names()
	if err != nil {
		return nil, err
	}
	clipNames, err := cc.names(false)
	if err != nil {
		return nil, err
	}
	return []*componentRecipe{
		ldmUNet(&uc, unetNames),
		ldmVAE(&vc, vaeNames),
		{
			name: "text_encoder", library: "transformers", class: "CLIPTextModel", base: "model",
			prefix: "cond_stage_model.transformer.",
			rename: func(key string) (string, bool, bool) { return key, false, true },
			drop:   dropPositionIDs,
			names:  clipNames,
		},
	}, nil
}

func ldmUNet(uc *unetConfig, names []string) *componentRecipe {
	return &componentRecipe{
		name: "unet", library: "diffusers", class: "UNet2DConditionModel", base: "diffusion_pytorch_model",
		prefix: "model.diffusion_model.",
		rename: func(key string) (string, bool, bool) {
			n, ok := unetLDMName(key, uc.LayersPerBlock)
			return n, false, ok
		},
		names: names,
	}
}

func ldmVAE(vc *vaeConfig, names []string) *componentRecipe {
	return &componentRecipe{
		name: "vae", library: "diffusers", class: "AutoencoderKL", base: "diffusion_pytorch_model",
		prefix: "first_stage_model.",
		rename: func(key string) (string, bool, bool) { return vaeLDMName(key, len(vc.UpBlockTypes)) },
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

// sd15Edit makes the configs what StableDiffusionPipeline.from_single_file
// followed by save_pretrained writes: model_index.json without the safety
// checker (from_single_file does not load it: SINGLE_FILE_OPTIONAL_COMPONENTS)
// and with the optional image encoder unset, both [null, null]; the
// pipeline's requires_safety_checker left at its default, true; the text
// encoder's torch_dtype the dtype its weights are written in; the
// inpainting UNet's 9 input channels.
func sd15Edit(rel string, v map[string]any, p *Plan) {
	switch rel {
	case "model_index.json":
		v["_class_name"] = p.recipe.pipelineClass
		v["safety_checker"] = []any{nil, nil}
		v["image_encoder"] = []any{nil, nil}
		v["requires_safety_checker"] = true
	case "unet/config.json":
		if p.Detection.Type == SD15Inpaint {
			v["in_channels"] = 9
		}
	case "text_encoder/config.json":
		if d := p.Component("text_encoder").mainFloatDType(); d != 0 {
			v["torch_dtype"] = torchDTypeName(d)
		}
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
