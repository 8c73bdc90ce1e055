package converttest

import (
	"embed"
	"fmt"
	"io/fs"
	"slices"

	"modelpub/core/pipeline/pipelinetest"
)

// SD3Arch is the architecture of an SD 3 or 3.5 transformer
// (transformer/config.json of the reference repositories).
type SD3Arch struct {
	Layers int   // num_layers: 24 (3 medium, 3.5 medium), 38 (3.5 large)
	Heads  int   // num_attention_heads (×64: the width): 24, 38
	Dual   []int // dual_attention_layers: 0…12 in 3.5 medium
	QKNorm bool  // qk_norm "rms_norm" (3.5)
	PosMax int   // pos_embed_max_size: 192, 384 in 3.5 medium
}

// The published architectures.
var (
	SD3Medium  = SD3Arch{Layers: 24, Heads: 24, PosMax: 192}
	SD35Large  = SD3Arch{Layers: 38, Heads: 38, QKNorm: true, PosMax: 192}
	SD35Medium = SD3Arch{Layers: 24, Heads: 24, QKNorm: true, PosMax: 384, Dual: []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}}
)

// SD3TensorSpecs returns the state dict of an SD3Transformer2DModel of
// architecture a in diffusers' layout, widths scaled as
// pipelinetest.ScaleWidth scales them (the position table keeps its
// PosMax² rows). It is written from diffusers' SD3Transformer2DModel
// (PatchEmbed with a persistent pos_embed buffer, CombinedTimestepTextProj
// Embeddings, JointTransformerBlock: AdaLayerNormZero (SD35AdaLayerNormZeroX,
// 9 chunks, in dual attention blocks), the last block's context side only
// an AdaLayerNormContinuous with no output projection or feed-forward;
// AdaLayerNormContinuous norm_out), independently of core/convert.
func SD3TensorSpecs(a SD3Arch, scale float64) []pipelinetest.Spec {
	b := &xlBuilder{scale: scale}
	h, head := b.w(int64(64*a.Heads)), b.w(64)
	b.add("pos_embed.proj.weight", h, 16, 2, 2)
	b.add("pos_embed.proj.bias", h)
	b.add("pos_embed.pos_embed", 1, int64(a.PosMax*a.PosMax), h)
	b.linear("time_text_embed.timestep_embedder.linear_1", h, 256, true)
	b.linear("time_text_embed.timestep_embedder.linear_2", h, h, true)
	b.linear("time_text_embed.text_embedder.linear_1", h, b.w(2048), true)
	b.linear("time_text_embed.text_embedder.linear_2", h, h, true)
	b.linear("context_embedder", h, b.w(4096), true)
	for i := range a.Layers {
		p := fmt.Sprintf("transformer_blocks.%d.", i)
		last := i == a.Layers-1
		dual := slices.Contains(a.Dual, i)
		chunks := int64(6)
		if dual {
			chunks = 9
		}
		b.linear(p+"norm1.linear", chunks*h, h, true)
		if last {
			b.linear(p+"norm1_context.linear", 2*h, h, true)
		} else {
			b.linear(p+"norm1_context.linear", 6*h, h, true)
		}
		attn := func(m string, joint bool) {
			if a.QKNorm {
				b.add(p+m+".norm_q.weight", head)
				b.add(p+m+".norm_k.weight", head)
			}
			for _, n := range []string{"to_q", "to_k", "to_v"} {
				b.linear(p+m+"."+n, h, h, true)
			}
			if joint {
				for _, n := range []string{"add_k_proj", "add_v_proj", "add_q_proj"} {
					b.linear(p+m+"."+n, h, h, true)
				}
			}
			b.linear(p+m+".to_out.0", h, h, true)
			if joint && !last {
				b.linear(p+m+".to_add_out", h, h, true)
			}
			if joint && a.QKNorm {
				b.add(p+m+".norm_added_q.weight", head)
				b.add(p+m+".norm_added_k.weight", head)
			}
		}
		attn("attn", true)
		if dual {
			attn("attn2", false)
		}
		b.linear(p+"ff.net.0.proj", 4*h, h, true)
		b.linear(p+"ff.net.2", h, 4*h, true)
		if !last {
			b.linear(p+"ff_context.net.0.proj", 4*h, h, true)
			b.linear(p+"ff_context.net.2", h, 4*h, true)
		}
	}
	b.linear("norm_out.linear", 2*h, h, true)
	b.linear("proj_out", 2*2*16, h, true)
	return b.specs
}

// SD3Mapping is the expected mapping of an SD 3 checkpoint of architecture
// a, transcribed from diffusers' convert_sd3_transformer_checkpoint_to_diffusers
// (single_file_utils.py): pos_embed, x_embedder.proj, t_embedder.mlp.0/2,
// y_embedder.mlp.0/2 and context_embedder renamed; per joint block the
// fused qkv of x_block.attn, context_block.attn and (dual attention
// layers) x_block.attn2 chunked in three along the rows, ln_q/ln_k renamed
// to the q/k norms, attn.proj to to_out.0 / to_add_out (not in the last
// block), adaLN_modulation.1 to norm1 / norm1_context (the last block's
// with swap_scale_shift), mlp.fc1/fc2 to ff / ff_context (not in the last
// block); final_layer.linear to proj_out and its modulation to norm_out
// with swap_scale_shift. prefix is "model.diffusion_model." or "".
func SD3Mapping(a SD3Arch, prefix string) []Row {
	var rows []Row
	add := func(ldm, diffusers, op string) {
		rows = append(rows, Row{LDM: prefix + ldm, Component: Transformer, Diffusers: diffusers, Op: op})
	}
	wb := func(ldm, diffusers, op string) {
		add(ldm+".weight", diffusers+".weight", op)
		add(ldm+".bias", diffusers+".bias", op)
	}
	add("pos_embed", "pos_embed.pos_embed", "-")
	wb("x_embedder.proj", "pos_embed.proj", "-")
	wb("t_embedder.mlp.0", "time_text_embed.timestep_embedder.linear_1", "-")
	wb("t_embedder.mlp.2", "time_text_embed.timestep_embedder.linear_2", "-")
	wb("context_embedder", "context_embedder", "-")
	wb("y_embedder.mlp.0", "time_text_embed.text_embedder.linear_1", "-")
	wb("y_embedder.mlp.2", "time_text_embed.text_embedder.linear_2", "-")
	for i := range a.Layers {
		j, t := fmt.Sprintf("joint_blocks.%d.", i), fmt.Sprintf("transformer_blocks.%d.", i)
		last := i == a.Layers-1
		for k, n := range []string{"to_q", "to_k", "to_v"} {
			wb(j+"x_block.attn.qkv", t+"attn."+n, fmt.Sprintf("rows%d/3", k))
		}
		for k, n := range []string{"add_q_proj", "add_k_proj", "add_v_proj"} {
			wb(j+"context_block.attn.qkv", t+"attn."+n, fmt.Sprintf("rows%d/3", k))
		}
		if a.QKNorm {
			add(j+"x_block.attn.ln_q.weight", t+"attn.norm_q.weight", "-")
			add(j+"x_block.attn.ln_k.weight", t+"attn.norm_k.weight", "-")
			add(j+"context_block.attn.ln_q.weight", t+"attn.norm_added_q.weight", "-")
			add(j+"context_block.attn.ln_k.weight", t+"attn.norm_added_k.weight", "-")
		}
		wb(j+"x_block.attn.proj", t+"attn.to_out.0", "-")
		if !last {
			wb(j+"context_block.attn.proj", t+"attn.to_add_out", "-")
		}
		if slices.Contains(a.Dual, i) {
			for k, n := range []string{"to_q", "to_k", "to_v"} {
				wb(j+"x_block.attn2.qkv", t+"attn2."+n, fmt.Sprintf("rows%d/3", k))
			}
			if a.QKNorm {
				add(j+"x_block.attn2.ln_q.weight", t+"attn2.norm_q.weight", "-")
				add(j+"x_block.attn2.ln_k.weight", t+"attn2.norm_k.weight", "-")
			}
			wb(j+"x_block.attn2.proj", t+"attn2.to_out.0", "-")
		}
		wb(j+"x_block.adaLN_modulation.1", t+"norm1.linear", "-")
		if last {
			wb(j+"context_block.adaLN_modulation.1", t+"norm1_context.linear", "swap")
		} else {
			wb(j+"context_block.adaLN_modulation.1", t+"norm1_context.linear", "-")
		}
		wb(j+"x_block.mlp.fc1", t+"ff.net.0.proj", "-")
		wb(j+"x_block.mlp.fc2", t+"ff.net.2", "-")
		if !last {
			wb(j+"context_block.mlp.fc1", t+"ff_context.net.0.proj", "-")
			wb(j+"context_block.mlp.fc2", t+"ff_context.net.2", "-")
		}
	}
	wb("final_layer.linear", "proj_out", "-")
	wb("final_layer.adaLN_modulation.1", "norm_out.linear", "swap")
	return rows
}

// SD3Model is an SD 3 transformer of architecture a, its keys under
// prefix.
func SD3Model(a SD3Arch, prefix string) Model {
	return Model{Mapping: SD3Mapping(a, prefix), Specs: specMap(map[string][]pipelinetest.Spec{Transformer: SD3TensorSpecs(a, Scale)})}
}

// SD3 builds an original-layout SD 3 transformer checkpoint (see Build).
func SD3(a SD3Arch, prefix string, o Options) []Tensor { return Build(SD3Model(a, prefix), o) }

//go:embed sd3-reference
var sd3Reference embed.FS

// SD3Reference is a stand-in for an SD 3 reference repository
// ("sd3-medium" or "sd35-medium") to serve from the Hub emulator: its
// model_index.json and transformer/config.json (sd3-reference/SOURCES.md).
func SD3Reference(name string) fs.FS {
	sub, err := fs.Sub(sd3Reference, "sd3-reference/"+name)
	if err != nil {
		panic(err)
	}
	return sub
}
