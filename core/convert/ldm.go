package convert

import (
	"fmt"
	"strconv"
	"strings"
)

// The renames of the original (LDM / CompVis) layout to diffusers', as
// diffusers' single_file_utils does them: convert_ldm_unet_checkpoint with
// update_unet_resnet_ldm_to_diffusers and update_unet_attention_ldm_to_diffusers,
// convert_ldm_vae_checkpoint with update_vae_resnet_ldm_to_diffusers and
// update_vae_attentions_ldm_to_diffusers, and convert_ldm_clip_checkpoint.
// Each function takes a key with its component prefix removed and returns
// the diffusers name, or ok=false when the key has no place in the layout.

// unetLDMLayers is DIFFUSERS_TO_LDM_MAPPING["unet"]["layers"], LDM → diffusers.
var unetLDMLayers = map[string]string{
	"time_embed.0":     "time_embedding.linear_1",
	"time_embed.2":     "time_embedding.linear_2",
	"input_blocks.0.0": "conv_in",
	"out.0":            "conv_norm_out",
	"out.2":            "conv_out",
	// DIFFUSERS_TO_LDM_MAPPING["unet"]["addition_embed_type"], for a
	// config whose addition_embed_type is "text_time" (SDXL).
	"label_emb.0.0": "add_embedding.linear_1",
	"label_emb.0.2": "add_embedding.linear_2",
}

// unetResnetRenames are update_unet_resnet_ldm_to_diffusers' replacements.
var unetResnetRenames = []struct{ ldm, diffusers string }{
	{"in_layers.0.", "norm1."},
	{"in_layers.2.", "conv1."},
	{"out_layers.0.", "norm2."},
	{"out_layers.3.", "conv2."},
	{"emb_layers.1.", "time_emb_proj."},
	{"skip_connection.", "conv_shortcut."},
}

// splitParam cuts "a.b.weight" into "a.b" and "weight".
func splitParam(key string) (module, param string, ok bool) {
	i := strings.LastIndexByte(key, '.')
	if i <= 0 {
		return "", "", false
	}
	module, param = key[:i], key[i+1:]
	return module, param, param == "weight" || param == "bias"
}

// blockIndex parses "input_blocks.4.1.rest" with head "input_blocks" into
// 4, 1 and "rest".
func blockIndex(key, head string) (block, sub int, rest string, ok bool) {
	s, found := strings.CutPrefix(key, head+".")
	if !found {
		return 0, 0, "", false
	}
	parts := strings.SplitN(s, ".", 3)
	if len(parts) != 3 {
		return 0, 0, "", false
	}
	b, err1 := strconv.Atoi(parts[0])
	m, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil || b < 0 || m < 0 || parts[0] != strconv.Itoa(b) || parts[1] != strconv.Itoa(m) {
		return 0, 0, "", false
	}
	return b, m, parts[2], true
}

func unetResnet(rest string) (string, bool) {
	for _, r := range unetResnetRenames {
		if p, ok := strings.CutPrefix(rest, r.ldm); ok && (p == "weight" || p == "bias") {
			return r.diffusers + p, true
		}
	}
	return "", false
}

// unetLDMName renames a key of model.diffusion_model.* for a UNet with
// layers resnets per down block. input_blocks.{i} (i ≥ 1) is down block
// (i-1)/(layers+1), layer (i-1)%(layers+1): .0 a resnet (or .0.op the
// downsampler), .1 its attention. middle_block.{k}: even k the resnet
// max(k-1, 0), odd k the attention. output_blocks.{i} is up block
// i/(layers+1), layer i%(layers+1): .0 a resnet, .1 its attention or
// (.1.conv) the upsampler of a block without attention, .2.conv the
// upsampler. Attention keys keep their names.
func unetLDMName(key string, layers int) (string, bool) {
	if module, param, ok := splitParam(key); ok {
		if n, ok := unetLDMLayers[module]; ok {
			return n + "." + param, true
		}
	}
	if i, m, rest, ok := blockIndex(key, "input_blocks"); ok && i >= 1 {
		p := fmt.Sprintf("down_blocks.%d", (i-1)/(layers+1))
		l := (i - 1) % (layers + 1)
		switch {
		case m == 0 && (rest == "op.weight" || rest == "op.bias"):
			return p + ".downsamplers.0.conv." + strings.TrimPrefix(rest, "op."), true
		case m == 0:
			r, ok := unetResnet(rest)
			return fmt.Sprintf("%s.resnets.%d.%s", p, l, r), ok
		case m == 1:
			return fmt.Sprintf("%s.attentions.%d.%s", p, l, rest), true
		}
		return "", false
	}
	if k, rest, ok := middleIndex(key); ok {
		if k%2 == 0 {
			r, ok := unetResnet(rest)
			return fmt.Sprintf("mid_block.resnets.%d.%s", max(k-1, 0), r), ok
		}
		return fmt.Sprintf("mid_block.attentions.%d.%s", k-1, rest), true
	}
	if i, m, rest, ok := blockIndex(key, "output_blocks"); ok {
		p := fmt.Sprintf("up_blocks.%d", i/(layers+1))
		l := i % (layers + 1)
		switch {
		case m == 0:
			r, ok := unetResnet(rest)
			return fmt.Sprintf("%s.resnets.%d.%s", p, l, r), ok
		case (m == 1 || m == 2) && (rest == "conv.weight" || rest == "conv.bias"):
			return p + ".upsamplers.0." + rest, true
		case m == 1:
			return fmt.Sprintf("%s.attentions.%d.%s", p, l, rest), true
		}
	}
	return "", false
}

// middleIndex parses "middle_block.{k}.rest".
func middleIndex(key string) (int, string, bool) {
	s, ok := strings.CutPrefix(key, "middle_block.")
	if !ok {
		return 0, "", false
	}
	num, rest, ok := strings.Cut(s, ".")
	k, err := strconv.Atoi(num)
	if !ok || err != nil || k < 0 || num != strconv.Itoa(k) {
		return 0, "", false
	}
	return k, rest, true
}

// vaeLDMLayers is DIFFUSERS_TO_LDM_MAPPING["vae"], LDM → diffusers.
var vaeLDMLayers = map[string]string{
	"encoder.conv_in":  "encoder.conv_in",
	"encoder.conv_out": "encoder.conv_out",
	"encoder.norm_out": "encoder.conv_norm_out",
	"decoder.conv_in":  "decoder.conv_in",
	"decoder.conv_out": "decoder.conv_out",
	"decoder.norm_out": "decoder.conv_norm_out",
	"quant_conv":       "quant_conv",
	"post_quant_conv":  "post_quant_conv",
}

// vaeAttnRenames are update_vae_attentions_ldm_to_diffusers' replacements
// inside mid.attn_1.
var vaeAttnRenames = map[string]string{
	"norm":     "group_norm",
	"q":        "to_q",
	"k":        "to_k",
	"v":        "to_v",
	"proj_out": "to_out.0",
}

var vaeResnetParts = map[string]string{
	"norm1": "norm1", "conv1": "conv1", "norm2": "norm2", "conv2": "conv2", "nin_shortcut": "conv_shortcut",
}

// vaeLDMName renames a key of first_stage_model.* for a VAE with blocks
// up blocks. Decoder up blocks are numbered in reverse: up.{k} is
// up_blocks.{blocks-1-k}. attention reports the mid-block attention
// weights, which diffusers turns from 1×1 convolutions into linear layers.
func vaeLDMName(key string, blocks int) (name string, attention, ok bool) {
	module, param, ok := splitParam(key)
	if !ok {
		return "", false, false
	}
	if n, ok := vaeLDMLayers[module]; ok {
		return n + "." + param, false, true
	}
	coder, rest, ok := strings.Cut(module, ".")
	if !ok || (coder != "encoder" && coder != "decoder") {
		return "", false, false
	}
	resnet := func(prefix, part string) (string, bool, bool) {
		d, ok := vaeResnetParts[part]
		return prefix + "." + d + "." + param, false, ok
	}
	parts := strings.Split(rest, ".")
	switch {
	case len(parts) == 5 && parts[0] == "down" && parts[2] == "block" && coder == "encoder":
		i, j, ok := twoInts(parts[1], parts[3])
		if !ok {
			return "", false, false
		}
		return resnet(fmt.Sprintf("encoder.down_blocks.%d.resnets.%d", i, j), parts[4])
	case len(parts) == 4 && parts[0] == "down" && parts[2] == "downsample" && parts[3] == "conv" && coder == "encoder":
		i, _, ok := twoInts(parts[1], "0")
		if !ok {
			return "", false, false
		}
		return fmt.Sprintf("encoder.down_blocks.%d.downsamplers.0.conv.%s", i, param), false, true
	case len(parts) == 5 && parts[0] == "up" && parts[2] == "block" && coder == "decoder":
		k, j, ok := twoInts(parts[1], parts[3])
		if !ok || k >= blocks {
			return "", false, false
		}
		return resnet(fmt.Sprintf("decoder.up_blocks.%d.resnets.%d", blocks-1-k, j), parts[4])
	case len(parts) == 4 && parts[0] == "up" && parts[2] == "upsample" && parts[3] == "conv" && coder == "decoder":
		k, _, ok := twoInts(parts[1], "0")
		if !ok || k >= blocks {
			return "", false, false
		}
		return fmt.Sprintf("decoder.up_blocks.%d.upsamplers.0.conv.%s", blocks-1-k, param), false, true
	case len(parts) == 3 && parts[0] == "mid" && (parts[1] == "block_1" || parts[1] == "block_2"):
		return resnet(fmt.Sprintf("%s.mid_block.resnets.%d", coder, int(parts[1][6]-'1')), parts[2])
	case len(parts) == 3 && parts[0] == "mid" && parts[1] == "attn_1":
		d, ok := vaeAttnRenames[parts[2]]
		return fmt.Sprintf("%s.mid_block.attentions.0.%s.%s", coder, d, param), ok && param == "weight", ok
	}
	return "", false, false
}

func twoInts(a, b string) (int, int, bool) {
	x, err1 := strconv.Atoi(a)
	y, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || x < 0 || y < 0 || a != strconv.Itoa(x) || b != strconv.Itoa(y) {
		return 0, 0, false
	}
	return x, y, true
}

// openCLIPLayers is DIFFUSERS_TO_LDM_MAPPING["openclip"]["layers"],
// original → diffusers; text_projection is transposed
// (convert_open_clip_checkpoint: ".T.contiguous()").
var openCLIPLayers = map[string]string{
	"positional_embedding":   "text_model.embeddings.position_embedding.weight",
	"token_embedding.weight": "text_model.embeddings.token_embedding.weight",
	"ln_final.weight":        "text_model.final_layer_norm.weight",
	"ln_final.bias":          "text_model.final_layer_norm.bias",
	"text_projection":        "text_projection.weight",
}

// openCLIPBlock are the renames inside a resblock
// (DIFFUSERS_TO_LDM_MAPPING["openclip"]["transformer"]).
var openCLIPBlock = map[string]string{
	"ln_1": "layer_norm1", "ln_2": "layer_norm2", "mlp.c_fc": "mlp.fc1", "mlp.c_proj": "mlp.fc2", "attn.out_proj": "self_attn.out_proj",
}

// openCLIPPieces maps a key of an OpenCLIP text tower (prefix removed) as
// convert_open_clip_checkpoint does: the layers above; transformer.resblocks.{i}
// renamed into text_model.encoder.layers.{i}, attn.in_proj_weight and
// in_proj_bias split into q_proj, k_proj and v_proj by thirds of their rows.
func openCLIPPieces(key string) ([]piece, bool) {
	if n, ok := openCLIPLayers[key]; ok {
		return []piece{{name: n, transpose: key == "text_projection"}}, true
	}
	rest, ok := strings.CutPrefix(key, "transformer.resblocks.")
	if !ok {
		return nil, false
	}
	num, rest, ok := strings.Cut(rest, ".")
	i, err := strconv.Atoi(num)
	if !ok || err != nil || i < 0 || num != strconv.Itoa(i) {
		return nil, false
	}
	p := fmt.Sprintf("text_model.encoder.layers.%d.", i)
	switch rest {
	case "attn.in_proj_weight", "attn.in_proj_bias":
		param := strings.TrimPrefix(rest, "attn.in_proj_")
		var out []piece
		for j, code := range []string{"q", "k", "v"} {
			out = append(out, piece{name: p + "self_attn." + code + "_proj." + param, from: j, to: j + 1, of: 3})
		}
		return out, true
	}
	module, param, ok := splitParam(rest)
	if !ok {
		return nil, false
	}
	if n, ok := openCLIPBlock[module]; ok {
		return []piece{{name: p + n + "." + param}}, true
	}
	return nil, false
}

// fluxLayers are convert_flux_transformer_checkpoint_to_diffusers' plain
// renames (module → module; weight and bias alike).
var fluxLayers = map[string]string{
	"time_in.in_layer":      "time_text_embed.timestep_embedder.linear_1",
	"time_in.out_layer":     "time_text_embed.timestep_embedder.linear_2",
	"vector_in.in_layer":    "time_text_embed.text_embedder.linear_1",
	"vector_in.out_layer":   "time_text_embed.text_embedder.linear_2",
	"guidance_in.in_layer":  "time_text_embed.guidance_embedder.linear_1",
	"guidance_in.out_layer": "time_text_embed.guidance_embedder.linear_2",
	"txt_in":                "context_embedder",
	"img_in":                "x_embedder",
	"final_layer.linear":    "proj_out",
}

// fluxDouble and fluxSingle are the renames inside double_blocks.{i} and
// single_blocks.{i} (the RMS norms' "scale" becomes "weight").
var (
	fluxDouble = map[string]string{
		"img_mod.lin.weight": "norm1.linear.weight", "img_mod.lin.bias": "norm1.linear.bias",
		"txt_mod.lin.weight": "norm1_context.linear.weight", "txt_mod.lin.bias": "norm1_context.linear.bias",
		"img_attn.norm.query_norm.scale": "attn.norm_q.weight", "img_attn.norm.key_norm.scale": "attn.norm_k.weight",
		"txt_attn.norm.query_norm.scale": "attn.norm_added_q.weight", "txt_attn.norm.key_norm.scale": "attn.norm_added_k.weight",
		"img_mlp.0.weight": "ff.net.0.proj.weight", "img_mlp.0.bias": "ff.net.0.proj.bias",
		"img_mlp.2.weight": "ff.net.2.weight", "img_mlp.2.bias": "ff.net.2.bias",
		"txt_mlp.0.weight": "ff_context.net.0.proj.weight", "txt_mlp.0.bias": "ff_context.net.0.proj.bias",
		"txt_mlp.2.weight": "ff_context.net.2.weight", "txt_mlp.2.bias": "ff_context.net.2.bias",
		"img_attn.proj.weight": "attn.to_out.0.weight", "img_attn.proj.bias": "attn.to_out.0.bias",
		"txt_attn.proj.weight": "attn.to_add_out.weight", "txt_attn.proj.bias": "attn.to_add_out.bias",
	}
	fluxSingle = map[string]string{
		"modulation.lin.weight": "norm.linear.weight", "modulation.lin.bias": "norm.linear.bias",
		"norm.query_norm.scale": "attn.norm_q.weight", "norm.key_norm.scale": "attn.norm_k.weight",
		"linear2.weight": "proj_out.weight", "linear2.bias": "proj_out.bias",
	}
)

// fluxPieces maps a key of a Flux transformer (black-forest-labs' layout,
// "model.diffusion_model." removed) as convert_flux_transformer_checkpoint_to_diffusers
// does: the renames above; a double block's img_attn.qkv and txt_attn.qkv
// split by thirds into to_q/to_k/to_v and add_q_proj/add_k_proj/add_v_proj;
// a single block's linear1 split into to_q, to_k, to_v (inner_dim rows
// each) and proj_mlp (mlp_ratio 4: the other 4·inner_dim), that is by
// sevenths; final_layer.adaLN_modulation.1 made norm_out.linear with its
// halves swapped (swap_scale_shift).
func fluxPieces(key string) ([]piece, bool) {
	module, param, ok := splitParam(key)
	if !ok && !strings.HasSuffix(key, ".scale") {
		return nil, false
	}
	if n, ok := fluxLayers[module]; ok {
		return []piece{{name: n + "." + param}}, true
	}
	if module == "final_layer.adaLN_modulation.1" {
		return []piece{{name: "norm_out.linear." + param, swap: true}}, true
	}
	for _, blocks := range []struct {
		head, out string
		renames   map[string]string
	}{{"double_blocks", "transformer_blocks", fluxDouble}, {"single_blocks", "single_transformer_blocks", fluxSingle}} {
		rest, ok := strings.CutPrefix(key, blocks.head+".")
		if !ok {
			continue
		}
		num, rest, ok := strings.Cut(rest, ".")
		i, err := strconv.Atoi(num)
		if !ok || err != nil || i < 0 || num != strconv.Itoa(i) {
			return nil, false
		}
		p := fmt.Sprintf("%s.%d.", blocks.out, i)
		if n, ok := blocks.renames[rest]; ok {
			return []piece{{name: p + n}}, true
		}
		m, param, ok := splitParam(rest)
		if !ok {
			return nil, false
		}
		var names []string
		switch {
		case blocks.head == "double_blocks" && m == "img_attn.qkv":
			names = []string{"attn.to_q", "attn.to_k", "attn.to_v"}
		case blocks.head == "double_blocks" && m == "txt_attn.qkv":
			names = []string{"attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj"}
		case blocks.head == "single_blocks" && m == "linear1":
			return []piece{
				{name: p + "attn.to_q." + param, from: 0, to: 1, of: 7},
				{name: p + "attn.to_k." + param, from: 1, to: 2, of: 7},
				{name: p + "attn.to_v." + param, from: 2, to: 3, of: 7},
				{name: p + "proj_mlp." + param, from: 3, to: 7, of: 7},
			}, true
		default:
			return nil, false
		}
		var out []piece
		for j, n := range names {
			out = append(out, piece{name: p + n + "." + param, from: j, to: j + 1, of: 3})
		}
		return out, true
	}
	return nil, false
}
