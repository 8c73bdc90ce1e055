package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/tensors"
)

// writePipeline writes a two-component pipeline: a UNet sharded in two
// files and a scheduler.
func writePipeline(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "model_index.json"), []byte(`{
  "_class_name": "StableDiffusionPipeline",
  "_diffusers_version": "0.30.0",
  "scheduler": ["diffusers", "PNDMScheduler"],
  "unet": ["diffusers", "UNet2DConditionModel"],
  "safety_checker": [null, null],
  "requires_safety_checker": false
}
`), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "scheduler"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "scheduler", "scheduler_config.json"), []byte(`{"_class_name": "PNDMScheduler"}`), 0o644))
	unet := filepath.Join(dir, "unet")
	require.NoError(t, os.MkdirAll(unet, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(unet, "config.json"), []byte(`{"_class_name": "UNet2DConditionModel"}`), 0o644))
	_, err := tensors.WriteSharded(context.Background(), unet, []tensors.WriteTensor{
		{Name: "conv_in.weight", DType: tensors.F32, Shape: []int64{4, 4}, Data: tensors.Bytes(make([]byte, 64))},
		{Name: "conv_in.bias", DType: tensors.F32, Shape: []int64{4}, Data: tensors.Bytes(make([]byte, 16))},
		{Name: "steps", DType: tensors.I64, Shape: []int64{2}, Data: tensors.Bytes(make([]byte, 16))},
	}, tensors.ShardedOptions{MaxShardSize: 64, Base: "diffusion_pytorch_model"})
	require.NoError(t, err)
	return dir
}

func TestInspectCommand(t *testing.T) {
	dir := writePipeline(t)
	var stdout, stderr bytes.Buffer
	require.Equal(t, ExitOK, Run([]string{"inspect", dir, "--tensors"}, &stdout, &stderr), stderr.String())
	out := stdout.String()
	assert.Contains(t, out, "StableDiffusionPipeline")
	assert.Contains(t, out, "unet  diffusers.UNet2DConditionModel  [model]")
	assert.Contains(t, out, "main weights, safetensors: 3 tensors, 22 parameters")
	assert.Contains(t, out, "diffusion_pytorch_model.safetensors.index.json")
	assert.Contains(t, out, "safety_checker  (not included: [null, null])")
	assert.Contains(t, out, "conv_in.weight")

	stdout.Reset()
	require.Equal(t, ExitOK, Run([]string{"inspect", "--json", dir}, &stdout, &stderr), stderr.String())
	var rep inspectReport
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &rep))
	assert.Equal(t, InspectSchemaVersion, rep.Schema)
	assert.Equal(t, "StableDiffusionPipeline", rep.Pipeline)
	require.Len(t, rep.Components, 3)
	var unet inspectComponent
	for _, c := range rep.Components {
		if c.Name == "unet" {
			unet = c
		}
	}
	require.Len(t, unet.Weights, 1)
	w := unet.Weights[0]
	assert.Equal(t, "diffusion_pytorch_model.safetensors.index.json", w.Index)
	assert.Equal(t, int64(22), w.Parameters)
	assert.Equal(t, map[string]int64{"F32": 80, "I64": 16}, w.DTypeBytes)
	where := map[string]string{}
	for _, sh := range w.Shards {
		for _, tn := range sh.Tensors {
			where[tn.Name] = sh.File
		}
	}
	assert.Equal(t, map[string]string{
		"conv_in.weight": "diffusion_pytorch_model-00001-of-00002.safetensors",
		"conv_in.bias":   "diffusion_pytorch_model-00002-of-00002.safetensors",
		"steps":          "diffusion_pytorch_model-00002-of-00002.safetensors",
	}, where)
}

func TestInspectCommandErrors(t *testing.T) {
	var stdout, stderr bytes.Buffer
	missing := filepath.Join(t.TempDir(), "nowhere")
	assert.Equal(t, ExitUsage, Run([]string{"inspect", missing}, &stdout, &stderr))
	assert.Contains(t, stderr.String(), "nowhere")
	stderr.Reset()
	assert.Equal(t, ExitUsage, Run([]string{"inspect"}, &stdout, &stderr))
	assert.Contains(t, stderr.String(), "usage: modelpub inspect")
}
