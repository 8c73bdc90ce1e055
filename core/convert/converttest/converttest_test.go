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
