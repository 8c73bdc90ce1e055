package pipelinetest

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/tensors"
)

// realSizes are the sizes of the real SD-1.5 safetensors files, from the LFS
// pointers listed in sd15/SOURCES.md.
var realSizes = map[string]int64{
	"unet/diffusion_pytorch_model.safetensors":         3_438_167_540,
	"unet/diffusion_pytorch_model.non_ema.safetensors": 3_438_167_536,
	"unet/diffusion_pytorch_model.fp16.safetensors":    1_719_125_304,
	"text_encoder/model.safetensors":                   492_265_874,
	"text_encoder/model.fp16.safetensors":              246_144_864,
	"vae/diffusion_pytorch_model.safetensors":          334_643_276,
	"vae/diffusion_pytorch_model.fp16.safetensors":     167_335_342,
	"safety_checker/model.safetensors":                 1_215_981_830,
	"safety_checker/model.fp16.safetensors":            608_018_440,
}

func TestSpecCountsAtFullScale(t *testing.T) {
	for _, tc := range []struct {
		comp       string
		tensors    int
		i64        int
		parameters int64
	}{
		// The parameter counts of the real models.
		{UNet, 686, 0, 859_520_964},
		{TextEncoder, 197, 1, 123_060_480},
		{VAE, 248, 0, 83_653_863},
		// No published count: the fp16 file size below matches exactly.
		{SafetyChecker, 397, 1, 303_981_588},
	} {
		specs := SD15TensorSpecs(tc.comp, 1)
		assert.Len(t, specs, tc.tensors, tc.comp)
		assert.Equal(t, tc.parameters, Parameters(specs), tc.comp)
		i64 := 0
		names := map[string]bool{}
		for _, s := range specs {
			assert.False(t, names[s.Name], "%s: %s twice", tc.comp, s.Name)
			names[s.Name] = true
			switch s.DType {
			case tensors.I64:
				i64++
				assert.Equal(t, InitPositionIDs, s.Init, s.Name)
				assert.True(t, strings.HasSuffix(s.Name, ".position_ids"), s.Name)
			case tensors.F32:
			default:
				t.Errorf("%s: %s has dtype %s", tc.comp, s.Name, s.DType)
			}
		}
		assert.Equal(t, tc.i64, i64, tc.comp)
	}
}

func TestSpecShapesAtFullScale(t *testing.T) {
	want := map[string]map[string][]int64{
		UNet: {
			"conv_in.weight":                                                       {320, 4, 3, 3},
			"time_embedding.linear_1.weight":                                       {1280, 320},
			"time_embedding.linear_2.weight":                                       {1280, 1280},
			"down_blocks.0.attentions.0.proj_in.weight":                            {320, 320, 1, 1},
			"down_blocks.0.attentions.1.transformer_blocks.0.attn2.to_k.weight":    {320, 768},
			"down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_k.weight":    {320, 320},
			"down_blocks.1.attentions.0.transformer_blocks.0.ff.net.0.proj.weight": {5120, 640},
			"down_blocks.1.attentions.0.transformer_blocks.0.ff.net.2.weight":      {640, 2560},
			"down_blocks.1.resnets.0.conv_shortcut.weight":                         {640, 320, 1, 1},
			"down_blocks.2.downsamplers.0.conv.weight":                             {1280, 1280, 3, 3},
			"down_blocks.3.resnets.1.time_emb_proj.weight":                         {1280, 1280},
			"mid_block.attentions.0.transformer_blocks.0.attn2.to_v.weight":        {1280, 768},
			"mid_block.resnets.1.conv2.weight":                                     {1280, 1280, 3, 3},
			"up_blocks.0.resnets.2.conv1.weight":                                   {1280, 2560, 3, 3},
			"up_blocks.0.upsamplers.0.conv.weight":                                 {1280, 1280, 3, 3},
			"up_blocks.1.resnets.2.conv1.weight":                                   {1280, 1920, 3, 3},
			"up_blocks.2.resnets.0.conv_shortcut.weight":                           {640, 1920, 1, 1},
			"up_blocks.3.resnets.0.conv1.weight":                                   {320, 960, 3, 3},
			"up_blocks.3.attentions.2.proj_out.weight":                             {320, 320, 1, 1},
			"conv_norm_out.weight":                                                 {320},
			"conv_out.weight":                                                      {4, 320, 3, 3},
			"conv_out.bias":                                                        {4},
		},
		TextEncoder: {
			"text_model.embeddings.position_ids":                   {1, 77},
			"text_model.embeddings.token_embedding.weight":         {49408, 768},
			"text_model.embeddings.position_embedding.weight":      {77, 768},
			"text_model.encoder.layers.11.self_attn.q_proj.weight": {768, 768},
			"text_model.encoder.layers.0.mlp.fc1.weight":           {3072, 768},
			"text_model.encoder.layers.0.mlp.fc2.weight":           {768, 3072},
			"text_model.final_layer_norm.bias":                     {768},
		},
		VAE: {
			"encoder.conv_in.weight":                               {128, 3, 3, 3},
			"encoder.down_blocks.1.resnets.0.conv_shortcut.weight": {256, 128, 1, 1},
			"encoder.down_blocks.2.downsamplers.0.conv.weight":     {512, 512, 3, 3},
			"encoder.mid_block.attentions.0.to_q.weight":           {512, 512},
			"encoder.mid_block.attentions.0.to_out.0.bias":         {512},
			"encoder.conv_out.weight":                              {8, 512, 3, 3},
			"decoder.conv_in.weight":                               {512, 4, 3, 3},
			"decoder.up_blocks.2.resnets.0.conv_shortcut.weight":   {256, 512, 1, 1},
			"decoder.up_blocks.3.resnets.2.conv2.weight":           {128, 128, 3, 3},
			"decoder.conv_out.weight":                              {3, 128, 3, 3},
			"quant_conv.weight":                                    {8, 8, 1, 1},
			"post_quant_conv.weight":                               {4, 4, 1, 1},
		},
		SafetyChecker: {
			"concept_embeds":                                              {17, 768},
			"special_care_embeds":                                         {3, 768},
			"concept_embeds_weights":                                      {17},
			"special_care_embeds_weights":                                 {3},
			"vision_model.vision_model.embeddings.class_embedding":        {1024},
			"vision_model.vision_model.embeddings.position_ids":           {1, 257},
			"vision_model.vision_model.embeddings.patch_embedding.weight": {1024, 3, 14, 14},
			"vision_model.vision_model.encoder.layers.23.mlp.fc1.weight":  {4096, 1024},
			"vision_model.vision_model.pre_layrnorm.weight":               {1024},
			"visual_projection.weight":                                    {768, 1024},
		},
	}
	for comp, shapes := range want {
		byName := map[string]Spec{}
		for _, s := range SD15TensorSpecs(comp, 1) {
			byName[s.Name] = s
		}
		for name, shape := range shapes {
			s, ok := byName[name]
			if assert.True(t, ok, "%s: no %s", comp, name) {
				assert.Equal(t, shape, s.Shape, "%s: %s", comp, name)
			}
		}
	}
	// Tensors that SD-1.5 does not have.
	unet := map[string]bool{}
	for _, s := range SD15TensorSpecs(UNet, 1) {
		unet[s.Name] = true
	}
	for _, name := range []string{
		"down_blocks.3.attentions.0.norm.weight",       // DownBlock2D has no attention
		"down_blocks.3.downsamplers.0.conv.weight",     // the last down block does not downsample
		"up_blocks.0.attentions.0.norm.weight",         // UpBlock2D has no attention
		"up_blocks.3.upsamplers.0.conv.weight",         // the last up block does not upsample
		"down_blocks.0.resnets.0.conv_shortcut.weight", // 320 → 320
		"down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.bias",
	} {
		assert.False(t, unet[name], name)
	}
}

// The order of the state dict: module registration order, which the
// sharding of save_pretrained follows.
func TestSpecOrder(t *testing.T) {
	names := func(comp string) []string {
		var out []string
		for _, s := range SD15TensorSpecs(comp, 1) {
			out = append(out, s.Name)
		}
		return out
	}
	unet := names(UNet)
	assert.Equal(t, []string{"conv_in.weight", "conv_in.bias", "time_embedding.linear_1.weight"}, unet[:3])
	assert.Equal(t, "down_blocks.0.attentions.0.norm.weight", unet[6])
	assert.Equal(t, []string{"conv_norm_out.weight", "conv_norm_out.bias", "conv_out.weight", "conv_out.bias"}, unet[len(unet)-4:])
	first := func(list []string, prefix string) int {
		return slices.IndexFunc(list, func(n string) bool { return strings.HasPrefix(n, prefix) })
	}
	// diffusers creates up_blocks (empty) before mid_block.
	assert.Less(t, first(unet, "down_blocks.3."), first(unet, "up_blocks.0."))
	assert.Less(t, first(unet, "up_blocks.3."), first(unet, "mid_block."))
	assert.Less(t, first(unet, "mid_block.attentions.0."), first(unet, "mid_block.resnets.0."))
	assert.Less(t, first(unet, "down_blocks.0.attentions.1."), first(unet, "down_blocks.0.resnets.0."))
	assert.Less(t, first(unet, "up_blocks.1.resnets.2."), first(unet, "up_blocks.1.upsamplers.0."))

	text := names(TextEncoder)
	assert.Equal(t, []string{
		"text_model.embeddings.position_ids", // the module's own buffer comes before its children
		"text_model.embeddings.token_embedding.weight",
		"text_model.embeddings.position_embedding.weight",
		"text_model.encoder.layers.0.self_attn.k_proj.weight",
		"text_model.encoder.layers.0.self_attn.k_proj.bias",
		"text_model.encoder.layers.0.self_attn.v_proj.weight",
	}, text[:6])
	assert.Equal(t, "text_model.final_layer_norm.bias", text[len(text)-1])

	vae := names(VAE)
	assert.Equal(t, "encoder.conv_in.weight", vae[0])
	assert.Less(t, first(vae, "decoder.up_blocks.3."), first(vae, "decoder.mid_block."))
	assert.Less(t, first(vae, "encoder.down_blocks.3."), first(vae, "encoder.mid_block."))
	assert.Equal(t, []string{"quant_conv.weight", "quant_conv.bias", "post_quant_conv.weight", "post_quant_conv.bias"}, vae[len(vae)-4:])

	sc := names(SafetyChecker)
	assert.Equal(t, []string{"concept_embeds", "special_care_embeds", "concept_embeds_weights", "special_care_embeds_weights",
		"vision_model.vision_model.embeddings.class_embedding", "vision_model.vision_model.embeddings.position_ids"}, sc[:6])
	assert.Equal(t, "visual_projection.weight", sc[len(sc)-1])
}

// sizeOnly is a Source with a size and no data, for PlanLayout.
type sizeOnly int64

func (s sizeOnly) Size() int64                             { return int64(s) }
func (s sizeOnly) CopyTo(context.Context, io.Writer) error { return nil }

// plannedSize is the size of the file our writer (the current safetensors
// layout: dtype descending then name, header padded to 8) writes for specs
// in dtype dt (F32 tensors converted to dt), with {"format":"pt"}.
func plannedSize(t *testing.T, specs []Spec, dt tensors.DType) int64 {
	t.Helper()
	wt := make([]tensors.WriteTensor, len(specs))
	for i, s := range specs {
		d := s.DType
		if d == tensors.F32 {
			d = dt
		}
		n := s.NumElements() * int64(d.Bits()/8)
		wt[i] = tensors.WriteTensor{Name: s.Name, DType: d, Shape: s.Shape, Data: sizeOnly(n)}
	}
	l, err := tensors.PlanLayout(wt, tensors.EnsureFormatPT(nil))
	require.NoError(t, err)
	return l.Size
}

// legacyWriterSize is the size of the file the safetensors writers before
// 0.3 wrote for specs (F32): data laid out by name only, an unpadded
// header, {"format":"pt"}.
func legacyWriterSize(specs []Spec) int64 {
	s := slices.Clone(specs)
	slices.SortFunc(s, func(a, b Spec) int { return strings.Compare(a.Name, b.Name) })
	var b strings.Builder
	b.WriteString(`{"__metadata__":{"format":"pt"}`)
	var off int64
	for _, t := range s {
		dims := make([]string, len(t.Shape))
		for i, d := range t.Shape {
			dims[i] = strconv.FormatInt(d, 10)
		}
		fmt.Fprintf(&b, `,%q:{"dtype":"%s","shape":[%s],"data_offsets":[%d,%d]}`, t.Name, t.DType, strings.Join(dims, ","), off, off+t.Size())
		off += t.Size()
	}
	b.WriteString("}")
	return 8 + int64(b.Len()) + off
}

// TestSpecsGiveRealFileSizes checks the names and shapes at scale 1 against
// the sizes of the real files: a file's size is 8 + its header (names,
// shapes and offsets) + its data (shapes), so an exact size is strong
// evidence that every name and shape is right.
//
// The fp16 files were written by a current safetensors (padded headers), as
// our writer does: all four match exactly. The F32 files of the repository
// are older (unpadded headers, data laid out by name, and a VAE with the
// deprecated attention names): the VAE matches exactly with
// LegacyVAENames, the non-EMA UNet (written later) matches our writer
// exactly, and the EMA UNet, text encoder and safety checker differ by a
// few bytes, which the digits of the data offsets explain: they depend on
// the data layout order, which that writer did not fix. Their data sizes
// (file − 8 − header) agree to within those bytes.
func TestSpecsGiveRealFileSizes(t *testing.T) {
	specs := func(c string) []Spec { return SD15TensorSpecs(c, 1) }
	for _, tc := range []struct {
		file string
		got  int64
	}{
		{"unet/diffusion_pytorch_model.fp16.safetensors", plannedSize(t, specs(UNet), tensors.F16)},
		{"text_encoder/model.fp16.safetensors", plannedSize(t, specs(TextEncoder), tensors.F16)},
		{"vae/diffusion_pytorch_model.fp16.safetensors", plannedSize(t, specs(VAE), tensors.F16)},
		{"safety_checker/model.fp16.safetensors", plannedSize(t, specs(SafetyChecker), tensors.F16)},
		{"unet/diffusion_pytorch_model.non_ema.safetensors", plannedSize(t, specs(UNet), tensors.F32)},
		{"vae/diffusion_pytorch_model.safetensors", legacyWriterSize(LegacyVAENames(specs(VAE)))},
	} {
		assert.Equal(t, realSizes[tc.file], tc.got, "%s: exact size", tc.file)
	}
	for _, tc := range []struct {
		file string
		got  int64
		diff int64 // real − computed
	}{
		{"unet/diffusion_pytorch_model.safetensors", plannedSize(t, specs(UNet), tensors.F32), 4},
		{"unet/diffusion_pytorch_model.safetensors", legacyWriterSize(specs(UNet)), 6},
		{"text_encoder/model.safetensors", plannedSize(t, specs(TextEncoder), tensors.F32), -6},
		{"text_encoder/model.safetensors", legacyWriterSize(specs(TextEncoder)), -5},
		{"safety_checker/model.safetensors", plannedSize(t, specs(SafetyChecker), tensors.F32), -2},
		{"safety_checker/model.safetensors", legacyWriterSize(specs(SafetyChecker)), -3},
		// The current names are 8 bytes shorter than the real file's.
		{"vae/diffusion_pytorch_model.safetensors", plannedSize(t, specs(VAE), tensors.F32), 8},
	} {
		assert.Equal(t, tc.diff, realSizes[tc.file]-tc.got, "%s: %d bytes computed", tc.file, tc.got)
	}
}

func TestScaleWidth(t *testing.T) {
	assert.Equal(t, int64(320), ScaleWidth(320, 1))
	assert.Equal(t, int64(49408), ScaleWidth(49408, 1))
	assert.Equal(t, int64(10), ScaleWidth(320, 0.001))
	assert.Equal(t, int64(40), ScaleWidth(1280, 0.001))
	assert.Equal(t, int64(24), ScaleWidth(768, 0.001))
	assert.Equal(t, int64(1562), ScaleWidth(49408, 0.001))
	assert.Equal(t, int64(16), ScaleWidth(16, 0.001), "small widths stay")
	assert.Equal(t, int64(1), ScaleWidth(320, 1e-9), "at least 1")
	assert.Equal(t, int64(640), ScaleWidth(320, 4))
	assert.False(t, ValidScale(0))
	assert.False(t, ValidScale(-1))
	assert.Nil(t, SD15TensorSpecs(UNet, 0))
	assert.Nil(t, SD15TensorSpecs("scheduler", 1))
}

// Scaling changes shapes, never names, order, dtypes or kinds, and keeps
// the shapes consistent with each other.
func TestSpecsScale(t *testing.T) {
	for _, comp := range WeightComponents {
		full := SD15TensorSpecs(comp, 1)
		fullBytes := DataBytes(full)
		for _, scale := range []float64{0.1, 0.001, 1e-6} {
			small := SD15TensorSpecs(comp, scale)
			require.Len(t, small, len(full))
			for i := range full {
				assert.Equal(t, full[i].Name, small[i].Name)
				assert.Equal(t, full[i].DType, small[i].DType)
				assert.Equal(t, full[i].Init, small[i].Init)
				require.Len(t, small[i].Shape, len(full[i].Shape), full[i].Name)
				for k, d := range small[i].Shape {
					assert.True(t, d >= 1 && d <= full[i].Shape[k], "%s at %g: %v", full[i].Name, scale, small[i].Shape)
				}
			}
			checkConsistent(t, comp, small, scale)
			ratio := float64(DataBytes(small)) / float64(fullBytes) / scale
			if scale >= 0.001 {
				assert.True(t, ratio > 0.7 && ratio < 1.6, "%s at %g: bytes scale by %.2f × scale", comp, scale, ratio)
			}
		}
	}
}

// checkConsistent checks that the shapes of a ResNet block and of an
// attention fit together, as they must for the model to run.
func checkConsistent(t *testing.T, comp string, specs []Spec, scale float64) {
	t.Helper()
	byName := map[string][]int64{}
	for _, s := range specs {
		byName[s.Name] = s.Shape
	}
	var cross int64
	for _, s := range SD15TensorSpecs(TextEncoder, scale) {
		if s.Name == "text_model.final_layer_norm.weight" {
			cross = s.Shape[0]
		}
	}
	for name, shape := range byName {
		if p, ok := strings.CutSuffix(name, ".conv1.weight"); ok {
			assert.Equal(t, byName[p+".norm1.weight"][0], shape[1], name)
			assert.Equal(t, byName[p+".conv2.weight"][1], shape[0], name)
			if sc, ok := byName[p+".conv_shortcut.weight"]; ok {
				assert.Equal(t, shape[1], sc[1], name)
			}
		}
		if p, ok := strings.CutSuffix(name, ".ff.net.0.proj.weight"); ok {
			assert.Equal(t, 2*byName[p+".ff.net.2.weight"][1], shape[0], name)
			assert.Equal(t, shape[1], byName[p+".attn1.to_q.weight"][1], name)
			assert.Equal(t, shape[1], byName[p+".attn2.to_k.weight"][0], name)
			// Cross-attention reads the text encoder's hidden states.
			assert.Equal(t, byName[p+".attn2.to_k.weight"][1], cross, name)
		}
	}
	if comp == UNet {
		// The skip connections: up block i's last resnet takes the output
		// of down block 3-i's input.
		assert.Equal(t, byName["up_blocks.3.resnets.2.conv1.weight"][1],
			byName["up_blocks.3.resnets.2.conv2.weight"][0]+byName["conv_in.weight"][0])
	}
}
