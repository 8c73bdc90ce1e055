//go:build ignore

// gen_refiner_mapping writes sdxl-refiner-mapping.tsv, the expected mapping
// of an SDXL refiner single-file checkpoint onto diffusers' names, from
// diffusers' facts and never from core/convert:
//
//   - the diffusers side is SDXLRefinerTensorSpecs at scale 1;
//   - the UNet's original names come from the tables of diffusers'
//     scripts/convert_diffusers_to_original_stable_diffusion.py for four
//     levels (as gen_sd15_mapping.go; the refiner's UNet has four, like
//     SD 1.x, with cross-attention in the middle two), with SDXL's
//     label_emb rows of convert_diffusers_to_original_sdxl.py; the VAE's
//     from the same tables;
//   - the text encoder's from convert_diffusers_to_original_sdxl.py's
//     textenc_conversion_lst and convert_openclip_text_enc_state_dict (q,
//     k, v concatenated into in_proj_weight and in_proj_bias), under the
//     refiner's "conditioner.embedders.0.model." (single_file_utils'
//     CHECKPOINT_KEY_NAMES["xl_refiner"] and ["open_clip_sdxl_refiner"]);
//     text_projection transposed (convert_open_clip_checkpoint).
//
// Each line: ldm_key, component, diffusers_name, op; or component "-" and
// the reason class of a key diffusers drops.
//
// Run from core/convert/converttest: go run gen_refiner_mapping.go
package main

import (
	"fmt"
	"os"
	"strings"

	"modelpub/core/convert/converttest"
)

type pair struct{ sd, hf string }

func unetLayerMap() []pair {
	var m []pair
	for i := 0; i < 4; i++ {
		for j := 0; j < 2; j++ {
			m = append(m, pair{fmt.Sprintf("input_blocks.%d.0.", 3*i+j+1), fmt.Sprintf("down_blocks.%d.resnets.%d.", i, j)})
			if i < 3 {
				m = append(m, pair{fmt.Sprintf("input_blocks.%d.1.", 3*i+j+1), fmt.Sprintf("down_blocks.%d.attentions.%d.", i, j)})
			}
		}
		for j := 0; j < 3; j++ {
			m = append(m, pair{fmt.Sprintf("output_blocks.%d.0.", 3*i+j), fmt.Sprintf("up_blocks.%d.resnets.%d.", i, j)})
			if i > 0 {
				m = append(m, pair{fmt.Sprintf("output_blocks.%d.1.", 3*i+j), fmt.Sprintf("up_blocks.%d.attentions.%d.", i, j)})
			}
		}
		if i < 3 {
			m = append(m, pair{fmt.Sprintf("input_blocks.%d.0.op.", 3*(i+1)), fmt.Sprintf("down_blocks.%d.downsamplers.0.conv.", i)})
			k := 2
			if i == 0 {
				k = 1
			}
			m = append(m, pair{fmt.Sprintf("output_blocks.%d.%d.", 3*i+2, k), fmt.Sprintf("up_blocks.%d.upsamplers.0.", i)})
		}
	}
	m = append(m, pair{"middle_block.1.", "mid_block.attentions.0."})
	for j := 0; j < 2; j++ {
		m = append(m, pair{fmt.Sprintf("middle_block.%d.", 2*j), fmt.Sprintf("mid_block.resnets.%d.", j)})
	}
	return m
}

var unetMap = []pair{
	{"time_embed.0.weight", "time_embedding.linear_1.weight"},
	{"time_embed.0.bias", "time_embedding.linear_1.bias"},
	{"time_embed.2.weight", "time_embedding.linear_2.weight"},
	{"time_embed.2.bias", "time_embedding.linear_2.bias"},
	{"input_blocks.0.0.weight", "conv_in.weight"},
	{"input_blocks.0.0.bias", "conv_in.bias"},
	{"out.0.weight", "conv_norm_out.weight"},
	{"out.0.bias", "conv_norm_out.bias"},
	{"out.2.weight", "conv_out.weight"},
	{"out.2.bias", "conv_out.bias"},
	{"label_emb.0.0.weight", "add_embedding.linear_1.weight"},
	{"label_emb.0.0.bias", "add_embedding.linear_1.bias"},
	{"label_emb.0.2.weight", "add_embedding.linear_2.weight"},
	{"label_emb.0.2.bias", "add_embedding.linear_2.bias"},
}

var unetResnetMap = []pair{
	{"in_layers.0", "norm1"}, {"in_layers.2", "conv1"}, {"out_layers.0", "norm2"},
	{"out_layers.3", "conv2"}, {"emb_layers.1", "time_emb_proj"}, {"skip_connection", "conv_shortcut"},
}

// unetToSD is convert_unet_state_dict for one key.
func unetToSD(k string) string {
	v := k
	for _, p := range unetMap {
		if p.hf == k {
			v = p.sd
		}
	}
	if strings.Contains(k, "resnets") {
		for _, p := range unetResnetMap {
			v = strings.ReplaceAll(v, p.hf, p.sd)
		}
	}
	for _, p := range unetLayerMap() {
		v = strings.ReplaceAll(v, p.hf, p.sd)
	}
	return v
}

func vaeMap() []pair {
	m := []pair{{"nin_shortcut", "conv_shortcut"}, {"norm_out", "conv_norm_out"}, {"mid.attn_1.", "mid_block.attentions.0."}}
	for i := 0; i < 4; i++ {
		for j := 0; j < 2; j++ {
			m = append(m, pair{fmt.Sprintf("encoder.down.%d.block.%d.", i, j), fmt.Sprintf("encoder.down_blocks.%d.resnets.%d.", i, j)})
		}
		if i < 3 {
			m = append(m, pair{fmt.Sprintf("down.%d.downsample.", i), fmt.Sprintf("down_blocks.%d.downsamplers.0.", i)})
			m = append(m, pair{fmt.Sprintf("up.%d.upsample.", 3-i), fmt.Sprintf("up_blocks.%d.upsamplers.0.", i)})
		}
		for j := 0; j < 3; j++ {
			m = append(m, pair{fmt.Sprintf("decoder.up.%d.block.%d.", 3-i, j), fmt.Sprintf("decoder.up_blocks.%d.resnets.%d.", i, j)})
		}
	}
	for i := 0; i < 2; i++ {
		m = append(m, pair{fmt.Sprintf("mid.block_%d.", i+1), fmt.Sprintf("mid_block.resnets.%d.", i)})
	}
	return m
}

// vaeAttnMap is vae_conversion_map_attn with today's diffusers names.
var vaeAttnMap = []pair{{"norm.", "group_norm."}, {"q.", "to_q."}, {"k.", "to_k."}, {"v.", "to_v."}, {"proj_out.", "to_out.0."}}

// vaeToSD is convert_vae_state_dict for one key; reshape is set for the
// mid-block attention weights reshape_weight_for_sd turns into 1×1 convs.
func vaeToSD(k string) (string, bool) {
	v := k
	for _, p := range vaeMap() {
		v = strings.ReplaceAll(v, p.hf, p.sd)
	}
	if strings.Contains(k, "attentions") {
		for _, p := range vaeAttnMap {
			v = strings.ReplaceAll(v, p.hf, p.sd)
		}
	}
	for _, w := range []string{"q", "k", "v", "proj_out"} {
		if strings.Contains(v, "mid.attn_1."+w+".weight") {
			return v, true
		}
	}
	return v, false
}

// textencList is textenc_conversion_lst (stable-diffusion, HF diffusers),
// applied as its regex is: at each position the first alternative that
// matches, in list order.
var textencList = []pair{
	{"transformer.resblocks.", "text_model.encoder.layers."},
	{"ln_1", "layer_norm1"},
	{"ln_2", "layer_norm2"},
	{".c_fc.", ".fc1."},
	{".c_proj.", ".fc2."},
	{".attn", ".self_attn"},
	{"ln_final.", "text_model.final_layer_norm."},
	{"token_embedding.weight", "text_model.embeddings.token_embedding.weight"},
	{"positional_embedding", "text_model.embeddings.position_embedding.weight"},
}

func relabel(k string) string {
	var b strings.Builder
	for i := 0; i < len(k); {
		matched := false
		for _, p := range textencList {
			if strings.HasPrefix(k[i:], p.hf) {
				b.WriteString(p.sd)
				i += len(p.hf)
				matched = true
				break
			}
		}
		if !matched {
			b.WriteByte(k[i])
			i++
		}
	}
	return b.String()
}

func main() {
	var b strings.Builder
	b.WriteString("# ldm_key\tcomponent\tdiffusers_name\top — generated by gen_refiner_mapping.go from diffusers' facts; do not edit\n")
	for _, s := range converttest.SDXLRefinerTensorSpecs(converttest.UNet, 1) {
		fmt.Fprintf(&b, "model.diffusion_model.%s\tunet\t%s\t-\n", unetToSD(s.Name), s.Name)
	}
	for _, s := range converttest.SDXLRefinerTensorSpecs(converttest.VAE, 1) {
		sd, reshape := vaeToSD(s.Name)
		op := "-"
		if reshape {
			op = "1x1"
		}
		fmt.Fprintf(&b, "first_stage_model.%s\tvae\t%s\t%s\n", sd, s.Name, op)
	}
	const p = "conditioner.embedders.0.model."
	for _, s := range converttest.SDXLRefinerTensorSpecs(converttest.TextEncoder2, 1) {
		name := s.Name
		if name == "text_projection.weight" {
			fmt.Fprintf(&b, "%stext_projection\ttext_encoder_2\t%s\tT\n", p, name)
			continue
		}
		op := "-"
		for i, code := range []string{"q", "k", "v"} {
			for _, param := range []string{"weight", "bias"} {
				if pre, ok := strings.CutSuffix(name, ".self_attn."+code+"_proj."+param); ok {
					name = relabel(pre) + ".attn.in_proj_" + param
					op = fmt.Sprintf("rows%d/3", i)
				}
			}
		}
		if op == "-" {
			name = relabel(name)
		}
		fmt.Fprintf(&b, "%s%s\ttext_encoder_2\t%s\t%s\n", p, name, s.Name, op)
	}
	fmt.Fprintf(&b, "%slogit_scale\t-\tlogit-scale\t-\n", p)
	if err := os.WriteFile("sdxl-refiner-mapping.tsv", []byte(b.String()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
