package convert

import (
	"encoding/json"
	"fmt"
)

// The tensor names of the diffusers and transformers models a conversion
// writes, in the order the models register their modules (the order of
// their state dicts, in which save_pretrained shards). They are derived from
// the component configs, independently of the checkpoint's names, so a
// mapped checkpoint can be checked against them: every name produced, no
// name twice, none missing.

// unetConfig holds the fields of a UNet2DConditionModel config.json that
// decide its tensor names.
type unetConfig struct {
	InChannels        int      `json:"in_channels"`
	BlockOutChannels  []int    `json:"block_out_channels"`
	LayersPerBlock    int      `json:"layers_per_block"`
	DownBlockTypes    []string `json:"down_block_types"`
	UpBlockTypes      []string `json:"up_block_types"`
	MidBlockType      *string  `json:"mid_block_type"`
	CrossAttentionDim int      `json:"cross_attention_dim"`
	// TransformerLayersPerBlock is an int or a list per down block; 1 when
	// absent.
	TransformerLayersPerBlock json.RawMessage `json:"transformer_layers_per_block"`
	AdditionEmbedType         *string         `json:"addition_embed_type"`
	UseLinearProjection       bool            `json:"use_linear_projection"`
}

// depths returns the number of transformer blocks of each down block's
// attentions.
func (c *unetConfig) depths() ([]int, error) {
	n := len(c.BlockOutChannels)
	d := make([]int, n)
	raw := c.TransformerLayersPerBlock
	if len(raw) == 0 || string(raw) == "null" {
		for i := range d {
			d[i] = 1
		}
		return d, nil
	}
	var one int
	if json.Unmarshal(raw, &one) == nil {
		for i := range d {
			d[i] = one
		}
		return d, nil
	}
	var list []int
	if err := json.Unmarshal(raw, &list); err != nil || len(list) != n {
		return nil, fmt.Errorf("transformer_layers_per_block %s: want an int or %d ints", raw, n)
	}
	return list, nil
}

func (c *unetConfig) check() error {
	n := len(c.BlockOutChannels)
	if n == 0 || len(c.DownBlockTypes) != n || len(c.UpBlockTypes) != n || c.LayersPerBlock <= 0 {
		return fmt.Errorf("unet config: %d block_out_channels, %d down and %d up block types, layers_per_block %d",
			n, len(c.DownBlockTypes), len(c.UpBlockTypes), c.LayersPerBlock)
	}
	return nil
}

// names lists the tensors of a UNet2DConditionModel with this config:
// conv_in, time_embedding, add_embedding (SDXL's text_time), down_blocks,
// up_blocks (its ModuleList is created before the mid block), mid_block,
// conv_norm_out, conv_out. Cross-attention blocks register attentions
// before resnets; a resnet has a conv_shortcut when its input and output
// widths differ (always in up blocks, whose input is concatenated with a
// skip connection).
func (c *unetConfig) names() ([]string, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	depth, err := c.depths()
	if err != nil {
		return nil, err
	}
	var l nameList
	ch := c.BlockOutChannels
	n := len(ch)
	l.wb("conv_in")
	l.wb("time_embedding.linear_1")
	l.wb("time_embedding.linear_2")
	if c.AdditionEmbedType != nil && *c.AdditionEmbedType == "text_time" {
		l.wb("add_embedding.linear_1")
		l.wb("add_embedding.linear_2")
	}
	out := ch[0]
	for i := range n {
		in := out
		out = ch[i]
		p := fmt.Sprintf("down_blocks.%d", i)
		if isCrossAttn(c.DownBlockTypes[i]) {
			for j := range c.LayersPerBlock {
				l.transformer2D(fmt.Sprintf("%s.attentions.%d", p, j), depth[i])
			}
		}
		for j := range c.LayersPerBlock {
			rin := out
			if j == 0 {
				rin = in
			}
			l.resnet(fmt.Sprintf("%s.resnets.%d", p, j), true, rin != out)
		}
		if i < n-1 {
			l.wb(p + ".downsamplers.0.conv")
		}
	}
	for i := range n {
		p := fmt.Sprintf("up_blocks.%d", i)
		if isCrossAttn(c.UpBlockTypes[i]) {
			for j := range c.LayersPerBlock + 1 {
				l.transformer2D(fmt.Sprintf("%s.attentions.%d", p, j), depth[n-1-i])
			}
		}
		for j := range c.LayersPerBlock + 1 {
			l.resnet(fmt.Sprintf("%s.resnets.%d", p, j), true, true)
		}
		if i < n-1 {
			l.wb(p + ".upsamplers.0.conv")
		}
	}
	if c.MidBlockType == nil || *c.MidBlockType == "UNetMidBlock2DCrossAttn" {
		l.transformer2D("mid_block.attentions.0", depth[n-1])
	}
	l.resnet("mid_block.resnets.0", true, false)
	l.resnet("mid_block.resnets.1", true, false)
	l.wb("conv_norm_out")
	l.wb("conv_out")
	return l, nil
}

func isCrossAttn(blockType string) bool {
	return blockType == "CrossAttnDownBlock2D" || blockType == "CrossAttnUpBlock2D"
}

// vaeConfig holds the fields of an AutoencoderKL config.json that decide
// its tensor names.
type vaeConfig struct {
	BlockOutChannels []int    `json:"block_out_channels"`
	LayersPerBlock   int      `json:"layers_per_block"`
	DownBlockTypes   []string `json:"down_block_types"`
	UpBlockTypes     []string `json:"up_block_types"`
	LatentChannels   int      `json:"latent_channels"`
}

// names lists the tensors of an AutoencoderKL: the encoder (conv_in,
// down_blocks, mid_block, conv_norm_out, conv_out), the decoder (conv_in,
// up_blocks, mid_block — its up_blocks list is created first —,
// conv_norm_out, conv_out), quant_conv, post_quant_conv. The mid blocks'
// attention is diffusers' Attention with group_norm, to_q, to_k, to_v,
// to_out.0.
func (c *vaeConfig) names() ([]string, error) {
	n := len(c.BlockOutChannels)
	if n == 0 || len(c.DownBlockTypes) != n || len(c.UpBlockTypes) != n || c.LayersPerBlock <= 0 {
		return nil, fmt.Errorf("vae config: %d block_out_channels, %d down and %d up block types, layers_per_block %d",
			n, len(c.DownBlockTypes), len(c.UpBlockTypes), c.LayersPerBlock)
	}
	ch := c.BlockOutChannels
	var l nameList
	mid := func(p string) {
		a := p + ".attentions.0"
		for _, m := range []string{"group_norm", "to_q", "to_k", "to_v", "to_out.0"} {
			l.wb(a + "." + m)
		}
		l.resnet(p+".resnets.0", false, false)
		l.resnet(p+".resnets.1", false, false)
	}
	l.wb("encoder.conv_in")
	out := ch[0]
	for i := range n {
		in := out
		out = ch[i]
		p := fmt.Sprintf("encoder.down_blocks.%d", i)
		for j := range c.LayersPerBlock {
			rin := out
			if j == 0 {
				rin = in
			}
			l.resnet(fmt.Sprintf("%s.resnets.%d", p, j), false, rin != out)
		}
		if i < n-1 {
			l.wb(p + ".downsamplers.0.conv")
		}
	}
	mid("encoder.mid_block")
	l.wb("encoder.conv_norm_out")
	l.wb("encoder.conv_out")

	l.wb("decoder.conv_in")
	out = ch[n-1]
	for i := range n {
		prev := out
		out = ch[n-1-i]
		p := fmt.Sprintf("decoder.up_blocks.%d", i)
		for j := range c.LayersPerBlock + 1 {
			rin := out
			if j == 0 {
				rin = prev
			}
			l.resnet(fmt.Sprintf("%s.resnets.%d", p, j), false, rin != out)
		}
		if i < n-1 {
			l.wb(p + ".upsamplers.0.conv")
		}
	}
	mid("decoder.mid_block")
	l.wb("decoder.conv_norm_out")
	l.wb("decoder.conv_out")
	l.wb("quant_conv")
	l.wb("post_quant_conv")
	return l, nil
}

// clipConfig holds the fields of a CLIPTextModel config.json that decide
// its tensor names.
type clipConfig struct {
	NumHiddenLayers int    `json:"num_hidden_layers"`
	HiddenSize      int    `json:"hidden_size"`
	ProjectionDim   int    `json:"projection_dim"`
	TorchDType      string `json:"torch_dtype"`
}

// names lists the parameters of a CLIPTextModel (withProjection: a
// CLIPTextModelWithProjection, which adds text_projection). Its
// position_ids buffer is not persistent in transformers since 4.31, so
// save_pretrained does not write it.
func (c *clipConfig) names(withProjection bool) ([]string, error) {
	if c.NumHiddenLayers <= 0 {
		return nil, fmt.Errorf("text encoder config: num_hidden_layers %d", c.NumHiddenLayers)
	}
	var l nameList
	l.add("text_model.embeddings.token_embedding.weight")
	l.add("text_model.embeddings.position_embedding.weight")
	for i := range c.NumHiddenLayers {
		p := fmt.Sprintf("text_model.encoder.layers.%d", i)
		for _, m := range []string{"self_attn.k_proj", "self_attn.v_proj", "self_attn.q_proj", "self_attn.out_proj", "layer_norm1", "mlp.fc1", "mlp.fc2", "layer_norm2"} {
			l.wb(p + "." + m)
		}
	}
	l.wb("text_model.final_layer_norm")
	if withProjection {
		l.add("text_projection.weight")
	}
	return l, nil
}

// nameList collects tensor names in registration order.
type nameList []string

func (l *nameList) add(name string) { *l = append(*l, name) }

// wb adds a module's weight and bias.
func (l *nameList) wb(p string) { l.add(p + ".weight"); l.add(p + ".bias") }

// resnet adds diffusers' ResnetBlock2D: norm1, conv1, time_emb_proj (UNet
// only), norm2, conv2, conv_shortcut.
func (l *nameList) resnet(p string, temb, shortcut bool) {
	l.wb(p + ".norm1")
	l.wb(p + ".conv1")
	if temb {
		l.wb(p + ".time_emb_proj")
	}
	l.wb(p + ".norm2")
	l.wb(p + ".conv2")
	if shortcut {
		l.wb(p + ".conv_shortcut")
	}
}

// transformer2D adds diffusers' Transformer2DModel with depth
// BasicTransformerBlocks: norm, proj_in, the blocks (norm1, attn1, norm2,
// attn2, norm3, ff), proj_out. Attention projections to_q, to_k, to_v have
// no bias; to_out.0 has one.
func (l *nameList) transformer2D(p string, depth int) {
	l.wb(p + ".norm")
	l.wb(p + ".proj_in")
	for k := range depth {
		b := fmt.Sprintf("%s.transformer_blocks.%d", p, k)
		l.wb(b + ".norm1")
		l.attention(b + ".attn1")
		l.wb(b + ".norm2")
		l.attention(b + ".attn2")
		l.wb(b + ".norm3")
		l.wb(b + ".ff.net.0.proj")
		l.wb(b + ".ff.net.2")
	}
	l.wb(p + ".proj_out")
}

func (l *nameList) attention(p string) {
	l.add(p + ".to_q.weight")
	l.add(p + ".to_k.weight")
	l.add(p + ".to_v.weight")
	l.wb(p + ".to_out.0")
}

// fluxConfig holds the fields of a FluxTransformer2DModel config.json that
// decide its tensor names.
type fluxConfig struct {
	NumLayers       int  `json:"num_layers"`
	NumSingleLayers int  `json:"num_single_layers"`
	GuidanceEmbeds  bool `json:"guidance_embeds"`
}

// names lists the tensors of a FluxTransformer2DModel: time_text_embed
// (timestep_embedder, guidance_embedder when guidance_embeds, text_embedder),
// context_embedder, x_embedder, transformer_blocks (norm1, norm1_context,
// attn, ff, ff_context), single_transformer_blocks (norm, proj_mlp,
// proj_out, attn), norm_out, proj_out. FluxAttention registers norm_q,
// norm_k, to_q, to_k, to_v, to_out.0, then for the joint blocks
// norm_added_q, norm_added_k, add_q_proj, add_k_proj, add_v_proj,
// to_add_out; its RMS norms have a weight only.
func (c *fluxConfig) names() ([]string, error) {
	if c.NumLayers <= 0 || c.NumSingleLayers <= 0 {
		return nil, fmt.Errorf("transformer config: num_layers %d, num_single_layers %d", c.NumLayers, c.NumSingleLayers)
	}
	var l nameList
	l.wb("time_text_embed.timestep_embedder.linear_1")
	l.wb("time_text_embed.timestep_embedder.linear_2")
	if c.GuidanceEmbeds {
		l.wb("time_text_embed.guidance_embedder.linear_1")
		l.wb("time_text_embed.guidance_embedder.linear_2")
	}
	l.wb("time_text_embed.text_embedder.linear_1")
	l.wb("time_text_embed.text_embedder.linear_2")
	l.wb("context_embedder")
	l.wb("x_embedder")
	for i := range c.NumLayers {
		p := fmt.Sprintf("transformer_blocks.%d.", i)
		l.wb(p + "norm1.linear")
		l.wb(p + "norm1_context.linear")
		l.add(p + "attn.norm_q.weight")
		l.add(p + "attn.norm_k.weight")
		for _, m := range []string{"to_q", "to_k", "to_v", "to_out.0"} {
			l.wb(p + "attn." + m)
		}
		l.add(p + "attn.norm_added_q.weight")
		l.add(p + "attn.norm_added_k.weight")
		for _, m := range []string{"add_q_proj", "add_k_proj", "add_v_proj", "to_add_out"} {
			l.wb(p + "attn." + m)
		}
		l.wb(p + "ff.net.0.proj")
		l.wb(p + "ff.net.2")
		l.wb(p + "ff_context.net.0.proj")
		l.wb(p + "ff_context.net.2")
	}
	for i := range c.NumSingleLayers {
		p := fmt.Sprintf("single_transformer_blocks.%d.", i)
		l.wb(p + "norm.linear")
		l.wb(p + "proj_mlp")
		l.wb(p + "proj_out")
		l.add(p + "attn.norm_q.weight")
		l.add(p + "attn.norm_k.weight")
		for _, m := range []string{"to_q", "to_k", "to_v"} {
			l.wb(p + "attn." + m)
		}
	}
	l.wb("norm_out.linear")
	l.wb("proj_out")
	return l, nil
}
