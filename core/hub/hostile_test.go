package hub_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/hub"
	"modelpub/core/hub/hubemu"
	"modelpub/internal/ostest"
)

// TestEndpointUserInfoNeverShown publishes through an endpoint written
// http://user:hf_SECRET@127.0.0.1:PORT, with faults so that retries log:
// hf_SECRET appears in no error, log line, progress report or URL, and the
// emulator never receives it.
func TestEndpointUserInfoNeverShown(t *testing.T) {
	const secret = "hf_SECRETinTheURL0123456789"
	srv := startEmulator(t, "seed=1,first=1,kinds=503+drop,endpoints=whoami+info+preupload+lfs-batch")
	ep := strings.Replace(srv.URL(), "http://", "http://user:"+secret+"@", 1)

	var out bytes.Buffer // every text the client gives us
	var mu sync.Mutex
	record := func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(&out, format+"\n", a...)
	}
	c, err := hub.NewClient(hub.Options{Endpoint: ep, Token: token, Logf: record,
		Retry: hub.RetryPolicy{BaseWait: time.Millisecond, MaxWait: 5 * time.Millisecond},
		Sleep: func(ctx context.Context, d time.Duration) error { return ctx.Err() }})
	require.NoError(t, err)
	record("endpoint %s", c.Endpoint())

	ctx := context.Background()
	_, err = c.WhoAmI(ctx)
	require.NoError(t, err)
	id := hub.RepoID{Namespace: "alice", Name: "m"}
	u, err := c.CreateRepo(ctx, id, hub.CreateRepoOptions{ExistOK: true})
	require.NoError(t, err)
	record("repo %s", u)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "w.bin"), bytes.Repeat([]byte{1, 2, 3}, 1000), 0o644))
	cache, err := hub.OpenHashCache(filepath.Join(t.TempDir(), "h.json"))
	require.NoError(t, err)
	info, err := c.UploadFolder(ctx, id, dir, hub.UploadOptions{HashCache: cache,
		Progress: func(p hub.Progress) { record("progress %+v", p) }})
	require.NoError(t, err)
	record("commit %+v", *info)

	// Failures: a missing repo, an invalid path, an unreachable Hub.
	_, err = c.Revision(ctx, hub.RepoID{Namespace: "alice", Name: "absent"}, "")
	require.ErrorIs(t, err, hub.ErrRepoNotFound)
	record("error %v", err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := ln.Addr().String()
	ln.Close()
	down, err := hub.NewClient(hub.Options{Endpoint: "http://user:" + secret + "@" + closed, Token: token, Logf: record,
		Retry: hub.RetryPolicy{MaxRetries: 1, BaseWait: time.Millisecond, MaxWait: time.Millisecond}})
	require.NoError(t, err)
	_, err = down.WhoAmI(ctx)
	require.ErrorIs(t, err, hub.ErrNetwork)
	record("error %v", err)
	_, err = hub.NewClient(hub.Options{Endpoint: "http://user:" + secret + "@host/\x7f"})
	require.Error(t, err)
	record("error %v", err)

	text := out.String()
	assert.Contains(t, text, "retry", "the faults made the client log retries")
	assert.NotContains(t, text, secret)
	assert.NotContains(t, text, "user:")
	assert.NotContains(t, text, token)
	for _, r := range srv.Requests() {
		assert.NotContains(t, r.Path+"?"+r.Query, secret)
		for k, v := range r.Header {
			assert.NotContains(t, strings.Join(v, " "), secret, k)
		}
	}
}

// TestIdempotentCallsRetried: one or two transient faults (500, 503, 429,
// a dropped connection, an answer lost after the work was done) on each
// idempotent call are retried and the call succeeds; 401, 403 and 404 are
// answered at once.
func TestIdempotentCallsRetried(t *testing.T) {
	ctx := context.Background()
	id := hub.RepoID{Namespace: "alice", Name: "m"}
	calls := []struct {
		name  string
		class string
		call  func(c *hub.Client) error
	}{
		{"whoami", hubemu.ClassWhoami, func(c *hub.Client) error { _, err := c.WhoAmI(ctx); return err }},
		{"create repo exist_ok", hubemu.ClassCreate, func(c *hub.Client) error {
			_, err := c.CreateRepo(ctx, hub.RepoID{Namespace: "alice", Name: "fresh"}, hub.CreateRepoOptions{ExistOK: true})
			return err
		}},
		{"repo info", hubemu.ClassInfo, func(c *hub.Client) error { _, err := c.RepoInfo(ctx, id, ""); return err }},
		{"revision", hubemu.ClassInfo, func(c *hub.Client) error { _, err := c.Revision(ctx, id, "main"); return err }},
		{"list commits", hubemu.ClassBranch, func(c *hub.Client) error { _, err := c.ListCommits(ctx, id, "", 0); return err }},
		{"list tree", hubemu.ClassTree, func(c *hub.Client) error { _, err := c.ListTree(ctx, id, "", "", true); return err }},
		{"paths info", hubemu.ClassTree, func(c *hub.Client) error { _, err := c.PathsInfo(ctx, id, "main", []string{"a.txt"}); return err }},
		{"read file", hubemu.ClassResolve, func(c *hub.Client) error { _, err := c.ReadFile(ctx, id, "", "a.txt"); return err }},
		{"validate yaml", hubemu.ClassValidate, func(c *hub.Client) error {
			_, err := c.ValidateYAML(ctx, "---\nlicense: mit\n---\n", hub.Model)
			return err
		}},
	}
	kinds := []string{"500", "503", "429", "drop", "lost"}
	for _, cl := range calls {
		for _, kind := range kinds {
			for first := 1; first <= 2; first++ {
				t.Run(fmt.Sprintf("%s/%s×%d", cl.name, kind, first), func(t *testing.T) {
					srv := startEmulator(t, "")
					var logs bytes.Buffer
					c := newClient(t, srv, &logs)
					seedRepo(t, c, id)
					spec, err := hubemu.ParseFaults(fmt.Sprintf("first=%d,kinds=%s,endpoints=%s", first, kind, cl.class))
					require.NoError(t, err)
					srv.SetFaults(spec)
					srv.ResetRequests()
					var waits []time.Duration
					c2, err := hub.NewClient(hub.Options{Endpoint: srv.URL(), Token: token, Logf: func(f string, a ...any) { fmt.Fprintf(&logs, f+"\n", a...) },
						Sleep: func(ctx context.Context, d time.Duration) error { waits = append(waits, d); return nil }})
					require.NoError(t, err)
					require.NoError(t, cl.call(c2), logs.String())
					assert.GreaterOrEqual(t, len(waits), first, "each fault was waited out")
					if kind == "429" {
						assert.Contains(t, waits, time.Second, "the 429's Retry-After: 1 is honoured")
					}
					faulted := 0
					for _, r := range srv.Requests() {
						if r.Fault != "" {
							faulted++
						}
					}
					assert.Equal(t, first, faulted)
				})
			}
		}
	}
}

// seedRepo creates id with a.txt on main.
func seedRepo(t *testing.T, c *hub.Client, id hub.RepoID) {
	t.Helper()
	ctx := context.Background()
	_, err := c.CreateRepo(ctx, id, hub.CreateRepoOptions{})
	require.NoError(t, err)
	_, err = c.Commit(ctx, id, "main", hub.CommitOptions{Summary: "seed"}, []hub.Operation{hub.AddBytes("a.txt", []byte("a"))})
	require.NoError(t, err)
}

func TestClientErrorsNotRetried(t *testing.T) {
	ctx := context.Background()
	srv, err := hubemu.New(hubemu.Options{Dir: t.TempDir(), Tokens: map[string]string{token: "alice", "hf_readonly": "bob"},
		ReadTokens: map[string]bool{"hf_readonly": true}, Record: true})
	require.NoError(t, err)
	_, err = srv.Start("")
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	var logs bytes.Buffer
	owner := newClient(t, srv, &logs)
	seedRepo(t, owner, hub.RepoID{Namespace: "alice", Name: "m"})

	client := func(tok string) *hub.Client {
		c, err := hub.NewClient(hub.Options{Endpoint: srv.URL(), Token: tok,
			Sleep: func(context.Context, time.Duration) error { t.Error("no retry expected"); return nil }})
		require.NoError(t, err)
		return c
	}
	tests := []struct {
		name  string
		class string
		call  func() error
		want  error
	}{
		{"401 bad token", hubemu.ClassWhoami, func() error { _, err := client("hf_unknown").WhoAmI(ctx); return err }, hub.ErrUnauthorized},
		{"403 read token creating", hubemu.ClassCreate, func() error {
			_, err := client("hf_readonly").CreateRepo(ctx, hub.RepoID{Namespace: "bob", Name: "x"}, hub.CreateRepoOptions{ExistOK: true})
			return err
		}, hub.ErrForbidden},
		{"403 branch in another's repo", hubemu.ClassBranch, func() error {
			return client("hf_readonly").CreateBranch(ctx, hub.RepoID{Namespace: "alice", Name: "m"}, "dev", "")
		}, hub.ErrForbidden},
		{"404 repo", hubemu.ClassInfo, func() error {
			_, err := client(token).RepoInfo(ctx, hub.RepoID{Namespace: "alice", Name: "absent"}, "")
			return err
		}, hub.ErrRepoNotFound},
		{"404 revision", hubemu.ClassInfo, func() error {
			_, err := client(token).Revision(ctx, hub.RepoID{Namespace: "alice", Name: "m"}, "nope")
			return err
		}, hub.ErrRevisionNotFound},
		{"404 entry", hubemu.ClassResolve, func() error {
			_, err := client(token).ReadFile(ctx, hub.RepoID{Namespace: "alice", Name: "m"}, "", "absent.txt")
			return err
		}, hub.ErrEntryNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.ResetRequests()
			err := tt.call()
			require.ErrorIs(t, err, tt.want)
			n := 0
			for _, r := range srv.Requests() {
				if r.Class == tt.class {
					n++
				}
			}
			assert.Equal(t, 1, n, "sent once")
		})
	}
}

// TestHostileFileNames: a folder holding a file whose name has a control
// character (or is not UTF-8) is refused before any request, naming it.
func TestHostileFileNames(t *testing.T) {
	for _, name := range []string{"evil\nname.txt", "esc\x1b[2J.txt", "bad\xff.txt", "del\x7f", "csi\u009b2J.txt", "nel\u0085.txt"} {
		t.Run(fmt.Sprintf("%q", name), func(t *testing.T) {
			ostest.SkipUnlessNameFits(t, name)
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(dir, "ok.txt"), []byte("ok"), 0o644))
			err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644)
			if err != nil && runtime.GOOS != "windows" { // on Windows, ostest knows which names fit
				t.Skipf("the file system refuses the name: %v", err)
			}
			require.NoError(t, err)
			srv := startEmulator(t, "")
			var logs bytes.Buffer
			c := newClient(t, srv, &logs)
			cache, err := hub.OpenHashCache(filepath.Join(t.TempDir(), "h.json"))
			require.NoError(t, err)
			srv.ResetRequests()
			_, err = c.UploadFolder(context.Background(), hub.RepoID{Namespace: "alice", Name: "m"}, dir, hub.UploadOptions{HashCache: cache})
			require.ErrorIs(t, err, hub.ErrInvalidPath)
			assert.Contains(t, err.Error(), fmt.Sprintf("%q", name))
			assert.NotContains(t, err.Error(), "\n")
			assert.Empty(t, srv.Requests(), "nothing was sent")
		})
	}
	for _, p := range []string{"a\tb", "x\u0085y", "\x00"} {
		_, err := hub.CleanPath(p)
		assert.ErrorIs(t, err, hub.ErrInvalidPath, "%q", p)
	}
	got, err := hub.CleanPath("dir/é ü.txt")
	require.NoError(t, err)
	assert.Equal(t, "dir/é ü.txt", got)
}
