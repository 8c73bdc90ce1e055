package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/pipeline/pipelinetest"
	"modelpub/core/tensors"
)

// treeHashes maps every file under dir to its sha256.
func treeHashes(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		if d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		rel, _ := filepath.Rel(dir, p)
		sum := sha256.Sum256(b)
		out[filepath.ToSlash(rel)] = hex.EncodeToString(sum[:])
		return nil
	}))
	return out
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

func TestSaveReshardsAndAddsVariant(t *testing.T) {
	src := materialize(t, "sd15", synthetic)
	before := treeHashes(t, src)
	p, err := Open(context.Background(), src)
	require.NoError(t, err)
	dst := filepath.Join(t.TempDir(), "out")

	var calls int
	var last Progress
	res, err := Save(context.Background(), p, dst, SaveOptions{MaxShardSize: 20, Variant: "fp16",
		Progress: func(pr Progress) { calls++; assert.GreaterOrEqual(t, pr.Done, last.Done); last = pr }})
	require.NoError(t, err)
	assert.Equal(t, before, treeHashes(t, src), "the source folder is never modified")
	assert.Positive(t, calls)
	assert.Equal(t, last.Total, last.Done, "progress ends at the planned total")
	assert.Equal(t, res.Bytes, last.Done)

	assert.Equal(t, []string{
		"config.json",
		"diffusion_pytorch_model-00001-of-00003.safetensors",
		"diffusion_pytorch_model-00002-of-00003.safetensors",
		"diffusion_pytorch_model-00003-of-00003.safetensors",
		"diffusion_pytorch_model.fp16-00001-of-00002.safetensors",
		"diffusion_pytorch_model.fp16-00002-of-00002.safetensors",
		"diffusion_pytorch_model.non_ema-00001-of-00003.safetensors",
		"diffusion_pytorch_model.non_ema-00002-of-00003.safetensors",
		"diffusion_pytorch_model.non_ema-00003-of-00003.safetensors",
		"diffusion_pytorch_model.safetensors.index.fp16.json",
		"diffusion_pytorch_model.safetensors.index.json",
		"diffusion_pytorch_model.safetensors.index.non_ema.json",
	}, listDir(t, filepath.Join(dst, "unet")), "no .bin, no stale single file beside the shards")
	after := treeHashes(t, dst)
	for _, same := range []string{"unet/config.json", "scheduler/scheduler_config.json", "tokenizer/vocab.json",
		"tokenizer/tokenizer_config.json", "v1-5-pruned.safetensors", "safety_checker/config.json"} {
		assert.Equal(t, before[same], after[same], "%s copied byte for byte", same)
	}
	mi, err := os.ReadFile(filepath.Join(dst, ModelIndexFile))
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(mi), "{\n  \"_class_name\": \"StableDiffusionPipeline\",\n  \"_diffusers_version\": \"0.6.0\",\n  \"feature_extractor\": [\n"))

	out, err := Open(context.Background(), dst)
	require.NoError(t, err)
	unet := out.Component("unet")
	assert.Equal(t, []string{"fp16", "non_ema"}, unet.Variants())
	fp16 := unet.WeightSet("fp16", "safetensors")
	require.NotNil(t, fp16)
	require.NoError(t, fp16.Err)
	assert.Equal(t, map[string]int64{"F16": 24}, fp16.DTypeBytes)
	main := unet.Main()
	assert.Equal(t, p.Component("unet").Main().Parameters, main.Parameters)
	for _, tn := range main.Tensors {
		v, _ := tensors.ReadHeaderFile(filepath.Join(dst, "unet", tn.File))
		format, _ := v.Metadata.Get("format")
		assert.Equal(t, "pt", format)
	}
	te := out.Component("text_encoder")
	assert.Equal(t, "model", te.Main().Base, "transformers names are kept")
}

func TestSaveDefaultsKeepSingleFiles(t *testing.T) {
	src := materialize(t, "sd15", synthetic)
	p, err := Open(context.Background(), src)
	require.NoError(t, err)
	dst := filepath.Join(t.TempDir(), "out")
	_, err = Save(context.Background(), p, dst, SaveOptions{})
	require.NoError(t, err)
	assert.Equal(t, []string{"config.json", "diffusion_pytorch_model.fp16.safetensors", "diffusion_pytorch_model.non_ema.safetensors",
		"diffusion_pytorch_model.safetensors"}, listDir(t, filepath.Join(dst, "unet")))
	assert.Equal(t, []string{"config.json", "model.fp16.safetensors", "model.safetensors"}, listDir(t, filepath.Join(dst, "text_encoder")))
}

func TestSaveLeavesNothingOnFailure(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, src string) context.Context
	}{
		{"a source file shrinks half-way", func(t *testing.T, src string) context.Context {
			// Opened (headers read) while whole; truncated before its data is read.
			return context.Background()
		}},
		{"cancelled", func(t *testing.T, src string) context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := materialize(t, "sd15", synthetic)
			p, err := Open(context.Background(), src)
			require.NoError(t, err)
			ctx := tt.setup(t, src)
			if tt.name == "a source file shrinks half-way" {
				require.NoError(t, os.Truncate(filepath.Join(src, "vae", "diffusion_pytorch_model.safetensors"), 100))
			}
			parent := t.TempDir()
			dst := filepath.Join(parent, "out")
			_, err = Save(ctx, p, dst, SaveOptions{Variant: "fp16"})
			require.Error(t, err)
			assert.Empty(t, listDir(t, parent), "no destination and no staging folder is left")
		})
	}
}

func TestSaveRefuses(t *testing.T) {
	src := materialize(t, "sd15", synthetic)
	p, err := Open(context.Background(), src)
	require.NoError(t, err)

	full := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(full, "keep.txt"), []byte("mine"), 0o644))
	_, err = Save(context.Background(), p, full, SaveOptions{})
	require.ErrorIs(t, err, ErrDestinationNotEmpty)
	assert.Equal(t, []string{"keep.txt"}, listDir(t, full))

	_, err = Save(context.Background(), p, filepath.Join(src, "out"), SaveOptions{})
	require.ErrorContains(t, err, "outside the source")

	_, err = Save(context.Background(), p, filepath.Join(t.TempDir(), "x"), SaveOptions{Variant: "fp8"})
	require.ErrorIs(t, err, ErrUnsupportedVariant)

	res, err := Save(context.Background(), p, full, SaveOptions{Overwrite: true})
	require.NoError(t, err)
	assert.Equal(t, full, res.Dir)
	assert.NotContains(t, listDir(t, full), "keep.txt", "--overwrite replaces the folder")
	assert.Contains(t, listDir(t, full), ModelIndexFile)

	lfsSrc := materialize(t, "sd15", lfs)
	lp, err := Open(context.Background(), lfsSrc)
	require.NoError(t, err)
	_, err = Save(context.Background(), lp, filepath.Join(t.TempDir(), "y"), SaveOptions{})
	require.ErrorIs(t, err, ErrUnreadableWeights)
	assert.ErrorIs(t, err, ErrLFSPointer)
}

// TestSaveSyntheticSD15 runs save and validate over an SD-1.5 pipeline with
// the real tensor names, counts and dtypes (scaled shapes), as a user would.
func TestSaveSyntheticSD15(t *testing.T) {
	src := filepath.Join(t.TempDir(), "sd15")
	_, err := pipelinetest.WriteSD15(context.Background(), src, pipelinetest.Options{Scale: 0.001, Seed: 7, FP16Variant: []string{"vae"}})
	require.NoError(t, err)
	p, err := Open(context.Background(), src)
	require.NoError(t, err)
	assert.Equal(t, 686, len(p.Component("unet").Main().Tensors))
	assert.Equal(t, int64(616), p.Component("text_encoder").Main().DTypeBytes["I64"], "position_ids, I64 [1, 77]")

	dst := filepath.Join(t.TempDir(), "out")
	res, err := Save(context.Background(), p, dst, SaveOptions{MaxShardSize: 1_000_000, Variant: "fp16"})
	require.NoError(t, err)
	require.Len(t, res.Lossy, 1)
	assert.Equal(t, "conv_out.bias", res.Lossy[0].Tensor)
	assert.Equal(t, tensors.ConvStats{Overflow: 2, Underflow: 2}, res.Lossy[0].ConvStats)

	out, err := Open(context.Background(), dst)
	require.NoError(t, err)
	unet := out.Component("unet").Main()
	assert.Equal(t, "diffusion_pytorch_model.safetensors.index.json", unet.Index)
	assert.Greater(t, len(unet.Files), 2)
	te := out.Component("text_encoder").WeightSet("fp16", "safetensors")
	require.NotNil(t, te)
	assert.Equal(t, int64(616), te.DTypeBytes["I64"], "integer tensors are copied unchanged into the variant")

	r, err := Validate(context.Background(), out, ValidateOptions{Against: p})
	require.NoError(t, err)
	assert.Empty(t, r.Problems)
	require.Len(t, r.Warnings, 1)
	assert.Contains(t, r.Warnings[0].Message, "conv_out.bias")
}

// A save that cannot fit stops before writing anything, and says how much
// it needs and where.
func TestSaveRefusesWhenTheDiskIsFull(t *testing.T) {
	src := t.TempDir()
	_, err := pipelinetest.WriteSD15(context.Background(), src, pipelinetest.Options{Scale: 0.001, Seed: 1})
	require.NoError(t, err)
	p, err := Open(context.Background(), src)
	require.NoError(t, err)
	orig := freeSpace
	t.Cleanup(func() { freeSpace = orig })
	freeSpace = func(string) (int64, error) { return 1 << 20, nil }

	parent := t.TempDir()
	_, err = Save(context.Background(), p, filepath.Join(parent, "out"), SaveOptions{Variant: "fp16"})
	require.ErrorIs(t, err, ErrNoSpace)
	assert.Contains(t, err.Error(), parent)
	assert.Contains(t, err.Error(), "1.05 MB are free")
	entries, err := os.ReadDir(parent)
	require.NoError(t, err)
	assert.Empty(t, entries, "nothing written")

	freeSpace = func(string) (int64, error) { return 1 << 40, nil }
	_, err = Save(context.Background(), p, filepath.Join(parent, "out"), SaveOptions{Variant: "fp16"})
	require.NoError(t, err)
}

// A resumable save cancelled half-way keeps what it finished; the next
// Save to the same destination keeps those files (not rewritten: same
// inode and time), removes half-written ones, writes the rest, and the
// result is the same model as its source.
func TestSaveResumesAfterCancel(t *testing.T) {
	src := t.TempDir()
	_, err := pipelinetest.WriteSD15(context.Background(), src, pipelinetest.Options{Scale: 0.002, Seed: 4})
	require.NoError(t, err)
	p, err := Open(context.Background(), src)
	require.NoError(t, err)
	dst := filepath.Join(t.TempDir(), "out")
	partial := filepath.Join(filepath.Dir(dst), ".out"+partialSuffix)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opts := SaveOptions{MaxShardSize: 1 << 20, Variant: "fp16", Resume: true, Progress: func(pr Progress) {
		if strings.HasPrefix(pr.File, "vae/") {
			cancel()
		}
	}}
	_, err = Save(ctx, p, dst, opts)
	require.ErrorIs(t, err, context.Canceled)
	assert.NoDirExists(t, dst)
	require.DirExists(t, partial)
	unetIndex := filepath.Join(partial, "unet", tensors.IndexFileName("diffusion_pytorch_model", ""))
	before, err := os.Stat(unetIndex)
	require.NoError(t, err, "the UNet's set was complete before the cancel")
	// On Windows a FileInfo reads its file's id on first use, by path: read
	// it now, while the path still names the file (it is renamed below).
	require.True(t, os.SameFile(before, before))
	shards, err := filepath.Glob(filepath.Join(partial, "text_encoder", "model*.safetensors"))
	require.NoError(t, err)
	require.NotEmpty(t, shards)
	require.NoError(t, os.Truncate(shards[0], 100), "a damaged file is written again")
	junk := filepath.Join(partial, "vae", ".diffusion_pytorch_model.safetensors.tmp-123")
	require.NoError(t, os.WriteFile(junk, []byte("half"), 0o644))

	opts.Progress = nil
	res, err := Save(context.Background(), p, dst, opts)
	require.NoError(t, err)
	assert.Greater(t, res.Kept, int64(0))
	assert.NoDirExists(t, partial)
	after, err := os.Stat(filepath.Join(dst, "unet", tensors.IndexFileName("diffusion_pytorch_model", "")))
	require.NoError(t, err)
	assert.True(t, os.SameFile(before, after), "kept, not rewritten")
	assert.Equal(t, before.ModTime(), after.ModTime())
	assert.NoFileExists(t, filepath.Join(dst, "vae", filepath.Base(junk)))

	saved, err := Open(context.Background(), dst)
	require.NoError(t, err)
	rep, err := Validate(context.Background(), saved, ValidateOptions{Against: p})
	require.NoError(t, err)
	assert.True(t, rep.OK(), "%+v", rep.Problems)
}

// A partial folder is only picked up by a save with the same source and
// options; a save that fails (rather than being stopped) leaves none.
func TestSaveResumeNeedsTheSameInputs(t *testing.T) {
	src := t.TempDir()
	_, err := pipelinetest.WriteSD15(context.Background(), src, pipelinetest.Options{Scale: 0.002, Seed: 5})
	require.NoError(t, err)
	p, err := Open(context.Background(), src)
	require.NoError(t, err)
	dst := filepath.Join(t.TempDir(), "out")
	stopAtUNet := func() (context.Context, SaveOptions) {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		return ctx, SaveOptions{Variant: "fp16", Resume: true, Progress: func(pr Progress) {
			if strings.HasPrefix(pr.File, "unet/") {
				cancel()
			}
		}}
	}
	ctx, opts := stopAtUNet()
	_, err = Save(ctx, p, dst, opts)
	require.ErrorIs(t, err, context.Canceled)
	require.DirExists(t, PartialDir(dst))

	// Other options: the partial folder is not used.
	res, err := Save(context.Background(), p, dst, SaveOptions{Variant: "bf16", Resume: true})
	require.NoError(t, err)
	assert.Zero(t, res.Kept)
	assert.NoFileExists(t, filepath.Join(dst, resumeMarker), "the marker never reaches the output")
	require.NoError(t, os.RemoveAll(dst))

	// A changed source file: started over too.
	ctx, opts = stopAtUNet()
	_, err = Save(ctx, p, dst, opts)
	require.ErrorIs(t, err, context.Canceled)
	cfg := filepath.Join(src, "scheduler", "scheduler_config.json")
	b, err := os.ReadFile(cfg)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(cfg, append(b, '\n'), 0o644))
	opts.Progress = nil
	res, err = Save(context.Background(), p, dst, opts)
	require.NoError(t, err)
	assert.Zero(t, res.Kept)
	require.NoError(t, os.RemoveAll(dst))

	// A failure (not a stop) leaves no partial folder.
	orig := freeSpace
	t.Cleanup(func() { freeSpace = orig })
	freeSpace = func(string) (int64, error) { return 1 << 20, nil }
	_, err = Save(context.Background(), p, dst, opts)
	require.ErrorIs(t, err, ErrNoSpace)
	assert.NoDirExists(t, PartialDir(dst))
}
