package converttest

import (
	"embed"
	"fmt"
	"io/fs"
	"strings"

	"modelpub/core/pipeline/pipelinetest"
	"modelpub/core/tensors"
)

//go:embed sd2-mapping.tsv
var sd2Mapping string

//go:embed sd2-reference
var sd2Reference embed.FS

// SD2Reference is a stand-in for the reference repository of SD 2.x
// (stabilityai/stable-diffusion-2-1) to serve from the Hub emulator: its
// model_index.json, component configs, scheduler config and tokenizer
// files, laid out as in the repository (sd2-reference/SOURCES.md says what
// they are).
func SD2Reference() fs.FS {
	sub, err := fs.Sub(sd2Reference, "sd2-reference")
	if err != nil {
		panic(err)
	}
	return sub
}

// SD2Mapping is the expected mapping of an SD 2.x checkpoint
// (gen_mappings.go).
func SD2Mapping() []Row { return parseMapping(sd2Mapping) }

// SD2CrossWidth is SD 2.x's cross-attention width, kept at full size in
// the scaled models: detection reads it (to_k of the first cross-attention
// is [*, 1024] in SD 2.x, [*, 768] in SD 1.x).
const SD2CrossWidth = 1024

// SD2TensorSpecs returns the state dict of an SD 2.x component in
// diffusers' layout (unet, vae, text_encoder), in registration order,
// widths scaled as pipelinetest.ScaleWidth scales them except the UNet's
// cross-attention input (SD2CrossWidth). It is written from the published
// architecture (stabilityai/stable-diffusion-2-1's configs:
// block_out_channels [320, 640, 1280, 1280], CrossAttnDownBlock2D ×3 then
// DownBlock2D, one transformer layer per block, use_linear_projection,
// cross_attention_dim 1024; the VAE of SD 1.x; an OpenCLIP ViT-H/14 text
// tower as CLIPTextModel with hidden_size 1024, intermediate_size 4096 and
// 23 layers), independently of core/convert.
func SD2TensorSpecs(component string, scale float64) []pipelinetest.Spec {
	b := &xlBuilder{scale: scale}
	switch component {
	case UNet:
		b.unetWith([]int64{320, 640, 1280, 1280}, []bool{true, true, true, false}, []int{1, 1, 1, 1}, SD2CrossWidth, 0)
	case VAE:
		return pipelinetest.SD15TensorSpecs(pipelinetest.VAE, scale)
	case TextEncoder:
		b.clip(1024, 4096, 23, false)
	default:
		return nil
	}
	return b.specs
}

// SD2Model is Stable Diffusion 2.x.
func SD2Model() Model {
	specs := map[string][]pipelinetest.Spec{}
	for _, c := range []string{UNet, VAE, TextEncoder} {
		specs[c] = SD2TensorSpecs(c, Scale)
	}
	return Model{Mapping: SD2Mapping(), Specs: specMap(specs)}
}

// SD2 builds an original-layout SD 2.x checkpoint (see Build).
func SD2(o Options) []Tensor { return Build(SD2Model(), o) }

// likeShape is the shape of a dropped key whose op is "like:KEY": that of
// KEY, built before it.
func likeShape(ts []Tensor, op string) ([]int64, bool) {
	key, ok := strings.CutPrefix(op, "like:")
	if !ok {
		return nil, false
	}
	for _, t := range ts {
		if t.Name == key {
			return t.Shape, true
		}
	}
	panic(fmt.Sprintf("converttest: %s: no tensor %s before it", op, key))
}

// droppedFloat builds a dropped key of class "last-layer" or
// "text-projection", shaped like the key its op names.
func droppedFloat(ts []Tensor, r Row, d tensors.DType) (Tensor, bool) {
	shape, ok := likeShape(ts, r.Op)
	if !ok {
		return Tensor{}, false
	}
	return Float(r.LDM, d, shape), true
}
