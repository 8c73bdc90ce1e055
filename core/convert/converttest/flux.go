package converttest

import (
	"fmt"

	"modelpub/core/pipeline/pipelinetest"
)

// Transformer is the Flux transformer's component name.
const Transformer = "transformer"

// FluxTensorSpecs returns the state dict of a FLUX.1 transformer in
// diffusers' layout (FluxTransformer2DModel: dev with its guidance
// embedder, schnell without), widths scaled as pipelinetest.ScaleWidth
// scales them. It is written from the published architecture (19 double
// and 38 single blocks of width 3072, 24 heads of 128, MLP ratio 4, 64
// input channels, T5 embeddings of 4096, CLIP pooled embeddings of 768),
// independently of core/convert; at scale 1 the parameter counts are the
// real models' (converttest_test.go).
func FluxTensorSpecs(guidance bool, scale float64) []pipelinetest.Spec {
	b := &xlBuilder{scale: scale}
	d, hd := b.w(3072), b.w(128)
	b.linear("time_text_embed.timestep_embedder.linear_1", d, b.w(256), true)
	b.linear("time_text_embed.timestep_embedder.linear_2", d, d, true)
	if guidance {
		b.linear("time_text_embed.guidance_embedder.linear_1", d, b.w(256), true)
		b.linear("time_text_embed.guidance_embedder.linear_2", d, d, true)
	}
	b.linear("time_text_embed.text_embedder.linear_1", d, b.w(768), true)
	b.linear("time_text_embed.text_embedder.linear_2", d, d, true)
	b.linear("context_embedder", d, b.w(4096), true)
	b.linear("x_embedder", d, 64, true)
	for i := range 19 {
		p := fmt.Sprintf("transformer_blocks.%d.", i)
		b.linear(p+"norm1.linear", 6*d, d, true)
		b.linear(p+"norm1_context.linear", 6*d, d, true)
		b.add(p+"attn.norm_q.weight", hd)
		b.add(p+"attn.norm_k.weight", hd)
		for _, m := range []string{"to_q", "to_k", "to_v", "to_out.0"} {
			b.linear(p+"attn."+m, d, d, true)
		}
		b.add(p+"attn.norm_added_q.weight", hd)
		b.add(p+"attn.norm_added_k.weight", hd)
		for _, m := range []string{"add_q_proj", "add_k_proj", "add_v_proj", "to_add_out"} {
			b.linear(p+"attn."+m, d, d, true)
		}
		for _, ff := range []string{"ff", "ff_context"} {
			b.linear(p+ff+".net.0.proj", 4*d, d, true)
			b.linear(p+ff+".net.2", d, 4*d, true)
		}
	}
	for i := range 38 {
		p := fmt.Sprintf("single_transformer_blocks.%d.", i)
		b.linear(p+"norm.linear", 3*d, d, true)
		b.linear(p+"proj_mlp", 4*d, d, true)
		b.linear(p+"proj_out", d, 5*d, true)
		b.add(p+"attn.norm_q.weight", hd)
		b.add(p+"attn.norm_k.weight", hd)
		for _, m := range []string{"to_q", "to_k", "to_v"} {
			b.linear(p+"attn."+m, d, d, true)
		}
	}
	b.linear("norm_out.linear", 2*d, d, true)
	b.linear("proj_out", 64, d, true)
	return b.specs
}
