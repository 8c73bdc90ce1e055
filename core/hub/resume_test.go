package hub_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
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

	"modelpub/core/hub"
	"modelpub/core/hub/hubemu"
)

// resumeHelperEnv carries the child's job, as JSON, to TestResumeHelperProcess.
const resumeHelperEnv = "MODELPUB_HUB_RESUME_HELPER"

type resumeJob struct {
	Endpoint, Token, Dir, Repo, Cache string
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
	c, err := hub.NewClient(hub.Options{Endpoint: job.Endpoint, Token: job.Token, Version: "test", Transfer: hub.TransferLFS,
		Retry: hub.RetryPolicy{MaxRetries: 8, BaseWait: 10 * time.Millisecond, MaxWait: 50 * time.Millisecond}})
	require.NoError(t, err)
	id, err := hub.ParseRepoID(job.Repo)
	require.NoError(t, err)
	cache, err := hub.OpenHashCache(job.Cache)
	require.NoError(t, err)
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

// A process killed with SIGKILL in the middle of an upload and started
// again completes, and re-sends only objects the emulator does not hold
// yet (asserted from its records).
func TestResumeAfterSIGKILL(t *testing.T) {
	switch runtime.GOOS {
	case "windows", "plan9", "js", "wasip1":
		t.Skip("needs Unix signals")
	}
	if testing.Short() {
		t.Skip("starts a child process")
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

	job, err := json.Marshal(resumeJob{Endpoint: srv.URL(), Token: token, Dir: dir, Repo: repo, Cache: cachePath})
	require.NoError(t, err)
	cmd := exec.Command(os.Args[0], "-test.run=^TestResumeHelperProcess$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), resumeHelperEnv+"="+string(job))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	// Kill the child once an object is complete, before the commit.
	deadline := time.After(60 * time.Second)
	killed := false
	for !killed {
		select {
		case err := <-exited:
			t.Fatalf("the child exited before it could be killed (%v):\n%s", err, out.String())
		case <-deadline:
			_ = cmd.Process.Kill()
			<-exited
			t.Fatalf("no LFS object was completed within 60 s:\n%s", out.String())
		case <-time.After(2 * time.Millisecond):
		}
		for _, r := range srv.Requests() {
			if r.Class == hubemu.ClassLFSComplete && r.Status == 200 {
				require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
				killed = true
				break
			}
		}
	}
	err = <-exited
	var exitErr *exec.ExitError
	require.ErrorAs(t, err, &exitErr, "child output:\n%s", out.String())
	ws, ok := exitErr.Sys().(syscall.WaitStatus)
	require.True(t, ok)
	require.True(t, ws.Signaled() && ws.Signal() == syscall.SIGKILL, "the child died of SIGKILL, not %v:\n%s", err, out.String())
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
