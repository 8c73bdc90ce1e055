//go:build unix

package pipeline

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/folder"
	"modelpub/core/pipeline/pipelinetest"
	"modelpub/core/tensors"
)

// within5s fails the test when fn hangs (a FIFO opened for reading would).
func within5s[T any](t *testing.T, fn func() (T, error)) (T, error) {
	t.Helper()
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() { v, err := fn(); done <- result{v, err} }()
	select {
	case r := <-done:
		return r.v, r.err
	case <-time.After(5 * time.Second):
		t.Fatal("hung on a special file")
		var zero T
		return zero, nil
	}
}

// A downloaded model folder is untrusted: a link to a secret outside it is
// refused by open (and so by save, validate and publish), naming the link
// and its target, unless the user opts in.
func TestOpenRefusesLinksOutsideTheFolder(t *testing.T) {
	src := materialize(t, "sd15", synthetic)
	secret := filepath.Join(t.TempDir(), "id_ed25519")
	require.NoError(t, os.WriteFile(secret, []byte("-----BEGIN OPENSSH PRIVATE KEY-----"), 0o600))
	link := filepath.Join(src, "tokenizer", "added_tokens.txt")
	require.NoError(t, os.Symlink(secret, link))
	before := treeHashes(t, src)

	_, err := Open(context.Background(), src)
	var pe *PolicyError
	require.ErrorAs(t, err, &pe)
	assert.ErrorIs(t, err, folder.ErrOutsideLink)
	assert.True(t, pe.OnlyLinks())
	require.Len(t, pe.Problems, 1)
	assert.Equal(t, link, pe.Problems[0].Path)
	assert.Equal(t, secret, pe.Problems[0].Target)
	assert.Contains(t, err.Error(), "added_tokens.txt")
	assert.NotContains(t, err.Error(), "PRIVATE KEY")

	// Opting in: the link is followed, and the save copies its bytes.
	p, err := OpenWith(context.Background(), src, OpenOptions{AllowOutsideLinks: true})
	require.NoError(t, err)
	dst := filepath.Join(t.TempDir(), "out")
	_, err = Save(context.Background(), p, dst, SaveOptions{})
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(dst, "tokenizer", "added_tokens.txt"))
	require.NoError(t, err)
	assert.Contains(t, string(b), "PRIVATE KEY")
	assert.Equal(t, before, treeHashes(t, src))
}

// FIFOs, devices and huge sparse JSON files never hang or exhaust memory:
// each is refused with an error naming it.
func TestOpenRefusesSpecialAndHugeFiles(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) string // returns the offending path
		want  error
	}{
		{"FIFO as weights", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "unet", "diffusion_pytorch_model.safetensors")
			require.NoError(t, os.Remove(p))
			require.NoError(t, syscall.Mkfifo(p, 0o644))
			return p
		}, folder.ErrNotRegular},
		{"FIFO as model_index.json", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, ModelIndexFile)
			require.NoError(t, os.Remove(p))
			require.NoError(t, syscall.Mkfifo(p, 0o644))
			return p
		}, folder.ErrNotRegular},
		{"FIFO as tokenizer file", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "tokenizer", "merges.txt")
			require.NoError(t, os.Remove(p))
			require.NoError(t, syscall.Mkfifo(p, 0o644))
			return p
		}, folder.ErrNotRegular},
		{"/dev/zero as a config", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "unet", "config.json")
			require.NoError(t, os.Remove(p))
			require.NoError(t, os.Symlink("/dev/zero", p))
			return p
		}, folder.ErrOutsideLink},
		{"sparse 6 GB model_index.json", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, ModelIndexFile)
			require.NoError(t, os.Truncate(p, 6<<30))
			return p
		}, folder.ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := materialize(t, "sd15", synthetic)
			bad := tt.setup(t, src)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := within5s(t, func() (*Pipeline, error) { return Open(context.Background(), src) })
			runtime.ReadMemStats(&after)
			require.ErrorIs(t, err, tt.want)
			assert.Contains(t, err.Error(), bad)
			assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(64<<20), "memory stays bounded")
			// Opting in to outside links never makes a special file readable.
			_, err = within5s(t, func() (*Pipeline, error) {
				return OpenWith(context.Background(), src, OpenOptions{AllowOutsideLinks: true})
			})
			require.Error(t, err)
		})
	}
}

// The Hugging Face cache keeps a snapshot's files as links to
// ../../blobs/<sha>: such a folder opens, saves and validates as usual.
func TestHuggingFaceCacheSnapshotSaves(t *testing.T) {
	plain := materialize(t, "sd15", synthetic)
	snap, err := pipelinetest.HFCacheSnapshot(plain, filepath.Join(t.TempDir(), "hub"), "models--org--sd15", "3f1e5c6a")
	require.NoError(t, err)

	p, err := Open(context.Background(), snap)
	require.NoError(t, err)
	dst := filepath.Join(t.TempDir(), "out")
	_, err = Save(context.Background(), p, dst, SaveOptions{MaxShardSize: 20})
	require.NoError(t, err)
	out, err := Open(context.Background(), dst)
	require.NoError(t, err)
	r, err := Validate(context.Background(), out, ValidateOptions{Against: p})
	require.NoError(t, err)
	assert.Empty(t, r.Problems)
	assert.Equal(t, treeHashes(t, plain)["tokenizer/vocab.json"], treeHashes(t, dst)["tokenizer/vocab.json"])
}

// A destination that reaches the source through a link (or a bind mount)
// is the source: it is refused, also with --overwrite, and the source keeps
// every file.
func TestSaveNeverReplacesTheSourceThroughALink(t *testing.T) {
	src := materialize(t, "sd15", synthetic)
	before := treeHashes(t, src)
	p, err := Open(context.Background(), src)
	require.NoError(t, err)
	tmp := t.TempDir()
	linkToSrc := filepath.Join(tmp, "link")
	require.NoError(t, os.Symlink(src, linkToSrc))
	linkToParent := filepath.Join(tmp, "parent")
	require.NoError(t, os.Symlink(filepath.Dir(src), linkToParent))

	for _, dst := range []string{
		linkToSrc,
		filepath.Join(linkToSrc, "unet", "out"),
		filepath.Join(linkToParent, filepath.Base(src)),
		filepath.Join(linkToParent, filepath.Base(src), "..", filepath.Base(src)),
		linkToParent, // holds the source
	} {
		_, err := Save(context.Background(), p, dst, SaveOptions{Overwrite: true})
		assert.ErrorIs(t, err, ErrInsideSource, dst)
		_, err = SaveDestination(p, dst, "")
		if !strings.HasSuffix(dst, "parent") {
			assert.ErrorIs(t, err, ErrInsideSource, dst)
		}
	}
	assert.Equal(t, before, treeHashes(t, src), "the source is untouched")
}

// bindMount mounts dir on target, or skips the test where mounting is not
// allowed (not root, or no CAP_SYS_ADMIN in the sandbox).
func bindMount(t *testing.T, dir, target string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(target, 0o755))
	if out, err := exec.Command("mount", "--bind", dir, target).CombinedOutput(); err != nil {
		t.Skipf("bind mounts are not available here: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", target).Run() })
}

func TestSaveSeesTheSourceThroughABindMount(t *testing.T) {
	src := materialize(t, "sd15", synthetic)
	before := treeHashes(t, src)
	p, err := Open(context.Background(), src)
	require.NoError(t, err)
	alias := filepath.Join(t.TempDir(), "alias")
	bindMount(t, src, alias)

	_, err = Save(context.Background(), p, alias, SaveOptions{Overwrite: true})
	assert.ErrorIs(t, err, ErrInsideSource)
	_, err = Save(context.Background(), p, filepath.Join(alias, "out"), SaveOptions{})
	assert.ErrorIs(t, err, ErrInsideSource)

	// A destination holding a mount of the source is never removed through it.
	dst := filepath.Join(t.TempDir(), "dst")
	bindMount(t, src, filepath.Join(dst, "mnt"))
	_, err = Save(context.Background(), p, dst, SaveOptions{Overwrite: true})
	assert.ErrorIs(t, err, ErrInsideSource)
	assert.Equal(t, before, treeHashes(t, src), "the source is untouched")
}

// A shard the index names but the folder lacks is named as missing, not as
// a raw stat error.
func TestMissingShardIsNamed(t *testing.T) {
	src := filepath.Join(t.TempDir(), "sd15")
	_, err := pipelinetest.WriteSD15(context.Background(), src, pipelinetest.Options{Scale: 0.001, Seed: 2, MaxShardSize: 200 << 10})
	require.NoError(t, err)
	shards, err := filepath.Glob(filepath.Join(src, "unet", "diffusion_pytorch_model-*-of-*.safetensors"))
	require.NoError(t, err)
	require.NotEmpty(t, shards)
	require.NoError(t, os.Remove(shards[len(shards)-1]))
	p, err := Open(context.Background(), src)
	require.NoError(t, err)
	main := p.Component("unet").Main()
	require.Error(t, main.Err)
	assert.ErrorIs(t, main.Err, tensors.ErrMissingShard)
	assert.Equal(t, "unet/"+filepath.Base(shards[len(shards)-1])+" is missing: diffusion_pytorch_model.safetensors.index.json names it", main.Err.Error())
	assert.ErrorIs(t, main.Err, fs.ErrNotExist)
}

// A folder named by a path relative to the working directory opens, saves
// and validates as one named by an absolute path.
func TestOpenARelativePath(t *testing.T) {
	base := t.TempDir()
	_, err := pipelinetest.WriteSD15(context.Background(), filepath.Join(base, "sd15"), pipelinetest.Options{Scale: 0.001, Seed: 3})
	require.NoError(t, err)
	t.Chdir(base)
	p, err := Open(context.Background(), "sd15")
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(base, "sd15"), p.Dir)
	_, err = Save(context.Background(), p, "out", SaveOptions{Variant: "fp16"})
	require.NoError(t, err)
	out, err := Open(context.Background(), "out")
	require.NoError(t, err)
	r, err := Validate(context.Background(), out, ValidateOptions{Against: p})
	require.NoError(t, err)
	assert.True(t, r.OK(), "%v", r.Problems)
}
