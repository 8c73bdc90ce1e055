package hub_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/hub"
	"modelpub/core/hub/hubemu"
)

// files lists the files of repo at rev, path → size.
func files(t *testing.T, c *hub.Client, id hub.RepoID, rev string) map[string]int64 {
	t.Helper()
	entries, err := c.ListTree(context.Background(), id, rev, "", true)
	require.NoError(t, err)
	out := map[string]int64{}
	for _, e := range entries {
		if e.Type == "file" {
			out[e.Path] = e.Size
		}
	}
	return out
}

// commitOps returns the operations of the commits the emulator accepted
// since the last reset, and the LFS bytes it received.
func commitOps(srv *hubemu.Server) (ops []hubemu.CommitOp, commits int, lfsBytes int64) {
	for _, r := range srv.Requests() {
		switch {
		case r.Class == hubemu.ClassCommit && r.Status == 200:
			commits++
			ops = append(ops, r.Commit...)
		case r.Class == hubemu.ClassLFSUpload && r.Status == 200:
			lfsBytes += r.BodySize
		}
	}
	return ops, commits, lfsBytes
}

// UploadFolder deletes the paths of UploadOptions.Delete in the commit
// that adds the folder's files: one commit, new files and deletions
// together; a commit of deletions alone is made; the report matches what
// the emulator received.
func TestUploadFolderDeletesInTheSameCommit(t *testing.T) {
	ctx := context.Background()
	srv := startEmulator(t, "")
	var logs bytes.Buffer
	c := newClient(t, srv, &logs)
	id, err := hub.ParseRepoID("alice/relayout")
	require.NoError(t, err)
	_, err = c.CreateRepo(ctx, id, hub.CreateRepoOptions{})
	require.NoError(t, err)

	// The Hub holds an old sharded layout and a sample image.
	old := []hub.Operation{
		hub.AddBytes("unet/diffusion_pytorch_model-00001-of-00002.safetensors", []byte("shard one")),
		hub.AddBytes("unet/diffusion_pytorch_model-00002-of-00002.safetensors", []byte("shard two")),
		hub.AddBytes("unet/diffusion_pytorch_model.safetensors.index.json", []byte(`{"weight_map":{}}`)),
		hub.AddBytes("samples/x.png", []byte("\x89PNG")),
		hub.AddBytes("README.md", []byte("---\nlibrary_name: diffusers\n---\n# test\n")),
	}
	_, err = c.Commit(ctx, id, "main", hub.CommitOptions{Summary: "old layout"}, old)
	require.NoError(t, err)

	dir, local := modelFolder(t)
	cache, err := hub.OpenHashCache(filepath.Join(t.TempDir(), "hashes.json"))
	require.NoError(t, err)
	stale := []string{"unet/diffusion_pytorch_model.safetensors.index.json",
		"unet/diffusion_pytorch_model-00002-of-00002.safetensors",
		"unet/diffusion_pytorch_model-00001-of-00002.safetensors", "unet/diffusion_pytorch_model.safetensors.index.json"}
	srv.ResetRequests()
	info, err := c.UploadFolder(ctx, id, dir, hub.UploadOptions{HashCache: cache, Delete: stale})
	require.NoError(t, err)
	require.NotNil(t, info.Upload)

	want := map[string]int64{".gitattributes": 0, "samples/x.png": 4}
	for p, b := range local {
		want[p] = int64(len(b))
	}
	got := files(t, c, id, "main")
	got[".gitattributes"] = 0
	assert.Equal(t, want, got, "the new layout, the sample image, nothing stale")

	ops, commits, lfsBytes := commitOps(srv)
	assert.Equal(t, 1, commits, "one commit")
	var deleted []string
	var regular int64
	for _, op := range ops {
		switch op.Kind {
		case "deletedFile":
			deleted = append(deleted, op.Path)
		case "file":
			regular += op.Size
		}
	}
	sort.Strings(deleted)
	assert.Equal(t, []string{"unet/diffusion_pytorch_model-00001-of-00002.safetensors",
		"unet/diffusion_pytorch_model-00002-of-00002.safetensors",
		"unet/diffusion_pytorch_model.safetensors.index.json"}, deleted, "each once")
	assert.Equal(t, deleted, info.Upload.Deleted)
	assert.Equal(t, lfsBytes+regular, info.Upload.Sent, "the report counts what the Hub received")
	sent, sentBytes := info.Upload.Count(hub.FileSent)
	unchanged, _ := info.Upload.Count(hub.FileUnchanged)
	assert.Equal(t, 4, sent, "the weights and the configs")
	assert.Equal(t, 1, unchanged, "README.md is the same")
	assert.Equal(t, info.Upload.Sent, sentBytes)
	assert.Len(t, ops, sent+len(deleted))

	// Deletions alone make a commit; the files are all unchanged.
	srv.ResetRequests()
	info, err = c.UploadFolder(ctx, id, dir, hub.UploadOptions{HashCache: cache, Delete: []string{"samples/x.png"}})
	require.NoError(t, err)
	assert.False(t, info.NoChanges, "a deletion is a change")
	assert.NotContains(t, files(t, c, id, "main"), "samples/x.png")
	ops, commits, lfsBytes = commitOps(srv)
	assert.Equal(t, 1, commits)
	assert.Equal(t, []hubemu.CommitOp{{Kind: "deletedFile", Path: "samples/x.png"}}, ops)
	assert.Zero(t, lfsBytes)
	assert.Zero(t, info.Upload.Sent)
	unchanged, _ = info.Upload.Count(hub.FileUnchanged)
	assert.Equal(t, len(local), unchanged)

	// Nothing to add or delete: no commit.
	srv.ResetRequests()
	info, err = c.UploadFolder(ctx, id, dir, hub.UploadOptions{HashCache: cache})
	require.NoError(t, err)
	assert.True(t, info.NoChanges)
	_, commits, _ = commitOps(srv)
	assert.Zero(t, commits)

	// A pull request deletes in its own tree; main keeps the file.
	srv.ResetRequests()
	pr, err := c.UploadFolder(ctx, id, dir, hub.UploadOptions{HashCache: cache, CreatePR: true,
		Delete: []string{"vae/diffusion_pytorch_model.safetensors"}})
	require.Error(t, err, "the folder holds that path")
	assert.ErrorIs(t, err, hub.ErrBadRequest)
	assert.Nil(t, pr)
	assert.Empty(t, srv.Requests(), "refused before any request")
	require.NoError(t, os.Remove(filepath.Join(dir, "vae", "diffusion_pytorch_model.safetensors")))
	pr, err = c.UploadFolder(ctx, id, dir, hub.UploadOptions{HashCache: cache, CreatePR: true,
		Delete: []string{"vae/diffusion_pytorch_model.safetensors"}})
	require.NoError(t, err)
	assert.NotContains(t, files(t, c, id, pr.PRRevision), "vae/diffusion_pytorch_model.safetensors")
	assert.Contains(t, files(t, c, id, "main"), "vae/diffusion_pytorch_model.safetensors")
}

// The paths to delete are checked before any request, and an upload
// planned against a head the branch has left fails before sending anything.
func TestUploadFolderRefusals(t *testing.T) {
	ctx := context.Background()
	srv := startEmulator(t, "")
	var logs bytes.Buffer
	c := newClient(t, srv, &logs)
	id, err := hub.ParseRepoID("alice/refusals")
	require.NoError(t, err)
	_, err = c.CreateRepo(ctx, id, hub.CreateRepoOptions{})
	require.NoError(t, err)
	dir, _ := modelFolder(t)
	info, err := c.RepoInfo(ctx, id, "main")
	require.NoError(t, err)
	_, err = c.Commit(ctx, id, "main", hub.CommitOptions{Summary: "someone else"}, []hub.Operation{hub.AddBytes("NOTES.md", []byte("x"))})
	require.NoError(t, err)

	tests := []struct {
		name string
		opts hub.UploadOptions
		is   error
	}{
		{"a path outside the repo", hub.UploadOptions{Delete: []string{"../etc/passwd"}}, hub.ErrInvalidPath},
		{"a path in .git", hub.UploadOptions{Delete: []string{".git/config"}}, hub.ErrInvalidPath},
		{"a path the folder holds", hub.UploadOptions{Delete: []string{"unet/config.json"}}, hub.ErrBadRequest},
		{"a head the branch left", hub.UploadOptions{ParentCommit: info.SHA}, hub.ErrConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.ResetRequests()
			_, err := c.UploadFolder(ctx, id, dir, tt.opts)
			require.ErrorIs(t, err, tt.is)
			for _, r := range srv.Requests() {
				assert.NotContains(t, []string{hubemu.ClassLFSBatch, hubemu.ClassLFSUpload, hubemu.ClassCommit}, r.Class)
			}
		})
	}
}
