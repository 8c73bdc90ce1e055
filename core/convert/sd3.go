package convert

import (
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
)

// SD 3 and 3.5 transformers (MMDiT), whose configs Convert reads from the
// Hub (NeedsConfigs).
const (
	// SD3 is Stable Diffusion 3 (medium): an SD3Transformer2DModel folder,
	// with the configs of stabilityai/stable-diffusion-3-medium-diffusers.
	SD3 Type = "sd3"
	// SD35 is Stable Diffusion 3.5 (large or medium: q/k RMS norms, and
	// in the medium model a second attention in the first blocks): an
	// SD3Transformer2DModel folder, with the configs of
	// stabilityai/stable-diffusion-3.5-large or -medium.
	SD35 Type = "sd35"
)

// Signature keys of SD 3 (CHECKPOINT_KEY_NAMES["sd3"], ["sd35_large"]),
// after the optional "model.diffusion_model." prefix.
const (
	keySD3Block   = "joint_blocks.0.context_block.adaLN_modulation.1.bias"
	keySD35Large  = "joint_blocks.37.x_block.mlp.fc1.weight"
	keySD3PosEmb  = "pos_embed"
	keySD3QKNorm  = "joint_blocks.0.x_block.attn.ln_q.weight"
	sd3LDMPrefix  = "model.diffusion_model."
	sd35LargeRepo = "stabilityai/stable-diffusion-3.5-large"
)

// sd3Prefix is where an SD 3 checkpoint's transformer keys are.
func sd3Prefix(c *Checkpoint) string {
	if c.Has(sd3LDMPrefix + keySD3Block) {
		return sd3LDMPrefix
	}
	return ""
}

// detectSD3 follows infer_diffusers_model_type for SD 3: a first block's
// context modulation 9216 wide (6 × 1536) is SD 3 medium when pos_embed
// holds 36864 positions (192²) and SD 3.5 medium when 147456 (384²); a
// 38th block is SD 3.5 large. Other layouts with SD 3's keys are taken as
// SD 3 and left to its signature.
func detectSD3(c *Checkpoint, d *Detection) Type {
	p := sd3Prefix(c)
	s, _ := shapeOf(c, p+keySD3Block)
	pos, _ := shapeOf(c, p+keySD3PosEmb)
	if len(s) == 1 && s[0] == 9216 && len(pos) == 3 {
		switch pos[1] {
		case 36864:
			d.Reasons = append(d.Reasons, fmt.Sprintf("%s%s is %v and %s%s %v: 192×192 positions, SD 3 medium", p, keySD3Block, s, p, keySD3PosEmb, pos))
			return SD3
		case 147456:
			d.Reasons = append(d.Reasons, fmt.Sprintf("%s%s is %v and %s%s %v: 384×384 positions, SD 3.5 medium", p, keySD3Block, s, p, keySD3PosEmb, pos))
			return SD35
		}
	}
	if c.Has(p + keySD35Large) {
		d.Reasons = append(d.Reasons, fmt.Sprintf("%s%s is present: 38 joint blocks, SD 3.5 large", p, keySD35Large))
		return SD35
	}
	d.Reasons = append(d.Reasons, fmt.Sprintf("%s%s is present: SD 3's MMDiT joint blocks", p, keySD3Block))
	return SD3
}

func sd3Signatures(c *Checkpoint, t Type) []signature {
	p := sd3Prefix(c)
	sigs := []signature{
		{key: p + keySD3Block, what: "SD 3's MMDiT joint blocks"},
		{key: p + "x_embedder.proj.weight", what: "the patch embedding"},
		{key: p + keySD3PosEmb, what: "the position embedding"},
		{key: p + "final_layer.adaLN_modulation.1.weight", what: "the final layer's modulation"},
	}
	if t == SD35 {
		return append(sigs, signature{key: p + keySD3QKNorm, what: "the q/k RMS norms of SD 3.5"})
	}
	return append(sigs, signature{key: p + keySD3QKNorm, what: "SD 3 has no q/k norms (SD 3.5 has)", absent: true})
}

// sd35Repo is the reference repository of an SD 3.5 checkpoint: large
// with 38 joint blocks, else medium.
func sd35Repo(c *Checkpoint) string {
	if c != nil && !c.Has(sd3Prefix(c)+keySD35Large) {
		return "stabilityai/stable-diffusion-3.5-medium"
	}
	return sd35LargeRepo
}

// sd3Config is what names an SD3Transformer2DModel's tensors.
type sd3Config struct {
	NumLayers           int     `json:"num_layers"`
	DualAttentionLayers []int   `json:"dual_attention_layers"`
	QKNorm              *string `json:"qk_norm"`
}

func (c *sd3Config) qkNorm() bool { return c.QKNorm != nil && *c.QKNorm != "" }

// names lists the tensors of an SD3Transformer2DModel: pos_embed (proj,
// then its persistent pos_embed buffer), time_text_embed, context_embedder,
// transformer_blocks (norm1, norm1_context, attn, attn2 in the dual
// attention layers, ff, ff_context but in the last block, which only
// reads the context), norm_out, proj_out.
func (c *sd3Config) names() ([]string, error) {
	if c.NumLayers <= 0 {
		return nil, fmt.Errorf("transformer config: num_layers %d", c.NumLayers)
	}
	var l nameList
	l.wb("pos_embed.proj")
	l.add("pos_embed.pos_embed")
	l.wb("time_text_embed.timestep_embedder.linear_1")
	l.wb("time_text_embed.timestep_embedder.linear_2")
	l.wb("time_text_embed.text_embedder.linear_1")
	l.wb("time_text_embed.text_embedder.linear_2")
	l.wb("context_embedder")
	for i := range c.NumLayers {
		p := fmt.Sprintf("transformer_blocks.%d.", i)
		last := i == c.NumLayers-1
		l.wb(p + "norm1.linear")
		l.wb(p + "norm1_context.linear")
		attention := func(a string, joint bool) {
			if c.qkNorm() {
				l.add(p + a + ".norm_q.weight")
				l.add(p + a + ".norm_k.weight")
			}
			for _, m := range []string{"to_q", "to_k", "to_v"} {
				l.wb(p + a + "." + m)
			}
			if joint {
				for _, m := range []string{"add_k_proj", "add_v_proj", "add_q_proj"} {
					l.wb(p + a + "." + m)
				}
			}
			l.wb(p + a + ".to_out.0")
			if joint && !last {
				l.wb(p + a + ".to_add_out")
			}
			if joint && c.qkNorm() {
				l.add(p + a + ".norm_added_q.weight")
				l.add(p + a + ".norm_added_k.weight")
			}
		}
		attention("attn", true)
		if slices.Contains(c.DualAttentionLayers, i) {
			attention("attn2", false)
		}
		l.wb(p + "ff.net.0.proj")
		l.wb(p + "ff.net.2")
		if !last {
			l.wb(p + "ff_context.net.0.proj")
			l.wb(p + "ff_context.net.2")
		}
	}
	l.wb("norm_out.linear")
	l.wb("proj_out")
	return l, nil
}

// sd3Layers are convert_sd3_transformer_checkpoint_to_diffusers' plain
// renames outside the blocks (module → module).
var sd3Layers = map[string]string{
	"x_embedder.proj":    "pos_embed.proj",
	"t_embedder.mlp.0":   "time_text_embed.timestep_embedder.linear_1",
	"t_embedder.mlp.2":   "time_text_embed.timestep_embedder.linear_2",
	"y_embedder.mlp.0":   "time_text_embed.text_embedder.linear_1",
	"y_embedder.mlp.2":   "time_text_embed.text_embedder.linear_2",
	"context_embedder":   "context_embedder",
	"final_layer.linear": "proj_out",
}

// sd3Block are the renames inside joint_blocks.{i} (module → module).
var sd3Block = map[string]string{
	"x_block.attn.ln_q":                "attn.norm_q",
	"x_block.attn.ln_k":                "attn.norm_k",
	"context_block.attn.ln_q":          "attn.norm_added_q",
	"context_block.attn.ln_k":          "attn.norm_added_k",
	"x_block.attn.proj":                "attn.to_out.0",
	"context_block.attn.proj":          "attn.to_add_out",
	"x_block.attn2.ln_q":               "attn2.norm_q",
	"x_block.attn2.ln_k":               "attn2.norm_k",
	"x_block.attn2.proj":               "attn2.to_out.0",
	"x_block.adaLN_modulation.1":       "norm1.linear",
	"context_block.adaLN_modulation.1": "norm1_context.linear",
	"x_block.mlp.fc1":                  "ff.net.0.proj",
	"x_block.mlp.fc2":                  "ff.net.2",
	"context_block.mlp.fc1":            "ff_context.net.0.proj",
	"context_block.mlp.fc2":            "ff_context.net.2",
}

// sd3Pieces maps a key of an SD 3 transformer ("model.diffusion_model."
// removed) as convert_sd3_transformer_checkpoint_to_diffusers does: the
// renames above; the fused qkv of x_block.attn, context_block.attn and
// x_block.attn2 split by thirds (to_q/to_k/to_v, add_q_proj/add_k_proj/
// add_v_proj); the last block's context modulation and the final layer's
// modulation with their halves swapped (swap_scale_shift).
func sd3Pieces(numLayers int) func(key string) ([]piece, bool) {
	return func(key string) ([]piece, bool) {
		if key == keySD3PosEmb {
			return []piece{{name: "pos_embed.pos_embed"}}, true
		}
		module, param, ok := splitParam(key)
		if !ok {
			return nil, false
		}
		if n, ok := sd3Layers[module]; ok {
			return []piece{{name: n + "." + param}}, true
		}
		if module == "final_layer.adaLN_modulation.1" {
			return []piece{{name: "norm_out.linear." + param, swap: true}}, true
		}
		rest, ok := strings.CutPrefix(module, "joint_blocks.")
		if !ok {
			return nil, false
		}
		num, rest, ok := strings.Cut(rest, ".")
		i, err := strconv.Atoi(num)
		if !ok || err != nil || i < 0 || i >= numLayers || num != strconv.Itoa(i) {
			return nil, false
		}
		p := fmt.Sprintf("transformer_blocks.%d.", i)
		var split []string
		switch rest {
		case "x_block.attn.qkv":
			split = []string{"attn.to_q", "attn.to_k", "attn.to_v"}
		case "context_block.attn.qkv":
			split = []string{"attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj"}
		case "x_block.attn2.qkv":
			split = []string{"attn2.to_q", "attn2.to_k", "attn2.to_v"}
		}
		if split != nil {
			var out []piece
			for j, n := range split {
				out = append(out, piece{name: p + n + "." + param, from: j, to: j + 1, of: 3})
			}
			return out, true
		}
		n, ok := sd3Block[rest]
		if !ok {
			return nil, false
		}
		return []piece{{name: p + n + "." + param, swap: rest == "context_block.adaLN_modulation.1" && i == numLayers-1}}, true
	}
}

// sd3Components is the SD 3 transformer, mapped as diffusers'
// convert_sd3_transformer_checkpoint_to_diffusers maps it. Its keys carry
// "model.diffusion_model." or nothing; with the prefix, the bundled VAE
// and text encoders (first_stage_model.*, text_encoders.*) are dropped.
func sd3Components(cfg fs.FS, c *Checkpoint) ([]*componentRecipe, error) {
	var sc sd3Config
	if err := readConfig(cfg, "config.json", &sc); err != nil {
		return nil, err
	}
	names, err := sc.names()
	if err != nil {
		return nil, err
	}
	prefix := ""
	if c != nil {
		prefix = sd3Prefix(c)
	}
	return []*componentRecipe{{
		name: "transformer", library: "diffusers", class: "SD3Transformer2DModel", base: "diffusion_pytorch_model",
		prefix: prefix, rename: sd3Pieces(sc.NumLayers), names: names,
		drop: func(key string) string {
			head, _, _ := strings.Cut(key, ".")
			switch head {
			case "pos_embed", "x_embedder", "t_embedder", "y_embedder", "context_embedder", "joint_blocks", "final_layer":
				return ""
			}
			return "not part of the SD 3 transformer (a bundled VAE or text encoder is not converted)"
		},
	}}, nil
}
