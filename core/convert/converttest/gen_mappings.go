//go:build ignore

// gen_mappings writes the expected mappings of single-file checkpoints onto
// diffusers' names (sd15-mapping.tsv, sd2-mapping.tsv, sdxl-mapping.tsv,
// sdxl-refiner-mapping.tsv) from diffusers' facts and never from
// core/convert:
//
//   - the diffusers side is each model's tensor specs at scale 1:
//     pipelinetest.SD15TensorSpecs (the names of the real SD 1.5 files,
//     checked in specs_test.go), SD2TensorSpecs (the architecture of
//     stabilityai/stable-diffusion-2-1's configs), SDXLTensorSpecs (checked
//     against the sizes of the real files in converttest_test.go) and
//     SDXLRefinerTensorSpecs;
//   - the UNet and VAE's original (LDM) names come from the tables of
//     diffusers' scripts/convert_diffusers_to_original_stable_diffusion.py
//     (four UNet levels: SD 1.x, SD 2.x, whose proj_in and proj_out are
//     linear layers held as they are, and the SDXL refiner, with cross-
//     attention in the middle two) and convert_diffusers_to_original_sdxl.py
//     (three levels and its output_blocks.2.2.conv fix, SDXL's label_emb,
//     which the refiner has too): unet_conversion_map,
//     unet_conversion_map_resnet, unet_conversion_map_layer,
//     vae_conversion_map, vae_conversion_map_attn, reshape_weight_for_sd,
//     transcribed below. The VAE attention table uses the diffusers names of
//     2022 (query, key, value, proj_attn); today's diffusers saves to_q,
//     to_k, to_v, to_out.0, which single_file_utils'
//     update_vae_attentions_ldm_to_diffusers produces from q, k, v,
//     proj_out, so those names are used here;
//   - OpenCLIP text encoders (SD 2.x's, SDXL's second, the refiner's only
//     one) come from textenc_conversion_lst and q, k, v concatenated, in
//     that order, into in_proj_weight and in_proj_bias
//     (convert_text_enc_state_dict_v20, convert_openclip_text_enc_state_dict);
//     text_projection is held transposed under the name "text_projection"
//     (single_file_utils' DIFFUSERS_TO_LDM_MAPPING["openclip"]["layers"] and
//     convert_open_clip_checkpoint's ".T.contiguous()");
//   - SD 2.x's dropped keys are single_file_utils'
//     SD_2_TEXT_ENCODER_KEYS_TO_IGNORE (resblocks.23.*, the last layer, and
//     text_projection, [1024, 1024] in OpenCLIP ViT-H/14) and logit_scale,
//     which convert_open_clip_checkpoint does not read; transformers ≥ 4.31
//     keeps CLIP's position_ids out of the state dict.
//
// Each line: ldm_key, component, diffusers_name, op: "-", "1x1" (held as a
// [out, in, 1, 1] convolution), "T" (held transposed), "rows0/3",
// "rows1/3", "rows2/3" (that third of the rows of a fused tensor); or
// component "-", the reason class of a key diffusers drops and "-" or
// "like:KEY" (built with KEY's shape).
//
// Run from core/convert/converttest: go run gen_mappings.go
package main

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"modelpub/core/convert/converttest"
	"modelpub/core/pipeline/pipelinetest"
)

type pair struct{ sd, hf string }

// unetMap is unet_conversion_map; the label_emb rows are SDXL's.
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

// unetLayerMap is unet_conversion_map_layer: four levels with attention in
// the first three down and last three up (convert_diffusers_to_original_
// stable_diffusion.py), or SDXL's three with attention in the last two
// down and first two up, three resnets per up level and its upsampler fix.
func unetLayerMap(xl bool) []pair {
	levels, ups := 4, 3
	if xl {
		levels, ups = 3, 4
	}
	downAttn := func(i int) bool { return i < 3 }
	upAttn := func(i int) bool { return i > 0 }
	if xl {
		downAttn = func(i int) bool { return i > 0 }
		upAttn = func(i int) bool { return i < 2 }
	}
	var m []pair
	for i := 0; i < levels; i++ {
		for j := 0; j < 2; j++ {
			m = append(m, pair{fmt.Sprintf("input_blocks.%d.0.", 3*i+j+1), fmt.Sprintf("down_blocks.%d.resnets.%d.", i, j)})
			if downAttn(i) {
				m = append(m, pair{fmt.Sprintf("input_blocks.%d.1.", 3*i+j+1), fmt.Sprintf("down_blocks.%d.attentions.%d.", i, j)})
			}
		}
		for j := 0; j < ups; j++ {
			m = append(m, pair{fmt.Sprintf("output_blocks.%d.0.", 3*i+j), fmt.Sprintf("up_blocks.%d.resnets.%d.", i, j)})
			if upAttn(i) {
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
	if xl {
		m = append(m, pair{"output_blocks.2.2.conv.", "output_blocks.2.1.conv."})
	}
	m = append(m, pair{"middle_block.1.", "mid_block.attentions.0."})
	for j := 0; j < 2; j++ {
		m = append(m, pair{fmt.Sprintf("middle_block.%d.", 2*j), fmt.Sprintf("mid_block.resnets.%d.", j)})
	}
	return m
}

// unetToSD is convert_unet_state_dict for one key.
func unetToSD(k string, xl bool) string {
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
	for _, p := range unetLayerMap(xl) {
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

// table is one mapping file being written.
type table struct{ strings.Builder }

func newTable() *table {
	t := &table{}
	t.WriteString("# ldm_key\tcomponent\tdiffusers_name\top — generated by gen_mappings.go from diffusers' facts; do not edit\n")
	return t
}

func (t *table) row(ldm, component, diffusers, op string) {
	fmt.Fprintf(t, "%s\t%s\t%s\t%s\n", ldm, component, diffusers, op)
}

func (t *table) unet(specs []pipelinetest.Spec, xl bool) {
	for _, s := range specs {
		t.row("model.diffusion_model."+unetToSD(s.Name, xl), "unet", s.Name, "-")
	}
}

func (t *table) vae(specs []pipelinetest.Spec) {
	for _, s := range specs {
		sd, reshape := vaeToSD(s.Name)
		op := "-"
		if reshape {
			op = "1x1"
		}
		t.row("first_stage_model."+sd, "vae", s.Name, op)
	}
}

// openCLIP writes an OpenCLIP text encoder under prefix as component and
// returns its original keys in order.
func (t *table) openCLIP(prefix, component string, specs []pipelinetest.Spec) []string {
	var keys []string
	for _, s := range specs {
		name := s.Name
		if name == "text_projection.weight" {
			t.row(prefix+"text_projection", component, name, "T")
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
		t.row(prefix+name, component, s.Name, op)
		keys = append(keys, name)
	}
	return keys
}

func (t *table) write(file string) {
	if err := os.WriteFile(file, []byte(t.String()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func sd15() {
	t := newTable()
	t.unet(pipelinetest.SD15TensorSpecs(pipelinetest.UNet, 1), false)
	t.vae(pipelinetest.SD15TensorSpecs(pipelinetest.VAE, 1))
	for _, s := range pipelinetest.SD15TensorSpecs(pipelinetest.TextEncoder, 1) {
		if s.Name == "text_model.embeddings.position_ids" {
			t.row("cond_stage_model.transformer."+s.Name, "-", "position-ids", "-")
			continue
		}
		t.row("cond_stage_model.transformer."+s.Name, "text_encoder", s.Name, "-")
	}
	t.write("sd15-mapping.tsv")
}

func sd2() {
	t := newTable()
	t.unet(converttest.SD2TensorSpecs(converttest.UNet, 1), false)
	t.vae(converttest.SD2TensorSpecs(converttest.VAE, 1))
	const p = "cond_stage_model.model."
	var last []string // layer 22's original keys, for layer 23
	for _, k := range t.openCLIP(p, "text_encoder", converttest.SD2TensorSpecs(converttest.TextEncoder, 1)) {
		if strings.HasPrefix(k, "transformer.resblocks.22.") && !slices.Contains(last, k) {
			last = append(last, k)
		}
	}
	for _, k := range last {
		t.row(p+strings.Replace(k, ".22.", ".23.", 1), "-", "last-layer", "like:"+p+k)
	}
	t.row(p+"text_projection", "-", "text-projection", "like:"+p+"transformer.resblocks.22.attn.out_proj.weight")
	t.row(p+"logit_scale", "-", "logit-scale", "-")
	t.write("sd2-mapping.tsv")
}

func sdxl() {
	t := newTable()
	t.unet(converttest.SDXLTensorSpecs(converttest.UNet, 1), true)
	t.vae(converttest.SDXLTensorSpecs(converttest.VAE, 1))
	const p1, p2 = "conditioner.embedders.0.transformer.", "conditioner.embedders.1.model."
	t.row(p1+"text_model.embeddings.position_ids", "-", "position-ids", "-")
	for _, s := range converttest.SDXLTensorSpecs(converttest.TextEncoder, 1) {
		t.row(p1+s.Name, "text_encoder", s.Name, "-")
	}
	t.openCLIP(p2, "text_encoder_2", converttest.SDXLTensorSpecs(converttest.TextEncoder2, 1))
	t.row(p2+"logit_scale", "-", "logit-scale", "-")
	t.write("sdxl-mapping.tsv")
}

func refiner() {
	t := newTable()
	t.unet(converttest.SDXLRefinerTensorSpecs(converttest.UNet, 1), false)
	t.vae(converttest.SDXLRefinerTensorSpecs(converttest.VAE, 1))
	const p = "conditioner.embedders.0.model."
	t.openCLIP(p, "text_encoder_2", converttest.SDXLRefinerTensorSpecs(converttest.TextEncoder2, 1))
	t.row(p+"logit_scale", "-", "logit-scale", "-")
	t.write("sdxl-refiner-mapping.tsv")
}

func main() {
	sd15()
	sd2()
	sdxl()
	refiner()
}
