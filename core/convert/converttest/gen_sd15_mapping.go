//go:build ignore

// gen_sd15_mapping writes sd15-mapping.tsv, the expected mapping of an
// SD 1.5 single-file checkpoint onto diffusers' names, from diffusers'
// facts and never from core/convert:
//
//   - the diffusers side is pipelinetest.SD15TensorSpecs at scale 1: the
//     names of the real SD 1.5 unet, vae and text_encoder files
//     (specs_test.go checks them against those files);
//   - the original (LDM) names come from the tables of diffusers'
//     scripts/convert_diffusers_to_original_stable_diffusion.py, which maps
//     diffusers names back to the original ones (unet_conversion_map,
//     unet_conversion_map_resnet, unet_conversion_map_layer,
//     vae_conversion_map, vae_conversion_map_attn, reshape_weight_for_sd),
//     transcribed below. Its attention table uses the diffusers names of
//     2022 (query, key, value, proj_attn); today's diffusers saves to_q,
//     to_k, to_v, to_out.0, which single_file_utils'
//     update_vae_attentions_ldm_to_diffusers produces from q, k, v,
//     proj_out, so those names are used here.
//
// Each line: ldm_key, component, diffusers_name, reshape ("1x1" when the
// checkpoint holds the weight as a [out, in, 1, 1] convolution), or
// component "-" and the reason class for a key diffusers drops.
//
// Run from core/convert/converttest: go run gen_sd15_mapping.go
package main

import (
	"fmt"
	"os"
	"strings"

	"modelpub/core/pipeline/pipelinetest"
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

func main() {
	var b strings.Builder
	b.WriteString("# ldm_key\tcomponent\tdiffusers_name\treshape — generated by gen_sd15_mapping.go from diffusers' facts; do not edit\n")
	for _, s := range pipelinetest.SD15TensorSpecs(pipelinetest.UNet, 1) {
		fmt.Fprintf(&b, "model.diffusion_model.%s\tunet\t%s\t-\n", unetToSD(s.Name), s.Name)
	}
	for _, s := range pipelinetest.SD15TensorSpecs(pipelinetest.VAE, 1) {
		sd, reshape := vaeToSD(s.Name)
		r := "-"
		if reshape {
			r = "1x1"
		}
		fmt.Fprintf(&b, "first_stage_model.%s\tvae\t%s\t%s\n", sd, s.Name, r)
	}
	for _, s := range pipelinetest.SD15TensorSpecs(pipelinetest.TextEncoder, 1) {
		if s.Name == "text_model.embeddings.position_ids" {
			// transformers ≥ 4.31 keeps position_ids out of the state dict:
			// diffusers' from_single_file ignores it, save_pretrained omits it.
			fmt.Fprintf(&b, "cond_stage_model.transformer.%s\t-\tposition-ids\t-\n", s.Name)
			continue
		}
		fmt.Fprintf(&b, "cond_stage_model.transformer.%s\ttext_encoder\t%s\t-\n", s.Name, s.Name)
	}
	if err := os.WriteFile("sd15-mapping.tsv", []byte(b.String()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
