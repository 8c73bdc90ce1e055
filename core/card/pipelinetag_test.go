package card

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestPipelineTag(t *testing.T) {
	tests := []struct{ class, want string }{
		{"StableDiffusionPipeline", "text-to-image"},
		{"StableDiffusionXLPipeline", "text-to-image"},
		{"StableDiffusion3Pipeline", "text-to-image"},
		{"FluxPipeline", "text-to-image"},
		{"PixArtSigmaPipeline", "text-to-image"},
		{"PixArtAlphaPipeline", "text-to-image"},
		{"KandinskyV22CombinedPipeline", "text-to-image"},
		{"StableDiffusionImg2ImgPipeline", "image-to-image"},
		{"StableDiffusionXLImg2ImgPipeline", "image-to-image"},
		{"StableDiffusionInpaintPipeline", "image-to-image"},
		{"StableDiffusionXLInpaintPipeline", "image-to-image"},
		{"StableDiffusionUpscalePipeline", "image-to-image"},
		{"FluxKontextPipeline", "image-to-image"},
		{"TextToVideoSDPipeline", "text-to-video"},
		{"AnimateDiffPipeline", "text-to-video"},
		{"CogVideoXPipeline", "text-to-video"},
		{"WanPipeline", "text-to-video"},
		{"HunyuanVideoPipeline", "text-to-video"},
		{"StableVideoDiffusionPipeline", "image-to-video"},
		{"I2VGenXLPipeline", "image-to-video"},
		{"CogVideoXImageToVideoPipeline", "image-to-video"},
		{"AnimateDiffVideoToVideoPipeline", "video-to-video"},
		{"AudioLDMPipeline", "text-to-audio"},
		{"AudioLDM2Pipeline", "text-to-audio"},
		{"MusicLDMPipeline", "text-to-audio"},
		{"StableAudioPipeline", "text-to-audio"},
		{"DDPMPipeline", "unconditional-image-generation"},
		// Not in the table: the name rules.
		{"FluxImg2ImgPipeline", "image-to-image"},
		{"PixArtSigmaInpaintPipeline", "image-to-image"},
		{"StableDiffusionControlNetImg2ImgPipeline", "image-to-image"},
		{"StableDiffusionXLControlNetInpaintPipeline", "image-to-image"},
		{"MagicImageToVideoPipeline", "image-to-video"},
		{"NewVideoPipeline", "text-to-video"},
		{"SomeMusicPipeline", "text-to-audio"},
		{"FooText2ImgPipeline", "text-to-image"},
		// The families.
		{"StableDiffusionXLControlNetUnionPipeline", "text-to-image"},
		{"FluxControlPipeline", "text-to-image"},
		{"PixArtFuturePipeline", "text-to-image"},
		// Unknown.
		{"", ""},
		{"MyCustomPipeline", ""},
		{"UNet2DConditionModel", ""},
		{"DanceDiffusionPipeline", ""},
	}
	for _, tt := range tests {
		t.Run(tt.class, func(t *testing.T) {
			got := PipelineTag(tt.class)
			assert.Equal(t, tt.want, got, "PipelineTag(%q)", tt.class)
			if got != "" {
				assert.True(t, IsTask(got), "%q is a Hub task", got)
			}
		})
	}
}

func TestPipelineTagTableIsHubTasks(t *testing.T) {
	for class, tag := range pipelineTags {
		assert.True(t, IsTask(tag), "%s → %q", class, tag)
	}
	for _, r := range tagRules {
		assert.True(t, IsTask(r.tag), r.tag)
	}
	assert.True(t, IsTask("text-to-image"))
	assert.False(t, IsTask("inpainting"), "the Hub has no inpainting task")
	assert.Contains(t, Tasks(), "image-to-video")
}
