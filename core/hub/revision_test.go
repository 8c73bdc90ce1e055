package hub_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/hub"
	"modelpub/core/hub/hubemu"
)

// emulatorWith starts an emulator with alice's token and opts.
func emulatorWith(t *testing.T, opts hubemu.Options) (*hubemu.Server, *hub.Client) {
	t.Helper()
	opts.Dir = t.TempDir()
	opts.Tokens = map[string]string{token: "alice", "hf_bobtoken": "bob"}
	opts.Record = true
	srv, err := hubemu.New(opts)
	require.NoError(t, err)
	_, err = srv.Start("")
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	var logs bytes.Buffer
	return srv, newClient(t, srv, &logs)
}

// uploadLFS puts data on the Hub for id as an LFS object and returns the
// operation that commits it at path.
func uploadLFS(t *testing.T, c *hub.Client, id hub.RepoID, path string, data []byte) hub.AddLFS {
	t.Helper()
	sum := sha256.Sum256(data)
	oid := hex.EncodeToString(sum[:])
	acts, err := c.LFSBatch(context.Background(), id, "main", []hub.LFSObject{{OID: oid, Size: int64(len(data))}})
	require.NoError(t, err)
	require.NoError(t, c.UploadLFSObject(context.Background(), id, acts[0], bytes.NewReader(data), hub.LFSUploadOptions{}))
	return hub.AddLFS{Path: path, OID: oid, Size: int64(len(data))}
}

func TestRevision(t *testing.T) {
	ctx := context.Background()
	_, c := emulatorWith(t, hubemu.Options{})
	id := hub.RepoID{Namespace: "alice", Name: "m"}
	_, err := c.CreateRepo(ctx, id, hub.CreateRepoOptions{Private: true})
	require.NoError(t, err)
	before := time.Now().Add(-time.Minute)
	ci, err := c.Commit(ctx, id, "main", hub.CommitOptions{Summary: "Add the weights", Description: "long text"},
		[]hub.Operation{hub.AddBytes("a.txt", []byte("a"))})
	require.NoError(t, err)

	rev, err := c.Revision(ctx, id, "")
	require.NoError(t, err)
	assert.Equal(t, "alice/m", rev.Repo)
	assert.Equal(t, "main", rev.Rev)
	assert.True(t, rev.Private)
	assert.Equal(t, ci.OID, rev.Head.ID)
	assert.Equal(t, "Add the weights", rev.Head.Title)
	assert.Equal(t, "long text", rev.Head.Message)
	assert.Equal(t, []string{"alice"}, rev.Head.Authors)
	assert.True(t, rev.Head.Date.After(before), "%v", rev.Head.Date)

	commits, err := c.ListCommits(ctx, id, "main", 0)
	require.NoError(t, err)
	require.Len(t, commits, 2)
	assert.Equal(t, "initial commit", commits[1].Title)

	// Missing things, as states the caller tests with errors.Is.
	_, err = c.Revision(ctx, hub.RepoID{Namespace: "alice", Name: "absent"}, "")
	assert.ErrorIs(t, err, hub.ErrRepoNotFound)
	_, err = c.Revision(ctx, id, "no-such-branch")
	assert.ErrorIs(t, err, hub.ErrRevisionNotFound)
	bob, err := hub.NewClient(hub.Options{Endpoint: c.Endpoint(), Token: "hf_bobtoken"})
	require.NoError(t, err)
	_, err = bob.Revision(ctx, id, "")
	assert.ErrorIs(t, err, hub.ErrRepoNotFound, "a private repo is not found by others")
	anon, err := hub.NewClient(hub.Options{Endpoint: c.Endpoint()})
	require.NoError(t, err)
	_, err = anon.Revision(ctx, id, "")
	assert.ErrorIs(t, err, hub.ErrRepoNotFound, "nor anonymously (401 on a repo URL)")
}

func TestListCommitsPages(t *testing.T) {
	ctx := context.Background()
	_, c := emulatorWith(t, hubemu.Options{})
	id := hub.RepoID{Namespace: "alice", Name: "m"}
	_, err := c.CreateRepo(ctx, id, hub.CreateRepoOptions{})
	require.NoError(t, err)
	for i := 0; i < 4; i++ {
		_, err := c.Commit(ctx, id, "main", hub.CommitOptions{Summary: fmt.Sprint("c", i)}, []hub.Operation{hub.AddBytes("f.txt", []byte{byte(i)})})
		require.NoError(t, err)
	}
	all, err := c.ListCommits(ctx, id, "", 0)
	require.NoError(t, err)
	require.Len(t, all, 5)
	assert.Equal(t, "c3", all[0].Title)
	some, err := c.ListCommits(ctx, id, "", 2)
	require.NoError(t, err)
	assert.Equal(t, all[:2], some)
}

func TestListTreeWholeRevision(t *testing.T) {
	ctx := context.Background()
	srv, c := emulatorWith(t, hubemu.Options{TreePageSize: 2})
	id := hub.RepoID{Namespace: "alice", Name: "m"}
	_, err := c.CreateRepo(ctx, id, hub.CreateRepoOptions{})
	require.NoError(t, err)
	weights := bytes.Repeat([]byte{7}, 5000)
	ops := []hub.Operation{uploadLFS(t, c, id, "unet/w.safetensors", weights),
		hub.AddBytes("unet/config.json", []byte("{}")), hub.AddBytes("README.md", []byte("---\nlicense: mit\n---\n"))}
	first, err := c.Commit(ctx, id, "main", hub.CommitOptions{Summary: "first"}, ops)
	require.NoError(t, err)
	second, err := c.Commit(ctx, id, "main", hub.CommitOptions{Summary: "second"}, []hub.Operation{hub.AddBytes("README.md", []byte("---\nlicense: apache-2.0\n---\n"))})
	require.NoError(t, err)

	srv.ResetRequests()
	entries, err := c.ListTreeWith(ctx, id, "main", hub.TreeOptions{Recursive: true, Expand: true})
	require.NoError(t, err)
	pages := 0
	for _, r := range srv.Requests() {
		if r.Class == hubemu.ClassTree {
			pages++
		}
	}
	assert.Equal(t, 3, pages, "5 entries, 2 per page: the Link header was followed")
	byPath := map[string]hub.TreeEntry{}
	for _, e := range entries {
		byPath[e.Path] = e
	}
	require.Len(t, byPath, 5, "%v", entries) // .gitattributes README.md unet unet/config.json unet/w.safetensors
	w := byPath["unet/w.safetensors"]
	assert.Equal(t, "file", w.Type)
	assert.Equal(t, int64(5000), w.Size)
	require.NotNil(t, w.LFS)
	assert.Equal(t, ops[0].(hub.AddLFS).OID, w.LFS.OID)
	assert.Nil(t, byPath["unet/config.json"].LFS)
	assert.Equal(t, int64(2), byPath["unet/config.json"].Size)
	assert.Equal(t, "directory", byPath["unet"].Type)
	require.NotNil(t, byPath["README.md"].LastCommit)
	assert.Equal(t, second.OID, byPath["README.md"].LastCommit.ID)
	assert.Equal(t, "second", byPath["README.md"].LastCommit.Title)
	assert.Equal(t, first.OID, byPath["unet"].LastCommit.ID)
	assert.False(t, byPath["unet"].LastCommit.Date.IsZero())

	plain, err := c.ListTree(ctx, id, "", "unet", false)
	require.NoError(t, err)
	assert.Len(t, plain, 2)
	assert.Nil(t, plain[0].LastCommit)
	_, err = c.ListTree(ctx, id, "", "nope", true)
	assert.ErrorIs(t, err, hub.ErrEntryNotFound)
	_, err = c.ListTree(ctx, id, "nope", "", true)
	assert.ErrorIs(t, err, hub.ErrRevisionNotFound)
}

// TestCommitDeletions: deletedFile and deletedFolder lines, applied by the
// emulator on a branch, on main and in a pull request.
func TestCommitDeletions(t *testing.T) {
	ctx := context.Background()
	_, c := emulatorWith(t, hubemu.Options{})
	id := hub.RepoID{Namespace: "alice", Name: "m"}
	_, err := c.CreateRepo(ctx, id, hub.CreateRepoOptions{})
	require.NoError(t, err)
	_, err = c.Commit(ctx, id, "main", hub.CommitOptions{Summary: "files"}, []hub.Operation{
		hub.AddBytes("keep.txt", []byte("k")), hub.AddBytes("old.txt", []byte("o")),
		hub.AddBytes("logs/a.txt", []byte("a")), hub.AddBytes("logs/sub/b.txt", []byte("b"))})
	require.NoError(t, err)
	require.NoError(t, c.CreateBranch(ctx, id, "dev", ""))

	files := func(rev string) []string {
		entries, err := c.ListTree(ctx, id, rev, "", true)
		require.NoError(t, err)
		var out []string
		for _, e := range entries {
			if e.Type == "file" {
				out = append(out, e.Path)
			}
		}
		return out
	}
	del := []hub.Operation{hub.DeleteFile{Path: "old.txt"}, hub.DeleteFolder{Path: "logs"}, hub.AddBytes("new.txt", []byte("n"))}
	after := []string{".gitattributes", "keep.txt", "new.txt"}
	before := []string{".gitattributes", "keep.txt", "logs/a.txt", "logs/sub/b.txt", "old.txt"}

	pr, err := c.Commit(ctx, id, "main", hub.CommitOptions{Summary: "clean up", CreatePR: true}, del)
	require.NoError(t, err)
	assert.Equal(t, after, files(pr.PRRevision))
	assert.Equal(t, before, files("main"), "a pull request leaves main alone")

	_, err = c.Commit(ctx, id, "dev", hub.CommitOptions{Summary: "clean up"}, del)
	require.NoError(t, err)
	assert.Equal(t, after, files("dev"))
	assert.Equal(t, before, files("main"))

	_, err = c.Commit(ctx, id, "main", hub.CommitOptions{Summary: "clean up"}, del)
	require.NoError(t, err)
	assert.Equal(t, after, files("main"))
	_, err = c.ReadFile(ctx, id, "main", "old.txt")
	assert.ErrorIs(t, err, hub.ErrEntryNotFound)

	// Deleting what is not there is the Hub's 404 EntryNotFound.
	_, err = c.Commit(ctx, id, "main", hub.CommitOptions{Summary: "again"}, []hub.Operation{hub.DeleteFile{Path: "old.txt"}})
	assert.ErrorIs(t, err, hub.ErrEntryNotFound)
}

// TestCommitDeletionLostAnswer: a deletion whose answer is lost is found
// landed (the file is gone) and not sent twice.
func TestCommitDeletionLostAnswer(t *testing.T) {
	ctx := context.Background()
	srv, c := emulatorWith(t, hubemu.Options{})
	id := hub.RepoID{Namespace: "alice", Name: "m"}
	_, err := c.CreateRepo(ctx, id, hub.CreateRepoOptions{})
	require.NoError(t, err)
	_, err = c.Commit(ctx, id, "main", hub.CommitOptions{}, []hub.Operation{hub.AddBytes("old.txt", []byte("o"))})
	require.NoError(t, err)
	spec, err := hubemu.ParseFaults("first=1,kinds=lost,endpoints=commit")
	require.NoError(t, err)
	srv.SetFaults(spec)
	ci, err := c.Commit(ctx, id, "main", hub.CommitOptions{Summary: "rm"}, []hub.Operation{hub.DeleteFile{Path: "old.txt"}})
	require.NoError(t, err)
	rev, err := c.Revision(ctx, id, "main")
	require.NoError(t, err)
	assert.Equal(t, rev.Head.ID, ci.OID)
	assert.Equal(t, "rm", rev.Head.Title)
}

func TestValidateYAML(t *testing.T) {
	ctx := context.Background()
	_, c := emulatorWith(t, hubemu.Options{})
	rep, err := c.ValidateYAML(ctx, "---\nlicense: mit\nlibrary_name: diffusers\n---\n# x\n", hub.Model)
	require.NoError(t, err)
	assert.Empty(t, rep.Errors)
	assert.Empty(t, rep.Warnings)

	rep, err = c.ValidateYAML(ctx, "# no metadata\n", "")
	require.NoError(t, err)
	assert.Equal(t, []string{hubemu.NoMetadataWarning}, rep.Warnings)

	rep, err = c.ValidateYAML(ctx, "---\nlicense: apache2\ntags: [1]\n---\n", hub.Model)
	require.ErrorIs(t, err, hub.ErrBadRequest)
	require.NotNil(t, rep)
	assert.Len(t, rep.Errors, 2)
	assert.Contains(t, err.Error(), "apache2")
	var he *hub.Error
	require.ErrorAs(t, err, &he)
	assert.Equal(t, 400, he.StatusCode)
}

// TestCommitInvalidReadmeRefused: the emulator refuses a README.md commit
// whose metadata the Hub would refuse, as a 400 the client types.
func TestCommitInvalidReadmeRefused(t *testing.T) {
	ctx := context.Background()
	_, c := emulatorWith(t, hubemu.Options{})
	id := hub.RepoID{Namespace: "alice", Name: "m"}
	_, err := c.CreateRepo(ctx, id, hub.CreateRepoOptions{})
	require.NoError(t, err)
	_, err = c.Commit(ctx, id, "main", hub.CommitOptions{}, []hub.Operation{hub.AddBytes("README.md", []byte("---\nlicense: nope\n---\n"))})
	require.ErrorIs(t, err, hub.ErrBadRequest)
	assert.Contains(t, err.Error(), "README.md")
	_, err = c.ReadFile(ctx, id, "", "README.md")
	assert.ErrorIs(t, err, hub.ErrEntryNotFound)
}
