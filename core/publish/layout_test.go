package publish_test

import (
	"context"
	"path"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/hub"
	"modelpub/core/hub/hubemu"
	"modelpub/core/pipeline"
	"modelpub/core/pipeline/pipelinetest"
	"modelpub/core/publish"
	"modelpub/core/tensors"
)

// isWeights recognises weights and index files as diffusers names them.
func isWeights(p string) bool {
	name := path.Base(p)
	if w, ok := tensors.ParseWeightsFileName(name); ok {
		return pipeline.IsWeightsBase(w.Base)
	}
	ix, ok := tensors.ParseIndexFileName(name)
	return ok && pipeline.IsWeightsBase(ix.Base)
}

// weightsOf returns the weight files among paths, sorted.
func weightsOf[T any](files map[string]T) []string {
	var out []string
	for p := range files {
		if isWeights(p) {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

func publishedWeights(res *publish.Result) []string {
	m := map[string]bool{}
	for _, f := range res.Files {
		m[f.Path] = true
	}
	return weightsOf(m)
}

func planPaths(res *publish.Result, c publish.Change) []string {
	var out []string
	for _, e := range res.Plan {
		if e.Change == c {
			out = append(out, e.Path)
		}
	}
	return out
}

// layoutA publishes src sharded with an fp16 variant, then commits a
// sample image with the hub client, as another tool would.
func layoutA(t *testing.T, srv *hubemu.Server, o publish.Options) *publish.Result {
	t.Helper()
	ctx := context.Background()
	o.MaxShardSize, o.Variant = 1<<20, "fp16"
	a, err := publish.Run(ctx, o)
	require.NoError(t, err)
	w := publishedWeights(a)
	require.Contains(t, w, "unet/diffusion_pytorch_model.safetensors.index.json", "layout A is sharded")
	require.Contains(t, w, "unet/"+tensors.IndexFileName("diffusion_pytorch_model", "fp16"), "layout A has fp16")
	id, err := hub.ParseRepoID(o.Repo)
	require.NoError(t, err)
	_, err = client(t, srv).Commit(ctx, id, "main", hub.CommitOptions{Summary: "a sample"},
		[]hub.Operation{hub.AddBytes("samples/x.png", []byte("\x89PNG\r\n\x1a\n")),
			// a root single-file checkpoint: not a loader's weights, so not stale
			hub.AddBytes("v1-5-pruned-emaonly.safetensors", []byte("\x08\x00\x00\x00\x00\x00\x00\x00{}      "))})
	require.NoError(t, err)
	return a
}

// received is what the emulator accepted since the last reset: commit
// operations by kind, LFS bytes, regular file bytes.
type received struct {
	commits  int
	lines    map[string][]string // kind → paths
	lfsBytes int64
	regular  int64
}

func receivedBy(srv *hubemu.Server) received {
	r := received{lines: map[string][]string{}}
	for _, q := range srv.Requests() {
		switch {
		case q.Class == hubemu.ClassCommit && q.Status == 200:
			r.commits++
			for _, op := range q.Commit {
				r.lines[op.Kind] = append(r.lines[op.Kind], op.Path)
				if op.Kind == "file" {
					r.regular += op.Size
				}
			}
		case q.Class == hubemu.ClassLFSUpload && q.Status == 200:
			r.lfsBytes += q.BodySize
		}
	}
	for _, v := range r.lines {
		sort.Strings(v)
	}
	return r
}

// Publishing again with another layout leaves exactly the new layout's
// weight files on the Hub, in one commit: layout A (shards, fp16) then
// layout B (one file, no variant). --no-delete keeps everything and says
// what diffusers would then load; the default deletes the stale weights
// and keeps another client's sample image; --delete-extra deletes that
// too. The result counts what the emulator received.
func TestRepublishWithAnotherLayout(t *testing.T) {
	ctx := context.Background()
	srv := startHub(t)
	src := sd15(t, pipelinetest.Options{Seed: 31})
	o := options(t, srv, src, "alice/relayout", nil)
	o.KeepStaging = true
	a := layoutA(t, srv, o)
	staleWeights := publishedWeights(a)

	o.MaxShardSize, o.Variant = 0, ""

	// --no-delete: everything stays, and the warning names the ambiguity.
	o.NoDelete = true
	rec := &recorder{}
	o.Events = rec.add
	keep, err := publish.Run(ctx, o)
	require.NoError(t, err, rec.messages())
	b := publishedWeights(keep)
	require.Contains(t, b, "unet/diffusion_pytorch_model.safetensors")
	require.NotContains(t, b, "unet/diffusion_pytorch_model.safetensors.index.json", "layout B is not sharded")
	tree := remoteTree(t, srv, "alice/relayout", "main")
	for _, p := range append(append([]string{}, staleWeights...), b...) {
		assert.Contains(t, tree, p)
	}
	assert.Contains(t, tree, "samples/x.png")
	assert.Zero(t, keep.Summary.Deleted)
	assert.Empty(t, planPaths(keep, publish.ChangeDeleted))
	warnings := strings.Join(keep.Warnings, "\n")
	assert.Contains(t, warnings, "unet/ would hold both diffusion_pytorch_model.safetensors and the stale diffusion_pytorch_model.safetensors.index.json: diffusers loads the index")
	assert.Contains(t, warnings, `variant="fp16" loads them`)
	assert.Contains(t, rec.messages(), "warning: unet/ would hold both")

	// The default: the stale weights go, in one commit of deletions (B's
	// files are on the Hub already); the sample image stays.
	o.NoDelete = false
	srv.ResetRequests()
	res, err := publish.Run(ctx, o)
	require.NoError(t, err)
	tree = remoteTree(t, srv, "alice/relayout", "main")
	assert.Equal(t, b, weightsOf(tree), "the Hub's weight files are exactly layout B's")
	assert.Contains(t, tree, "samples/x.png", "another client's file survives")
	assert.Contains(t, tree, "v1-5-pruned-emaonly.safetensors", "a root checkpoint is not stale weights")
	assert.Contains(t, planPaths(res, publish.ChangeKept), "samples/x.png")
	assert.Empty(t, res.Warnings)
	var stale []string
	for _, p := range staleWeights {
		if !contains(b, p) {
			stale = append(stale, p)
		}
	}
	assert.Equal(t, stale, planPaths(res, publish.ChangeDeleted))
	got := receivedBy(srv)
	assert.Equal(t, 1, got.commits)
	assert.Equal(t, stale, got.lines["deletedFile"])
	assert.Empty(t, got.lines["lfsFile"], "B's files were sent by the --no-delete run")
	assert.Zero(t, got.lfsBytes)
	assert.Equal(t, publish.Summary{Unchanged: len(res.Files), Deleted: len(stale), Kept: 3}, res.Summary,
		"samples/x.png, the root checkpoint and .gitattributes kept")

	// --delete-extra: the sample image goes too; .gitattributes never.
	o.DeleteExtra = true
	srv.ResetRequests()
	res, err = publish.Run(ctx, o)
	require.NoError(t, err)
	tree = remoteTree(t, srv, "alice/relayout", "main")
	assert.NotContains(t, tree, "samples/x.png")
	assert.Contains(t, tree, ".gitattributes")
	assert.Equal(t, b, weightsOf(tree))
	assert.Equal(t, []string{"samples/x.png", "v1-5-pruned-emaonly.safetensors"}, receivedBy(srv).lines["deletedFile"])
	assert.Equal(t, 2, res.Summary.Deleted)
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// The same through pull requests: each is compared with main (layout A
// and the sample image) and its tree at refs/pr/N holds what was asked;
// main is untouched.
func TestRepublishAsPullRequests(t *testing.T) {
	ctx := context.Background()
	srv := startHub(t)
	src := sd15(t, pipelinetest.Options{Seed: 32})
	o := options(t, srv, src, "alice/relayout-pr", nil)
	o.KeepStaging = true
	a := layoutA(t, srv, o)
	mainTree := remoteTree(t, srv, "alice/relayout-pr", "main")

	o.MaxShardSize, o.Variant, o.CreatePR = 0, "", true
	tests := []struct {
		name        string
		noDelete    bool
		deleteExtra bool
		stale       bool // layout A's weights remain
		sample      bool // samples/x.png remains
	}{
		{"default", false, false, false, true},
		{"no-delete", true, false, true, true},
		{"delete-extra", false, true, false, false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o.NoDelete, o.DeleteExtra = tt.noDelete, tt.deleteExtra
			res, err := publish.Run(ctx, o)
			require.NoError(t, err)
			require.NotNil(t, res.Remote)
			assert.Equal(t, "main", res.Remote.Base)
			n := strconv.Itoa(i + 1)
			assert.True(t, strings.HasSuffix(res.PullRequestURL, "/discussions/"+n), res.PullRequestURL)
			tree := remoteTree(t, srv, "alice/relayout-pr", "refs/pr/"+n)
			b := publishedWeights(res)
			if tt.stale {
				for _, p := range publishedWeights(a) {
					assert.Contains(t, tree, p)
				}
				assert.Contains(t, strings.Join(res.Warnings, "\n"), "diffusers loads the index")
			} else {
				assert.Equal(t, b, weightsOf(tree), "the PR's weight files are exactly layout B's")
			}
			_, sample := tree["samples/x.png"]
			assert.Equal(t, tt.sample, sample)
			assert.Equal(t, mainTree, remoteTree(t, srv, "alice/relayout-pr", "main"), "main is untouched")
		})
	}
}

// A dry run with a token reads the Hub and names every file it would
// delete, without writing anything; the publish that follows does what it
// said, and its counts are what the emulator received.
func TestDryRunNamesTheDeletions(t *testing.T) {
	ctx := context.Background()
	srv := startHub(t)
	src := sd15(t, pipelinetest.Options{Seed: 33})
	o := options(t, srv, src, "alice/planned", nil)
	o.KeepStaging = true
	// Through Git LFS the bytes the report counts are the bytes on the
	// wire; through Xet it counts the new chunks' bytes, which reach the
	// CAS compressed (TestXetRepublishWithAnotherShardSize bounds those).
	o.Transfer = hub.TransferLFS
	a := layoutA(t, srv, o)

	o.MaxShardSize, o.Variant = 0, ""
	o.DryRun = true
	srv.ResetRequests()
	dry, err := publish.Run(ctx, o)
	require.NoError(t, err)
	require.NotEmpty(t, srv.Requests())
	for _, q := range srv.Requests() {
		if q.Method != "GET" {
			assert.Equal(t, hubemu.ClassValidate, q.Class, "a dry run only reads (and has the card checked): %s %s", q.Method, q.Path)
		}
	}
	require.NotNil(t, dry.Remote)
	assert.True(t, dry.Remote.Exists)
	require.NotNil(t, dry.Remote.Head)
	assert.Equal(t, "a sample", dry.Remote.Head.Title)
	assert.Equal(t, "alice", dry.Remote.Head.Author)
	b := publishedWeights(dry)
	var want []string
	for _, p := range publishedWeights(a) {
		if !contains(b, p) {
			want = append(want, p)
		}
	}
	require.NotEmpty(t, want)
	assert.Equal(t, want, planPaths(dry, publish.ChangeDeleted), "every stale file named")
	for _, e := range dry.Plan {
		if e.Change == publish.ChangeDeleted {
			assert.Contains(t, e.Why, "not in the published layout", e.Path)
		}
	}
	assert.Equal(t, []string{".gitattributes", "samples/x.png", "v1-5-pruned-emaonly.safetensors"}, planPaths(dry, publish.ChangeKept))
	assert.NotEmpty(t, planPaths(dry, publish.ChangeUnchanged), "files of A that B keeps as they are")
	assert.NotEmpty(t, planPaths(dry, publish.ChangeNew), "B's single files")
	var toSend int64
	for _, e := range dry.Plan {
		if e.Change == publish.ChangeNew || e.Change == publish.ChangeChanged {
			toSend += e.Size
		}
	}
	assert.Equal(t, toSend, dry.Summary.Bytes)

	o.DryRun = false
	srv.ResetRequests()
	res, err := publish.Run(ctx, o)
	require.NoError(t, err)
	got := receivedBy(srv)
	assert.Equal(t, 1, got.commits)
	assert.Equal(t, planPaths(dry, publish.ChangeDeleted), got.lines["deletedFile"], "deleted what the dry run said")
	assert.Equal(t, planPaths(res, publish.ChangeDeleted), got.lines["deletedFile"])
	committed := append(append([]string{}, got.lines["file"]...), got.lines["lfsFile"]...)
	sort.Strings(committed)
	assert.Equal(t, sortCopy(append(planPaths(dry, publish.ChangeChanged), planPaths(dry, publish.ChangeNew)...)), committed,
		"sent what the dry run said")
	assert.Equal(t, got.lfsBytes+got.regular, res.Summary.Bytes, "the bytes the emulator received")
	assert.Equal(t, len(committed), res.Summary.Sent+res.Summary.Stored)
	assert.Equal(t, dry.Summary.Unchanged, res.Summary.Unchanged)
	assert.Equal(t, len(got.lines["deletedFile"]), res.Summary.Deleted)
	assert.Equal(t, weightsOf(remoteTree(t, srv, "alice/planned", "main")), b)
}

func sortCopy(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

// A dry run with NoDelete says, before anything is done, what diffusers
// would load from the layouts it would leave side by side.
func TestDryRunNoDeleteWarns(t *testing.T) {
	srv := startHub(t)
	src := sd15(t, pipelinetest.Options{Seed: 35})
	o := options(t, srv, src, "alice/nodelete", nil)
	o.KeepStaging = true
	layoutA(t, srv, o)
	o.MaxShardSize, o.Variant = 0, ""
	o.DryRun, o.NoDelete = true, true
	dry, err := publish.Run(context.Background(), o)
	require.NoError(t, err)
	assert.Empty(t, planPaths(dry, publish.ChangeDeleted))
	assert.Contains(t, strings.Join(dry.Warnings, "\n"),
		"unet/ would hold both diffusion_pytorch_model.safetensors and the stale diffusion_pytorch_model.safetensors.index.json: diffusers loads the index")
}
