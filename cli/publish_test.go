package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
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

	"modelpub/core/hub/hubemu"
	"modelpub/core/pipeline/pipelinetest"
	"modelpub/core/publish"
)

const publishTok = "hf_cli_publish_secret_0123456789abcdefgh"

func publishHub(t *testing.T) *hubemu.Server {
	t.Helper()
	srv, err := hubemu.New(hubemu.Options{Dir: t.TempDir(), ChunkSize: 1 << 20, Record: true,
		Tokens: map[string]string{publishTok: "alice"}})
	require.NoError(t, err)
	_, err = srv.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	return srv
}

func publishSource(t *testing.T, scale float64) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "sd15")
	_, err := pipelinetest.WriteSD15(context.Background(), dir, pipelinetest.Options{Scale: scale, Seed: 3})
	require.NoError(t, err)
	return dir
}

// publishEnv isolates the token sources and the cache of one test.
func publishEnv(t *testing.T) string {
	t.Helper()
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	t.Setenv("HF_TOKEN", publishTok)
	t.Setenv("HF_HOME", t.TempDir())
	t.Setenv("HF_ENDPOINT", "")
	return cache
}

func TestPublishCommand(t *testing.T) {
	publishEnv(t)
	srv := publishHub(t)
	src := publishSource(t, 0.001)

	var out, errb bytes.Buffer
	code := Run([]string{"publish", src, "--repo", "alice/cli-model", "--endpoint", srv.URL(),
		"--variant", "fp16", "--max-shard-size", "1MB", "--license", "mit"}, &out, &errb)
	require.Equal(t, ExitOK, code, errb.String())
	url := strings.TrimSpace(out.String())
	assert.True(t, strings.HasPrefix(url, srv.URL()+"/alice/cli-model/commit/"), url)
	for _, step := range []string{"check", "stage", "validate", "card", "upload"} {
		assert.Contains(t, errb.String(), step)
	}
	assert.NotContains(t, errb.String()+out.String(), publishTok)

	// --json: one JSON object per line, ending with the result.
	out.Reset()
	errb.Reset()
	code = Run([]string{"publish", src, "--repo", "alice/cli-model", "--endpoint", srv.URL(),
		"--variant", "fp16", "--max-shard-size", "1MB", "--license", "mit", "--json"}, &out, &errb)
	require.Equal(t, ExitOK, code, errb.String())
	var last map[string]any
	sc := bufio.NewScanner(&out)
	lines := 0
	for sc.Scan() {
		require.NoError(t, json.Unmarshal(sc.Bytes(), &last), sc.Text())
		lines++
	}
	assert.Greater(t, lines, 3)
	assert.Equal(t, "result", last["step"])
	assert.Equal(t, true, last["result"].(map[string]any)["no_changes"])

	// --dry-run lists files and needs no token.
	t.Setenv("HF_TOKEN", "")
	out.Reset()
	errb.Reset()
	code = Run([]string{"publish", src, "--repo", "alice/cli-dry", "--dry-run", "--variant", "bf16", "--endpoint", srv.URL()}, &out, &errb)
	require.Equal(t, ExitOK, code, errb.String())
	assert.Contains(t, out.String(), "unet/diffusion_pytorch_model.bf16.safetensors")
	assert.Contains(t, out.String(), "README.md")
}

func TestPublishCommandErrors(t *testing.T) {
	publishEnv(t)
	srv := publishHub(t)
	src := publishSource(t, 0.001)
	tests := []struct {
		name string
		args []string
		env  map[string]string
		code int
		says string
	}{
		{"no repo", []string{"publish", src}, nil, ExitUsage, "--repo"},
		{"no source", []string{"publish", "--repo", "alice/x"}, nil, ExitUsage, "usage"},
		{"bad size", []string{"publish", src, "--repo", "alice/x", "--max-shard-size", "huge"}, nil, ExitUsage, "--max-shard-size"},
		{"bad variant", []string{"publish", src, "--repo", "alice/x", "--variant", "int8"}, nil, ExitUsage, "fp16 or bf16"},
		{"pr and branch", []string{"publish", src, "--repo", "alice/x", "--create-pr", "--branch", "b"}, nil, ExitUsage, "exclude"},
		{"license other without a name", []string{"publish", src, "--repo", "alice/x", "--license", "other"}, nil, ExitUsage, "--license-name"},
		{"unknown license", []string{"publish", src, "--repo", "alice/x", "--license", "mitt"}, nil, ExitUsage, "mitt"},
		{"missing card", []string{"publish", src, "--repo", "alice/x", "--card", "/nonexistent/README.md"}, nil, ExitUsage, "--card"},
		{"wrong token", []string{"publish", src, "--repo", "alice/x", "--endpoint", srv.URL()}, map[string]string{"HF_TOKEN": "hf_wrong"}, ExitProblems, "refused the token"},
		{"bad repo id", []string{"publish", src, "--repo", "alice/x..y", "--endpoint", srv.URL()}, nil, ExitProblems, "x..y"},
		{"unreachable", []string{"publish", src, "--repo", "alice/x", "--endpoint", "http://127.0.0.1:1"}, nil, ExitProblems, "127.0.0.1:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var out, errb bytes.Buffer
			code := Run(tt.args, &out, &errb)
			assert.Equal(t, tt.code, code, errb.String())
			assert.Contains(t, errb.String(), tt.says)
			assert.Empty(t, out.String())
			assert.NotContains(t, errb.String(), publishTok)
		})
	}
}

// publishHelperEnv carries the child's arguments to TestPublishHelperProcess.
const publishHelperEnv = "MODELPUB_CLI_PUBLISH_HELPER"

// TestPublishHelperProcess is not a test: TestPublishResumesAfterSIGKILL
// runs the test binary again with only this function selected, as the
// `modelpub publish` it kills in the middle of the upload.
func TestPublishHelperProcess(t *testing.T) {
	spec := os.Getenv(publishHelperEnv)
	if spec == "" {
		t.Skip("helper process for TestPublishResumesAfterSIGKILL")
	}
	var args []string
	require.NoError(t, json.Unmarshal([]byte(spec), &args))
	os.Exit(Run(args, os.Stdout, os.Stderr))
}

// `modelpub publish` killed with SIGKILL during the upload and run again
// completes, reuses the staged folder and re-sends only the LFS objects the
// Hub did not hold yet.
func TestPublishResumesAfterSIGKILL(t *testing.T) {
	if runtime.GOOS == "windows" || testing.Short() {
		t.Skip("needs Unix signals and a child process")
	}
	publishEnv(t)
	srv := publishHub(t)
	src := publishSource(t, 0.004)
	args := []string{"publish", src, "--repo", "alice/killed", "--endpoint", srv.URL(), "--max-shard-size", "2MB"}

	slow, err := hubemu.ParseFaults("seed=1,rate=1,kinds=slow,endpoints=lfs-upload,slow=150ms")
	require.NoError(t, err)
	srv.SetFaults(slow)
	spec, err := json.Marshal(args)
	require.NoError(t, err)
	cmd := exec.Command(os.Args[0], "-test.run=^TestPublishHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), publishHelperEnv+"="+string(spec))
	var childOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &childOut, &childOut
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	deadline := time.After(90 * time.Second)
	for killed := false; !killed; {
		select {
		case err := <-exited:
			t.Fatalf("the child exited before it could be killed (%v):\n%s", err, childOut.String())
		case <-deadline:
			_ = cmd.Process.Kill()
			<-exited
			t.Fatalf("no LFS object completed within 90 s:\n%s", childOut.String())
		case <-time.After(5 * time.Millisecond):
		}
		for _, r := range srv.Requests() {
			if (r.Class == hubemu.ClassLFSComplete || r.Class == hubemu.ClassLFSVerify) && r.Status == 200 {
				require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
				killed = true
				break
			}
		}
	}
	err = <-exited
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	require.True(t, ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL, "%v:\n%s", err, childOut.String())
	srv.SetFaults(hubemu.FaultSpec{})
	for _, r := range srv.Requests() {
		require.NotEqual(t, hubemu.ClassCommit, r.Class, "killed before the commit")
	}
	held := map[string]bool{}
	for _, r := range srv.Requests() {
		if oid := uploadedOID(r.Path); oid != "" {
			if _, ok := srv.Object(oid); ok {
				held[oid] = true
			}
		}
	}
	require.NotEmpty(t, held, "at least one object landed before the kill")

	srv.ResetRequests()
	var out, errb bytes.Buffer
	code := Run(args, &out, &errb)
	require.Equal(t, ExitOK, code, errb.String())
	assert.Regexp(t, `reusing the staged folder|resumed: [0-9.]+ [KM]B kept from the interrupted run`, errb.String(), "the staging survived the kill")
	assert.NotContains(t, errb.String(), "hashing", "nothing is hashed again: the digests come from the check, or from the sets the killed run checked:\n%s", errb.String())
	var resent []string
	sentAny := false
	for _, r := range srv.Requests() {
		if oid := uploadedOID(r.Path); oid != "" {
			sentAny = true
			if held[oid] {
				resent = append(resent, oid)
			}
		}
	}
	assert.Empty(t, resent, "objects held before the kill were sent again")
	assert.True(t, sentAny, "the objects missing at the kill were sent")
	assert.Contains(t, strings.TrimSpace(out.String()), "/alice/killed/commit/")
}

// uploadedOID is the object id of an emulator upload URL, or "".
func uploadedOID(path string) string {
	for _, prefix := range []string{"/_emu/lfs/upload/", "/_emu/lfs/part/"} {
		if rest, ok := strings.CutPrefix(path, prefix); ok {
			oid, _, _ := strings.Cut(rest, "/")
			return oid
		}
	}
	return ""
}

// Publishing again with another layout: the dry run prints the plan with
// the stale weights to delete and the files kept; the publish says what it
// sent, left and deleted; --no-delete warns; the two options exclude each
// other.
func TestPublishCommandPlansTheLayout(t *testing.T) {
	publishEnv(t)
	srv := publishHub(t)
	src := publishSource(t, 0.001)
	base := []string{"publish", src, "--repo", "alice/cli-layout", "--endpoint", srv.URL()}
	run := func(extra ...string) (string, string) {
		t.Helper()
		var out, errb bytes.Buffer
		code := Run(append(append([]string{}, base...), extra...), &out, &errb)
		require.Equal(t, ExitOK, code, errb.String())
		return out.String(), errb.String()
	}
	run("--max-shard-size", "1MB", "--variant", "fp16")

	out, _ := run("--dry-run")
	assert.Contains(t, out, "Dry run: alice/cli-layout (public): main is at ")
	assert.Regexp(t, `(?m)^  delete +unet/diffusion_pytorch_model\.safetensors\.index\.json .*weights of unet/ not in the published layout$`, out)
	assert.Regexp(t, `(?m)^  delete +unet/diffusion_pytorch_model\.fp16-00001-of-00002\.safetensors `, out)
	assert.Regexp(t, `(?m)^  new +unet/diffusion_pytorch_model\.safetensors `, out)
	assert.Regexp(t, `(?m)^  unchanged +model_index\.json `, out)
	assert.Regexp(t, `(?m)^  keep +\.gitattributes `, out)
	assert.Regexp(t, `Plan: \d+ new, \d+ changed \([0-9.]+ [KM]?B to send\), \d+ unchanged, \d+ to delete, 1 only on the Hub \(kept\)\.`, out)

	_, errOut := run("--no-delete")
	assert.Contains(t, errOut, "warning: unet/ would hold both diffusion_pytorch_model.safetensors and the stale diffusion_pytorch_model.safetensors.index.json: diffusers loads the index")

	_, errOut = run()
	assert.Regexp(t, `committed: 0 files sent \([^)]*\), \d+ unchanged, \d+ deleted`, errOut)
	assert.NotContains(t, errOut, "warning:")

	var o, e bytes.Buffer
	code := Run(append(append([]string{}, base...), "--no-delete", "--delete-extra"), &o, &e)
	assert.Equal(t, ExitUsage, code)
	assert.Contains(t, e.String(), "exclude each other")
}

// The printer is the one throttle of a publish's progress: interleaved
// byte counts of overlapping steps make one status line drawn at most every
// 100 ms, and JSON byte counts at most one per step and interval; messages
// and ends always pass.
func TestPublishOutputThrottlesInterleavedSteps(t *testing.T) {
	var errb, outb bytes.Buffer
	p := newPublishOutput(&outb, &errb, false)
	p.term = true // as on a terminal
	start := time.Now()
	p.event(publish.Event{Step: publish.StepStage, Message: "staging: unet has no fp16 variant yet"})
	for i := int64(1); i <= 3000; i++ {
		if i == 1500 {
			time.Sleep(110 * time.Millisecond) // one draw is due
		}
		for _, s := range []publish.Step{publish.StepStage, publish.StepValidate, publish.StepUpload} {
			p.event(publish.Event{Step: s, Bytes: i, Total: 3000})
		}
	}
	p.event(publish.Event{Step: publish.StepStage, Done: true, Message: "staged"})
	p.finish()
	elapsed := time.Since(start)
	draws := strings.Count(errb.String(), "\r") - strings.Count(errb.String(), "\r\x1b[K")
	assert.LessOrEqual(t, draws, int(elapsed/(100*time.Millisecond))+3, "one status line per 100 ms")
	assert.Contains(t, errb.String(), "staging: unet has no fp16 variant yet\n")
	assert.Contains(t, errb.String(), "stage    staged\n")
	assert.Regexp(t, `stage +[0-9]+% of 3.00 KB · validate +[0-9]+% of 3.00 KB · upload +[0-9]+% of 3.00 KB`, errb.String(), "the steps running share one line")

	errb.Reset()
	p = newPublishOutput(&outb, &errb, true)
	for i := int64(1); i <= 3000; i++ {
		p.event(publish.Event{Step: publish.StepUpload, Bytes: i, Total: 3001})
	}
	p.event(publish.Event{Step: publish.StepUpload, Bytes: 3001, Total: 3001, Done: true})
	lines := strings.Split(strings.TrimSpace(outb.String()), "\n")
	assert.Less(t, len(lines), 100, "JSON byte counts are throttled too")
	assert.Contains(t, lines[len(lines)-1], `"done":true`, "the end always passes")
	assert.Empty(t, errb.String())
}
