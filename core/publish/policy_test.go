//go:build unix

package publish_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/folder"
	"modelpub/core/hub/hubemu"
	"modelpub/core/pipeline/pipelinetest"
	"modelpub/core/publish"
)

// emulatorHolds reports whether any file the emulator stores contains b.
func emulatorHolds(t *testing.T, srv *hubemu.Server, dir string, b []byte) bool {
	t.Helper()
	found := false
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(data), string(b)) {
			found = true
		}
		return nil
	}))
	return found
}

// A model folder whose tokenizer file links to a secret outside it is
// refused before anything is staged or sent: the secret never reaches the
// Hub, as the staged copy or uploaded as it is.
func TestPublishNeverSendsWhatLinksOutside(t *testing.T) {
	hubDir := t.TempDir()
	srv, err := hubemu.New(hubemu.Options{Dir: hubDir, Tokens: map[string]string{aliceTok: "alice"}})
	require.NoError(t, err)
	_, err = srv.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })

	secret := []byte("-----BEGIN OPENSSH PRIVATE KEY----- do not publish")
	keyFile := filepath.Join(t.TempDir(), "id_ed25519")
	require.NoError(t, os.WriteFile(keyFile, secret, 0o600))
	src := sd15(t, pipelinetest.Options{Seed: 3})
	require.NoError(t, os.Symlink(keyFile, filepath.Join(src, "tokenizer", "added_tokens.txt")))

	for _, variant := range []string{"", "fp16"} { // as it is, and staged
		o := options(t, srv, src, "alice/leak", nil)
		o.Variant = variant
		_, err := publish.Run(context.Background(), o)
		require.ErrorIs(t, err, folder.ErrOutsideLink)
		assert.Contains(t, err.Error(), "added_tokens.txt")
		assert.Contains(t, err.Error(), keyFile)
	}
	assert.False(t, emulatorHolds(t, srv, hubDir, secret), "the secret is not on the Hub")
	assert.Zero(t, countClass(srv, hubemu.ClassCommit))
}

// A snapshot of the Hugging Face cache (files linked into ../../blobs) is a
// normal model folder: it publishes, and the Hub gets the files' bytes.
func TestPublishFromTheHuggingFaceCache(t *testing.T) {
	srv := startHub(t)
	plain := sd15(t, pipelinetest.Options{Seed: 4})
	snap, err := pipelinetest.HFCacheSnapshot(plain, filepath.Join(t.TempDir(), "hub"), "models--someone--sd15", "9b1c0de")
	require.NoError(t, err)

	for _, variant := range []string{"", "fp16"} {
		o := options(t, srv, snap, "alice/cached-"+map[string]string{"": "as-is", "fp16": "fp16"}[variant], nil)
		o.Variant = variant
		_, err := publish.Run(context.Background(), o)
		require.NoError(t, err)
		want, err := os.ReadFile(filepath.Join(plain, "unet", "config.json"))
		require.NoError(t, err)
		assert.Equal(t, want, download(t, srv.URL(), o.Repo, "main", "unet/config.json"))
	}
}
