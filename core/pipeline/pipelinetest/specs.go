package pipelinetest

import (
	"fmt"
	"math"

	"modelpub/core/tensors"
)

// The weight components of Stable Diffusion 1.5, by folder name.
const (
	UNet          = "unet"           // diffusers UNet2DConditionModel
	TextEncoder   = "text_encoder"   // transformers CLIPTextModel
	VAE           = "vae"            // diffusers AutoencoderKL
	SafetyChecker = "safety_checker" // diffusers StableDiffusionSafetyChecker
)

// WeightComponents lists the weight components in the order WriteSD15
// writes them. SafetyChecker is written only when Options.SafetyChecker is
// set.
var WeightComponents = []string{UNet, TextEncoder, VAE, SafetyChecker}

// The one tensor holding values that float16 cannot hold: the 4 elements
// of the UNet's conv_out.bias are FP16UnsafeValues at every scale and for
// every seed. Converting it to F16 gives 2 overflows (±1e5 become ±Inf) and
// 2 underflows (±1e-9 become ±0); BF16 holds all four. No other tensor of
// any component has a value that overflows or underflows in F16 or BF16.
const (
	FP16UnsafeComponent = UNet
	FP16UnsafeTensor    = "conv_out.bias"
	FP16Overflows       = 2
	FP16Underflows      = 2
)

// FP16UnsafeValues are the values of FP16UnsafeTensor, in element order.
var FP16UnsafeValues = [4]float32{1e5, -1e5, 1e-9, -1e-9}

// Init says how a tensor's values are generated.
type Init uint8

// The kinds of values. The random ones are a deterministic function of the
// seed, the component and the tensor name (see WriteSD15).
const (
	InitWeight      Init = iota // weights and embeddings: about N(0, 0.02), |x| ≤ 0.07
	InitBias                    // biases: about N(0, 0.005)
	InitNormWeight              // norm scales: 1 + about N(0, 0.02)
	InitNormBias                // norm shifts: about N(0, 0.005)
	InitPositionIDs             // I64 position ids: 0, 1, 2, …
	InitFP16Unsafe              // FP16UnsafeValues
)

func (i Init) String() string {
	switch i {
	case InitWeight:
		return "weight"
	case InitBias:
		return "bias"
	case InitNormWeight:
		return "norm-weight"
	case InitNormBias:
		return "norm-bias"
	case InitPositionIDs:
		return "position-ids"
	case InitFP16Unsafe:
		return "fp16-unsafe"
	}
	return fmt.Sprintf("Init(%d)", uint8(i))
}

// Spec is one tensor of a component's state dict.
type Spec struct {
	Name  string
	DType tensors.DType // F32, or I64 for position ids
	Shape []int64
	Init  Init
}

// NumElements is the product of the shape.
func (s Spec) NumElements() int64 {
	n := int64(1)
	for _, d := range s.Shape {
		n *= d
	}
	return n
}

// Size is the number of data bytes.
func (s Spec) Size() int64 { return s.NumElements() * int64(s.DType.Bits()/8) }

// Parameters counts the elements of the floating-point tensors: what
// PyTorch's sum(p.numel() for p in model.parameters()) gives, since the
// only non-float tensors are the position-id buffers.
func Parameters(specs []Spec) int64 {
	var n int64
	for _, s := range specs {
		if s.DType.IsFloat() {
			n += s.NumElements()
		}
	}
	return n
}

// DataBytes is the sum of the tensors' data sizes: a weights file's size
// without its header, and an index's metadata.total_size.
func DataBytes(specs []Spec) int64 {
	var n int64
	for _, s := range specs {
		n += s.Size()
	}
	return n
}

// ValidScale reports whether scale is one SD15TensorSpecs and WriteSD15
// accept: finite and > 0.
func ValidScale(scale float64) bool {
	return scale > 0 && !math.IsInf(scale, 0) && !math.IsNaN(scale)
}

// ScaleWidth applies the scaling rule to one width hyperparameter w (a
// channel count, hidden or intermediate size, vocabulary size): widths of
// 32 and more become max(1, round(w·√scale)); smaller ones (image and
// latent channels, kernel sizes) stay. At scale 1 every width is unchanged.
//
// SD15TensorSpecs applies it to the widths of the model configuration, not
// to each tensor dimension: dimensions that the architecture derives from
// widths are derived from the scaled widths in the same way (a skip
// connection's input is the sum of two scaled widths, a feed-forward layer
// is 4 scaled widths wide, GEGLU's projection 8), so every scaled model is
// shape-consistent. Sequence lengths (77 text positions, 257 image
// positions), the patch size and the safety checker's 17 + 3 concepts do
// not scale. Most parameters lie in width×width matrices, so the bytes
// scale by about scale.
func ScaleWidth(w int64, scale float64) int64 {
	if w < 32 || scale == 1 {
		return w
	}
	return max(1, int64(math.Round(float64(w)*math.Sqrt(scale))))
}

// SD15TensorSpecs returns the state dict of a Stable Diffusion 1.5
// component (UNet, TextEncoder, VAE or SafetyChecker) in state-dict order
// (the order of module registration, which is the order in which
// save_pretrained shards), with shapes scaled by scale (see ScaleWidth).
// Names and the number of tensors do not depend on scale. It returns nil
// for an unknown component or an invalid scale.
//
// At scale 1 the names and shapes are those of the real SD-1.5 files in
// diffusers format: unet 686 tensors, 859,520,964 parameters; text_encoder
// 196 parameters plus the I64 buffer text_model.embeddings.position_ids
// [1,77], 123,060,480 parameters; vae 248 tensors, 83,653,863 parameters,
// mid-block attentions named to_q/to_k/to_v/to_out.0 as diffusers saves them
// today (see LegacyVAENames for the real file's names); safety_checker 396
// parameters plus vision_model.vision_model.embeddings.position_ids [1,257],
// 303,981,588 parameters. specs_test.go checks these counts and the file
// sizes against the real files.
func SD15TensorSpecs(component string, scale float64) []Spec {
	if !ValidScale(scale) {
		return nil
	}
	b := &builder{scale: scale}
	switch component {
	case UNet:
		b.unet()
	case TextEncoder:
		b.clipText()
	case VAE:
		b.vae()
	case SafetyChecker:
		b.safetyChecker()
	default:
		return nil
	}
	return b.specs
}

// builder appends the tensors of PyTorch modules in registration order.
type builder struct {
	scale float64
	specs []Spec
}

func (b *builder) w(width int64) int64 { return ScaleWidth(width, b.scale) }

func (b *builder) add(name string, init Init, shape ...int64) {
	b.specs = append(b.specs, Spec{Name: name, DType: tensors.F32, Shape: shape, Init: init})
}

// linear is nn.Linear(in, out): weight [out, in], bias [out].
func (b *builder) linear(p string, out, in int64, bias bool) {
	b.add(p+".weight", InitWeight, out, in)
	if bias {
		b.add(p+".bias", InitBias, out)
	}
}

// conv is nn.Conv2d(in, out, k) with a bias.
func (b *builder) conv(p string, out, in, k int64) {
	b.add(p+".weight", InitWeight, out, in, k, k)
	b.add(p+".bias", InitBias, out)
}

// norm is nn.GroupNorm or nn.LayerNorm over c channels.
func (b *builder) norm(p string, c int64) {
	b.add(p+".weight", InitNormWeight, c)
	b.add(p+".bias", InitNormBias, c)
}

// resnet is diffusers' ResnetBlock2D: norm1, conv1, time_emb_proj (when
// temb > 0), norm2, conv2, and conv_shortcut when the full-size block
// changes the channel count (decided at full size so that scaling never
// adds or drops a tensor).
func (b *builder) resnet(p string, in, out, temb int64, shortcut bool) {
	b.norm(p+".norm1", in)
	b.conv(p+".conv1", out, in, 3)
	if temb > 0 {
		b.linear(p+".time_emb_proj", out, temb, true)
	}
	b.norm(p+".norm2", out)
	b.conv(p+".conv2", out, out, 3)
	if shortcut {
		b.conv(p+".conv_shortcut", out, in, 1)
	}
}

// attention is diffusers' Attention without group norm: to_q, to_k, to_v
// (with biases when bias), to_out.0 (always with a bias).
func (b *builder) attention(p string, dim, kvDim int64, bias bool) {
	b.linear(p+".to_q", dim, dim, bias)
	b.linear(p+".to_k", dim, kvDim, bias)
	b.linear(p+".to_v", dim, kvDim, bias)
	b.linear(p+".to_out.0", dim, dim, true)
}

// transformer2D is diffusers' Transformer2DModel as SD-1.5 configures it:
// one BasicTransformerBlock, continuous input, use_linear_projection=false
// (proj_in and proj_out are 1×1 convolutions), GEGLU feed-forward.
func (b *builder) transformer2D(p string, c, cross int64) {
	b.norm(p+".norm", c)
	b.conv(p+".proj_in", c, c, 1)
	t := p + ".transformer_blocks.0"
	b.norm(t+".norm1", c)
	b.attention(t+".attn1", c, c, false)
	b.norm(t+".norm2", c)
	b.attention(t+".attn2", c, cross, false)
	b.norm(t+".norm3", c)
	b.linear(t+".ff.net.0.proj", 8*c, c, true) // GEGLU: 2 × (4c)
	b.linear(t+".ff.net.2", c, 4*c, true)
	b.conv(p+".proj_out", c, c, 1)
}

// unet is UNet2DConditionModel with unet/config.json of SD-1.5. Modules are
// registered as conv_in, time_embedding, down_blocks, up_blocks (the empty
// ModuleList is created before the mid block), mid_block, conv_norm_out,
// conv_out; the cross-attention blocks register attentions before resnets.
func (b *builder) unet() {
	full := [4]int64{320, 640, 1280, 1280} // block_out_channels
	var ch [4]int64
	for i, c := range full {
		ch[i] = b.w(c)
	}
	temb := 4 * ch[0]     // time_embed_dim = block_out_channels[0] * 4
	cross := b.w(768)     // cross_attention_dim
	const inOut = 4       // in_channels, out_channels
	const layers = 2      // layers_per_block
	n := int64(len(full)) // number of blocks

	b.conv("conv_in", ch[0], inOut, 3)
	b.linear("time_embedding.linear_1", temb, ch[0], true)
	b.linear("time_embedding.linear_2", temb, temb, true)

	// down_block_types: CrossAttnDownBlock2D ×3, DownBlock2D.
	out, outFull := ch[0], full[0]
	for i := range n {
		in, inFull := out, outFull
		out, outFull = ch[i], full[i]
		p := fmt.Sprintf("down_blocks.%d", i)
		if i < n-1 {
			for j := range layers {
				b.transformer2D(fmt.Sprintf("%s.attentions.%d", p, j), out, cross)
			}
		}
		for j := range layers {
			rin, rinFull := out, outFull
			if j == 0 {
				rin, rinFull = in, inFull
			}
			b.resnet(fmt.Sprintf("%s.resnets.%d", p, j), rin, out, temb, rinFull != outFull)
		}
		if i < n-1 {
			b.conv(p+".downsamplers.0.conv", out, out, 3)
		}
	}

	// up_block_types: UpBlock2D, CrossAttnUpBlock2D ×3; layers_per_block+1
	// resnets each, whose input is the previous output concatenated with
	// a skip connection.
	out, outFull = ch[n-1], full[n-1]
	for i := range n {
		prev, prevFull := out, outFull
		out, outFull = ch[n-1-i], full[n-1-i]
		k := max(n-2-i, 0)
		in, inFull := ch[k], full[k]
		p := fmt.Sprintf("up_blocks.%d", i)
		if i > 0 {
			for j := range layers + 1 {
				b.transformer2D(fmt.Sprintf("%s.attentions.%d", p, j), out, cross)
			}
		}
		for j := range layers + 1 {
			skip, skipFull := out, outFull
			if j == layers {
				skip, skipFull = in, inFull
			}
			rin, rinFull := out, outFull
			if j == 0 {
				rin, rinFull = prev, prevFull
			}
			b.resnet(fmt.Sprintf("%s.resnets.%d", p, j), rin+skip, out, temb, rinFull+skipFull != outFull)
		}
		if i < n-1 {
			b.conv(p+".upsamplers.0.conv", out, out, 3)
		}
	}

	// UNetMidBlock2DCrossAttn: attentions.0 between resnets.0 and resnets.1.
	mid := ch[n-1]
	b.transformer2D("mid_block.attentions.0", mid, cross)
	b.resnet("mid_block.resnets.0", mid, mid, temb, false)
	b.resnet("mid_block.resnets.1", mid, mid, temb, false)

	b.norm("conv_norm_out", ch[0])
	b.add("conv_out.weight", InitWeight, inOut, ch[0], 3, 3)
	b.add(FP16UnsafeTensor, InitFP16Unsafe, int64(len(FP16UnsafeValues)))
}

// vae is AutoencoderKL with vae/config.json of SD-1.5: encoder, decoder,
// quant_conv, post_quant_conv. The Decoder registers up_blocks before
// mid_block; both mid blocks register attentions before resnets.
func (b *builder) vae() {
	full := [4]int64{128, 256, 512, 512} // block_out_channels
	var ch [4]int64
	for i, c := range full {
		ch[i] = b.w(c)
	}
	const image, latent = 3, 4 // in/out_channels, latent_channels
	const layers = 2
	n := len(full)
	midBlock := func(p string, c int64) {
		a := p + ".attentions.0"
		b.norm(a+".group_norm", c)
		b.attention(a, c, c, true)
		b.resnet(p+".resnets.0", c, c, 0, false)
		b.resnet(p+".resnets.1", c, c, 0, false)
	}

	// Encoder: DownEncoderBlock2D ×4.
	b.conv("encoder.conv_in", ch[0], image, 3)
	out, outFull := ch[0], full[0]
	for i := range n {
		in, inFull := out, outFull
		out, outFull = ch[i], full[i]
		p := fmt.Sprintf("encoder.down_blocks.%d", i)
		for j := range layers {
			rin, rinFull := out, outFull
			if j == 0 {
				rin, rinFull = in, inFull
			}
			b.resnet(fmt.Sprintf("%s.resnets.%d", p, j), rin, out, 0, rinFull != outFull)
		}
		if i < n-1 {
			b.conv(p+".downsamplers.0.conv", out, out, 3)
		}
	}
	midBlock("encoder.mid_block", ch[n-1])
	b.norm("encoder.conv_norm_out", ch[n-1])
	b.conv("encoder.conv_out", 2*latent, ch[n-1], 3) // double_z

	// Decoder: UpDecoderBlock2D ×4, layers_per_block+1 resnets each.
	b.conv("decoder.conv_in", ch[n-1], latent, 3)
	out, outFull = ch[n-1], full[n-1]
	for i := range n {
		prev, prevFull := out, outFull
		out, outFull = ch[n-1-i], full[n-1-i]
		p := fmt.Sprintf("decoder.up_blocks.%d", i)
		for j := range layers + 1 {
			rin, rinFull := out, outFull
			if j == 0 {
				rin, rinFull = prev, prevFull
			}
			b.resnet(fmt.Sprintf("%s.resnets.%d", p, j), rin, out, 0, rinFull != outFull)
		}
		if i < n-1 {
			b.conv(p+".upsamplers.0.conv", out, out, 3)
		}
	}
	midBlock("decoder.mid_block", ch[n-1])
	b.norm("decoder.conv_norm_out", ch[0])
	b.conv("decoder.conv_out", image, ch[0], 3)

	b.conv("quant_conv", 2*latent, 2*latent, 1)
	b.conv("post_quant_conv", latent, latent, 1)
}

// clipEncoder is transformers' CLIPEncoder: layers of self_attn (k, v, q,
// out projections, in that registration order), layer_norm1, mlp,
// layer_norm2.
func (b *builder) clipEncoder(p string, layers int, hidden, inter int64) {
	for i := range layers {
		l := fmt.Sprintf("%s.layers.%d", p, i)
		for _, proj := range []string{"k_proj", "v_proj", "q_proj", "out_proj"} {
			b.linear(l+".self_attn."+proj, hidden, hidden, true)
		}
		b.norm(l+".layer_norm1", hidden)
		b.linear(l+".mlp.fc1", inter, hidden, true)
		b.linear(l+".mlp.fc2", hidden, inter, true)
		b.norm(l+".layer_norm2", hidden)
	}
}

// positionIDs adds the persistent I64 buffer position_ids [1, n] that
// transformers of 2022 saved with CLIP embeddings. A module's own buffers
// come before its children in the state dict.
func (b *builder) positionIDs(name string, n int64) {
	b.specs = append(b.specs, Spec{Name: name, DType: tensors.I64, Shape: []int64{1, n}, Init: InitPositionIDs})
}

// clipText is CLIPTextModel with text_encoder/config.json of SD-1.5
// (openai/clip-vit-large-patch14's text tower).
func (b *builder) clipText() {
	hidden, inter, vocab := b.w(768), b.w(3072), b.w(49408)
	const positions = 77
	e := "text_model.embeddings"
	b.positionIDs(e+".position_ids", positions)
	b.add(e+".token_embedding.weight", InitWeight, vocab, hidden)
	b.add(e+".position_embedding.weight", InitWeight, positions, hidden)
	b.clipEncoder("text_model.encoder", 12, hidden, inter)
	b.norm("text_model.final_layer_norm", hidden)
}

// safetyChecker is StableDiffusionSafetyChecker with
// safety_checker/config.json: its own parameters (registered first), a
// CLIPVisionModel (ViT-L/14 at 224 px: 16×16 patches + class token = 257
// positions) and visual_projection.
func (b *builder) safetyChecker() {
	hidden, inter, proj := b.w(1024), b.w(4096), b.w(768)
	const patch, positions = 14, 257
	b.add("concept_embeds", InitWeight, 17, proj)
	b.add("special_care_embeds", InitWeight, 3, proj)
	b.add("concept_embeds_weights", InitBias, 17)
	b.add("special_care_embeds_weights", InitBias, 3)
	v := "vision_model.vision_model"
	b.add(v+".embeddings.class_embedding", InitWeight, hidden)
	b.positionIDs(v+".embeddings.position_ids", positions)
	b.add(v+".embeddings.patch_embedding.weight", InitWeight, hidden, 3, patch, patch) // no bias
	b.add(v+".embeddings.position_embedding.weight", InitWeight, positions, hidden)
	b.norm(v+".pre_layrnorm", hidden) // sic: transformers' name
	b.clipEncoder(v+".encoder", 24, hidden, inter)
	b.norm(v+".post_layernorm", hidden)
	b.linear("visual_projection", proj, hidden, false)
}
