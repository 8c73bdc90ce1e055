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
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/hub/hubemu"
	"modelpub/core/pipeline/pipelinetest"
	"modelpub/core/publish"
	"modelpub/internal/ostest"
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
	t.Setenv("LocalAppData", cache) // os.UserCacheDir on Windows
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
		{"bad transfer", []string{"publish", src, "--repo", "alice/x", "--transfer", "ftp"}, nil, ExitUsage, `--transfer must be auto, xet or lfs, not "ftp"`},
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

// `modelpub publish` killed with SIGKILL (TerminateProcess on Windows,
// ostest.KillHard) during the upload and run again
// completes, reuses the staged folder and re-sends nothing the Hub already
// held at the kill: through Git LFS no LFS object it held, through Xet no
// xorb it had accepted (the shard cache records each one as it lands).
func TestPublishResumesAfterSIGKILL(t *testing.T) {
	if testing.Short() && runtime.GOOS != "windows" {
		t.Skip("starts a child process (under Wine, which runs -test.short, it runs: a kill is what Windows must survive)")
	}
	for _, tt := range []struct {
		transfer string
		scale    float64
		faults   string
		landed   func(*hubemu.Server, hubemu.Request) string // what a request put on the Hub for good: an oid, a xorb hash; "" if nothing
		sent     func(hubemu.Request) string                 // what a request sends: an oid, a xorb hash; "" if nothing
	}{
		{"lfs", 0.004, "seed=1,rate=1,kinds=slow,endpoints=lfs-upload,slow=150ms", lfsLanded, lfsSent},
		// About 86 MB: three xorbs of at most 32 MiB.
		{"xet", 0.02, "seed=1,rate=1,kinds=slow,endpoints=xet,slow=300ms", xorbLanded, xorbSent},
	} {
		t.Run(tt.transfer, func(t *testing.T) {
			publishEnv(t)
			srv := publishHub(t)
			src := publishSource(t, tt.scale)
			args := []string{"publish", src, "--repo", "alice/killed", "--endpoint", srv.URL(), "--max-shard-size", "2MB",
				"--transfer", tt.transfer}

			slow, err := hubemu.ParseFaults(tt.faults)
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
					t.Fatalf("nothing landed within 90 s:\n%s", childOut.String())
				case <-time.After(5 * time.Millisecond):
				}
				for _, r := range srv.Requests() {
					if tt.landed(srv, r) != "" {
						require.NoError(t, ostest.KillHard(cmd.Process))
						killed = true
						break
					}
				}
			}
			err = <-exited
			require.True(t, ostest.Killed(cmd.ProcessState), "%v:\n%s", err, childOut.String())
			srv.SetFaults(hubemu.FaultSpec{})
			for _, r := range srv.Requests() {
				require.NotEqual(t, hubemu.ClassCommit, r.Class, "killed before the commit")
			}
			held := map[string]bool{}
			for _, r := range srv.Requests() {
				if id := tt.landed(srv, r); id != "" {
					held[id] = true
				}
			}
			require.NotEmpty(t, held, "something landed before the kill")

			srv.ResetRequests()
			var out, errb bytes.Buffer
			code := Run(args, &out, &errb)
			require.Equal(t, ExitOK, code, errb.String())
			assert.Regexp(t, `reusing the staged folder|resumed: [0-9.]+ [KM]B kept from the interrupted run`, errb.String(), "the staging survived the kill")
			assert.NotContains(t, errb.String(), "hashing", "nothing is hashed again: the digests come from the check, or from the sets the killed run checked:\n%s", errb.String())
			var resent []string
			sentAny := false
			for _, r := range srv.Requests() {
				if id := tt.sent(r); id != "" {
					sentAny = true
					if held[id] {
						resent = append(resent, id)
					}
				}
			}
			assert.Empty(t, resent, "what the Hub held before the kill was sent again")
			assert.True(t, sentAny, "what was missing at the kill was sent")
			assert.Contains(t, strings.TrimSpace(out.String()), "/alice/killed/commit/")
		})
	}
}

// lfsLanded is the oid of the LFS object r uploads (a part, a whole
// object) when the emulator holds it whole; "" for other requests.
func lfsLanded(srv *hubemu.Server, r hubemu.Request) string {
	if oid := uploadedOID(r.Path); oid != "" {
		if _, ok := srv.Object(oid); ok {
			return oid
		}
	}
	return ""
}

func lfsSent(r hubemu.Request) string { return uploadedOID(r.Path) }

// xorbLanded is the hash of a xorb the emulator's CAS accepted in r; ""
// for other requests.
func xorbLanded(_ *hubemu.Server, r hubemu.Request) string {
	if r.Status == 200 {
		return xorbSent(r)
	}
	return ""
}

// xorbSent is the hash of the xorb r uploads, "" for other requests.
func xorbSent(r hubemu.Request) string {
	if r.Class == hubemu.ClassXet && r.Method == "POST" && strings.HasPrefix(r.Path, "/v1/xorbs/") {
		return r.Path[strings.LastIndex(r.Path, "/")+1:]
	}
	return ""
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

// Through Xet the status line says what was sent and what the Hub already
// held, and the bar counts both; the JSON events carry "deduped".
func TestPublishOutputShowsDeduplicatedBytes(t *testing.T) {
	var errb, outb bytes.Buffer
	p := newPublishOutput(&outb, &errb, false)
	p.term = true
	e := publish.Event{Step: publish.StepUpload, Phase: "upload", Bytes: 12_000_000, Deduped: 4_150_000_000, Total: 4_200_000_000}
	p.event(e)
	p.finish()
	assert.Contains(t, errb.String(), "upload   [#############################.]  99%  sent 12.0 MB of 4.20 GB — 4.15 GB already on the Hub")

	// Beside another step: one segment each, the held bytes said.
	errb.Reset()
	p = newPublishOutput(&outb, &errb, false)
	p.term = true
	p.event(publish.Event{Step: publish.StepStage, Bytes: 500, Total: 1000})
	time.Sleep(110 * time.Millisecond) // a draw is due
	p.event(e)
	p.finish()
	assert.Contains(t, errb.String(), "upload  99% of 4.20 GB (4.15 GB already on the Hub)")

	// JSON: the held bytes are in the event; an upload whose sent and
	// held bytes make its total is not a throttled byte count.
	outb.Reset()
	p = newPublishOutput(&outb, &errb, true)
	p.event(e)
	p.event(publish.Event{Step: publish.StepUpload, Bytes: 50_000_000, Deduped: 4_150_000_000, Total: 4_200_000_000})
	lines := strings.Split(strings.TrimSpace(outb.String()), "\n")
	require.Len(t, lines, 2, outb.String())
	var got map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &got))
	assert.EqualValues(t, 4_150_000_000, got["deduped"])
	assert.EqualValues(t, 12_000_000, got["bytes"])
}

// help publish documents --transfer; the dry run prints the Xet estimate
// unless --transfer lfs.
func TestPublishTransferFlag(t *testing.T) {
	code, out, _ := runCmd("help", "publish")
	require.Equal(t, ExitOK, code)
	assert.Contains(t, out, "[--transfer auto|xet|lfs]")
	assert.Contains(t, out, "  --transfer auto|xet|lfs\n")

	publishEnv(t)
	t.Setenv("HF_TOKEN", "")
	src := publishSource(t, 0.001)
	code, out, errb := runCmd("publish", src, "--repo", "alice/cli-xet", "--dry-run")
	require.Equal(t, ExitOK, code, errb)
	assert.Regexp(t, `(?m)^Xet: ≈ [0-9.]+ [KMG]?B new of [0-9.]+ [KMG]?B \(0 B already in the local Xet cache\)\.$`, out)

	code, out, errb = runCmd("publish", src, "--repo", "alice/cli-xet", "--dry-run", "--transfer", "lfs")
	require.Equal(t, ExitOK, code, errb)
	assert.NotContains(t, out, "Xet:")
}
