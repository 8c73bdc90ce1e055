package converttest

import (
	"embed"
	"io/fs"

	"modelpub/core/pipeline/pipelinetest"
)

//go:embed sdxl-refiner-reference
var refinerReference embed.FS

// SDXLRefinerReference is a stand-in for the SDXL refiner's reference
// repository (stabilityai/stable-diffusion-xl-refiner-1.0) to serve from
// the Hub emulator (sdxl-refiner-reference/SOURCES.md says what it holds).
func SDXLRefinerReference() fs.FS {
	sub, err := fs.Sub(refinerReference, "sdxl-refiner-reference")
	if err != nil {
		panic(err)
	}
	return sub
}

//go:embed sdxl-refiner-mapping.tsv
var refinerMapping string

// SDXLRefinerMapping is the expected mapping of an SDXL refiner checkpoint
// (gen_mappings.go).
func SDXLRefinerMapping() []Row { return parseMapping(refinerMapping) }

// SDXLRefinerTensorSpecs returns the state dict of an SDXL refiner
// component in diffusers' layout (unet, vae, text_encoder_2), in
// registration order, widths scaled as pipelinetest.ScaleWidth scales them.
// It is written from the published architecture
// (stabilityai/stable-diffusion-xl-refiner-1.0's configs: block_out_channels
// [384, 768, 1536, 1536], DownBlock2D, CrossAttnDownBlock2D ×2,
// DownBlock2D, transformer_layers_per_block 4, cross_attention_dim 1280,
// text_time add_embedding of projection_class_embeddings_input_dim 2560,
// use_linear_projection; SDXL's VAE; OpenCLIP ViT-bigG/14 as
// CLIPTextModelWithProjection), independently of core/convert.
func SDXLRefinerTensorSpecs(component string, scale float64) []pipelinetest.Spec {
	b := &xlBuilder{scale: scale}
	switch component {
	case UNet:
		b.unetWith([]int64{384, 768, 1536, 1536}, []bool{false, true, true, false}, []int{4, 4, 4, 4}, b.w(1280), b.w(2560))
	case VAE:
		return pipelinetest.SD15TensorSpecs(pipelinetest.VAE, scale)
	case TextEncoder2:
		b.clip(1280, 5120, 32, true)
	default:
		return nil
	}
	return b.specs
}

// SDXLRefinerModel is the SDXL refiner.
func SDXLRefinerModel() Model {
	specs := map[string][]pipelinetest.Spec{}
	for _, c := range []string{UNet, VAE, TextEncoder2} {
		specs[c] = SDXLRefinerTensorSpecs(c, Scale)
	}
	return Model{Mapping: SDXLRefinerMapping(), Specs: specMap(specs)}
}

// SDXLRefiner builds an original-layout SDXL refiner checkpoint (see
// Build).
func SDXLRefiner(o Options) []Tensor { return Build(SDXLRefinerModel(), o) }
