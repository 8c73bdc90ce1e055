package pipeline

import "strings"

// Role is what a component is to diffusers' loader, which decides how
// Modelpub treats its files.
type Role string

const (
	// RoleModel is a network with weights (ModelMixin, PreTrainedModel):
	// its weights are resharded, converted and validated.
	RoleModel Role = "model"
	// RoleScheduler is a SchedulerMixin: a config file only.
	RoleScheduler Role = "scheduler"
	// RoleTokenizer is a PreTrainedTokenizer(Fast): files carried as they are.
	RoleTokenizer Role = "tokenizer"
	// RoleProcessor is an image processor, feature extractor or processor
	// (FeatureExtractionMixin, ImageProcessingMixin, ProcessorMixin): files
	// carried as they are.
	RoleProcessor Role = "processor"
	// RoleOther is a class Modelpub does not know (custom code, guiders):
	// its folder is carried as it is.
	RoleOther Role = "other"
)

// knownLibraries are the top-level modules of diffusers' LOADABLE_CLASSES;
// a pipeline folder name of diffusers.pipelines (e.g. "stable_diffusion")
// also loads through diffusers.
var knownLibraries = map[string]bool{"diffusers": true, "transformers": true, "onnxruntime.training": true}

// RoleOf classifies a [library, class] pair the way diffusers' loader does
// through LOADABLE_CLASSES: by the base class, which Modelpub reads off the
// class name's conventional suffix, since every class of diffusers and
// transformers follows it (…Scheduler, …Tokenizer/…TokenizerFast,
// …ImageProcessor/…FeatureExtractor/…Processor). Anything else from a known
// library is a model.
func RoleOf(library, class string) Role {
	switch {
	case class == "":
		return RoleOther
	case strings.HasSuffix(class, "Scheduler") || strings.HasSuffix(class, "SchedulerFast"):
		return RoleScheduler
	case strings.HasSuffix(class, "Tokenizer") || strings.HasSuffix(class, "TokenizerFast"):
		return RoleTokenizer
	case strings.HasSuffix(class, "ImageProcessor") || strings.HasSuffix(class, "ImageProcessorFast") ||
		strings.HasSuffix(class, "FeatureExtractor") || strings.HasSuffix(class, "Processor"):
		return RoleProcessor
	case strings.HasSuffix(class, "Guidance") || strings.HasSuffix(class, "Guider"):
		return RoleOther
	case knownLibraries[library] || isPipelineModule(library):
		return RoleModel
	}
	return RoleOther
}

// isPipelineModule reports a library string that names a diffusers.pipelines
// subpackage, as _fetch_class_library_tuple writes for pipeline-specific
// classes such as ["stable_diffusion", "StableDiffusionSafetyChecker"].
func isPipelineModule(library string) bool {
	if library == "" || strings.ContainsAny(library, ". /") {
		return false
	}
	for _, r := range library {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

// weightBases are the weight file names diffusers and transformers load
// (diffusion_pytorch_model.*, model.*, pytorch_model.*).
var weightBases = map[string]bool{"diffusion_pytorch_model": true, "model": true, "pytorch_model": true}

// IsWeightsBase reports whether base is a weights file name diffusers or
// transformers loads ("diffusion_pytorch_model", "model", "pytorch_model"):
// a root-level "v1-5-pruned.safetensors" is a checkpoint, not weights.
func IsWeightsBase(base string) bool { return weightBases[base] }

// configFiles are the JSON files that configure a component; tokenizerFiles
// are carried with a tokenizer.
var configFiles = map[string]bool{
	"config.json": true, "scheduler_config.json": true, "preprocessor_config.json": true,
	"generation_config.json": true, "processor_config.json": true,
}

var tokenizerFiles = map[string]bool{
	"tokenizer_config.json": true, "special_tokens_map.json": true, "vocab.json": true, "merges.txt": true,
	"tokenizer.json": true, "spiece.model": true, "added_tokens.json": true, "vocab.txt": true,
	"chat_template.jinja": true, "tokenizer.model": true, "sentencepiece.bpe.model": true,
}

// otherFormat reports files of weight formats Modelpub carries untouched:
// Flax, ONNX, OpenVINO.
func otherFormat(name string) (string, bool) {
	switch {
	case strings.HasSuffix(name, ".msgpack"):
		return "flax", true
	case strings.HasSuffix(name, ".onnx"), strings.HasSuffix(name, ".onnx_data"), name == "weights.pb":
		return "onnx", true
	case strings.HasPrefix(name, "openvino_model."):
		return "openvino", true
	}
	return "", false
}
