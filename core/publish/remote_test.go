package publish_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/hub"
	"modelpub/core/hub/hubemu"
	"modelpub/core/pipeline/pipelinetest"
	"modelpub/core/publish"
)

// ReadRemote shows the target as the Hub holds it: a missing repository
// or branch is a state, an existing one gives its visibility, head commit
// and files (with LFS oids), a branch to create is compared with main.
func TestReadRemote(t *testing.T) {
	ctx := context.Background()
	srv := startHub(t)
	c := client(t, srv)
	id, err := hub.ParseRepoID("alice/shown")
	require.NoError(t, err)
	_, err = c.CreateRepo(ctx, id, hub.CreateRepoOptions{Private: true})
	require.NoError(t, err)
	weights := make([]byte, 2<<10)
	weights[0] = 1
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "unet"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "model_index.json"), []byte("{}\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "unet", "diffusion_pytorch_model.safetensors"), weights, 0o644))
	before := time.Now().Add(-time.Minute)
	hc, err := hub.OpenHashCache(filepath.Join(t.TempDir(), "hashes.json"))
	require.NoError(t, err)
	_, err = c.UploadFolder(ctx, id, dir, hub.UploadOptions{CommitMessage: "Upload weights", HashCache: hc})
	require.NoError(t, err)

	tests := []struct {
		name   string
		modify func(o *publish.Options)
		check  func(t *testing.T, r *publish.Remote)
		is     error
	}{
		{"a repository to create", func(o *publish.Options) { o.Repo = "alice/not-yet" }, func(t *testing.T, r *publish.Remote) {
			assert.False(t, r.Exists)
			assert.Nil(t, r.Head)
			assert.Empty(t, r.Files)
			assert.Equal(t, "main", r.Base)
			assert.Contains(t, r.Describe(), "will be created")
		}, nil},
		{"an existing repository", func(o *publish.Options) {}, func(t *testing.T, r *publish.Remote) {
			assert.True(t, r.Exists)
			assert.True(t, r.BranchExists)
			assert.True(t, r.Private)
			assert.Equal(t, srv.URL()+"/alice/shown", r.URL)
			require.NotNil(t, r.Head)
			assert.Equal(t, "Upload weights", r.Head.Title)
			assert.Equal(t, "alice", r.Head.Author)
			assert.True(t, r.Head.Date.After(before), "%v", r.Head.Date)
			assert.Len(t, r.Head.ID, 40)
			paths := map[string]publish.RemoteFile{}
			for _, f := range r.Files {
				paths[f.Path] = f
			}
			require.Contains(t, paths, "unet/diffusion_pytorch_model.safetensors")
			w := paths["unet/diffusion_pytorch_model.safetensors"]
			assert.Equal(t, int64(len(weights)), w.Size)
			assert.Len(t, w.LFSOID, 64, "an LFS file gives its sha256")
			assert.Len(t, paths["model_index.json"].OID, 40)
			assert.Empty(t, paths["model_index.json"].LFSOID)
			assert.Contains(t, r.Describe(), `main is at `+r.Head.ID[:7]+` "Upload weights" by alice`)
		}, nil},
		{"a branch to create", func(o *publish.Options) { o.Branch = "new-layout" }, func(t *testing.T, r *publish.Remote) {
			assert.True(t, r.Exists)
			assert.False(t, r.BranchExists)
			assert.Equal(t, "new-layout", r.Revision)
			assert.Equal(t, "main", r.Base, "compared with the branch it is created from")
			assert.Len(t, r.Files, 3)
			assert.Contains(t, r.Describe(), "branch new-layout will be created")
		}, nil},
		{"a pull request", func(o *publish.Options) { o.CreatePR = true }, func(t *testing.T, r *publish.Remote) {
			assert.Equal(t, "main", r.Base)
			assert.Len(t, r.Files, 3)
		}, nil},
		{"the token's own namespace", func(o *publish.Options) { o.Repo = "shown" }, func(t *testing.T, r *publish.Remote) {
			assert.Equal(t, "alice/shown", r.Repo)
			assert.True(t, r.Exists)
		}, nil},
		{"no token", func(o *publish.Options) { o.Token = "" }, nil, publish.ErrNoToken},
		{"a wrong token", func(o *publish.Options) { o.Token = "hf_wrong" }, nil, hub.ErrUnauthorized},
		{"another user's private repository", func(o *publish.Options) { o.Token = bobTok }, func(t *testing.T, r *publish.Remote) {
			assert.False(t, r.Exists, "invisible to bob, as on the Hub")
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := options(t, srv, "unused", "alice/shown", nil)
			o.Retry.MaxRetries = -1
			tt.modify(&o)
			r, err := publish.ReadRemote(ctx, o)
			if tt.is != nil {
				require.ErrorIs(t, err, tt.is)
				return
			}
			require.NoError(t, err)
			tt.check(t, r)
		})
	}
}

// A dry run without a token reads nothing: the plan says every file is
// sent unless the Hub has it.
func TestDryRunWithoutTokenKnowsNoRemote(t *testing.T) {
	srv := startHub(t)
	src := sd15(t, pipelinetest.Options{Seed: 36})
	o := options(t, srv, src, "alice/unknown", nil)
	o.Token, o.DryRun = "", true
	res, err := publish.Run(context.Background(), o)
	require.NoError(t, err)
	assert.Empty(t, srv.Requests())
	assert.Nil(t, res.Remote)
	require.Len(t, res.Plan, len(res.Files))
	for _, e := range res.Plan {
		assert.Equal(t, publish.ChangeUnknown, e.Change, e.Path)
	}
	assert.Equal(t, len(res.Files), res.Summary.Unknown)
	assert.Equal(t, res.Bytes, res.Summary.Bytes)
}

// A branch is compared with main when it is created, and with itself
// afterwards: the stale weights of main never reach it, and main keeps
// them.
func TestRepublishOnABranch(t *testing.T) {
	ctx := context.Background()
	srv := startHub(t)
	src := sd15(t, pipelinetest.Options{Seed: 37})
	o := options(t, srv, src, "alice/branched", nil)
	o.KeepStaging = true
	a := layoutA(t, srv, o)
	mainTree := remoteTree(t, srv, "alice/branched", "main")

	o.MaxShardSize, o.Variant, o.Branch = 0, "", "one-file"
	res, err := publish.Run(ctx, o)
	require.NoError(t, err)
	assert.False(t, res.Remote.BranchExists)
	assert.Equal(t, "main", res.Remote.Base)
	tree := remoteTree(t, srv, "alice/branched", "one-file")
	assert.Equal(t, publishedWeights(res), weightsOf(tree))
	assert.Contains(t, tree, "samples/x.png")
	assert.Equal(t, mainTree, remoteTree(t, srv, "alice/branched", "main"))
	assert.NotEmpty(t, planPaths(res, publish.ChangeDeleted))

	// Back to layout A on the branch: B's single unet file goes.
	o.MaxShardSize, o.Variant = 1<<20, "fp16"
	res, err = publish.Run(ctx, o)
	require.NoError(t, err)
	assert.True(t, res.Remote.BranchExists)
	assert.Equal(t, "one-file", res.Remote.Base)
	assert.Equal(t, publishedWeights(a), weightsOf(remoteTree(t, srv, "alice/branched", "one-file")))
	assert.Contains(t, planPaths(res, publish.ChangeDeleted), "unet/diffusion_pytorch_model.safetensors")
}

// When the branch moves between the read and the upload (another client
// commits while the folder is staged), the plan is made again against the
// new head: what that commit added is compared too, and nothing it
// changed is lost by a stale plan.
func TestPlanFollowsABranchThatMoved(t *testing.T) {
	ctx := context.Background()
	srv := startHub(t)
	src := sd15(t, pipelinetest.Options{Seed: 38})
	o := options(t, srv, src, "alice/moving", nil)
	_, err := publish.Run(ctx, o)
	require.NoError(t, err)

	id, err := hub.ParseRepoID("alice/moving")
	require.NoError(t, err)
	c := client(t, srv)
	var once sync.Once
	rec := &recorder{}
	o.Variant = "fp16" // a new staging: the job goes through every step
	o.Events = func(e publish.Event) {
		rec.add(e)
		if e.Step == publish.StepStage {
			once.Do(func() {
				_, err := c.Commit(ctx, id, "main", hub.CommitOptions{Summary: "meanwhile"}, []hub.Operation{
					hub.AddBytes("unet/diffusion_pytorch_model.safetensors.index.json", []byte(`{"weight_map": {}}`)),
					hub.AddBytes("NOTES.md", []byte("notes\n"))})
				assert.NoError(t, err)
			})
		}
	}
	srv.ResetRequests()
	res, err := publish.Run(ctx, o)
	require.NoError(t, err, rec.messages())
	assert.Contains(t, rec.messages(), `main moved since it was read`)
	assert.Equal(t, []string{"unet/diffusion_pytorch_model.safetensors.index.json"}, planPaths(res, publish.ChangeDeleted),
		"the index the other commit added is stale weights")
	assert.Contains(t, planPaths(res, publish.ChangeKept), "NOTES.md")
	tree := remoteTree(t, srv, "alice/moving", "main")
	assert.NotContains(t, tree, "unet/diffusion_pytorch_model.safetensors.index.json")
	assert.Contains(t, tree, "NOTES.md")
	assert.Equal(t, "Upload StableDiffusionPipeline", res.Remote.Head.Title, "the target as it was before the publish")
	touched := 0
	for _, r := range srv.Requests() {
		if r.Class == hubemu.ClassCommit && strings.Contains(strings.Join(commitPaths(r), " "), "NOTES.md") {
			touched++
		}
	}
	assert.Equal(t, 1, touched, "only the other client's commit touched NOTES.md")
}

func commitPaths(r hubemu.Request) []string {
	var out []string
	for _, op := range r.Commit {
		out = append(out, op.Path)
	}
	return out
}
