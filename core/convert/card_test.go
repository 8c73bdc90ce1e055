package convert

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/card"
	"modelpub/core/convert/converttest"
	"modelpub/core/hub"
	"modelpub/core/pipeline"
	"modelpub/internal/ostest"
)

// The converted folder's README.md is core/card's generated card with the
// checkpoint's file name, size and sha256 (of the whole file, computed
// here independently); publishing keeps it (card.ForFolder: the folder's
// body wins).
func TestConvertCardNamesTheSource(t *testing.T) {
	cases := []struct {
		name       string
		file       string
		write      func(t *testing.T, path string)
		opts       Options
		wantName   string // as the card writes it
		wantType   string
		wantVerify bool
	}{
		{
			name: "sd15", file: "v1-5-pruned-emaonly.safetensors",
			write: func(t *testing.T, p string) {
				converttest.WriteSafetensors(t, p, converttest.SD15(converttest.Options{}))
			},
			wantName: "`v1-5-pruned-emaonly.safetensors`", wantType: "Stable Diffusion 1.x", wantVerify: true,
		},
		{
			name: "flux without verify, backticks in the name", file: "flux `dev` | v1.safetensors",
			write: func(t *testing.T, p string) {
				converttest.WriteSafetensors(t, p, converttest.Flux(true, converttest.Options{}))
			},
			opts:     Options{SkipVerify: true},
			wantName: "`` flux `dev` \\| v1.safetensors ``", wantType: "FLUX.1 dev",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ostest.SkipUnlessNameFits(t, tc.file)
			dir := t.TempDir()
			src := filepath.Join(dir, tc.file)
			tc.write(t, src)
			raw, err := os.ReadFile(src)
			require.NoError(t, err)
			sum := sha256.Sum256(raw)
			wantSum := hex.EncodeToString(sum[:])

			out := filepath.Join(dir, "my-model")
			res, err := Convert(context.Background(), src, out, tc.opts)
			require.NoError(t, err)
			assert.Equal(t, SourceFile{Name: tc.file, Size: int64(len(raw)), SHA256: wantSum}, res.Source)
			assert.Contains(t, res.Files, card.FileName)

			data, err := os.ReadFile(filepath.Join(out, card.FileName))
			require.NoError(t, err)
			c, err := card.Parse(data)
			require.NoError(t, err)
			assert.Empty(t, c.Validate(), "the card passes core/card's checks")
			assert.Equal(t, "diffusers", c.Metadata().LibraryName)
			body := c.Body()
			assert.Contains(t, body, "# my-model\n", "titled after the output folder")
			assert.Contains(t, body, card.PlaceholderNamespace+"/my-model")
			assert.Contains(t, body, "## Source\n")
			assert.Contains(t, body, "| "+tc.wantName+" | ")
			assert.Contains(t, body, "`"+wantSum+"`")
			assert.Contains(t, body, tc.wantType)
			assert.Equal(t, tc.wantVerify, strings.Contains(body, "every tensor was checked against the checkpoint's bytes"))
			assert.True(t, strings.HasSuffix(body, "Published with Modelpub.\n"), "the section goes before the last line")
			assert.NotContains(t, string(data), dir, "no local path in the card")

			p, err := pipeline.Open(context.Background(), out)
			require.NoError(t, err)
			pub, generated, err := card.ForFolder(p, card.GenerateOptions{RepoID: "someone/my-model", License: "openrail"})
			require.NoError(t, err)
			assert.False(t, generated)
			assert.Contains(t, card.FollowRepo(pub.Body(), "someone/my-model"), `"someone/my-model"`)
			assert.Contains(t, pub.Body(), wantSum, "publishing keeps the source section")
		})
	}
}

// A failed conversion stops the hash with it: nothing is left, and the
// error is the conversion's.
func TestConvertCardHashStopsOnFailure(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "m.safetensors")
	converttest.WriteSafetensors(t, src, converttest.SD15(converttest.Options{}))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Convert(ctx, src, filepath.Join(dir, "out"), Options{})
	require.ErrorIs(t, err, context.Canceled)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1)
}

func TestMDCode(t *testing.T) {
	for in, want := range map[string]string{
		"a.safetensors": "`a.safetensors`",
		"a`b":           "`` a`b ``",
		"a``b`":         "``` a``b` ```",
		"a\nb":          "`\"a\\nb\"`",
	} {
		assert.Equal(t, want, mdCode(in), "mdCode(%q)", in)
	}
}

// With a hash cache, a checkpoint converted before is not hashed again:
// the card takes the sha256 the cache holds for the unchanged file (here
// edited in the cache file, so only a cache hit can produce it), and a
// changed file (new modification time) is hashed again.
func TestConvertCardHashFromCache(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "m.safetensors")
	converttest.WriteSafetensors(t, src, converttest.SD15(converttest.Options{}))
	raw, err := os.ReadFile(src)
	require.NoError(t, err)
	sum := sha256.Sum256(raw)
	real := hex.EncodeToString(sum[:])
	cachePath := filepath.Join(dir, "cache", "hashes.json")
	convertWith := func(out string) SourceFile {
		hc, err := hub.OpenHashCache(cachePath)
		require.NoError(t, err)
		res, err := Convert(context.Background(), src, filepath.Join(dir, out), Options{SkipVerify: true, HashCache: hc})
		require.NoError(t, err)
		require.NoError(t, hc.Save())
		return res.Source
	}

	require.Equal(t, real, convertWith("first").SHA256, "a cold cache hashes the file")
	stored, err := os.ReadFile(cachePath)
	require.NoError(t, err)
	require.Contains(t, string(stored), real, "the sha256 is kept for the next conversion")

	planted := strings.Repeat("ab", 32)
	require.NoError(t, os.WriteFile(cachePath, []byte(strings.ReplaceAll(string(stored), real, planted)), 0o644))
	got := convertWith("second")
	assert.Equal(t, planted, got.SHA256, "an unchanged checkpoint is taken from the cache, not read")
	assert.Equal(t, int64(len(raw)), got.Size)
	readme, err := os.ReadFile(filepath.Join(dir, "second", card.FileName))
	require.NoError(t, err)
	assert.Contains(t, string(readme), planted)

	later := time.Now().Add(time.Hour)
	require.NoError(t, os.Chtimes(src, later, later))
	assert.Equal(t, real, convertWith("third").SHA256, "a changed file is hashed again")
}

// While the card waits for the checkpoint's hash, the bytes hashed are
// reported as the "hash" step, and the wait ends with the hash.
func TestSourceHashWaitReports(t *testing.T) {
	h := &sourceHash{done: make(chan struct{}), src: SourceFile{Name: "m.safetensors", Size: 1000, SHA256: "ab"}}
	h.read.Store(400)
	var mu sync.Mutex
	var seen [][2]int64
	got := make(chan SourceFile)
	go func() {
		src, err := h.wait(1000, func(done, total int64) {
			mu.Lock()
			seen = append(seen, [2]int64{done, total})
			mu.Unlock()
		})
		assert.NoError(t, err)
		got <- src
	}()
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) > 0 }, 5*time.Second, 10*time.Millisecond)
	close(h.done)
	assert.Equal(t, "ab", (<-got).SHA256)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, [2]int64{400, 1000}, seen[0])
}
