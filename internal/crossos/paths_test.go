package crossos

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/hub"
	"modelpub/core/hub/hubemu"
	"modelpub/core/pipeline"
	"modelpub/core/pipeline/pipelinetest"
)

// longFolder returns a folder under root whose full path is longer than
// Windows' old 260-character limit (MAX_PATH), not created.
func longFolder(t *testing.T, root string) string {
	t.Helper()
	p := root
	for i := 0; len(p) <= 300; i++ {
		p = filepath.Join(p, strings.Repeat(string(rune('a'+i%26)), 40))
	}
	return filepath.Join(p, "saved")
}

// uncFolder returns the UNC form (\\server\share\...) of the local folder
// p, through the share of drive C: that MODELPUB_TEST_UNC names (make
// test-windows gives Wine one, \\modelpub-unc\c; on Windows an
// administrator can use \\localhost\C$), or skips.
func uncFolder(t *testing.T, p string) string {
	t.Helper()
	if runtime.GOOS != "windows" {
		t.Skip("UNC paths are Windows paths")
	}
	share := os.Getenv("MODELPUB_TEST_UNC")
	if share == "" {
		t.Skip(`set MODELPUB_TEST_UNC to a share of drive C: (e.g. \\localhost\C$); make test-windows gives Wine one`)
	}
	vol := filepath.VolumeName(p)
	if !strings.EqualFold(vol, "C:") {
		t.Skipf("the temporary folder %s is not on drive C:", p)
	}
	return strings.TrimRight(share, `\`) + p[len(vol):]
}

// TestSaveAndPublishOddPaths saves the synthetic pipeline into folders
// with odd paths (a drive letter and \ on Windows, or / after the drive
// letter, more than 260 characters, a UNC share), reads the saved folder
// back there (open, validate against the source), and uploads it to the
// emulator: the same files on every OS and path, and repo paths with / on
// the wire.
func TestSaveAndPublishOddPaths(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	src := filepath.Join(root, "src")
	_, err := pipelinetest.WriteSD15(ctx, src, pipelinetest.Options{Scale: 0.001, Seed: 7})
	require.NoError(t, err)
	p, err := pipeline.Open(ctx, src)
	require.NoError(t, err)
	plain := filepath.Join(root, "plain")
	_, err = pipeline.Save(ctx, p, plain, pipeline.SaveOptions{MaxShardSize: 10 << 20})
	require.NoError(t, err)
	want := hashTree(t, plain)
	require.Contains(t, strings.Join(want, "\n"), "unet/diffusion_pytorch_model.safetensors ")

	s, err := hubemu.New(hubemu.Options{Tokens: map[string]string{"hf_crossosTokenForPathsTest0000000000": "alice"}})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	url, err := s.Start("127.0.0.1:0")
	require.NoError(t, err)
	client, err := hub.NewClient(hub.Options{Endpoint: url, Token: "hf_crossosTokenForPathsTest0000000000"})
	require.NoError(t, err)

	tests := []struct {
		name string
		dst  func(t *testing.T) string
	}{
		{"longer than 260 characters", func(t *testing.T) string { return longFolder(t, filepath.Join(root, "long")) }},
		{"written with / (C:/Users/... on Windows)", func(t *testing.T) string { return filepath.ToSlash(filepath.Join(root, "slashes")) }},
		{"UNC share", func(t *testing.T) string { return uncFolder(t, filepath.Join(root, "unc")) }},
		{"UNC share, longer than 260 characters", func(t *testing.T) string {
			return longFolder(t, uncFolder(t, filepath.Join(root, "unclong")))
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := tt.dst(t)
			if strings.Contains(tt.name, "260") {
				require.Greater(t, len(dst), 260)
			}
			require.NoError(t, os.MkdirAll(filepath.Dir(dst), 0o755))
			_, err := pipeline.Save(ctx, p, dst, pipeline.SaveOptions{MaxShardSize: 10 << 20})
			require.NoError(t, err)
			assert.Equal(t, want, hashTree(t, dst), "the same files as a save into a short path")

			saved, err := pipeline.Open(ctx, dst)
			require.NoError(t, err)
			r, err := pipeline.Validate(ctx, saved, pipeline.ValidateOptions{Against: p})
			require.NoError(t, err)
			assert.True(t, r.OK(), "%v", r.Problems)

			repo := hub.RepoID{Namespace: "alice", Name: "paths-" + string(rune('a'+i))}
			_, err = client.CreateRepo(ctx, repo, hub.CreateRepoOptions{})
			require.NoError(t, err)
			_, err = client.UploadFolder(ctx, repo, dst, hub.UploadOptions{})
			require.NoError(t, err)
			tree, err := client.ListTree(ctx, repo, "main", "", true)
			require.NoError(t, err)
			var got []string
			for _, e := range tree {
				if e.Type == "file" && e.Path != ".gitattributes" {
					got = append(got, e.Path)
				}
			}
			var wantPaths []string
			for _, line := range want {
				wantPaths = append(wantPaths, strings.Fields(line)[0])
			}
			assert.ElementsMatch(t, wantPaths, got, "repo paths with / on the wire")
			assert.Contains(t, got, "unet/diffusion_pytorch_model.safetensors")
		})
	}
}
