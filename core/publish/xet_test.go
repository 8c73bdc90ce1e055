package publish_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/hub"
	"modelpub/core/hub/hubemu"
	"modelpub/core/hub/xet"
	"modelpub/core/pipeline/pipelinetest"
	"modelpub/core/publish"
	"modelpub/internal/ostest"
)

// TestMain keeps the tests off the user's caches: the Xet shard cache
// (xet.DefaultShardCacheDir) and anything else under os.UserCacheDir go to
// a temporary folder.
func TestMain(m *testing.M) { os.Exit(ostest.RunWithTempCache(m)) }

// xetScale makes pipelines of about 86 MB (UNet 69 MB): large enough that
// the chunks around each file's header and shard boundaries are a small
// part, small enough for a unit test.
const xetScale = 0.02

// casReceived is what the emulator's storage received since the last
// reset: xorb and shard bodies, LFS bodies, and regular file contents
// committed.
type casReceived struct {
	xorbs, xorbBytes int
	shards           int
	lfsBytes         int64
	regular          int64
}

func (r casReceived) total() int64 { return int64(r.xorbBytes) + r.lfsBytes + r.regular }

func casReceivedBy(srv *hubemu.Server) casReceived {
	var r casReceived
	for _, q := range srv.Requests() {
		switch {
		case q.Status >= 300:
		case q.Class == hubemu.ClassXet && q.Method == "POST" && strings.HasPrefix(q.Path, "/v1/xorbs/"):
			r.xorbs++
			r.xorbBytes += int(q.BodySize)
		case q.Class == hubemu.ClassXet && q.Method == "POST" && q.Path == "/v1/shards":
			r.shards++
		case q.Class == hubemu.ClassLFSUpload:
			r.lfsBytes += q.BodySize
		case q.Class == hubemu.ClassCommit:
			for _, op := range q.Commit {
				if op.Kind == "file" {
					r.regular += op.Size
				}
			}
		}
	}
	return r
}

// requireXet fails when the upload did not go through the CAS.
func requireXet(t *testing.T, got casReceived) {
	t.Helper()
	require.Positive(t, got.xorbs+got.shards,
		"nothing reached the emulator's Xet CAS: core/hub does not upload through Xet (hub.Options.Transfer auto)")
	assert.Zero(t, got.lfsBytes, "no LFS upload when the Hub answers xet")
}

// weightBytes is the size of the published weight files under prefix
// ("" for all).
func weightBytes(res *publish.Result, prefix string) int64 {
	var n int64
	for _, f := range res.Files {
		if isWeights(f.Path) && strings.HasPrefix(f.Path, prefix) {
			n += f.Size
		}
	}
	return n
}

// sameOnTheHub checks every published weight file downloads with the
// staged bytes.
func sameOnTheHub(t *testing.T, srv *hubemu.Server, res *publish.Result) {
	t.Helper()
	for _, f := range res.Files {
		if !isWeights(f.Path) {
			continue
		}
		local, err := os.ReadFile(filepath.Join(res.Folder, filepath.FromSlash(f.Path)))
		require.NoError(t, err)
		got := download(t, srv.URL(), res.Repo, "main", f.Path)
		assert.Equal(t, sha256.Sum256(local), sha256.Sum256(got), "%s on the Hub is the staged file", f.Path)
	}
}

// Re-publishing a pipeline with another shard size sends at most 5% of
// its bytes: the shards are new files, but their chunks are the ones the
// Hub already holds. The repo then holds exactly the new layout, each
// file byte for byte as staged.
func TestXetRepublishWithAnotherShardSize(t *testing.T) {
	ctx := context.Background()
	srv := startHub(t)
	src := sd15(t, pipelinetest.Options{Seed: 41, Scale: xetScale})
	o := options(t, srv, src, "alice/xet-reshard", nil)
	o.KeepStaging = true

	first, err := publish.Run(ctx, o)
	require.NoError(t, err)
	requireXet(t, casReceivedBy(srv))
	require.NotContains(t, publishedWeights(first), "unet/diffusion_pytorch_model.safetensors.index.json")

	o.MaxShardSize = 10_000_000
	// The dry run of the new layout knows its chunks from the shard cache
	// the first upload filled.
	o.DryRun = true
	dry, err := publish.Run(ctx, o)
	require.NoError(t, err)
	var toSend int64
	for _, e := range dry.Plan {
		if (e.Change == publish.ChangeNew || e.Change == publish.ChangeChanged) && e.LFS {
			toSend += e.Size
		}
	}
	require.True(t, dry.Summary.Estimated)
	t.Logf("dry run: %d of %d bytes to send already in the local Xet cache", dry.Summary.Cached, dry.Summary.Bytes)
	assert.GreaterOrEqual(t, dry.Summary.Cached, toSend*95/100)
	o.DryRun = false

	rec := &recorder{}
	o.Events = rec.add
	srv.ResetRequests()
	res, err := publish.Run(ctx, o)
	require.NoError(t, err, rec.messages())
	got := casReceivedBy(srv)
	require.Contains(t, publishedWeights(res), "unet/diffusion_pytorch_model.safetensors.index.json", "sharded now")

	total := res.Bytes
	limit := total * 5 / 100
	t.Logf("re-publish: %d of %d bytes sent (%.2f%%), %d deduplicated; the emulator received %d (%d xorbs, %d shards)",
		res.Summary.Bytes, total, 100*float64(res.Summary.Bytes)/float64(total), res.Summary.Deduped, got.total(), got.xorbs, got.shards)
	assert.LessOrEqual(t, res.Summary.Bytes, limit, "the report's bytes sent")
	assert.LessOrEqual(t, got.total(), limit, "what the emulator received")
	assert.Zero(t, got.lfsBytes)
	var shards int64 // the new files' bytes: the shards of the components now sharded
	for _, e := range res.Plan {
		if (e.Change == publish.ChangeNew || e.Change == publish.ChangeChanged) && isWeights(e.Path) {
			shards += e.Size
		}
	}
	require.Positive(t, shards)
	assert.GreaterOrEqual(t, res.Summary.Deduped, shards*95/100,
		"the new shards' bytes the Hub already held are reported deduplicated")

	// Exactly one layout: the old single files went in the same commit.
	tree := remoteTree(t, srv, "alice/xet-reshard", "main")
	assert.Equal(t, publishedWeights(res), weightsOf(tree))
	assert.Contains(t, planPaths(res, publish.ChangeDeleted), "unet/diffusion_pytorch_model.safetensors")
	sameOnTheHub(t, srv, res)
	var deduped bool
	for _, e := range rec.events {
		deduped = deduped || (e.Step == publish.StepUpload && e.Deduped > 0)
	}
	assert.True(t, deduped, "upload events carry the deduplicated bytes")
}

// A fine-tune whose UNet alone changed, published to another repository
// after its base, sends at most 1.1× the UNet: the text encoder and the
// VAE are on the Hub already, in the base's repository. Once with this
// computer's shard cache (the base was uploaded from here), once from a
// "new computer" (an empty cache: the Hub's global deduplication finds
// them).
func TestXetFineTuneSendsTheUNet(t *testing.T) {
	for _, sameComputer := range []bool{true, false} {
		name := "another computer"
		if sameComputer {
			name = "same computer"
		}
		t.Run(name, func(t *testing.T) {
			ownUserCache(t)
			ctx := context.Background()
			srv := startHub(t)
			base := sd15(t, pipelinetest.Options{Seed: 51, Scale: xetScale})
			_, err := publish.Run(ctx, options(t, srv, base, "alice/base", nil))
			require.NoError(t, err)
			requireXet(t, casReceivedBy(srv))

			// The fine-tune: the base with another UNet.
			tuned := filepath.Join(t.TempDir(), "tuned")
			require.NoError(t, os.CopyFS(tuned, os.DirFS(base)))
			other := sd15(t, pipelinetest.Options{Seed: 52, Scale: xetScale})
			require.NoError(t, os.RemoveAll(filepath.Join(tuned, "unet")))
			require.NoError(t, os.CopyFS(filepath.Join(tuned, "unet"), os.DirFS(filepath.Join(other, "unet"))))

			if !sameComputer {
				ownUserCache(t)
			}
			srv.ResetRequests()
			o := options(t, srv, tuned, "alice/fine-tune", nil)
			o.KeepStaging = true
			res, err := publish.Run(ctx, o)
			require.NoError(t, err)
			got := casReceivedBy(srv)
			unet := weightBytes(res, "unet/")
			limit := unet * 11 / 10
			t.Logf("fine-tune: %d bytes sent, %d deduplicated; UNet %d of %d; the emulator received %d",
				res.Summary.Bytes, res.Summary.Deduped, unet, res.Bytes, got.total())
			assert.LessOrEqual(t, res.Summary.Bytes, limit, "the report's bytes sent")
			assert.LessOrEqual(t, got.total(), limit, "what the emulator received")
			assert.Zero(t, got.lfsBytes)
			sameOnTheHub(t, srv, res)
		})
	}
}

// --transfer lfs never reaches the CAS, even when the Hub offers Xet: every
// byte goes through Git LFS.
func TestTransferLFSSendsThroughLFS(t *testing.T) {
	srv := startHub(t)
	src := sd15(t, pipelinetest.Options{Seed: 61})
	o := options(t, srv, src, "alice/lfs-only", nil)
	o.Transfer = hub.TransferLFS
	res, err := publish.Run(context.Background(), o)
	require.NoError(t, err)
	got := casReceivedBy(srv)
	assert.Zero(t, got.xorbs+got.shards, "no Xet request")
	assert.Equal(t, countClass(srv, hubemu.ClassXetToken), 0)
	assert.Equal(t, weightBytes(res, ""), got.lfsBytes, "every weight byte through LFS")
	assert.Zero(t, res.Summary.Deduped)
}

func TestTransferIsChecked(t *testing.T) {
	o := options(t, nil, sd15(t, pipelinetest.Options{Seed: 62}), "alice/x", nil)
	o.Transfer = "carrier-pigeon"
	_, err := publish.Run(context.Background(), o)
	var se *publish.StepError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, publish.StepCheck, se.Step)
	assert.ErrorContains(t, err, `"carrier-pigeon"`)
}

// fillShardCache puts in a local Xet shard cache a shard registering
// every chunk of the files under dir, as an upload of them to some CAS
// would (core/hub keeps a cache per CAS under xet.DefaultShardCacheDir).
func fillShardCache(t *testing.T, dir string) {
	t.Helper()
	var infos []xet.XorbInfo
	p := xet.NewPacker(xet.PolicyNone, func(x xet.SealedXorb) error {
		info := x.Info
		info.Chunks = append([]xet.Chunk(nil), x.Info.Chunks...)
		infos = append(infos, info)
		return nil
	})
	require.NoError(t, filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".safetensors") {
			return err
		}
		b, err := os.ReadFile(path)
		if err == nil {
			_, err = p.AddFile(bytes.NewReader(b))
		}
		return err
	}))
	require.NoError(t, p.Flush())
	shard, err := (&xet.Shard{Xorbs: infos}).Marshal(false)
	require.NoError(t, err)
	cacheDir, err := xet.DefaultShardCacheDir()
	require.NoError(t, err)
	cache, err := xet.OpenShardCache(filepath.Join(cacheDir, "https___cas.example"), 0, nil)
	require.NoError(t, err)
	require.NoError(t, cache.Add(shard))
}

// The dry run estimates the new bytes from the local Xet shard cache:
// nothing known with an empty cache; once the cache holds the chunks of a
// first layout, another shard size is mostly known; --transfer lfs makes
// no estimate. The estimate reads only the local files.
func TestDryRunEstimatesFromTheShardCache(t *testing.T) {
	ownUserCache(t)
	ctx := context.Background()
	src := sd15(t, pipelinetest.Options{Seed: 71, Scale: 0.005})
	o := options(t, nil, src, "alice/estimate", nil)
	o.Token, o.DryRun = "", true // no Hub: the remote is unknown, every file is to send

	first, err := publish.Run(ctx, o)
	require.NoError(t, err)
	assert.True(t, first.Summary.Estimated)
	assert.Zero(t, first.Summary.Cached, "an empty cache knows nothing")
	fillShardCache(t, first.Folder)

	o.MaxShardSize = 5_000_000
	rec := &recorder{}
	o.Events = rec.add
	second, err := publish.Run(ctx, o)
	require.NoError(t, err)
	require.True(t, second.Summary.Estimated)
	lfs := weightBytes(second, "")
	t.Logf("estimate: %d of %d bytes in the cache (%d weights)", second.Summary.Cached, second.Summary.Bytes, lfs)
	assert.GreaterOrEqual(t, second.Summary.Cached, lfs*90/100, "the new shards' chunks are mostly in the cache")
	assert.LessOrEqual(t, second.Summary.Cached, lfs, "only weights are chunked")
	assert.Contains(t, rec.messages(), "already in the local Xet cache")
	var done publish.Event
	for _, e := range rec.events {
		if e.Step == publish.StepDone {
			done = e
		}
	}
	assert.Contains(t, done.Message, "already in the local Xet cache")

	o.Transfer = hub.TransferLFS
	lfsRun, err := publish.Run(ctx, o)
	require.NoError(t, err)
	assert.False(t, lfsRun.Summary.Estimated)
	assert.Zero(t, lfsRun.Summary.Cached)
}

// ownUserCache points the user cache (os.UserCacheDir: XDG_CACHE_HOME on
// Linux, LocalAppData on Windows) at a new folder of the test's.
func ownUserCache(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", dir)
	t.Setenv("LocalAppData", dir)
}
