package converttest

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"modelpub/core/pipeline/pipelinetest"
)

// At scale 1 the SDXL specs give the real files' sizes: the safetensors
// sizes of stabilityai/stable-diffusion-xl-base-1.0 (from the LFS pointers
// of the shared fixture's SOURCES.md, F32 files) minus the tensor data
// leave a header of 60 to 200 bytes per tensor, as a real header has.
func TestSDXLSpecsMatchTheRealFiles(t *testing.T) {
	for _, tc := range []struct {
		comp     string
		size     int64
		tensors  int
		params   int64 // published, or 0
		hdrPerTn [2]int64
	}{
		{UNet, 10_270_077_736, 1680, 2_567_463_684, [2]int64{60, 200}},
		{TextEncoder2, 2_778_702_264, 517, 0, [2]int64{60, 200}},
		{TextEncoder, 492_265_168, 196, 123_060_480, [2]int64{60, 200}},
		{VAE, 334_643_268, 248, 83_653_863, [2]int64{60, 200}},
	} {
		specs := SDXLTensorSpecs(tc.comp, 1)
		assert.Len(t, specs, tc.tensors, tc.comp)
		if tc.params != 0 {
			assert.Equal(t, tc.params, pipelinetest.Parameters(specs), tc.comp)
		}
		header := tc.size - 8 - pipelinetest.DataBytes(specs)
		assert.Greater(t, header, tc.hdrPerTn[0]*int64(len(specs)), "%s: header of %d bytes", tc.comp, header)
		assert.Less(t, header, tc.hdrPerTn[1]*int64(len(specs)), "%s: header of %d bytes", tc.comp, header)
		seen := map[string]bool{}
		for _, s := range specs {
			assert.False(t, seen[s.Name], "%s twice", s.Name)
			seen[s.Name] = true
		}
	}
}

// At scale 1 the Flux specs have the published parameter counts of the
// FLUX.1 transformers: 11,901,408,320 for dev; schnell lacks the guidance
// embedder (256·3072 + 3072 + 3072·3072 + 3072 parameters).
func TestFluxSpecsMatchTheRealModels(t *testing.T) {
	dev := FluxTensorSpecs(true, 1)
	assert.Equal(t, int64(11_901_408_320), pipelinetest.Parameters(dev))
	assert.Len(t, dev, 1160) // 780 in the original layout: fused q/k/v, MLP in linear1
	schnell := FluxTensorSpecs(false, 1)
	assert.Equal(t, int64(11_901_408_320-(256*3072+3072+3072*3072+3072)), pipelinetest.Parameters(schnell))
}

// The SD 2.x specs have the names of SD 1.5's UNet (the same four levels;
// only widths differ) and the parameter counts of
// stabilityai/stable-diffusion-2-1's models: 865,910,724 in the UNet (its
// 3.46 GB float32 file) and 340,387,840 in the 23-layer text encoder
// (1.36 GB).
func TestSD2SpecsMatchTheRealModels(t *testing.T) {
	params := func(specs []pipelinetest.Spec) int64 {
		var n int64
		for _, s := range specs {
			n += NumElements(s.Shape)
		}
		return n
	}
	assert.Equal(t, int64(865_910_724), params(SD2TensorSpecs(UNet, 1)))
	assert.Equal(t, int64(340_387_840), params(SD2TensorSpecs(TextEncoder, 1)))
	var sd15, sd2 []string
	for _, s := range pipelinetest.SD15TensorSpecs(pipelinetest.UNet, 1) {
		sd15 = append(sd15, s.Name)
	}
	for _, s := range SD2TensorSpecs(UNet, 1) {
		sd2 = append(sd2, s.Name)
	}
	assert.ElementsMatch(t, sd15, sd2)
	for _, s := range SD2TensorSpecs(UNet, Scale) {
		if s.Name == "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight" {
			assert.Equal(t, int64(SD2CrossWidth), s.Shape[1], "kept at full width: detection reads it")
		}
	}
}

// The SD 3 medium specs have the published parameter count of
// stabilityai/stable-diffusion-3-medium's transformer, 2,028,328,000,
// beside its 192² × 1536 position table; the mapping covers every tensor
// once.
func TestSD3SpecsMatchTheRealModel(t *testing.T) {
	var n int64
	for _, s := range SD3TensorSpecs(SD3Medium, 1) {
		if s.Name != "pos_embed.pos_embed" {
			n += NumElements(s.Shape)
		}
	}
	assert.Equal(t, int64(2_028_328_000), n)
	for _, a := range []SD3Arch{SD3Medium, SD35Large, SD35Medium} {
		seen := map[string]bool{}
		for _, r := range SD3Mapping(a, "") {
			assert.False(t, seen[r.Diffusers], "%s twice", r.Diffusers)
			seen[r.Diffusers] = true
		}
		for _, s := range SD3TensorSpecs(a, Scale) {
			assert.True(t, seen[s.Name], "%s is mapped", s.Name)
		}
		assert.Len(t, seen, len(SD3TensorSpecs(a, Scale)))
	}
}
