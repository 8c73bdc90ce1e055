package pipeline

import (
	"context"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/tensors"
)

type materializeMode int

const (
	// synthetic writes small safetensors files under the real weight names
	// (shards hold exactly the tensors their real index maps to them).
	synthetic materializeMode = iota
	// lfs keeps the LFS pointer files under the real names: a folder
	// cloned without git-lfs.
	lfs
)

// materialize copies testdata/layouts/<layout> into a temporary folder,
// turning every *.pointer file into the file it stands for.
func materialize(t *testing.T, layout string, mode materializeMode) string {
	t.Helper()
	src := filepath.Join("testdata", "layouts", layout)
	dst := filepath.Join(t.TempDir(), layout)
	indexes := map[string]*tensors.Index{} // shard path → the index naming it
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		require.NoError(t, err)
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			require.NoError(t, os.MkdirAll(filepath.Join(dst, rel), 0o755))
			if filepath.Base(p) == "tokenizer" || filepath.Base(p) == "tokenizer_2" {
				// stand-ins for the vocab.json and merges.txt left out of testdata
				require.NoError(t, os.WriteFile(filepath.Join(dst, rel, "vocab.json"), []byte("{}\n"), 0o644))
				require.NoError(t, os.WriteFile(filepath.Join(dst, rel, "merges.txt"), []byte("#version: 0.2\n"), 0o644))
			}
			return nil
		}
		data, err := os.ReadFile(p)
		require.NoError(t, err)
		if strings.HasSuffix(rel, ".index.json") {
			ix, err := tensors.ParseIndex(data)
			require.NoError(t, err)
			for _, s := range ix.Shards() {
				indexes[filepath.Join(filepath.Dir(rel), s)] = ix
			}
		}
		require.NoError(t, os.WriteFile(filepath.Join(dst, rel), data, 0o644))
		return nil
	})
	require.NoError(t, err)
	pointers, err := filepath.Glob(filepath.Join(dst, "*.pointer"))
	require.NoError(t, err)
	more, err := filepath.Glob(filepath.Join(dst, "*", "*.pointer"))
	require.NoError(t, err)
	for _, p := range append(pointers, more...) {
		real := strings.TrimSuffix(p, ".pointer")
		require.NoError(t, os.Rename(p, real))
		if mode == lfs {
			continue
		}
		if !strings.HasSuffix(real, ".safetensors") { // .bin, .onnx, …: bytes that are no pointer
			require.NoError(t, os.WriteFile(real, []byte("PK\x03\x04 stand-in for "+filepath.Base(real)), 0o644))
			continue
		}
		rel, _ := filepath.Rel(dst, real)
		var names []string
		if ix := indexes[rel]; ix != nil {
			names = ix.TensorsIn(filepath.Base(rel))
		} else {
			names = []string{"layer.0.weight", "layer.0.bias", "layer.1.weight"}
		}
		dtype := tensors.F32
		if strings.Contains(filepath.Base(real), ".fp16") {
			dtype = tensors.F16
		}
		writeTiny(t, real, names, dtype)
	}
	return dst
}

// writeTiny writes a safetensors file of 4-element tensors.
func writeTiny(t *testing.T, path string, names []string, dtype tensors.DType) {
	t.Helper()
	var ws []tensors.WriteTensor
	for i, n := range names {
		b := make([]byte, 4*dtype.Bits()/8)
		for k := range 4 {
			if dtype == tensors.F32 {
				binary.LittleEndian.PutUint32(b[4*k:], math.Float32bits(float32(i*4+k)))
			} else {
				binary.LittleEndian.PutUint16(b[2*k:], uint16(0x3c00+i+k))
			}
		}
		ws = append(ws, tensors.WriteTensor{Name: n, DType: dtype, Shape: []int64{4}, Data: tensors.Bytes(b)})
	}
	_, err := tensors.WriteFile(context.Background(), path, ws, nil, tensors.WriteOptions{})
	require.NoError(t, err)
}

func codes(p *Pipeline) []string {
	var out []string
	for _, w := range p.Warnings {
		if !slices.Contains(out, w.Code) {
			out = append(out, w.Code)
		}
	}
	return out
}

func TestOpenSD15(t *testing.T) {
	dir := materialize(t, "sd15", synthetic)
	p, err := Open(context.Background(), dir)
	require.NoError(t, err)
	require.NotNil(t, p.Index)
	assert.Equal(t, "StableDiffusionPipeline", p.Index.ClassName)
	assert.Equal(t, "0.6.0", p.Index.DiffusersVersion)

	roles := map[string]Role{}
	for _, c := range p.Components {
		roles[c.Name] = c.Role
	}
	assert.Equal(t, map[string]Role{
		"feature_extractor": RoleProcessor, "safety_checker": RoleModel, "scheduler": RoleScheduler,
		"text_encoder": RoleModel, "tokenizer": RoleTokenizer, "unet": RoleModel, "vae": RoleModel,
	}, roles)

	unet := p.Component("unet")
	assert.Equal(t, []string{"fp16", "non_ema"}, unet.Variants())
	main := unet.Main()
	require.NotNil(t, main)
	require.NoError(t, main.Err)
	assert.Equal(t, "safetensors", main.Format)
	assert.Equal(t, "diffusion_pytorch_model", main.Base)
	assert.Len(t, main.Tensors, 3)
	assert.Equal(t, int64(12), main.Parameters)
	assert.Equal(t, map[string]int64{"F32": 48}, main.DTypeBytes)
	fp16 := unet.WeightSet("fp16", "safetensors")
	require.NotNil(t, fp16)
	assert.Equal(t, map[string]int64{"F16": 24}, fp16.DTypeBytes)
	require.NotNil(t, unet.WeightSet("non_ema", "bin"))

	te := p.Component("text_encoder")
	assert.Equal(t, "model", te.Main().Base)
	assert.Equal(t, "CLIPTextModel", te.Class)
	assert.Equal(t, "transformers", te.Library)

	assert.Len(t, p.RootFiles, 2)
	for _, f := range p.RootFiles {
		assert.Equal(t, KindCheckpoint, f.Kind)
	}
	assert.Subset(t, codes(p), []string{"single-file-checkpoint", "bin-and-safetensors"})
	assert.NotContains(t, codes(p), "lfs-pointer")
	for _, w := range p.Warnings {
		if w.Code == "partial-variant" { // the real SD-1.5 repository has non_ema weights for the UNet alone
			assert.Contains(t, w.Message, "variant non_ema exists for unet but not for")
		}
	}
}

func TestOpenSDXLCarriesOtherFormats(t *testing.T) {
	dir := materialize(t, "sdxl-base", synthetic)
	p, err := Open(context.Background(), dir)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"vae_1_0", "vae_decoder", "vae_encoder"}, p.Unlisted)
	assert.Subset(t, codes(p), []string{"other-format", "unlisted-folder", "single-file-checkpoint"})
	var kinds []FileKind
	for _, f := range p.Component("unet").Files {
		kinds = append(kinds, f.Kind)
	}
	assert.Contains(t, kinds, KindOtherFormat)
	assert.Equal(t, []string{"fp16"}, p.Component("text_encoder_2").Variants())
}

func TestOpenShardedComponent(t *testing.T) {
	dir := materialize(t, "flux-schnell-nf4", synthetic)
	p, err := Open(context.Background(), dir)
	require.NoError(t, err)
	te2 := p.Component("text_encoder_2").Main()
	require.NotNil(t, te2)
	require.NoError(t, te2.Err)
	assert.Equal(t, "model.safetensors.index.json", te2.Index)
	assert.Equal(t, []string{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}, te2.Files)
	data, err := os.ReadFile(filepath.Join(dir, "text_encoder_2", te2.Index))
	require.NoError(t, err)
	ix, err := tensors.ParseIndex(data)
	require.NoError(t, err)
	assert.Equal(t, len(ix.WeightMap), len(te2.Tensors), "every tensor of the real T5 index")
	assert.Equal(t, RoleTokenizer, p.Component("tokenizer_2").Role)
}

func TestOpenClonedWithoutLFS(t *testing.T) {
	dir := materialize(t, "sd15", lfs)
	p, err := Open(context.Background(), dir)
	require.NoError(t, err, "inspecting such a folder must still work")
	assert.Contains(t, codes(p), "lfs-pointer")
	main := p.Component("unet").Main()
	require.Error(t, main.Err)
	assert.Contains(t, main.Err.Error(), "git-lfs")
	assert.Contains(t, main.Err.Error(), "unet/diffusion_pytorch_model.safetensors")
}

func TestOpenWarnings(t *testing.T) {
	dir := materialize(t, "sd15", synthetic)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "unet", "LICENSE"), []byte("MIT"), 0o644))
	require.NoError(t, os.Remove(filepath.Join(dir, "vae", "diffusion_pytorch_model.fp16.safetensors")))
	require.NoError(t, os.Remove(filepath.Join(dir, "vae", "diffusion_pytorch_model.fp16.bin")))
	p, err := Open(context.Background(), dir)
	require.NoError(t, err)
	var msgs []string
	for _, w := range p.Warnings {
		msgs = append(msgs, w.Code+": "+w.Message)
	}
	joined := strings.Join(msgs, "\n")
	assert.Contains(t, joined, "dotless-file: unet/LICENSE has no dot")
	assert.Contains(t, joined, "partial-variant: variant fp16 exists for")
	assert.Contains(t, joined, "but not for vae")
}

func TestOpenSingleModelFolder(t *testing.T) {
	dir := materialize(t, "sd15", synthetic)
	p, err := Open(context.Background(), filepath.Join(dir, "unet"))
	require.NoError(t, err)
	require.Len(t, p.Components, 1)
	c := p.Components[0]
	assert.Nil(t, p.Index)
	assert.Equal(t, "", c.Name)
	assert.Equal(t, "UNet2DConditionModel", c.Class)
	assert.Equal(t, "diffusers", c.Library)
	assert.NotNil(t, c.Main())

	p, err = Open(context.Background(), filepath.Join(dir, "text_encoder"))
	require.NoError(t, err)
	assert.Equal(t, "CLIPTextModel", p.Components[0].Class)
	assert.Equal(t, "transformers", p.Components[0].Library)
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T) string
		want  error
		msg   string
	}{
		{"missing component", func(t *testing.T) string { return materialize(t, "sd35-large-partial", synthetic) },
			ErrMissingComponent, `"text_encoder"`},
		{"empty folder", func(t *testing.T) string { return t.TempDir() }, ErrNotPipeline, "neither"},
		{"malformed model_index.json", func(t *testing.T) string {
			d := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(d, ModelIndexFile), []byte(`{"_class_name": "X",`), 0o644))
			return d
		}, ErrModelIndex, "model_index.json"},
		{"no class name", func(t *testing.T) string {
			d := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(d, ModelIndexFile), []byte(`{"unet": ["diffusers", "UNet2DConditionModel"]}`), 0o644))
			return d
		}, ErrModelIndex, "_class_name is missing"},
		{"path traversal in a component name", func(t *testing.T) string {
			d := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(d, ModelIndexFile), []byte(`{"_class_name": "X", "../etc": ["diffusers", "UNet2DConditionModel"]}`), 0o644))
			return d
		}, ErrModelIndex, "not a plain folder name"},
		{"half-null component", func(t *testing.T) string {
			d := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(d, ModelIndexFile), []byte(`{"_class_name": "X", "unet": ["diffusers", null]}`), 0o644))
			return d
		}, ErrModelIndex, "[null, null]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Open(context.Background(), tt.setup(t))
			require.ErrorIs(t, err, tt.want)
			assert.Contains(t, err.Error(), tt.msg)
		})
	}
}

func TestModelIndexRoundTrip(t *testing.T) {
	for _, layout := range []string{"sd15", "sdxl-base", "flux-schnell-nf4"} {
		t.Run(layout, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "layouts", layout, ModelIndexFile))
			require.NoError(t, err)
			mi, err := ParseModelIndex(data)
			require.NoError(t, err)
			out, err := mi.MarshalPython()
			require.NoError(t, err)
			again, err := ParseModelIndex(out)
			require.NoError(t, err)
			assert.Equal(t, mi.Components, again.Components)
			assert.ElementsMatch(t, mi.Keys(), again.Keys(), "no key lost")
			if layout == "flux-schnell-nf4" { // written by diffusers: sorted, so byte-identical
				assert.Equal(t, string(data), string(out))
			}
		})
	}
	mi, err := ParseModelIndex([]byte(`{"_class_name": ["pipeline", "MyPipeline"], "requires_safety_checker": true, "x": [null, null]}`))
	require.NoError(t, err)
	assert.Equal(t, "MyPipeline", mi.ClassName)
	assert.Equal(t, "pipeline", mi.CustomModule)
	require.Len(t, mi.Components, 1)
	assert.True(t, mi.Components[0].IsNull())
	raw, ok := mi.Raw("requires_safety_checker")
	require.True(t, ok)
	assert.Equal(t, "true", string(raw))
}
