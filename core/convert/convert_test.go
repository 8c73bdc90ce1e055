package convert

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/convert/converttest"
	"modelpub/core/pipeline"
	"modelpub/core/pipeline/pipelinetest"
	"modelpub/core/tensors"
	"modelpub/core/torchbin"
)

// componentFiles maps the component names of the mapping tables to the
// main weights files of the output.
var componentFiles = map[string]string{
	converttest.UNet:         "unet/diffusion_pytorch_model.safetensors",
	converttest.VAE:          "vae/diffusion_pytorch_model.safetensors",
	converttest.TextEncoder:  "text_encoder/model.safetensors",
	converttest.TextEncoder2: "text_encoder_2/model.safetensors",
	converttest.Transformer:  "diffusion_pytorch_model.safetensors", // a single model folder
}

func fileHash(t testing.TB, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return sha256.Sum256(b)
}

// checkMapped checks every output tensor of an SD 1.5 conversion (see
// checkModel).
func checkMapped(t *testing.T, out string, rows []converttest.Row, src map[string]converttest.Tensor, want tensors.DType, inChannels int64) {
	t.Helper()
	checkModel(t, out, converttest.SD15Model().Specs, rows, src, want, inChannels)
}

// checkModel checks every output tensor against the mapping table: the
// names of each component exactly the table's, each tensor's shape that of
// the real diffusers model (specs), its dtype want (or the checkpoint's
// when 0), its bytes what diffusers makes of the checkpoint's bytes of the
// key it maps from (converttest.Expected: the same bytes, a third of the
// rows, the transpose; converted to want where it differs).
func checkModel(t *testing.T, out string, shapes map[string]map[string]pipelinetest.Spec, rows []converttest.Row, src map[string]converttest.Tensor, want tensors.DType, inChannels int64) {
	t.Helper()
	for comp, file := range componentFiles {
		if !slices.ContainsFunc(rows, func(r converttest.Row) bool { return r.Component == comp }) {
			continue
		}
		f, err := tensors.Open(filepath.Join(out, file))
		require.NoError(t, err)
		var got, expected []string
		for _, ti := range f.Header.Tensors {
			got = append(got, ti.Name)
		}
		for _, r := range rows {
			if r.Component != comp {
				continue
			}
			expected = append(expected, r.Diffusers)
			ti, ok := f.Header.Tensor(r.Diffusers)
			if !assert.True(t, ok, "%s: %s (from %s) is missing", comp, r.Diffusers, r.LDM) {
				continue
			}
			s := src[r.LDM]
			shape := slices.Clone(shapes[comp][r.Diffusers].Shape)
			if r.LDM == converttest.ConvInKey && inChannels != 0 {
				shape[1] = inChannels
			}
			assert.Equal(t, shape, ti.Shape, "%s: shape of %s", comp, r.Diffusers)
			wantDType := s.DType
			if want != 0 {
				wantDType = want
			}
			assert.Equal(t, wantDType, ti.DType, "%s: dtype of %s", comp, r.Diffusers)
			data := make([]byte, ti.Size())
			_, err := f.ReadAt(data, f.Header.DataStart+ti.Begin)
			require.NoError(t, err)
			wantData := converttest.Expected(r, s)
			if wantDType != s.DType {
				wantData = convertBytes(t, wantData, s.DType, wantDType)
			}
			assert.True(t, bytes.Equal(wantData, data), "%s: bytes of %s differ from %s", comp, r.Diffusers, r.LDM)
		}
		assert.ElementsMatch(t, expected, got, "%s: tensor names", comp)
		f.Close()
	}
}

// convertBytes converts elements with core/tensors' kernels, through F32
// when there is no direct one (F16 → BF16: widening F16 is exact).
func convertBytes(t *testing.T, b []byte, from, to tensors.DType) []byte {
	t.Helper()
	if fn, ok := tensors.Converter(from, to); ok {
		out := make([]byte, tensors.OutputSize(from, to, len(b)))
		fn(out, b)
		return out
	}
	return convertBytes(t, convertBytes(t, b, from, tensors.F32), tensors.F32, to)
}

func byName(ts []converttest.Tensor) map[string]converttest.Tensor {
	m := map[string]converttest.Tensor{}
	for _, c := range ts {
		m[c.Name] = c
	}
	return m
}

func readJSON(t testing.TB, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var v map[string]any
	require.NoError(t, json.Unmarshal(b, &v))
	return v
}

// TestConvertSD15 converts SD 1.5 checkpoints with the real key names and
// shapes (scaled) and checks every output tensor against the mapping
// diffusers' conversion makes (testdata/sd15-mapping.tsv), the configs, and
// what is dropped.
func TestConvertSD15(t *testing.T) {
	rows := converttest.SD15Mapping()
	cases := []struct {
		name      string
		opts      converttest.Options
		torch     *converttest.TorchOptions
		typ       Type
		wantType  Type
		wantClass string
	}{
		{name: "safetensors F32", opts: converttest.Options{}, wantType: SD15, wantClass: "StableDiffusionPipeline"},
		{name: "safetensors F16 with schedule and EMA keys", opts: converttest.Options{DType: tensors.F16, Extras: true}, wantType: SD15, wantClass: "StableDiffusionPipeline"},
		{name: "ckpt with state_dict", opts: converttest.Options{Extras: true}, torch: &converttest.TorchOptions{Nested: true, Outside: true}, wantType: SD15, wantClass: "StableDiffusionPipeline"},
		{name: "bin without state_dict, BF16", opts: converttest.Options{DType: tensors.BF16}, torch: &converttest.TorchOptions{}, wantType: SD15, wantClass: "StableDiffusionPipeline"},
		{name: "inpainting", opts: converttest.Options{InChannels: 9}, wantType: SD15Inpaint, wantClass: "StableDiffusionInpaintPipeline"},
		{name: "type given", opts: converttest.Options{}, typ: SD15, wantType: SD15, wantClass: "StableDiffusionPipeline"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ts := converttest.SD15(tc.opts)
			src := filepath.Join(dir, "model.safetensors")
			if tc.torch != nil {
				src = filepath.Join(dir, "model.ckpt")
				converttest.WriteTorch(t, src, ts, *tc.torch)
			} else {
				converttest.WriteSafetensors(t, src, ts)
			}
			before := fileHash(t, src)
			out := filepath.Join(dir, "out")
			res, err := Convert(context.Background(), src, out, Options{Type: tc.typ})
			require.NoError(t, err)
			assert.Equal(t, before, fileHash(t, src), "the checkpoint is only read")

			assert.Equal(t, tc.wantType, res.Plan.Detection.Type)
			assert.Equal(t, tc.typ != "", res.Plan.Detection.Forced)
			assert.NotEmpty(t, res.Plan.Detection.Reasons)
			checkMapped(t, out, rows, byName(ts), 0, tc.opts.InChannels)
			require.NotNil(t, res.Verification)
			assert.True(t, res.Verification.OK(), "%v", res.Verification.Problems)
			assert.True(t, res.Validation.OK(), "%v", res.Validation.Problems)
			assert.Equal(t, 686+248+196, res.Verification.Tensors)

			dropped := map[string]string{}
			for _, d := range res.Plan.Dropped {
				dropped[d.Name] = d.Reason
			}
			assert.Contains(t, dropped["cond_stage_model.transformer.text_model.embeddings.position_ids"], "position_ids")
			if tc.opts.Extras {
				assert.Contains(t, dropped["betas"], "noise schedule")
				assert.Contains(t, dropped["model_ema.diffusion_modelout2bias"], "EMA copy")
				assert.Contains(t, dropped["model_ema.num_updates"], "EMA bookkeeping")
				assert.Len(t, res.Plan.Dropped, 1+12+4+boolInt(tc.torch != nil && tc.torch.Outside)+boolInt(tc.torch != nil && tc.torch.Nested))
			} else {
				assert.Len(t, res.Plan.Dropped, 1)
			}
			if tc.torch != nil && tc.torch.Nested {
				assert.Contains(t, dropped["loose"], "outside the checkpoint's state_dict")
				assert.Equal(t, "not a tensor", dropped["global_step"])
			}

			mi := readJSON(t, filepath.Join(out, "model_index.json"))
			assert.Equal(t, tc.wantClass, mi["_class_name"])
			assert.Equal(t, []any{nil, nil}, mi["safety_checker"])
			assert.Equal(t, []any{nil, nil}, mi["image_encoder"])
			assert.Equal(t, true, mi["requires_safety_checker"])
			assert.Equal(t, []any{"diffusers", "PNDMScheduler"}, mi["scheduler"])
			assert.Equal(t, []any{"transformers", "CLIPImageProcessor"}, mi["feature_extractor"])
			inCh := 4.0
			if tc.opts.InChannels != 0 {
				inCh = float64(tc.opts.InChannels)
			}
			assert.Equal(t, inCh, readJSON(t, filepath.Join(out, "unet/config.json"))["in_channels"])
			wantDType := map[tensors.DType]string{0: "float32", tensors.F32: "float32", tensors.F16: "float16", tensors.BF16: "bfloat16"}[tc.opts.DType]
			assert.Equal(t, wantDType, readJSON(t, filepath.Join(out, "text_encoder/config.json"))["torch_dtype"])
			for _, f := range []string{"tokenizer/vocab.json", "tokenizer/merges.txt", "tokenizer/tokenizer_config.json", "tokenizer/special_tokens_map.json", "feature_extractor/preprocessor_config.json"} {
				assert.Equal(t, fileHash(t, filepath.Join("configs/sd15", f)), fileHash(t, filepath.Join(out, f)), "%s is copied unchanged", f)
			}
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			assert.ElementsMatch(t, []string{filepath.Base(src), "out"}, names, "no staging folder left")
			assert.NoDirExists(t, filepath.Join(out, "safety_checker"))
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Configs are written as save_pretrained writes them: sorted keys, two
// spaces, a final newline; the same values as the embedded file apart
// from the documented edits.
func TestConvertWritesConfigsAsSavePretrained(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "m.safetensors")
	converttest.WriteSafetensors(t, src, converttest.SD15(converttest.Options{}))
	out := filepath.Join(dir, "out")
	_, err := Convert(context.Background(), src, out, Options{SkipVerify: true})
	require.NoError(t, err)
	for _, rel := range []string{"unet/config.json", "vae/config.json", "scheduler/scheduler_config.json", "text_encoder/config.json"} {
		got, err := os.ReadFile(filepath.Join(out, rel))
		require.NoError(t, err)
		assert.True(t, strings.HasSuffix(string(got), "}\n"), rel)
		v, err := tensors.ParsePythonJSON(got)
		require.NoError(t, err)
		again, err := tensors.MarshalPythonJSON(v)
		require.NoError(t, err)
		assert.Equal(t, string(again), string(got), "%s is in save_pretrained's format", rel)
		assert.Equal(t, readJSON(t, filepath.Join("configs/sd15", rel)), readJSON(t, filepath.Join(out, rel)), "%s keeps its values", rel)
	}
	sched := readJSON(t, filepath.Join(out, "scheduler/scheduler_config.json"))
	assert.Equal(t, "PNDMScheduler", sched["_class_name"])
	assert.Equal(t, 0.00085, sched["beta_start"])
}

// Sharded output follows the models' registration order, as
// save_pretrained shards a state dict.
func TestConvertShardsInRegistrationOrder(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "m.safetensors")
	converttest.WriteSafetensors(t, src, converttest.SD15(converttest.Options{}))
	out := filepath.Join(dir, "out")
	const max = 100_000
	res, err := Convert(context.Background(), src, out, Options{MaxShardSize: max})
	require.NoError(t, err)
	for comp, base := range map[string]string{pipelinetest.UNet: "diffusion_pytorch_model", pipelinetest.VAE: "diffusion_pytorch_model", pipelinetest.TextEncoder: "model"} {
		var entries []tensors.ShardEntry
		for _, s := range pipelinetest.SD15TensorSpecs(comp, converttest.Scale) {
			if s.Name != "text_model.embeddings.position_ids" {
				entries = append(entries, tensors.ShardEntry{Name: s.Name, Size: s.Size()})
			}
		}
		want, err := tensors.PlanShards(entries, max, base, "")
		require.NoError(t, err)
		require.True(t, want.Sharded, comp)
		data, err := os.ReadFile(filepath.Join(out, comp, tensors.IndexFileName(base, "")))
		require.NoError(t, err)
		ix, err := tensors.ParseIndex(data)
		require.NoError(t, err)
		assert.Equal(t, want.Index().WeightMap, ix.WeightMap, comp)
	}
	assert.True(t, res.Verification.OK(), "%v", res.Verification.Problems)
}

// --dtype converts the main weights, --variant adds converted weights
// beside them; both are the exact conversions of the checkpoint's values.
func TestConvertDTypeAndVariant(t *testing.T) {
	rows := converttest.SD15Mapping()
	dir := t.TempDir()
	src := filepath.Join(dir, "m.safetensors")
	ts := converttest.SD15(converttest.Options{})
	converttest.WriteSafetensors(t, src, ts)
	out := filepath.Join(dir, "out")
	res, err := Convert(context.Background(), src, out, Options{DType: tensors.F16, Variant: "bf16"})
	require.NoError(t, err)
	checkMapped(t, out, rows, byName(ts), tensors.F16, 0)
	assert.Equal(t, "float16", readJSON(t, filepath.Join(out, "text_encoder/config.json"))["torch_dtype"])
	for _, comp := range []string{converttest.UNet, converttest.VAE, converttest.TextEncoder} {
		file := componentFiles[comp]
		vfile := strings.Replace(file, ".safetensors", ".bf16.safetensors", 1)
		variantDir := filepath.Join(t.TempDir(), "v")
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(variantDir, file)), 0o755))
		require.NoError(t, os.Rename(filepath.Join(out, vfile), filepath.Join(variantDir, file)), comp)
		checkMapped(t, variantDir, filterRows(rows, comp), byName(ts), tensors.BF16, 0)
	}
	assert.True(t, res.Verification.OK(), "%v", res.Verification.Problems)
	assert.Empty(t, res.Lossy, "seeded values fit in F16 and BF16")

	// An F16 checkpoint with a bf16 variant: F16 widens exactly to F32,
	// then rounds to BF16.
	src16 := filepath.Join(dir, "m16.safetensors")
	ts16 := converttest.SD15(converttest.Options{DType: tensors.F16})
	converttest.WriteSafetensors(t, src16, ts16)
	out16 := filepath.Join(dir, "out16")
	res, err = Convert(context.Background(), src16, out16, Options{Variant: "bf16"})
	require.NoError(t, err)
	vdir := filepath.Join(t.TempDir(), "v")
	require.NoError(t, os.MkdirAll(filepath.Join(vdir, "vae"), 0o755))
	require.NoError(t, os.Rename(filepath.Join(out16, "vae/diffusion_pytorch_model.bf16.safetensors"), filepath.Join(vdir, componentFiles[converttest.VAE])))
	checkMapped(t, vdir, filterRows(rows, converttest.VAE), byName(ts16), tensors.BF16, 0)
	assert.True(t, res.Verification.OK(), "%v", res.Verification.Problems)

	_, err = Convert(context.Background(), src, filepath.Join(dir, "out2"), Options{Variant: "fp8"})
	assert.ErrorIs(t, err, ErrOptions)
	_, err = Convert(context.Background(), src, filepath.Join(dir, "out2"), Options{DType: tensors.I32})
	assert.ErrorIs(t, err, ErrOptions)
	assert.NoDirExists(t, filepath.Join(dir, "out2"))
}

// filterRows keeps the rows of comp, so checkMapped looks at one file.
func filterRows(rows []converttest.Row, comp string) []converttest.Row {
	var out []converttest.Row
	for _, r := range rows {
		if r.Component == comp {
			out = append(out, r)
		}
	}
	return out
}

// A conversion that fails, for whatever reason, leaves no output and no
// staging folder, and never changes the checkpoint.
func TestConvertFailsCleanly(t *testing.T) {
	good := func(t *testing.T, dir string) string {
		p := filepath.Join(dir, "m.safetensors")
		converttest.WriteSafetensors(t, p, converttest.SD15(converttest.Options{}))
		return p
	}
	cases := []struct {
		name    string
		src     func(t *testing.T, dir string) string
		opts    func(cancel context.CancelFunc) Options
		wantErr error
		wantMsg string
	}{
		{name: "truncated safetensors", src: func(t *testing.T, dir string) string {
			p := good(t, dir)
			st, err := os.Stat(p)
			require.NoError(t, err)
			require.NoError(t, os.Truncate(p, st.Size()-100))
			return p
		}, wantErr: tensors.ErrTruncated, wantMsg: "m.safetensors"},
		{name: "truncated ckpt", src: func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "m.ckpt")
			converttest.WriteTorch(t, p, converttest.SD15(converttest.Options{}), converttest.TorchOptions{Nested: true})
			st, err := os.Stat(p)
			require.NoError(t, err)
			require.NoError(t, os.Truncate(p, st.Size()/2))
			return p
		}, wantErr: torchbin.ErrCorrupt, wantMsg: "m.ckpt"},
		{name: "pickle outside the allow-list", src: func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "m.ckpt")
			converttest.WriteTorch(t, p, converttest.SD15(converttest.Options{})[:10], converttest.TorchOptions{Nested: true, Forbidden: true})
			return p
		}, wantErr: torchbin.ErrForbiddenGlobal, wantMsg: "os.system"},
		{name: "unknown architecture", src: func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "m.safetensors")
			converttest.WriteSafetensors(t, p, []converttest.Tensor{converttest.Float("encoder.layer.0.weight", tensors.F32, []int64{4, 4})})
			return p
		}, wantErr: ErrUnknownArchitecture, wantMsg: keyCLIP},
		{name: "not a checkpoint", src: func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "notes.txt")
			require.NoError(t, os.WriteFile(p, []byte("hi"), 0o644))
			return p
		}, wantErr: ErrNotCheckpoint, wantMsg: "notes.txt"},
		{name: "a tensor missing", src: func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "m.safetensors")
			converttest.WriteSafetensors(t, p, converttest.SD15(converttest.Options{Edit: func(ts []converttest.Tensor) []converttest.Tensor {
				return slices.DeleteFunc(ts, func(c converttest.Tensor) bool {
					return c.Name == "first_stage_model.decoder.up.1.block.0.nin_shortcut.bias"
				})
			}}))
			return p
		}, wantErr: ErrMissingTensor, wantMsg: "decoder.up_blocks.2.resnets.0.conv_shortcut.bias"},
		{name: "cancelled while writing", src: good, opts: func(cancel context.CancelFunc) Options {
			return Options{Progress: func(p Progress) {
				if strings.HasPrefix(p.File, "vae/") {
					cancel()
				}
			}}
		}, wantErr: context.Canceled},
		{name: "cancelled while verifying", src: good, opts: func(cancel context.CancelFunc) Options {
			return Options{Progress: func(p Progress) {
				if p.Step == "verify" {
					cancel()
				}
			}}
		}, wantErr: context.Canceled},
		{name: "no space", src: func(t *testing.T, dir string) string {
			old := freeSpace
			freeSpace = func(string) (int64, error) { return 1 << 20, nil }
			t.Cleanup(func() { freeSpace = old })
			return good(t, dir)
		}, wantErr: ErrNoSpace},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			src := tc.src(t, dir)
			before := fileHash(t, src)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var opts Options
			if tc.opts != nil {
				opts = tc.opts(cancel)
			}
			out := filepath.Join(dir, "out")
			_, err := Convert(ctx, src, out, opts)
			require.Error(t, err)
			assert.ErrorIs(t, err, tc.wantErr)
			assert.Contains(t, err.Error(), tc.wantMsg)
			assert.NoDirExists(t, out)
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			assert.Len(t, entries, 1, "only the checkpoint is left")
			assert.Equal(t, before, fileHash(t, src))
			_, err = os.Stat(converttest.MarkerFile)
			assert.True(t, errors.Is(err, os.ErrNotExist), "nothing was executed")
		})
	}
}

// The destination must be missing or an empty folder; an empty one is
// replaced.
func TestConvertDestination(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "m.safetensors")
	converttest.WriteSafetensors(t, src, converttest.SD15(converttest.Options{}))
	full := filepath.Join(dir, "full")
	require.NoError(t, os.MkdirAll(full, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(full, "keep.txt"), []byte("mine"), 0o644))
	for _, dst := range []string{full, src} {
		_, err := Convert(context.Background(), src, dst, Options{})
		assert.ErrorIs(t, err, ErrDestination, dst)
	}
	assert.FileExists(t, filepath.Join(full, "keep.txt"))
	empty := filepath.Join(dir, "empty")
	require.NoError(t, os.MkdirAll(empty, 0o755))
	_, err := Convert(context.Background(), src, empty, Options{SkipVerify: true})
	require.NoError(t, err)
	assert.FileExists(t, filepath.Join(empty, "model_index.json"))
}

// Verify names a tensor whose bytes differ from the checkpoint, one that
// is missing and one that should not be there.
func TestVerifyFolderFindsDifferences(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "m.safetensors")
	converttest.WriteSafetensors(t, src, converttest.SD15(converttest.Options{}))
	out := filepath.Join(dir, "out")
	_, err := Convert(context.Background(), src, out, Options{DType: tensors.BF16})
	require.NoError(t, err)
	ctx := context.Background()
	p, err := pipeline.Open(ctx, out)
	require.NoError(t, err)
	rep, err := VerifyFolder(ctx, src, p, "", nil)
	require.NoError(t, err)
	assert.True(t, rep.OK(), "a --dtype conversion verifies: %v", rep.Problems)

	// Flip one byte of the reshaped VAE attention weight.
	vae := filepath.Join(out, componentFiles[pipelinetest.VAE])
	f, err := tensors.Open(vae)
	require.NoError(t, err)
	ti, ok := f.Header.Tensor("decoder.mid_block.attentions.0.to_q.weight")
	require.True(t, ok)
	f.Close()
	b, err := os.ReadFile(vae)
	require.NoError(t, err)
	b[f.Header.DataStart+ti.Begin+3] ^= 0x40
	require.NoError(t, os.WriteFile(vae, b, 0o644))

	// Replace the text encoder with one tensor renamed and one missing.
	te := filepath.Join(out, componentFiles[pipelinetest.TextEncoder])
	tf, err := tensors.Open(te)
	require.NoError(t, err)
	var ws []tensors.WriteTensor
	for _, ti := range tf.Header.Tensors {
		name := ti.Name
		switch name {
		case "text_model.final_layer_norm.bias":
			continue
		case "text_model.final_layer_norm.weight":
			name = "text_model.final_layer_norm.scale"
		}
		ws = append(ws, tensors.WriteTensor{Name: name, DType: ti.DType, Shape: ti.Shape, Data: tf.TensorSource(ti)})
	}
	te2 := te + ".new"
	_, err = tensors.WriteFile(ctx, te2, ws, nil, tensors.WriteOptions{})
	require.NoError(t, err)
	tf.Close()
	require.NoError(t, os.Rename(te2, te))

	p, err = pipeline.Open(ctx, out)
	require.NoError(t, err)
	rep, err = VerifyFolder(ctx, src, p, "", nil)
	require.NoError(t, err)
	codes := map[string]string{}
	for _, f := range rep.Problems {
		codes[f.Code] += f.Message + "\n"
	}
	assert.Contains(t, codes["tensor-data"], "decoder.mid_block.attentions.0.to_q.weight")
	assert.Contains(t, codes["tensor-data"], "first_stage_model.decoder.mid.attn_1.q.weight")
	assert.Contains(t, codes["tensor-data"], "at byte 3 ")
	assert.Contains(t, codes["missing-tensor"], "text_model.final_layer_norm.bias")
	assert.Contains(t, codes["unexpected-tensor"], "text_model.final_layer_norm.scale")
	assert.Len(t, rep.Problems, 4)
}

// TestConvertSDXL converts SDXL base checkpoints with the real key names
// and shapes (scaled) and checks every output tensor against the mapping
// diffusers' conversion makes (converttest/sdxl-mapping.tsv): the OpenCLIP
// text encoder's fused q/k/v split into thirds and its text_projection
// transposed.
func TestConvertSDXL(t *testing.T) {
	m := converttest.SDXLModel()
	cases := []struct {
		name    string
		opts    converttest.Options
		torch   *converttest.TorchOptions
		convert Options
		want    tensors.DType
	}{
		{name: "safetensors F16", opts: converttest.Options{DType: tensors.F16}},
		{name: "ckpt F32 with EMA keys", opts: converttest.Options{Extras: true}, torch: &converttest.TorchOptions{Nested: true}},
		{name: "BF16 converted to F32 with an fp16 variant", opts: converttest.Options{DType: tensors.BF16},
			convert: Options{DType: tensors.F32, Variant: "fp16"}, want: tensors.F32},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ts := converttest.SDXL(tc.opts)
			src := filepath.Join(dir, "sdxl.safetensors")
			if tc.torch != nil {
				src = filepath.Join(dir, "sdxl.ckpt")
				converttest.WriteTorch(t, src, ts, *tc.torch)
			} else {
				converttest.WriteSafetensors(t, src, ts)
			}
			out := filepath.Join(dir, "out")
			res, err := Convert(context.Background(), src, out, tc.convert)
			require.NoError(t, err)
			assert.Equal(t, SDXL, res.Plan.Detection.Type)
			checkModel(t, out, m.Specs, m.Mapping, byName(ts), tc.want, 0)
			if tc.convert.Variant != "" {
				for _, comp := range []string{converttest.UNet, converttest.VAE, converttest.TextEncoder, converttest.TextEncoder2} {
					file := componentFiles[comp]
					vdir := filepath.Join(t.TempDir(), "v")
					require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(vdir, file)), 0o755))
					require.NoError(t, os.Rename(filepath.Join(out, strings.Replace(file, ".safetensors", ".fp16.safetensors", 1)), filepath.Join(vdir, file)))
					checkModel(t, vdir, m.Specs, filterRows(m.Mapping, comp), byName(ts), tensors.F16, 0)
				}
			}
			assert.True(t, res.Verification.OK(), "%v", res.Verification.Problems)
			sets := 1
			if tc.convert.Variant != "" {
				sets = 2
			}
			assert.Equal(t, sets*(1680+248+196+517), res.Verification.Tensors)

			dropped := map[string]string{}
			for _, d := range res.Plan.Dropped {
				dropped[d.Name] = d.Reason
			}
			assert.Contains(t, dropped["conditioner.embedders.1.model.logit_scale"], "logit scale")
			assert.Contains(t, dropped["conditioner.embedders.0.transformer.text_model.embeddings.position_ids"], "position_ids")

			mi := readJSON(t, filepath.Join(out, "model_index.json"))
			assert.Equal(t, "StableDiffusionXLPipeline", mi["_class_name"])
			assert.Equal(t, []any{nil, nil}, mi["image_encoder"])
			assert.Equal(t, []any{nil, nil}, mi["feature_extractor"])
			assert.Equal(t, []any{"transformers", "CLIPTextModelWithProjection"}, mi["text_encoder_2"])
			assert.Equal(t, []any{"diffusers", "EulerDiscreteScheduler"}, mi["scheduler"])
			assert.Equal(t, true, mi["force_zeros_for_empty_prompt"])
			wantDType := map[tensors.DType]string{tensors.F32: "float32", tensors.F16: "float16", tensors.BF16: "bfloat16"}
			d := tc.opts.DType
			if tc.want != 0 {
				d = tc.want
			} else if d == 0 {
				d = tensors.F32
			}
			for _, te := range []string{"text_encoder", "text_encoder_2"} {
				assert.Equal(t, wantDType[d], readJSON(t, filepath.Join(out, te, "config.json"))["torch_dtype"], te)
			}
			assert.Equal(t, 0.13025, readJSON(t, filepath.Join(out, "vae/config.json"))["scaling_factor"])
			for _, f := range []string{"tokenizer/vocab.json", "tokenizer_2/special_tokens_map.json", "tokenizer_2/merges.txt"} {
				assert.Equal(t, fileHash(t, filepath.Join("configs/sdxl", f)), fileHash(t, filepath.Join(out, f)), f)
			}
		})
	}
}

// TestConvertFlux converts FLUX.1 transformer checkpoints (the published
// architecture, scaled) into a FluxTransformer2DModel folder and checks
// every output tensor against the mapping of diffusers'
// convert_flux_transformer_checkpoint_to_diffusers
// (converttest/flux-mapping.tsv): fused q/k/v split in thirds, a single
// block's linear1 split into q, k, v and the MLP, the final modulation's
// halves swapped.
func TestConvertFlux(t *testing.T) {
	cases := []struct {
		name     string
		guidance bool
		prefix   string
		dtype    tensors.DType
		want     Type
	}{
		{"dev, BF16, with a bundled VAE key", true, "", tensors.BF16, FluxDev},
		{"schnell, F16, under model.diffusion_model", false, "model.diffusion_model.", tensors.F16, FluxSchnell},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := converttest.FluxModel(tc.guidance)
			ts := converttest.Flux(tc.guidance, converttest.Options{DType: tc.dtype, Edit: func(ts []converttest.Tensor) []converttest.Tensor {
				for i := range ts {
					ts[i].Name = tc.prefix + ts[i].Name
				}
				return append(ts, converttest.Float("vae.decoder.conv_in.weight", tc.dtype, []int64{4, 4}))
			}})
			src := filepath.Join(t.TempDir(), "flux.safetensors")
			converttest.WriteSafetensors(t, src, ts)
			out := filepath.Join(t.TempDir(), "out")
			res, err := Convert(context.Background(), src, out, Options{})
			require.NoError(t, err)
			assert.Equal(t, tc.want, res.Plan.Detection.Type)

			byLDM := map[string]converttest.Tensor{}
			for _, c := range ts {
				byLDM[strings.TrimPrefix(c.Name, tc.prefix)] = c
			}
			checkModel(t, out, m.Specs, m.Mapping, byLDM, 0, 0)
			assert.True(t, res.Verification.OK(), "%v", res.Verification.Problems)
			assert.Equal(t, len(m.Specs[converttest.Transformer]), res.Verification.Tensors)
			assert.NoFileExists(t, filepath.Join(out, "model_index.json"))
			assert.ElementsMatch(t, []string{"README.md", "config.json", "diffusion_pytorch_model.safetensors"}, res.Files)

			cfg := readJSON(t, filepath.Join(out, "config.json"))
			assert.Equal(t, "FluxTransformer2DModel", cfg["_class_name"])
			assert.Equal(t, tc.guidance, cfg["guidance_embeds"])
			assert.NotContains(t, cfg, "quantization_config")
			assert.Equal(t, 19.0, cfg["num_layers"])
			require.Len(t, res.Plan.Dropped, 1)
			assert.Equal(t, "vae.decoder.conv_in.weight", res.Plan.Dropped[0].Name)
		})
	}
}

// FLUX.1 Fill (384 input channels) and Depth (128) convert as FLUX.1 dev
// does, every tensor as the mapping table says with their wider image
// input projection, into a transformer folder whose config has their
// in_channels, out_channels 64 and guidance embeds, as their repositories'.
func TestConvertFluxFillAndDepth(t *testing.T) {
	for _, tc := range []struct {
		want Type
		in   int64
		repo string
	}{
		{FluxFill, 384, "black-forest-labs/FLUX.1-Fill-dev"},
		{FluxDepth, 128, "black-forest-labs/FLUX.1-Depth-dev"},
	} {
		t.Run(string(tc.want), func(t *testing.T) {
			m := converttest.FluxModel(true)
			ts := converttest.Flux(true, converttest.Options{DType: tensors.BF16, Edit: func(ts []converttest.Tensor) []converttest.Tensor {
				for i, c := range ts {
					if c.Name == "img_in.weight" {
						ts[i] = converttest.Float(c.Name, c.DType, []int64{c.Shape[0], tc.in})
					}
				}
				return ts
			}})
			src := filepath.Join(t.TempDir(), "flux1-"+string(tc.want)+".safetensors")
			converttest.WriteSafetensors(t, src, ts)
			out := filepath.Join(t.TempDir(), "out")
			res, err := Convert(context.Background(), src, out, Options{})
			require.NoError(t, err)
			assert.Equal(t, tc.want, res.Plan.Detection.Type)
			assert.True(t, res.Verification.OK(), "%v", res.Verification.Problems)

			specs := map[string]map[string]pipelinetest.Spec{converttest.Transformer: maps.Clone(m.Specs[converttest.Transformer])}
			x := specs[converttest.Transformer]["x_embedder.weight"]
			x.Shape = []int64{x.Shape[0], tc.in}
			specs[converttest.Transformer]["x_embedder.weight"] = x
			checkModel(t, out, specs, m.Mapping, byName(ts), 0, 0)

			cfg := readJSON(t, filepath.Join(out, "config.json"))
			assert.Equal(t, float64(tc.in), cfg["in_channels"])
			assert.Equal(t, 64.0, cfg["out_channels"])
			assert.Equal(t, true, cfg["guidance_embeds"])
			assert.Equal(t, tc.repo, cfg["_name_or_path"])

			_, err = Convert(context.Background(), src, filepath.Join(t.TempDir(), "as-dev"), Options{Type: FluxDev})
			require.ErrorIs(t, err, ErrTypeMismatch)
			assert.Contains(t, err.Error(), "want [*, 64]")
		})
	}
}
