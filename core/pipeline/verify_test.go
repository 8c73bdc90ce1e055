package pipeline_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/pipeline"
	"modelpub/core/pipeline/pipelinetest"
)

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

type savedSet struct {
	component string
	set       *pipeline.SetPlan
}

// saveInPlace saves a synthetic SD-1.5 with an fp16 variant and small
// shards in place, recording what Save hands on.
func saveInPlace(t *testing.T) (*pipeline.Pipeline, string, *pipeline.SavePlan, []pipeline.SavedFile, []savedSet) {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	_, err := pipelinetest.WriteSD15(context.Background(), src, pipelinetest.Options{Scale: 0.002, Seed: 9})
	require.NoError(t, err)
	p, err := pipeline.Open(context.Background(), src)
	require.NoError(t, err)
	p, release := p.Hold()
	t.Cleanup(release)
	opts := pipeline.SaveOptions{MaxShardSize: 2 << 20, Variant: "fp16", Resume: true, InPlace: true, Inputs: "test"}
	plan, err := pipeline.Plan(p, opts)
	require.NoError(t, err)
	dst := filepath.Join(t.TempDir(), "staged")
	var mu sync.Mutex
	var files []pipeline.SavedFile
	var sets []savedSet
	opts.OnFile = func(f pipeline.SavedFile) {
		mu.Lock()
		defer mu.Unlock()
		assert.False(t, pipeline.Complete(dst), "the folder is marked incomplete while Save runs")
		files = append(files, f)
	}
	opts.OnSet = func(c string, sp *pipeline.SetPlan) {
		mu.Lock()
		defer mu.Unlock()
		sets = append(sets, savedSet{c, sp})
	}
	_, err = pipeline.Save(context.Background(), p, dst, opts)
	require.NoError(t, err)
	assert.True(t, pipeline.Complete(dst))
	return p, dst, plan, files, sets
}

func TestSaveInPlaceHandsOnEveryFile(t *testing.T) {
	_, dst, _, files, sets := saveInPlace(t)
	require.NotEmpty(t, files)
	for _, f := range files {
		assert.Equal(t, fileSHA256(t, filepath.Join(dst, filepath.FromSlash(f.Path))), f.SHA256, f.Path)
	}
	paths := map[string]bool{}
	for _, f := range files {
		paths[f.Path] = true
	}
	assert.True(t, paths["model_index.json"])
	assert.True(t, paths["unet/config.json"])
	assert.True(t, paths["tokenizer/vocab.json"])
	got := map[string]bool{}
	for _, s := range sets {
		got[s.component+"/"+s.set.Variant] = true
	}
	for _, c := range []string{"unet", "vae", "text_encoder"} {
		assert.True(t, got[c+"/"], c)
		assert.True(t, got[c+"/fp16"], c+" fp16")
	}
}

func TestVerifySetReadsEachFileOnceAndHashesIt(t *testing.T) {
	p, dst, plan, _, sets := saveInPlace(t)
	for _, s := range sets {
		cp := plan.Component(s.component)
		require.NotNil(t, cp)
		var sp *pipeline.SetPlan
		for i := range cp.Sets {
			if cp.Sets[i].Variant == s.set.Variant {
				sp = &cp.Sets[i]
			}
		}
		var read int64
		vf, err := pipeline.VerifySet(context.Background(), p, dst, cp, sp, func(n int64) { read += n })
		require.NoError(t, err, s.component)
		var size int64
		for _, f := range vf {
			assert.Equal(t, fileSHA256(t, filepath.Join(dst, filepath.FromSlash(f.Path))), f.SHA256, f.Path)
			assert.NotEmpty(t, f.Sample)
			if f.Content != nil {
				continue // the index
			}
			size += f.Size
		}
		assert.Equal(t, size, read, "%s: every byte of the weights files read once", s.component)
	}
}

func TestVerifySetFindsDifferences(t *testing.T) {
	p, dst, plan, _, _ := saveInPlace(t)
	cp := plan.Component("unet")
	variant := &cp.Sets[1]
	require.Equal(t, "fp16", variant.Variant)
	require.Greater(t, len(variant.Files), 1, "sharded")
	shard := variant.Files[1]
	path := filepath.Join(dst, "unet", shard.Name)
	orig, err := os.ReadFile(path)
	require.NoError(t, err)
	last := shard.Tensors[len(shard.Tensors)-1]

	cases := []struct {
		name   string
		damage func([]byte) []byte
		want   string
	}{
		{"a flipped byte", func(b []byte) []byte { b[last.Offset+3] ^= 0x40; return b },
			`tensor "` + last.Name + `": is not the exact conversion of the source (first difference at byte 3 of the tensor)`},
		{"truncated", func(b []byte) []byte { return b[:len(b)-10] }, "bytes where"},
		{"another header", func(b []byte) []byte { b[20] ^= 0x01; return b }, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, os.WriteFile(path, tc.damage(append([]byte(nil), orig...)), 0o644))
			defer os.WriteFile(path, orig, 0o644)
			_, err := pipeline.VerifySet(context.Background(), p, dst, cp, variant, nil)
			require.ErrorIs(t, err, pipeline.ErrNotAsPlanned)
			var ve *pipeline.VerifyError
			require.ErrorAs(t, err, &ve)
			assert.Equal(t, "unet/"+shard.Name, ve.File)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	// The index too.
	ix := filepath.Join(dst, "unet", variant.Index)
	b, err := os.ReadFile(ix)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(ix, []byte(string(b[:len(b)-2])+" \n"), 0o644))
	_, err = pipeline.VerifySet(context.Background(), p, dst, cp, variant, nil)
	assert.ErrorIs(t, err, pipeline.ErrNotAsPlanned)
}

func TestCompleteIsFalseAfterAnInterruptedInPlaceSave(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	_, err := pipelinetest.WriteSD15(context.Background(), src, pipelinetest.Options{Scale: 0.001, Seed: 2})
	require.NoError(t, err)
	p, err := pipeline.Open(context.Background(), src)
	require.NoError(t, err)
	dst := filepath.Join(t.TempDir(), "staged")
	ctx, cancel := context.WithCancel(context.Background())
	opts := pipeline.SaveOptions{Resume: true, InPlace: true, Inputs: "x", OnFile: func(pipeline.SavedFile) { cancel() }}
	_, err = pipeline.Save(ctx, p, dst, opts)
	require.ErrorIs(t, err, context.Canceled)
	assert.False(t, pipeline.Complete(dst), "an interrupted in-place save is not complete")
	opts.OnFile = nil
	_, err = pipeline.Save(context.Background(), p, dst, opts)
	require.NoError(t, err)
	assert.True(t, pipeline.Complete(dst))
	r, err := pipeline.Validate(context.Background(), mustOpen(t, dst), pipeline.ValidateOptions{Against: p})
	require.NoError(t, err)
	assert.True(t, r.OK(), "%v", r.Problems)
}

func mustOpen(t *testing.T, dir string) *pipeline.Pipeline {
	t.Helper()
	p, err := pipeline.Open(context.Background(), dir)
	require.NoError(t, err)
	return p
}
