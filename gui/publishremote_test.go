package gui

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/hub"
	"modelpub/core/hub/hubemu"
	"modelpub/core/pipeline"
	"modelpub/core/publish"
)

// goldenHub is the endpoint of the golden tests: every connection to it
// goes to the emulator (see routeTo), so the markup names no port.
const goldenHub = "http://hub.test"

// routeTo is an HTTP client whose connections all go to srv, whatever the
// host asked for: no name is resolved.
func routeTo(t *testing.T, srv *hubemu.Server) *http.Client {
	addr := strings.TrimPrefix(srv.URL(), "http://")
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// goldenHead is the head commit the golden markup shows: the emulator's
// commit ids and dates change with every run.
func goldenHead(r *publish.Remote) {
	if r != nil && r.Head != nil {
		r.Head.ID = strings.Repeat("5eed", 10)
		r.Head.Date = time.Date(2026, 11, 30, 9, 41, 0, 0, time.UTC)
	}
}

// runRecord is the options of the jobs the panel ran.
type runRecord struct {
	mu   sync.Mutex
	opts []publish.Options
}

func (r *runRecord) last() publish.Options {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.opts) == 0 {
		return publish.Options{}
	}
	return r.opts[len(r.opts)-1]
}

// newGoldenPanel is a publish panel talking to srv as goldenHub, alice's
// token in the keyring, the head commits it shows fixed (goldenHead), and
// the options of its jobs recorded.
func newGoldenPanel(t *testing.T, srv *hubemu.Server) (*publishPanel, fyne.Window, *runRecord) {
	t.Helper()
	pp, w := newTestPublishPanel(t, goldenHub)
	pp.cfg.HTTPClient = routeTo(t, srv)
	rec := &runRecord{}
	pp.readRemote = func(ctx context.Context, o publish.Options) (*publish.Remote, error) {
		r, err := publish.ReadRemote(ctx, o)
		goldenHead(r)
		return r, err
	}
	pp.runJob = func(ctx context.Context, o publish.Options) (*publish.Result, error) {
		rec.mu.Lock()
		rec.opts = append(rec.opts, o)
		rec.mu.Unlock()
		res, err := publish.Run(ctx, o)
		if res != nil {
			goldenHead(res.Remote)
		}
		return res, err
	}
	storeToken(t, goldenHub, aliceToken)
	return pp, w, rec
}

// publishLayoutA publishes p to alice/sd15 as another client would have:
// sharded weights with an fp16 variant, then a sample image the folder does
// not have.
func publishLayoutA(t *testing.T, srv *hubemu.Server, p *pipeline.Pipeline) {
	t.Helper()
	ctx := context.Background()
	_, err := publish.Run(ctx, publish.Options{Source: p.Dir, Repo: "alice/sd15", Token: aliceToken, Endpoint: srv.URL(),
		MaxShardSize: 200_000, Variant: "fp16", CacheDir: t.TempDir(), Version: "test"})
	require.NoError(t, err)
	c, err := hub.NewClient(hub.Options{Endpoint: srv.URL(), Token: aliceToken})
	require.NoError(t, err)
	id, err := hub.ParseRepoID("alice/sd15")
	require.NoError(t, err)
	_, err = c.Commit(ctx, id, "main", hub.CommitOptions{Summary: "Add a sample image"},
		[]hub.Operation{hub.AddBytes("samples/x.png", []byte("\x89PNG\r\n\x1a\n"))})
	require.NoError(t, err)
}

// planOf maps each path of the files table to its badge.
func planOf(pp *publishPanel) map[string]string {
	out := map[string]string{}
	for _, e := range pp.rows {
		out[e.Path], _ = badge(e.Change, pp.planDone)
	}
	return out
}

// pathsWith lists the paths of the files table with badge b.
func pathsWith(pp *publishPanel, b string) []string {
	var out []string
	for _, e := range pp.rows {
		if got, _ := badge(e.Change, pp.planDone); got == b {
			out = append(out, e.Path)
		}
	}
	return out
}

// TestPublishPanelGolden keeps the markup of the panel: before a folder,
// logged in with a repository still to create, and after a dry run, whose
// plan then lists every file as new. To regenerate after an intended
// change: go test ./gui/ -run PublishPanel.*Golden -update, and review the
// diff.
func TestPublishPanelGolden(t *testing.T) {
	srv := startTestHub(t)
	pp, w, _ := newGoldenPanel(t, srv)
	assertGolden(t, "publish_empty.xml", w.Canvas())

	pp.SetPipeline(jobPipeline(t, 7))
	require.NotNil(t, pp.account, pp.accountText.Text)
	require.NotNil(t, pp.remote, pp.hubText.Text)
	assert.False(t, pp.remote.Exists)
	assert.Equal(t, "alice/sd15 is new: publishing creates it (public).", pp.hubText.Text)
	assert.False(t, pp.hubLink.Visible(), "no page to open yet")
	assertGolden(t, "publish_ready.xml", w.Canvas())

	pp.DryRun()
	require.NotNil(t, pp.plan)
	assert.Equal(t, []string{"new"}, uniq(planOf(pp)), "a new repository: every file is new")
	assert.Equal(t, stepDone, stateOf(pp, publish.StepCheck), "a dry run with an account checks it")
	assert.Equal(t, stepDone, stateOf(pp, publish.StepUpload))
	assert.Equal(t, "Compare with the Hub", pp.stepLabels[stepIndex(publish.StepUpload)].Text)
	assert.Equal(t, stepSkipped, stateOf(pp, publish.StepCommit))
	assertGolden(t, "publish_dryrun.xml", w.Canvas())
}

func uniq(m map[string]string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range m {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// The panel shows an existing repository as the Hub holds it (its files,
// then the plan against them with a badge each) and opens it on the Hub.
func TestPublishPanelRemoteGolden(t *testing.T) {
	srv := startTestHub(t)
	p := jobPipeline(t, 7)
	publishLayoutA(t, srv, p)
	pp, w, rec := newGoldenPanel(t, srv)

	pp.SetPipeline(p)

	require.NotNil(t, pp.remote, pp.hubText.Text)
	assert.True(t, pp.remote.Exists)
	assert.Contains(t, pp.hubText.Text, "alice/sd15 exists (public). Last commit on main: “Add a sample image” by alice, "+
		"2026-11-30 09:41 UTC (5eed5ee).")
	require.True(t, pp.hubLink.Visible())
	assert.Equal(t, goldenHub+"/alice/sd15", pp.hubLink.URL.String())
	onHub := planOf(pp)
	assert.Equal(t, "on the Hub", onHub["samples/x.png"])
	assert.Equal(t, "on the Hub", onHub["vae/diffusion_pytorch_model.fp16.safetensors"])
	assert.Len(t, onHub, len(pp.remote.Files))
	assert.Contains(t, pp.filesText.Text, "on the Hub (main): ")
	assertGolden(t, "publish_remote.xml", w.Canvas())

	pp.DryRun()

	require.NotNil(t, pp.plan, pp.status.Text)
	assert.False(t, rec.last().DeleteExtra)
	assert.False(t, rec.last().NoDelete)
	assert.Equal(t, aliceToken, rec.last().Token, "the dry run compares with the Hub")
	plan := planOf(pp)
	assert.Equal(t, "new", plan["unet/diffusion_pytorch_model.safetensors"], "the single file replaces the shards")
	assert.Equal(t, "unchanged", plan["model_index.json"])
	assert.Equal(t, "unchanged", plan["scheduler/scheduler_config.json"])
	assert.Equal(t, "will be deleted", plan["unet/diffusion_pytorch_model.safetensors.index.json"])
	assert.Equal(t, "will be deleted", plan["vae/diffusion_pytorch_model.fp16.safetensors"], "the old variant goes")
	assert.Equal(t, "only on the Hub", plan["samples/x.png"], "another client's file is kept")
	assert.Equal(t, "only on the Hub", plan[".gitattributes"])
	for path, b := range plan {
		if strings.Contains(path, "-of-") {
			assert.Equal(t, "will be deleted", b, path)
		}
	}
	assert.Contains(t, pp.status.Text, "Dry run: alice/sd15 would hold ")
	assert.Contains(t, pp.status.Text, " to send: ")
	assert.Contains(t, pp.status.Text, " will be deleted, 2 only on the Hub (kept). Nothing was sent.")
	assert.Contains(t, pp.filesText.Text, "plan: ")

	// Selecting a row says why.
	for i, e := range pp.rows {
		if e.Path == "samples/x.png" {
			pp.table.Select(widget.TableCellID{Row: i, Col: colPath})
		}
	}
	assert.Equal(t, "samples/x.png: only on the Hub, 8 B, a regular file: not published; kept (“Delete other files on the Hub” deletes it).",
		pp.fileDetail.Text)
	assertGolden(t, "publish_plan.xml", w.Canvas())
}

// The delete options reach publish.Options, a plan made with others goes,
// and after the publish the Hub is read again and holds exactly the plan.
func TestPublishPanelDeleteOptions(t *testing.T) {
	srv := startTestHub(t)
	p := jobPipeline(t, 7)
	publishLayoutA(t, srv, p)
	pp, _, rec := newGoldenPanel(t, srv)
	showFolder(pp, p)
	require.True(t, pp.remote != nil && pp.remote.Exists, pp.hubText.Text)

	test.Tap(pp.deleteExtra)
	pp.DryRun()
	assert.True(t, rec.last().DeleteExtra)
	assert.Equal(t, "will be deleted", planOf(pp)["samples/x.png"])
	assert.Equal(t, "only on the Hub", planOf(pp)[".gitattributes"], "the repository's own settings stay")

	test.Tap(pp.noDelete)
	assert.False(t, pp.deleteExtra.Checked, "the options exclude each other")
	assert.True(t, pp.deleteExtra.Disabled())
	assert.True(t, pp.noDeleteWarn.Visible())
	assert.Nil(t, pp.plan, "the plan made with the other option went")
	assert.Equal(t, "on the Hub", planOf(pp)["samples/x.png"], "the table shows the Hub's files again")
	pp.DryRun()
	assert.True(t, rec.last().NoDelete)
	assert.False(t, rec.last().DeleteExtra)
	assert.Empty(t, pathsWith(pp, "will be deleted"))
	assert.Equal(t, "only on the Hub", planOf(pp)["vae/diffusion_pytorch_model.fp16.safetensors"])

	// Published so, the Hub keeps the old weights and the panel names the
	// ambiguity.
	pp.Publish()
	require.True(t, pp.link.Visible(), pp.status.Text)
	assert.True(t, rec.last().NoDelete)
	assert.Empty(t, pathsWith(pp, "deleted"))
	for _, e := range pp.plan {
		if e.Path == "vae/diffusion_pytorch_model.safetensors" {
			require.Equal(t, publish.ChangeNew, e.Change)
			assert.Equal(t, fmt.Sprintf("%s: new, %s, an LFS file; %s sent.", e.Path, formatSize(e.Size), formatSize(e.Size)),
				fileDetail(e, true))
		}
	}
	require.True(t, pp.warnings.Visible(), "the ambiguity is named")
	assert.Contains(t, pp.warnings.Text, "Warning: ")
	assert.Contains(t, pp.warnings.Text, "fp16")
	require.NotNil(t, pp.remote)
	assert.Contains(t, remoteFiles(t, srv, "alice/sd15", "main"), "vae/diffusion_pytorch_model.fp16.safetensors")

	test.Tap(pp.noDelete)
	assert.False(t, pp.deleteExtra.Disabled())
	test.Tap(pp.deleteExtra)
	srv.ResetRequests()
	pp.Publish()

	require.True(t, pp.link.Visible(), pp.status.Text)
	assert.True(t, rec.last().DeleteExtra)
	deleted := pathsWith(pp, "deleted")
	assert.Contains(t, deleted, "samples/x.png")
	for _, e := range pp.plan {
		if e.Path == "samples/x.png" {
			assert.Equal(t, "samples/x.png: deleted, 8 B, a regular file: not published (“Delete other files on the Hub”).",
				fileDetail(e, true))
		}
	}
	assert.Contains(t, pp.status.Text, "Committed to alice/sd15: ")
	assert.Contains(t, pp.status.Text, pp.planSummary.String())
	assert.Regexp(t, `^\d+ files? sent \(.+\), \d+ unchanged, \d+ deleted`, pp.planSummary.String())
	assert.Contains(t, pp.filesText.Text, "published: ")

	// The Hub was read again after the publish: what the table's plan keeps.
	var reads int
	for _, r := range srv.Requests() {
		if r.Class == hubemu.ClassInfo {
			reads++
		}
	}
	assert.GreaterOrEqual(t, reads, 2, "read before the upload and after it")
	require.NotNil(t, pp.remote)
	want := map[string]bool{}
	for _, e := range pp.plan {
		if e.Change != publish.ChangeDeleted {
			want[e.Path] = true
		}
	}
	got := map[string]bool{}
	for _, f := range pp.remote.Files {
		got[f.Path] = true
	}
	assert.Equal(t, want, got, "the Hub holds exactly the plan")
	assert.NotContains(t, got, "samples/x.png")
}

// The Hub is read once the name rests, not for every letter typed, and an
// answer for a name no longer chosen is dropped.
func TestPublishPanelRemoteRefresh(t *testing.T) {
	srv := startTestHub(t)
	pp, _ := newTestPublishPanel(t, srv.URL())
	storeToken(t, srv.URL(), aliceToken)
	pp.SetPipeline(jobPipeline(t, 7))
	require.NotNil(t, pp.account)

	loop := newTestLoop()
	var running sync.WaitGroup
	pp.e.spawn = func(f func()) {
		running.Add(1)
		go func() { defer running.Done(); f() }()
	}
	pp.e.do = loop.do
	t.Cleanup(running.Wait)
	pp.remoteDebounce = &debouncer{delay: 100 * time.Millisecond, do: loop.do}
	srv.ResetRequests()

	for _, name := range []string{"c", "ca", "cat", "cats"} {
		pp.repoName.SetText(name)
	}
	assert.Equal(t, "Reading alice/cats on "+pp.cfg.host()+"…", pp.hubText.Text)
	require.True(t, loop.runUntil(func() bool { return !pp.remoteReading }, 10*time.Second))
	require.NotNil(t, pp.remote, pp.hubText.Text)
	assert.Equal(t, "alice/cats", pp.remote.Repo)
	for _, r := range srv.Requests() {
		if r.Class == hubemu.ClassInfo {
			assert.Contains(t, r.Path, "/alice/cats/", "only the name that rested is read")
		}
	}
	assert.NotEmpty(t, srv.Requests())

	// Two reads answered in the wrong order: the older one is dropped.
	var queued []func()
	pp.e.spawn = func(f func()) { queued = append(queued, f) }
	pp.e.do = func(f func()) { f() }
	pp.remoteDebounce = &debouncer{do: pp.e.do}
	pp.repoName.SetText("old")
	pp.repoName.SetText("new")
	require.Len(t, queued, 2)
	queued[1]()
	require.NotNil(t, pp.remote)
	assert.Equal(t, "alice/new", pp.remote.Repo)
	queued[0]()
	assert.Equal(t, "alice/new", pp.remote.Repo, "the answer for the old name is dropped")
	assert.Contains(t, pp.hubText.Text, "alice/new is new")

	// Logging out forgets the Hub's view.
	pp.loggedOut()
	assert.Nil(t, pp.remote)
	assert.Contains(t, pp.hubText.Text, "Log in to see what")
}

// The link to the repository names no user information, even when the
// endpoint has some.
func TestPublishPanelHubLinkHasNoUserInfo(t *testing.T) {
	srv := startTestHub(t)
	p := jobPipeline(t, 7)
	publishLayoutA(t, srv, p)
	withUser := strings.Replace(srv.URL(), "http://", "http://alice:hunter2@", 1)
	pp, w := newTestPublishPanel(t, withUser)
	storeToken(t, withUser, aliceToken)

	pp.SetPipeline(p)

	require.True(t, pp.hubLink.Visible(), pp.hubText.Text)
	assert.Equal(t, srv.URL()+"/alice/sd15", pp.hubLink.URL.String())
	assert.NotContains(t, test.RenderToMarkup(w.Canvas()), "hunter2")
}

// The path column takes the width the others leave.
func TestFilesTableFillsItsWidth(t *testing.T) {
	pp, _ := newTestPublishPanel(t, "http://127.0.0.1:1")
	f := &fillWidth{t: pp.table, change: changeWidth()}
	f.Layout([]fyne.CanvasObject{pp.table}, fyne.NewSize(900, 300))
	pad := pp.table.Theme().Size(theme.SizeNamePadding)
	assert.InDelta(t, 900-f.change-sizeWidth-3*pad, f.path, 0.5)
	text, _ := badge(publish.ChangeKept, false)
	assert.GreaterOrEqual(t, f.change, fyne.MeasureText(text, theme.TextSize(), fyne.TextStyle{Bold: true}).Width,
		"the widest badge is not cut")
	assert.Equal(t, fyne.NewSize(900, 300), pp.table.Size())
	f.Layout([]fyne.CanvasObject{pp.table}, fyne.NewSize(200, 300))
	assert.InDelta(t, minPathWidth, f.path, 0.5, "never narrower than minPathWidth")
}
