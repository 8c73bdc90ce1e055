package converttest

import (
	"fmt"

	"modelpub/core/pipeline/pipelinetest"
	"modelpub/core/tensors"
)

// The components of Stable Diffusion XL base in diffusers' layout.
const (
	UNet        = "unet"
	VAE         = "vae"
	TextEncoder = "text_encoder"
	// TextEncoder2 is OpenCLIP ViT-bigG/14's text tower as transformers'
	// CLIPTextModelWithProjection.
	TextEncoder2 = "text_encoder_2"
)

// SDXLTensorSpecs returns the state dict of an SDXL base component in
// diffusers' layout (unet, vae, text_encoder, text_encoder_2), in
// registration order, widths scaled as pipelinetest.ScaleWidth scales them.
// It is written from the published architecture (the configs of
// stabilityai/stable-diffusion-xl-base-1.0), independently of core/convert;
// at scale 1 its sizes match the real files (converttest_test.go). CLIP's
// position_ids buffers are left out: transformers no longer saves them.
func SDXLTensorSpecs(component string, scale float64) []pipelinetest.Spec {
	b := &xlBuilder{scale: scale}
	switch component {
	case UNet:
		b.unet()
	case VAE:
		// The same AutoencoderKL as SD 1.5's (vae/config.json differs only
		// in scaling_factor, sample_size and force_upcast).
		return pipelinetest.SD15TensorSpecs(pipelinetest.VAE, scale)
	case TextEncoder:
		// CLIP ViT-L/14's text tower, as in SD 1.5.
		for _, s := range pipelinetest.SD15TensorSpecs(pipelinetest.TextEncoder, scale) {
			if s.DType == tensors.F32 {
				b.specs = append(b.specs, s)
			}
		}
	case TextEncoder2:
		b.clip(1280, 5120, 32, true)
	default:
		return nil
	}
	return b.specs
}

type xlBuilder struct {
	scale float64
	specs []pipelinetest.Spec
}

func (b *xlBuilder) w(x int64) int64 { return pipelinetest.ScaleWidth(x, b.scale) }

func (b *xlBuilder) add(name string, shape ...int64) {
	b.specs = append(b.specs, pipelinetest.Spec{Name: name, DType: tensors.F32, Shape: shape})
}

func (b *xlBuilder) linear(p string, out, in int64, bias bool) {
	b.add(p+".weight", out, in)
	if bias {
		b.add(p+".bias", out)
	}
}

func (b *xlBuilder) conv(p string, out, in, k int64) {
	b.add(p+".weight", out, in, k, k)
	b.add(p+".bias", out)
}

func (b *xlBuilder) norm(p string, c int64) {
	b.add(p+".weight", c)
	b.add(p+".bias", c)
}

// resnet is ResnetBlock2D with a time embedding; the shortcut exists when
// the full-size widths differ.
func (b *xlBuilder) resnet(p string, in, out, temb int64, shortcut bool) {
	b.norm(p+".norm1", in)
	b.conv(p+".conv1", out, in, 3)
	b.linear(p+".time_emb_proj", out, temb, true)
	b.norm(p+".norm2", out)
	b.conv(p+".conv2", out, out, 3)
	if shortcut {
		b.conv(p+".conv_shortcut", out, in, 1)
	}
}

// transformer2D is Transformer2DModel with use_linear_projection (proj_in
// and proj_out are linear layers) and depth BasicTransformerBlocks.
func (b *xlBuilder) transformer2D(p string, c, cross int64, depth int) {
	b.norm(p+".norm", c)
	b.linear(p+".proj_in", c, c, true)
	for k := range depth {
		t := fmt.Sprintf("%s.transformer_blocks.%d", p, k)
		b.norm(t+".norm1", c)
		b.attention(t+".attn1", c, c)
		b.norm(t+".norm2", c)
		b.attention(t+".attn2", c, cross)
		b.norm(t+".norm3", c)
		b.linear(t+".ff.net.0.proj", 8*c, c, true)
		b.linear(t+".ff.net.2", c, 4*c, true)
	}
	b.linear(p+".proj_out", c, c, true)
}

func (b *xlBuilder) attention(p string, dim, kv int64) {
	b.linear(p+".to_q", dim, dim, false)
	b.linear(p+".to_k", dim, kv, false)
	b.linear(p+".to_v", dim, kv, false)
	b.linear(p+".to_out.0", dim, dim, true)
}

// unet is UNet2DConditionModel with SDXL base's unet/config.json:
// block_out_channels [320, 640, 1280], down blocks DownBlock2D then
// CrossAttnDownBlock2D ×2, transformer_layers_per_block [1, 2, 10],
// cross_attention_dim 2048, addition_embed_type text_time with
// projection_class_embeddings_input_dim 2816 (add_embedding after
// time_embedding), use_linear_projection.
func (b *xlBuilder) unet() {
	b.unetWith([]int64{320, 640, 1280}, []bool{false, true, true}, []int{1, 2, 10}, b.w(2048), b.w(2816))
}

// unetWith is a UNet2DConditionModel with use_linear_projection: per level
// its full-size width, whether it has cross-attention and its transformer
// depth; cross is the cross-attention width (already scaled); addEmbed,
// when not 0, the input width of a text_time add_embedding.
func (b *xlBuilder) unetWith(full []int64, attn []bool, depth []int, cross, addEmbed int64) {
	n := len(full)
	ch := make([]int64, n)
	for i, c := range full {
		ch[i] = b.w(c)
	}
	temb := 4 * ch[0]
	const layers = 2
	b.conv("conv_in", ch[0], 4, 3)
	b.linear("time_embedding.linear_1", temb, ch[0], true)
	b.linear("time_embedding.linear_2", temb, temb, true)
	if addEmbed != 0 {
		b.linear("add_embedding.linear_1", temb, addEmbed, true)
		b.linear("add_embedding.linear_2", temb, temb, true)
	}
	out, outFull := ch[0], full[0]
	for i := range n {
		in, inFull := out, outFull
		out, outFull = ch[i], full[i]
		p := fmt.Sprintf("down_blocks.%d", i)
		if attn[i] {
			for j := range layers {
				b.transformer2D(fmt.Sprintf("%s.attentions.%d", p, j), out, cross, depth[i])
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
	// Up blocks mirror the down blocks: CrossAttnUpBlock2D ×2, UpBlock2D;
	// each resnet's input is the previous output concatenated with a skip.
	out, outFull = ch[n-1], full[n-1]
	for i := range n {
		prev, prevFull := out, outFull
		out, outFull = ch[n-1-i], full[n-1-i]
		k := max(n-2-i, 0)
		in, inFull := ch[k], full[k]
		p := fmt.Sprintf("up_blocks.%d", i)
		if attn[n-1-i] {
			for j := range layers + 1 {
				b.transformer2D(fmt.Sprintf("%s.attentions.%d", p, j), out, cross, depth[n-1-i])
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
	mid := ch[n-1]
	b.transformer2D("mid_block.attentions.0", mid, cross, depth[n-1])
	b.resnet("mid_block.resnets.0", mid, mid, temb, false)
	b.resnet("mid_block.resnets.1", mid, mid, temb, false)
	b.norm("conv_norm_out", ch[0])
	b.conv("conv_out", 4, ch[0], 3)
}

// clip is a CLIP text tower (CLIPTextModel, or with projection
// CLIPTextModelWithProjection): embeddings, layers of self_attn (k, v, q,
// out), layer_norm1, mlp, layer_norm2; final_layer_norm; text_projection
// without bias.
func (b *xlBuilder) clip(hidden, inter int64, layers int, projection bool) {
	h, m, vocab := b.w(hidden), b.w(inter), b.w(49408)
	b.add("text_model.embeddings.token_embedding.weight", vocab, h)
	b.add("text_model.embeddings.position_embedding.weight", 77, h)
	for i := range layers {
		l := fmt.Sprintf("text_model.encoder.layers.%d", i)
		for _, proj := range []string{"k_proj", "v_proj", "q_proj", "out_proj"} {
			b.linear(l+".self_attn."+proj, h, h, true)
		}
		b.norm(l+".layer_norm1", h)
		b.linear(l+".mlp.fc1", m, h, true)
		b.linear(l+".mlp.fc2", h, m, true)
		b.norm(l+".layer_norm2", h)
	}
	b.norm("text_model.final_layer_norm", h)
	if projection {
		b.linear("text_projection", h, h, false)
	}
}
