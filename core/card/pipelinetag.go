package card

import (
	"slices"
	"strings"
)

// The Hub tasks a diffusers pipeline can have as pipeline_tag.
const (
	TextToImage   = "text-to-image"
	ImageToImage  = "image-to-image"
	TextToVideo   = "text-to-video"
	ImageToVideo  = "image-to-video"
	VideoToVideo  = "video-to-video"
	TextToAudio   = "text-to-audio"
	Unconditional = "unconditional-image-generation"
)

// pipelineTags maps diffusers pipeline classes to the Hub task. Classes not
// listed fall back on the name rules in tagRules, then on tagFamilies.
//
// The Hub has no inpainting task: inpainting is a subtask
// ("image-inpainting") of image-to-image in huggingface.js
// packages/tasks/src/pipelines.ts, so inpainting pipelines are
// image-to-image. Image editing pipelines (InstructPix2Pix, Kontext, Qwen
// image edit) are image-to-image too, the tag the Hub's diffusers models
// of that kind carry.
var pipelineTags = map[string]string{
	// text-to-image
	"StableDiffusionPipeline":               TextToImage,
	"StableDiffusionXLPipeline":             TextToImage,
	"StableDiffusion3Pipeline":              TextToImage,
	"FluxPipeline":                          TextToImage,
	"PixArtAlphaPipeline":                   TextToImage,
	"PixArtSigmaPipeline":                   TextToImage,
	"SanaPipeline":                          TextToImage,
	"AuraFlowPipeline":                      TextToImage,
	"HunyuanDiTPipeline":                    TextToImage,
	"KolorsPipeline":                        TextToImage,
	"LuminaText2ImgPipeline":                TextToImage,
	"Lumina2Pipeline":                       TextToImage,
	"CogView3PlusPipeline":                  TextToImage,
	"CogView4Pipeline":                      TextToImage,
	"HiDreamImagePipeline":                  TextToImage,
	"QwenImagePipeline":                     TextToImage,
	"ChromaPipeline":                        TextToImage,
	"KandinskyPipeline":                     TextToImage,
	"KandinskyCombinedPipeline":             TextToImage,
	"KandinskyV22Pipeline":                  TextToImage,
	"KandinskyV22CombinedPipeline":          TextToImage,
	"Kandinsky3Pipeline":                    TextToImage,
	"IFPipeline":                            TextToImage,
	"WuerstchenCombinedPipeline":            TextToImage,
	"StableCascadeCombinedPipeline":         TextToImage,
	"AmusedPipeline":                        TextToImage,
	"LatentConsistencyModelPipeline":        TextToImage,
	"LDMTextToImagePipeline":                TextToImage,
	"UnCLIPPipeline":                        TextToImage,
	"StableUnCLIPPipeline":                  TextToImage,
	"VersatileDiffusionTextToImagePipeline": TextToImage,
	"AltDiffusionPipeline":                  TextToImage,
	"StableDiffusionXLControlNetPipeline":   TextToImage,
	"StableDiffusionControlNetPipeline":     TextToImage,
	// image-to-image
	"StableDiffusionImg2ImgPipeline":           ImageToImage,
	"StableDiffusionXLImg2ImgPipeline":         ImageToImage,
	"StableDiffusionInpaintPipeline":           ImageToImage,
	"StableDiffusionXLInpaintPipeline":         ImageToImage,
	"StableDiffusionInstructPix2PixPipeline":   ImageToImage,
	"StableDiffusionXLInstructPix2PixPipeline": ImageToImage,
	"StableDiffusionUpscalePipeline":           ImageToImage,
	"StableDiffusionLatentUpscalePipeline":     ImageToImage,
	"StableDiffusionDepth2ImgPipeline":         ImageToImage,
	"StableDiffusionImageVariationPipeline":    ImageToImage,
	"StableUnCLIPImg2ImgPipeline":              ImageToImage,
	"PaintByExamplePipeline":                   ImageToImage,
	"IFImg2ImgPipeline":                        ImageToImage,
	"IFSuperResolutionPipeline":                ImageToImage,
	"FluxKontextPipeline":                      ImageToImage,
	"FluxFillPipeline":                         ImageToImage,
	"QwenImageEditPipeline":                    ImageToImage,
	"StableDiffusion3Img2ImgPipeline":          ImageToImage,
	"LEditsPPPipelineStableDiffusion":          ImageToImage,
	"StableDiffusionPix2PixZeroPipeline":       ImageToImage,
	"KandinskyV22PriorEmb2EmbPipeline":         ImageToImage,
	"LDMSuperResolutionPipeline":               ImageToImage,
	// unconditional image generation
	"DDPMPipeline":             Unconditional,
	"DDIMPipeline":             Unconditional,
	"PNDMPipeline":             Unconditional,
	"LDMPipeline":              Unconditional,
	"ScoreSdeVePipeline":       Unconditional,
	"KarrasVePipeline":         Unconditional,
	"ConsistencyModelPipeline": Unconditional,
	// text-to-video
	"TextToVideoSDPipeline":       TextToVideo,
	"TextToVideoZeroPipeline":     TextToVideo,
	"TextToVideoZeroSDXLPipeline": TextToVideo,
	"AnimateDiffPipeline":         TextToVideo,
	"AnimateDiffSDXLPipeline":     TextToVideo,
	"CogVideoXPipeline":           TextToVideo,
	"LTXPipeline":                 TextToVideo,
	"HunyuanVideoPipeline":        TextToVideo,
	"MochiPipeline":               TextToVideo,
	"WanPipeline":                 TextToVideo,
	"LattePipeline":               TextToVideo,
	"AllegroPipeline":             TextToVideo,
	"SkyReelsV2Pipeline":          TextToVideo,
	// image-to-video
	"StableVideoDiffusionPipeline":     ImageToVideo,
	"I2VGenXLPipeline":                 ImageToVideo,
	"CogVideoXImageToVideoPipeline":    ImageToVideo,
	"LTXImageToVideoPipeline":          ImageToVideo,
	"WanImageToVideoPipeline":          ImageToVideo,
	"HunyuanVideoImageToVideoPipeline": ImageToVideo,
	"HunyuanVideoFramepackPipeline":    ImageToVideo,
	"PIAPipeline":                      ImageToVideo,
	// video-to-video (a Hub task since huggingface.js #1469, May 2025)
	"VideoToVideoSDPipeline":          VideoToVideo,
	"AnimateDiffVideoToVideoPipeline": VideoToVideo,
	"CogVideoXVideoToVideoPipeline":   VideoToVideo,
	"WanVideoToVideoPipeline":         VideoToVideo,
	// text-to-audio
	"AudioLDMPipeline":    TextToAudio,
	"AudioLDM2Pipeline":   TextToAudio,
	"MusicLDMPipeline":    TextToAudio,
	"StableAudioPipeline": TextToAudio,
}

// tagRules guess the task of a class the table does not list from parts
// of its name, first match wins: the output kind is checked before the
// input kind, so "CogVideoXImageToVideoPipeline" is image-to-video, not
// image-to-image.
var tagRules = []struct {
	parts []string
	tag   string
}{
	{[]string{"VideoToVideo", "Video2Video", "V2V"}, VideoToVideo},
	{[]string{"ImageToVideo", "Image2Video", "Img2Vid", "I2V"}, ImageToVideo},
	{[]string{"TextToVideo", "Text2Video", "T2V", "Video", "AnimateDiff"}, TextToVideo},
	{[]string{"Audio", "Music"}, TextToAudio},
	{[]string{"Inpaint", "Img2Img", "ImageToImage", "Image2Image", "Pix2Pix", "Upscale", "SuperResolution",
		"Depth2Img", "ImageVariation", "Kontext", "Edit", "Fill", "Redux"}, ImageToImage},
	{[]string{"TextToImage", "Text2Img", "Txt2Img"}, TextToImage},
}

// tagFamilies are text-to-image model families: a pipeline class starting
// with one of them (and matching no rule) is text-to-image, as
// StableDiffusionXLControlNetUnionPipeline or FluxControlPipeline are.
var tagFamilies = []string{"StableDiffusion", "Flux", "PixArt", "Sana", "AuraFlow", "HunyuanDiT", "Kolors", "Lumina",
	"CogView", "HiDream", "QwenImage", "Chroma", "Kandinsky", "IF", "Wuerstchen", "StableCascade", "Amused",
	"LatentConsistencyModel", "SD3", "SDXL", "AltDiffusion"}

// PipelineTag returns the Hub task (pipeline_tag) of a diffusers pipeline
// class, or "" when Modelpub does not know it: from a table of diffusers'
// pipelines, else from the name ("…Img2ImgPipeline", "…InpaintPipeline" →
// image-to-image, "…ImageToVideoPipeline" → image-to-video, a name with
// "Video" → text-to-video, "Audio"/"Music" → text-to-audio), else from the
// model family (StableDiffusion…, Flux…, PixArt… → text-to-image).
func PipelineTag(pipelineClass string) string {
	if tag, ok := pipelineTags[pipelineClass]; ok {
		return tag
	}
	if !strings.Contains(pipelineClass, "Pipeline") {
		return ""
	}
	for _, r := range tagRules {
		if slices.ContainsFunc(r.parts, func(p string) bool { return strings.Contains(pipelineClass, p) }) {
			return r.tag
		}
	}
	for _, f := range tagFamilies {
		if strings.HasPrefix(pipelineClass, f) {
			return TextToImage
		}
	}
	return ""
}

// hubTasks are the Hub's pipeline_tag values: PIPELINE_DATA in
// huggingface.js packages/tasks/src/pipelines.ts (commit 0057f40), plus
// video-to-video (huggingface.js #1469) and image-text-to-image,
// image-text-to-video, added since.
var hubTasks = []string{
	"biology", "text-classification", "token-classification", "table-question-answering", "question-answering",
	"zero-shot-classification", "translation", "summarization", "feature-extraction", "text-generation",
	"text2text-generation", "fill-mask", "sentence-similarity", "text-to-speech", "text-to-audio",
	"automatic-speech-recognition", "audio-to-audio", "audio-classification", "audio-text-to-text",
	"voice-activity-detection", "depth-estimation", "image-classification", "object-detection",
	"image-segmentation", "text-to-image", "image-to-text", "image-to-image", "image-to-video",
	"unconditional-image-generation", "video-classification", "reinforcement-learning", "robotics",
	"tabular-classification", "tabular-regression", "tabular-to-text", "table-to-text", "multiple-choice",
	"text-ranking", "text-retrieval", "time-series-forecasting", "text-to-video", "image-text-to-text",
	"visual-question-answering", "document-question-answering", "zero-shot-image-classification", "graph-ml",
	"mask-generation", "zero-shot-object-detection", "text-to-3d", "image-to-3d", "image-feature-extraction",
	"video-text-to-text", "keypoint-detection", "visual-document-retrieval", "any-to-any", "other",
	"video-to-video", "image-text-to-image", "image-text-to-video",
}

// IsTask reports a pipeline_tag value the Hub knows.
func IsTask(tag string) bool { return slices.Contains(hubTasks, tag) }

// Tasks returns the Hub's pipeline_tag values.
func Tasks() []string { return slices.Clone(hubTasks) }
