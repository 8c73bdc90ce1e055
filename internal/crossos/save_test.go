package crossos

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/convert"
	"modelpub/core/convert/converttest"
	"modelpub/core/pipeline"
	"modelpub/core/pipeline/pipelinetest"
)

// hashTree lists every file under root as "slash/path sha256 size".
func hashTree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		h := sha256.New()
		n, err := io.Copy(h, f)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		out = append(out, fmt.Sprintf("%s %s %d", filepath.ToSlash(rel), hex.EncodeToString(h.Sum(nil)), n))
		return nil
	})
	require.NoError(t, err)
	sort.Strings(out)
	return out
}

// TestSaveIsTheSameOnEveryOS writes the synthetic SD-1.5 pipeline, saves
// it resharded with an fp16 variant, converts the synthetic SD-1.5
// checkpoint (safetensors and .ckpt) likewise, and hashes every folder. With
// MODELPUB_SAMEBYTES_OUT it writes the hashes to that file; with
// MODELPUB_SAMEBYTES_WANT it requires the hashes in that file (make
// test-windows writes them on Linux and checks them under Wine).
func TestSaveIsTheSameOnEveryOS(t *testing.T) {
	out, want := os.Getenv("MODELPUB_SAMEBYTES_OUT"), os.Getenv("MODELPUB_SAMEBYTES_WANT")
	ctx := context.Background()
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	_, err := pipelinetest.WriteSD15(ctx, src, pipelinetest.Options{Scale: 0.002, Seed: 16})
	require.NoError(t, err)
	p, err := pipeline.Open(ctx, src)
	require.NoError(t, err)
	dst := filepath.Join(dir, "saved")
	_, err = pipeline.Save(ctx, p, dst, pipeline.SaveOptions{MaxShardSize: 1 << 20, Variant: "fp16"})
	require.NoError(t, err)

	var got []string
	for _, s := range hashTree(t, src) {
		got = append(got, "src/"+s)
	}
	saved := hashTree(t, dst)
	require.NotEmpty(t, saved)
	assert.True(t, strings.Contains(strings.Join(saved, "\n"), ".fp16.safetensors"), "the variant is written")
	for _, s := range saved {
		got = append(got, "saved/"+s)
	}

	// convert: a checkpoint (safetensors, and a Lightning .ckpt read
	// through the pickle reader) to a Diffusers folder, sharded, with an
	// fp16 variant and its model card.
	ckpts := map[string]func(string){
		"v1-5.safetensors": func(p string) { converttest.WriteSafetensors(t, p, converttest.SD15(converttest.Options{})) },
		"v1-5.ckpt": func(p string) {
			converttest.WriteTorch(t, p, converttest.SD15(converttest.Options{}), converttest.TorchOptions{Nested: true})
		},
	}
	for _, name := range []string{"v1-5.safetensors", "v1-5.ckpt"} {
		ckpt := filepath.Join(dir, name)
		ckpts[name](ckpt)
		conv := filepath.Join(dir, "converted-"+name)
		_, err := convert.Convert(ctx, ckpt, conv, convert.Options{Variant: "fp16", MaxShardSize: 1 << 20})
		require.NoError(t, err, name)
		converted := hashTree(t, conv)
		assert.True(t, strings.Contains(strings.Join(converted, "\n"), "unet/diffusion_pytorch_model.fp16."), "%s: with the variant", name)
		for _, s := range converted {
			got = append(got, "converted-"+name+"/"+s)
		}
	}

	if out != "" {
		require.NoError(t, os.WriteFile(out, []byte(strings.Join(got, "\n")+"\n"), 0o644))
	}
	if want == "" {
		if out == "" {
			t.Skip("compares OSes when make test-windows sets MODELPUB_SAMEBYTES_WANT (it saved here without error)")
		}
		return
	}
	f, err := os.Open(want)
	require.NoError(t, err)
	defer f.Close()
	var wantLines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		wantLines = append(wantLines, sc.Text())
	}
	require.NoError(t, sc.Err())
	assert.Equal(t, wantLines, got, "every file, its SHA-256 and size, as written on the other OS")
}
