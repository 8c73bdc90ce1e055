package card

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/pipeline"
	"modelpub/core/pipeline/pipelinetest"
)

func openSD15(t *testing.T, opts pipelinetest.Options) *pipeline.Pipeline {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "sd15")
	opts.Scale, opts.Seed = 0.001, 1
	_, err := pipelinetest.WriteSD15(context.Background(), dir, opts)
	require.NoError(t, err)
	p, err := pipeline.Open(context.Background(), dir)
	require.NoError(t, err)
	return p
}

func TestGenerateGolden(t *testing.T) {
	p := openSD15(t, pipelinetest.Options{FP16Variant: []string{pipelinetest.UNet, pipelinetest.TextEncoder, pipelinetest.VAE}})
	c := Generate(p, GenerateOptions{RepoID: "someone/sd15-fp16", License: "creativeml-openrail-m",
		BaseModel: "stable-diffusion-v1-5/stable-diffusion-v1-5"})
	out := mustBytes(t, c)
	golden(t, "generate-sd15.golden", out)

	assert.Equal(t, Metadata{LibraryName: "diffusers", PipelineTag: "text-to-image", License: "creativeml-openrail-m",
		BaseModel: []string{"stable-diffusion-v1-5/stable-diffusion-v1-5"},
		Tags:      []string{"diffusers", "safetensors", "StableDiffusionPipeline", "text-to-image"}}, c.Metadata())
	assert.Equal(t, []string{"base_model", "library_name", "license", "pipeline_tag", "tags"}, c.Keys())
	assert.Empty(t, c.Validate())
	assert.Empty(t, c.Warnings())
	assert.Contains(t, c.Body(), "pipe = DiffusionPipeline.from_pretrained(\"someone/sd15-fp16\", variant=\"fp16\", torch_dtype=torch.float16)\n")

	again := Generate(p, GenerateOptions{RepoID: "someone/sd15-fp16", License: "creativeml-openrail-m",
		BaseModel: "stable-diffusion-v1-5/stable-diffusion-v1-5"})
	assert.Equal(t, string(out), string(mustBytes(t, again)), "deterministic")
	back, err := Parse(out)
	require.NoError(t, err)
	assert.Equal(t, c.Metadata(), back.Metadata())
	assert.Equal(t, c.Body(), back.Body())
}

func TestGenerateWithoutVariant(t *testing.T) {
	p := openSD15(t, pipelinetest.Options{})
	c := Generate(p, GenerateOptions{})
	m := c.Metadata()
	assert.Equal(t, "", m.License)
	assert.Nil(t, m.BaseModel)
	assert.Equal(t, []string{"library_name", "pipeline_tag", "tags"}, c.Keys())
	body := c.Body()
	assert.Contains(t, body, "\n# sd15\n")
	assert.Contains(t, body, "```python\nfrom diffusers import DiffusionPipeline\n\npipe = DiffusionPipeline.from_pretrained(\"<your-namespace>/sd15\")\n```\n")
	assert.NotContains(t, body, "import torch")
	assert.NotContains(t, body, "variant")
	assert.Contains(t, body, "| main | float32 |")
	assert.Contains(t, body, "\nPublished with Modelpub.\n")
}

func TestGeneratePartialVariant(t *testing.T) {
	p := openSD15(t, pipelinetest.Options{FP16Variant: []string{pipelinetest.UNet}})
	body := Generate(p, GenerateOptions{RepoID: "a/b", License: "other", LicenseName: "mine"}).Body()
	assert.Contains(t, body, "| `fp16` variant | float16 |")
	assert.Contains(t, body, "| unet |\n", "the components that have it")
	assert.Contains(t, body, `variant="fp16"`)
}

func TestGenerateSingleModel(t *testing.T) {
	p := openSD15(t, pipelinetest.Options{FP16Variant: []string{pipelinetest.UNet}})
	unet, err := pipeline.Open(context.Background(), filepath.Join(p.Dir, "unet"))
	require.NoError(t, err)
	require.Nil(t, unet.Index)
	c := Generate(unet, GenerateOptions{RepoID: "someone/my-unet"})
	assert.Equal(t, Metadata{LibraryName: "diffusers", Tags: []string{"diffusers", "safetensors", "UNet2DConditionModel"}}, c.Metadata())
	body := c.Body()
	assert.Contains(t, body, "A `UNet2DConditionModel` model in the [Diffusers](https://github.com/huggingface/diffusers) format, with 853.5K parameters.")
	assert.Contains(t, body, "| `my-unet` | `UNet2DConditionModel` | 853.5K |")
	assert.Contains(t, body, "from diffusers import UNet2DConditionModel\n\nmodel = UNet2DConditionModel.from_pretrained(\"someone/my-unet\", variant=\"fp16\", torch_dtype=torch.float16)\n")
}

// TestGenerateFromStructs covers what pipelinetest does not write: bf16
// variants, transformers models, half-precision main weights, custom
// pipelines.
func TestGenerateFromStructs(t *testing.T) {
	set := func(variant, dtype string, bytes int64) *pipeline.WeightSet {
		return &pipeline.WeightSet{Base: "model", Variant: variant, Format: "safetensors", Parameters: 123_060_480,
			DataBytes: bytes, DTypeBytes: map[string]int64{dtype: bytes}}
	}
	model := func(weights ...*pipeline.WeightSet) *pipeline.Pipeline {
		return &pipeline.Pipeline{Dir: "/models/clip-text", Components: []*pipeline.Component{{Library: "transformers",
			Class: "CLIPTextModel", Role: pipeline.RoleModel, Weights: weights}}}
	}

	c := Generate(model(set("", "F32", 492_241_920), set("bf16", "BF16", 246_120_960)), GenerateOptions{})
	assert.Equal(t, Metadata{LibraryName: "transformers", Tags: []string{"transformers", "safetensors", "CLIPTextModel"}}, c.Metadata())
	body := c.Body()
	assert.Contains(t, body, "| `bf16` variant | bfloat16 | 246 MB | clip-text |")
	assert.Contains(t, body, "import torch\nfrom transformers import CLIPTextModel\n\nmodel = CLIPTextModel.from_pretrained(\"<your-namespace>/clip-text\", variant=\"bf16\", torch_dtype=torch.bfloat16)\n")

	body = Generate(model(set("", "F16", 246_120_960)), GenerateOptions{RepoID: "x/y"}).Body()
	assert.Contains(t, body, "model = CLIPTextModel.from_pretrained(\"x/y\", torch_dtype=torch.float16)\n", "half-precision main weights")

	body = Generate(model(set("", "F32", 8), set("fp16", "F16", 4), set("bf16", "BF16", 4)), GenerateOptions{RepoID: "x/y"}).Body()
	assert.Contains(t, body, `model = CLIPTextModel.from_pretrained("x/y", variant="fp16", torch_dtype=torch.float16)`+"\n"+
		`# or, in bfloat16: CLIPTextModel.from_pretrained("x/y", variant="bf16", torch_dtype=torch.bfloat16)`+"\n")

	custom := &pipeline.Pipeline{Dir: "/x/custom", Index: &pipeline.ModelIndex{ClassName: "MyPipeline", CustomModule: "pipeline"},
		Components: []*pipeline.Component{{Name: "unet", Library: "diffusers", Class: "UNet2DModel", Role: pipeline.RoleModel,
			Weights: []*pipeline.WeightSet{{Base: "diffusion_pytorch_model", Format: "bin", Parameters: 10, DataBytes: 40, DTypeBytes: map[string]int64{"F32": 40}}}}}}
	c = Generate(custom, GenerateOptions{RepoID: "x/y"})
	assert.Equal(t, Metadata{LibraryName: "diffusers", Tags: []string{"diffusers", "MyPipeline"}}, c.Metadata(), "no safetensors, no task")
	assert.Contains(t, c.Body(), `pipe = DiffusionPipeline.from_pretrained("x/y", trust_remote_code=True)`)
}

// A variant a save is about to add is described as the saved folder will
// describe it: the same Weights table and loading snippet.
func TestGeneratePlannedVariant(t *testing.T) {
	ctx := context.Background()
	src := openSD15(t, pipelinetest.Options{})
	for _, v := range []string{"fp16", "bf16"} {
		t.Run(v, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "saved")
			_, err := pipeline.Save(ctx, src, dst, pipeline.SaveOptions{Variant: v})
			require.NoError(t, err)
			saved, err := pipeline.Open(ctx, dst)
			require.NoError(t, err)

			section := func(body, from, to string) string {
				i := strings.Index(body, from)
				require.GreaterOrEqual(t, i, 0, "%q in\n%s", from, body)
				j := strings.Index(body[i:], to)
				require.Greater(t, j, 0)
				return body[i : i+j]
			}
			planned := Generate(src, GenerateOptions{RepoID: "a/b", Variant: v}).Body()
			actual := Generate(saved, GenerateOptions{RepoID: "a/b"}).Body()
			assert.Equal(t, section(actual, "## Weights", "## How"), section(planned, "## Weights", "## How"))
			assert.Equal(t, section(actual, "```python", "\n```"), section(planned, "```python", "\n```"))
			assert.Contains(t, planned, `variant="`+v+`"`)
		})
	}
	assert.NotContains(t, Generate(src, GenerateOptions{}).Body(), "variant", "no variant asked, none described")
}

// FollowRepo puts the target repo id where a card generated without one
// has the placeholder, in the loading snippet (the bf16 line too) and in
// text the user wrote around it, and leaves everything else alone.
func TestFollowRepo(t *testing.T) {
	p := &pipeline.Pipeline{Dir: "/models/clip-text", Components: []*pipeline.Component{{Library: "transformers",
		Class: "CLIPTextModel", Role: pipeline.RoleModel, Weights: []*pipeline.WeightSet{
			{Base: "model", Format: "safetensors", Parameters: 2, DataBytes: 8, DTypeBytes: map[string]int64{"F32": 8}},
			{Base: "model", Variant: "fp16", Format: "safetensors", Parameters: 2, DataBytes: 4, DTypeBytes: map[string]int64{"F16": 4}},
			{Base: "model", Variant: "bf16", Format: "safetensors", Parameters: 2, DataBytes: 4, DTypeBytes: map[string]int64{"BF16": 4}},
		}}}}
	generated := Generate(p, GenerateOptions{}).Body()
	require.Contains(t, generated, PlaceholderNamespace+"/clip-text")
	snippet := func(body string) string {
		i := strings.Index(body, "```python")
		require.GreaterOrEqual(t, i, 0)
		return body[i:]
	}
	odd := &pipeline.Pipeline{Dir: `/models/my "odd" model`, Components: p.Components}

	tests := []struct {
		name, body, repo, want string
	}{
		{"generated", generated, "alice/clip", snippet(Generate(p, GenerateOptions{RepoID: "alice/clip"}).Body())},
		{"a folder name with quotes and a space", Generate(odd, GenerateOptions{}).Body(), "alice/odd",
			snippet(Generate(odd, GenerateOptions{RepoID: "alice/odd"}).Body())},
		{"edited around the snippet", "# Mine\n\nLoad `<your-namespace>/clip-text` with\n" +
			"```py\nm = M.from_pretrained('<your-namespace>/clip-text')\n```\n", "alice/clip",
			"# Mine\n\nLoad `alice/clip` with\n```py\nm = M.from_pretrained('alice/clip')\n```\n"},
		{"snippet removed", "# Mine\n\nNo code here.\n", "alice/clip", "# Mine\n\nNo code here.\n"},
		{"another repo named", "from_pretrained(\"someone/else\")\n", "alice/clip", "from_pretrained(\"someone/else\")\n"},
		{"no target yet", generated, "", snippet(generated)},
		{"the namespace alone", "<your-namespace> is yours\n", "alice/clip", "<your-namespace> is yours\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := FollowRepo(tt.body, tt.repo)
			if strings.Contains(tt.want, "```python") {
				got = snippet(got)
			}
			assert.Equal(t, tt.want, got)
			if tt.repo != "" {
				assert.NotContains(t, got, PlaceholderNamespace+"/")
			}
		})
	}
}
