package hub_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/hub"
	"modelpub/core/hub/hubemu"
	"modelpub/core/hub/xet"
	"modelpub/internal/ostest"
)

// resumeHelperEnv carries the child's job, as JSON, to TestResumeHelperProcess.
const resumeHelperEnv = "MODELPUB_HUB_RESUME_HELPER"

type resumeJob struct {
	Endpoint, Token, Dir, Repo, Cache string
	XetCache                          string // non-empty: upload through Xet with this shard cache
	XorbSize                          int
}

// TestResumeHelperProcess is not a test: TestResumeAfterSIGKILL runs the
// test binary again with only this function selected, as the process it
// kills in the middle of an upload.
func TestResumeHelperProcess(t *testing.T) {
	spec := os.Getenv(resumeHelperEnv)
	if spec == "" {
		t.Skip("helper process for TestResumeAfterSIGKILL")
	}
	var job resumeJob
	require.NoError(t, json.Unmarshal([]byte(spec), &job))
	transfer := hub.TransferLFS
	if job.XetCache != "" {
		transfer = hub.TransferXet
	}
	c, err := hub.NewClient(hub.Options{Endpoint: job.Endpoint, Token: job.Token, Version: "test", Transfer: transfer,
		Retry: hub.RetryPolicy{MaxRetries: 8, BaseWait: 10 * time.Millisecond, MaxWait: 50 * time.Millisecond}})
	require.NoError(t, err)
	id, err := hub.ParseRepoID(job.Repo)
	require.NoError(t, err)
	cache, err := hub.OpenHashCache(job.Cache)
	require.NoError(t, err)
	if job.XetCache != "" {
		defer hub.SetXetXorbSize(job.XorbSize)()
		xc, err := xet.OpenShardCache(job.XetCache, 0, nil)
		require.NoError(t, err)
		_, err = c.UploadFolder(context.Background(), id, job.Dir, hub.UploadOptions{HashCache: cache, XetCache: xc})
		require.NoError(t, err)
		fmt.Println("helper: upload finished")
		return
	}
	// One object at a time: objects complete one after another, which
	// leaves a wide window between the first completion and the commit.
	_, err = c.UploadFolder(context.Background(), id, job.Dir, hub.UploadOptions{HashCache: cache, Concurrency: 1})
	require.NoError(t, err)
	fmt.Println("helper: upload finished")
}

// uploadOID extracts the object id from an emulator upload path
// (/_emu/lfs/upload/{oid} or /_emu/lfs/part/{oid}/{n}).
func uploadOID(path string) string {
	for _, prefix := range []string{"/_emu/lfs/upload/", "/_emu/lfs/part/"} {
		if rest, ok := strings.CutPrefix(path, prefix); ok {
			oid, _, _ := strings.Cut(rest, "/")
			return oid
		}
	}
	return ""
}

// A process killed with SIGKILL (TerminateProcess on Windows,
// ostest.KillHard) in the middle of an upload and started
// again completes, and re-sends only objects the emulator does not hold
// yet (asserted from its records).
func TestResumeAfterSIGKILL(t *testing.T) {
	if testing.Short() && runtime.GOOS != "windows" {
		t.Skip("starts a child process (under Wine, which runs -test.short, it runs: a kill is what Windows must survive)")
	}
	ctx := context.Background()
	srv := startEmulator(t, "") // Dir on disk (t.TempDir), 1 MiB chunks, recording

	// The folder: four 3 MiB LFS files (3 parts each), one 200 KiB LFS file
	// (one basic PUT) and small text files (committed inline).
	dir := t.TempDir()
	files := map[string][]byte{
		"README.md":   []byte("---\nlibrary_name: diffusers\n---\n# resume\n"),
		"config.json": []byte(`{"_class_name": "UNet2DConditionModel"}` + "\n"),
	}
	for i := range 4 {
		b := make([]byte, 3<<20)
		_, _ = rand.Read(b)
		files[fmt.Sprintf("unet/part-%d.safetensors", i)] = b
	}
	small := make([]byte, 200<<10)
	_, _ = rand.Read(small)
	files["vae/small.bin"] = small
	oids := map[string]string{} // oid → path, of the LFS files
	for p, b := range files {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, p), b, 0o644))
		if len(b) > 1000 {
			sum := sha256.Sum256(b)
			oids[hex.EncodeToString(sum[:])] = p
		}
	}

	const repo = "alice/resume-test"
	id, err := hub.ParseRepoID(repo)
	require.NoError(t, err)
	var logs bytes.Buffer
	c := newClient(t, srv, &logs)
	_, err = c.CreateRepo(ctx, id, hub.CreateRepoOptions{})
	require.NoError(t, err)
	cachePath := filepath.Join(t.TempDir(), "hashes.json")

	// Throttle every part and basic PUT so the kill lands between objects.
	slow, err := hubemu.ParseFaults("seed=1,rate=1,kinds=slow,endpoints=lfs-upload,slow=200ms")
	require.NoError(t, err)
	srv.SetFaults(slow)

	// Kill the child once an object is complete, before the commit.
	killChild(t, srv, resumeJob{Endpoint: srv.URL(), Token: token, Dir: dir, Repo: repo, Cache: cachePath},
		func(reqs []hubemu.Request) bool {
			for _, r := range reqs {
				if r.Class == hubemu.ClassLFSComplete && r.Status == 200 {
					return true
				}
			}
			return false
		})
	srv.SetFaults(hubemu.FaultSpec{})

	for _, r := range srv.Requests() {
		require.NotEqual(t, hubemu.ClassCommit, r.Class, "the child was killed before its commit")
	}
	held := map[string]bool{}
	for oid := range oids {
		_, held[oid] = srv.Object(oid)
	}
	var nHeld int
	for _, h := range held {
		if h {
			nHeld++
		}
	}
	t.Logf("before the restart the emulator holds %d of %d objects", nHeld, len(oids))
	require.GreaterOrEqual(t, nHeld, 1, "at least one object was completed before the kill")
	require.Less(t, nHeld, len(oids), "the kill came before every object was sent, or the test proves nothing")

	// Start again, in process, with the same hash cache path.
	srv.ResetRequests()
	cache, err := hub.OpenHashCache(cachePath)
	require.NoError(t, err)
	info, err := c.UploadFolder(ctx, id, dir, hub.UploadOptions{HashCache: cache})
	require.NoError(t, err, "logs:\n%s", logs.String())
	assert.False(t, info.NoChanges)

	var commits int
	sent := map[string]int64{} // oid → LFS upload bytes in the second run
	for _, r := range srv.Requests() {
		switch r.Class {
		case hubemu.ClassCommit:
			commits++
			assert.Equal(t, 200, r.Status, "commit %s", r.Path)
		case hubemu.ClassLFSUpload:
			oid := uploadOID(r.Path)
			require.Contains(t, oids, oid, "an upload request for a known object: %s", r.Path)
			assert.False(t, held[oid], "%s (%s) was held before the restart but was sent again: %s %s",
				oids[oid], oid[:12], r.Method, r.Path)
			sent[oid] += r.BodySize
		}
	}
	assert.Equal(t, 1, commits, "exactly one commit")
	for oid, h := range held {
		if !h {
			assert.Positive(t, sent[oid], "%s, missing after the kill, was sent on restart", oids[oid])
		}
		_, ok := srv.Object(oid)
		assert.True(t, ok, "%s is held after the restart", oids[oid])
	}
	for p, b := range files {
		assert.True(t, bytes.Equal(b, download(t, srv.URL(), repo, "main", p)), "%s downloads byte for byte", p)
	}
}

// killChild starts the helper process with job and kills it
// (ostest.KillHard) as soon as ready says so, from the emulator's records.
func killChild(t *testing.T, srv *hubemu.Server, job resumeJob, ready func([]hubemu.Request) bool) {
	t.Helper()
	spec, err := json.Marshal(job)
	require.NoError(t, err)
	cmd := exec.Command(os.Args[0], "-test.run=^TestResumeHelperProcess$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), resumeHelperEnv+"="+string(spec))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.After(60 * time.Second)
	for killed := false; !killed; {
		select {
		case err := <-exited:
			t.Fatalf("the child exited before it could be killed (%v):\n%s", err, out.String())
		case <-deadline:
			_ = cmd.Process.Kill()
			<-exited
			t.Fatalf("the child was not ready to be killed within 60 s:\n%s", out.String())
		case <-time.After(2 * time.Millisecond):
		}
		if ready(srv.Requests()) {
			require.NoError(t, ostest.KillHard(cmd.Process))
			killed = true
		}
	}
	err = <-exited
	var exitErr *exec.ExitError
	require.ErrorAs(t, err, &exitErr, "child output:\n%s", out.String())
	require.True(t, ostest.Killed(exitErr.ProcessState), "the child was killed, not %v:\n%s", err, out.String())
}

// xorbPosts lists the xorbs the CAS accepted, by hash.
func xorbPosts(reqs []hubemu.Request) map[string]bool {
	out := map[string]bool{}
	for _, r := range reqs {
		if r.Class == hubemu.ClassXet && r.Method == http.MethodPost && strings.HasPrefix(r.Path, "/v1/xorbs/") && r.Status == 200 {
			out[strings.TrimPrefix(r.Path, "/v1/xorbs/default/")] = true
		}
	}
	return out
}

// A Xet upload killed (ostest.KillHard) after some xorbs went up, and run again
// with the same shard cache, completes without sending those xorbs' chunks
// again.
func TestXetResumeAfterSIGKILL(t *testing.T) {
	if testing.Short() && runtime.GOOS != "windows" {
		t.Skip("starts a child process (under Wine, which runs -test.short, it runs: a kill is what Windows must survive)")
	}
	const xorbSize = 256 << 10
	ctx := context.Background()
	srv := startEmulator(t, "")
	files := map[string][]byte{"README.md": []byte("# resume over Xet\n")}
	var total int64
	for i := range 3 {
		b := make([]byte, 1<<20)
		_, _ = rand.Read(b)
		files[fmt.Sprintf("unet/part-%d.safetensors", i)] = b
		total += int64(len(b))
	}
	dir := t.TempDir()
	for p, b := range files {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, p), b, 0o644))
	}
	const repo = "alice/xet-resume"
	id, err := hub.ParseRepoID(repo)
	require.NoError(t, err)
	var logs bytes.Buffer
	c := newClient(t, srv, &logs)
	_, err = c.CreateRepo(ctx, id, hub.CreateRepoOptions{})
	require.NoError(t, err)
	xetCache := t.TempDir()

	// Slow every CAS request so the kill lands between xorbs.
	slow, err := hubemu.ParseFaults("seed=1,rate=1,kinds=slow,endpoints=xet,slow=150ms")
	require.NoError(t, err)
	srv.SetFaults(slow)
	killChild(t, srv, resumeJob{Endpoint: srv.URL(), Token: token, Dir: dir, Repo: repo,
		Cache: filepath.Join(t.TempDir(), "hashes.json"), XetCache: xetCache, XorbSize: xorbSize},
		func(reqs []hubemu.Request) bool { return len(xorbPosts(reqs)) >= 3 })
	srv.SetFaults(hubemu.FaultSpec{})
	first := xorbPosts(srv.Requests())
	for _, r := range srv.Requests() {
		require.NotEqual(t, hubemu.ClassCommit, r.Class, "the child was killed before its commit")
		require.False(t, r.Class == hubemu.ClassXet && r.Path == "/v1/shards", "the child was killed before its shard")
	}
	// The xorbs the child recorded in its shard cache: a xorb the CAS
	// accepted just before the kill, whose answer the child never read,
	// is not among them and may go again.
	recorded := map[string]bool{}
	ents, err := os.ReadDir(xetCache)
	require.NoError(t, err)
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".shard") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(xetCache, e.Name()))
		require.NoError(t, err)
		s, err := xet.ParseShard(b)
		require.NoError(t, err)
		for _, x := range s.Xorbs {
			recorded[x.Hash.String()] = true
			assert.True(t, first[x.Hash.String()], "the cache records only xorbs the CAS accepted")
		}
	}
	t.Logf("before the restart the CAS holds %d xorbs, the cache records %d", len(first), len(recorded))
	require.NotEmpty(t, recorded)

	srv.ResetRequests()
	defer hub.SetXetXorbSize(xorbSize)()
	xc, err := xet.OpenShardCache(xetCache, 0, nil)
	require.NoError(t, err)
	xc2, _ := newXetClient(t, srv, hub.TransferXet, &logs)
	info, err := xc2.UploadFolder(ctx, id, dir, hub.UploadOptions{XetCache: xc})
	require.NoError(t, err, "logs:\n%s", logs.String())
	again := xorbPosts(srv.Requests())
	for h := range again {
		assert.False(t, recorded[h], "xorb %s was sent and recorded before the kill, and sent again after", h)
	}
	t.Logf("after the restart: %d more xorbs, %d bytes sent, %d deduplicated", len(again), info.Upload.Sent, info.Upload.Deduped)
	assert.GreaterOrEqual(t, info.Upload.Deduped, int64(len(recorded))*xorbSize/2, "what went up before the kill is not sent again")
	assert.Less(t, info.Upload.Sent, total)
	for p, b := range files {
		assert.True(t, bytes.Equal(b, download(t, srv.URL(), repo, "main", p)), "%s downloads byte for byte", p)
	}
}
