package gui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/zalando/go-keyring"

	"modelpub/core/auth"
	"modelpub/core/hub"
	"modelpub/core/hub/hubemu"
	"modelpub/core/pipeline"
	"modelpub/core/publish"
)

const (
	aliceToken = "hf_alice_gui_secret_0123456789abcdefgh"
	readToken  = "hf_alice_gui_read_only_0123456789abcd"
)

// startTestHub starts a Hub emulator over loopback: alice may write to her
// namespace and to the studio organisation.
func startTestHub(t *testing.T) *hubemu.Server {
	t.Helper()
	srv, err := hubemu.New(hubemu.Options{Dir: t.TempDir(), Record: true,
		Tokens:     map[string]string{aliceToken: "alice", readToken: "alice"},
		ReadTokens: map[string]bool{readToken: true},
		Orgs:       map[string]map[string]string{"studio": {"alice": "write"}, "museum": {"alice": "read"}}})
	require.NoError(t, err)
	_, err = srv.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	return srv
}

// testHubConfig points the panel at endpoint with nothing from the
// environment: no HF_TOKEN, no token file, a fresh cache, and go-keyring
// as it is (OSKeyring), which after keyring.MockInit is its in-memory
// mock. The default, auth.SystemKeyring, is the real Secret Service and
// refuses without a D-Bus session bus, as on CI.
func testHubConfig(t *testing.T, endpoint string) *hubConfig {
	return &hubConfig{Endpoint: endpoint, Keyring: auth.OSKeyring(), Getenv: func(string) string { return "" }, Home: t.TempDir(),
		CacheDir: t.TempDir(), Version: "test",
		Retry: hub.RetryPolicy{MaxRetries: 2, BaseWait: 5 * time.Millisecond, MaxWait: 20 * time.Millisecond}}
}

// newTestPublishPanel shows a publish panel, with its card panel, in a
// test window; the keyring is go-keyring's in-memory mock, empty.
func newTestPublishPanel(t *testing.T, endpoint string) (*publishPanel, fyne.Window) {
	t.Helper()
	// Off the user's caches: the Xet shard caches the uploads keep and the
	// dry runs read.
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	test.NewTempApp(t)
	keyring.MockInit()
	e := jobTestEnv()
	e.hub = testHubConfig(t, endpoint)
	cards := newCardPanel(e)
	cards.debounce.delay = 0
	pp := newPublishPanel(e, cards)
	pp.remoteDebounce.delay = 0 // the Hub is read at once, on the test goroutine
	w := test.NewTempWindow(t, pp.Content())
	e.win = w
	w.Resize(fyne.NewSize(1100, 760))
	return pp, w
}

// storeToken logs in the way `modelpub login` does: the token in the
// keyring for the endpoint.
func storeToken(t *testing.T, endpoint, token string) {
	t.Helper()
	require.NoError(t, auth.Store(auth.Options{Endpoint: endpoint, Keyring: auth.OSKeyring()}, token))
}

// topDialog is the markup of the dialog on top of the window, "" if none.
func topDialog(w fyne.Window) string {
	top := w.Canvas().Overlays().Top()
	if top == nil {
		return ""
	}
	return test.RenderObjectToMarkup(top)
}

// dismissDialogs closes every dialog on the window.
func dismissDialogs(w fyne.Window) {
	for top := w.Canvas().Overlays().Top(); top != nil; top = w.Canvas().Overlays().Top() {
		w.Canvas().Overlays().Remove(top)
	}
}

// showFolder opens p in both panels, as the window does.
func showFolder(pp *publishPanel, p *pipeline.Pipeline) {
	pp.cards.SetPipeline(p)
	pp.SetPipeline(p)
}

func stateOf(pp *publishPanel, s publish.Step) stepState { return pp.shown.states[stepIndex(s)] }

func TestPublishPanelLogInAndOut(t *testing.T) {
	srv := startTestHub(t)
	pp, w := newTestPublishPanel(t, srv.URL())
	assert.True(t, pp.dryRunBtn.Disabled(), "nothing to publish without a folder")
	assert.True(t, pp.publishBtn.Disabled())

	pp.SetPipeline(jobPipeline(t, 7))
	assert.Nil(t, pp.account)
	assert.Contains(t, pp.accountText.Text, "Not logged in to "+auth.Account(srv.URL()))
	assert.False(t, pp.dryRunBtn.Disabled(), "a dry run needs no account")
	assert.True(t, pp.publishBtn.Disabled(), "publishing does")
	assert.True(t, pp.logoutBtn.Disabled())
	pp.Publish() // Ctrl+Enter without an account asks to log in
	assert.Contains(t, topDialog(w), "Log in to "+auth.Account(srv.URL()))
	dismissDialogs(w)

	test.Tap(pp.loginBtn)
	require.NotNil(t, pp.loginDialog)
	assert.Contains(t, topDialog(w), "Log in to "+auth.Account(srv.URL()))
	test.Type(pp.loginEntry, aliceToken)
	pp.loginDialog.Submit()

	require.NotNil(t, pp.account)
	assert.Empty(t, topDialog(w), "no error")
	assert.Equal(t, "alice", pp.account.User)
	assert.Contains(t, pp.accountText.Text, "as alice")
	assert.Contains(t, pp.accountText.Text, "from keyring")
	assert.Contains(t, pp.accountText.Text, "write to: studio")
	assert.NotContains(t, pp.accountText.Text, "museum", "a read role in an org is no namespace to publish to")
	assert.Equal(t, []string{"alice", "studio"}, pp.namespace.Options)
	assert.Equal(t, "alice", pp.namespace.Selected)
	assert.Equal(t, "sd15", pp.repoName.Text, "the repository is named after the folder")
	assert.False(t, pp.publishBtn.Disabled())
	got, err := keyring.Get(auth.Service, auth.Account(srv.URL()))
	require.NoError(t, err)
	assert.Equal(t, aliceToken, got, "the token is in the keyring")
	assert.NotContains(t, test.RenderToMarkup(w.Canvas()), aliceToken, "the token is never shown")

	test.Tap(pp.logoutBtn)
	assert.Nil(t, pp.account)
	assert.Contains(t, pp.accountText.Text, "Not logged in")
	assert.True(t, pp.publishBtn.Disabled())
	assert.Empty(t, pp.namespace.Options)
	_, err = keyring.Get(auth.Service, auth.Account(srv.URL()))
	assert.ErrorIs(t, err, keyring.ErrNotFound, "logging out removes it")
}

// Enter in the token entry logs in, as the Log in button does; not while
// the entry is empty.
func TestPublishPanelEnterLogsIn(t *testing.T) {
	srv := startTestHub(t)
	pp, w := newTestPublishPanel(t, srv.URL())
	pp.SetPipeline(jobPipeline(t, 7))
	test.Tap(pp.loginBtn)
	require.NotNil(t, pp.loginDialog)
	enter := func() {
		w.Canvas().Focused().TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	}
	require.Equal(t, pp.loginEntry, w.Canvas().Focused(), "the token entry has the focus")

	enter()
	assert.Contains(t, topDialog(w), "Log in to", "an empty entry does not submit")
	assert.Nil(t, pp.account)

	test.Type(w.Canvas().Focused(), aliceToken) // into what has the focus
	enter()
	require.NotNil(t, pp.account, pp.accountText.Text)
	assert.Equal(t, "alice", pp.account.User)
	assert.Empty(t, topDialog(w), "the dialog is closed")
}

// An idle progress bar (no job yet) is not shown, so it reads no "0%";
// it shows once a job runs.
func TestPublishPanelIdleProgress(t *testing.T) {
	srv := startTestHub(t)
	pp, w := newTestPublishPanel(t, srv.URL())
	assert.False(t, pp.bar.Visible())
	showFolder(pp, jobPipeline(t, 7))
	assert.False(t, pp.bar.Visible())
	assert.NotContains(t, test.RenderObjectToMarkup(pp.right), "0%")

	pp.DryRun()
	require.Empty(t, topDialog(w), "no error")
	assert.True(t, pp.bar.Visible())
	assert.Contains(t, test.RenderObjectToMarkup(pp.right), "100%")
}

// The "Uploaded as saved" hint is in the text colour, and names the shard
// limit as the Shards tab does.
func TestPublishPanelOutputHint(t *testing.T) {
	pp, _ := newTestPublishPanel(t, "http://127.0.0.1:1")
	assert.Equal(t, widget.MediumImportance, pp.output.Importance)
	pp.e.choices.set(5_000_000_000, "fp16")
	assert.Equal(t, "Uploaded as saved: shards of at most 5 GB, with an fp16 variant (the Shards and Variant tabs choose).", pp.output.Text)
	pp.e.choices.set(1_500_000_000, "")
	assert.Contains(t, pp.output.Text, "shards of at most 1.5 GB, no variant")
}

// overlayLabels is the text of the labels of the dialog on top, one per line.
func overlayLabels(w fyne.Window) string {
	var texts []string
	walkObjects(w.Canvas().Overlays().Top(), func(o fyne.CanvasObject) {
		if l, ok := o.(*widget.Label); ok {
			texts = append(texts, l.Text)
		}
	})
	return strings.Join(texts, "\n")
}

// dialogButton is the button labelled text of the dialog on top.
func dialogButton(t *testing.T, w fyne.Window, text string) *widget.Button {
	t.Helper()
	var found *widget.Button
	walkObjects(w.Canvas().Overlays().Top(), func(o fyne.CanvasObject) {
		if b, ok := o.(*widget.Button); ok && b.Text == text {
			found = b
		}
	})
	require.NotNil(t, found, "no button %q", text)
	return found
}

// walkObjects calls f on o and every object inside it.
func walkObjects(o fyne.CanvasObject, f func(fyne.CanvasObject)) {
	if o == nil {
		return
	}
	f(o)
	switch v := o.(type) {
	case *fyne.Container:
		for _, c := range v.Objects {
			walkObjects(c, f)
		}
	case fyne.Widget:
		if _, ok := v.(*widget.Label); ok {
			return // its text is its Text
		}
		for _, c := range test.WidgetRenderer(v).Objects() {
			walkObjects(c, f)
		}
	}
}

// assertAdviceOnce checks that text says what to do about a refused token
// once, and holds no request id.
func assertAdviceOnce(t *testing.T, text string) {
	t.Helper()
	assert.Equal(t, 1, strings.Count(strings.ToLower(text), "log in again"), "the advice once: %s", text)
	assert.Equal(t, 1, strings.Count(text, "use a token the local Hub was started with"), "the advice once: %s", text)
	assert.NotContains(t, text, "request id")
	assert.NotContains(t, text, "Root=", "the emulator's request id")
}

func TestPublishPanelFindsTheStoredToken(t *testing.T) {
	srv := startTestHub(t)
	pp, _ := newTestPublishPanel(t, srv.URL())
	storeToken(t, srv.URL(), aliceToken)

	pp.SetPipeline(jobPipeline(t, 7))

	require.NotNil(t, pp.account, pp.accountText.Text)
	assert.Equal(t, []string{"alice", "studio"}, pp.account.Namespaces)
	assert.Equal(t, auth.SourceKeyring, pp.token.Source)
	n := len(srv.Requests())
	pp.SetPipeline(jobPipeline(t, 7))
	assert.Len(t, srv.Requests(), n, "the account is checked once")
}

func TestPublishPanelWithoutKeyring(t *testing.T) {
	srv := startTestHub(t)
	pp, w := newTestPublishPanel(t, srv.URL())
	keyring.MockInitWithError(errors.New("org.freedesktop.DBus.Error.ServiceUnknown"))
	t.Cleanup(keyring.MockInit)

	pp.SetPipeline(jobPipeline(t, 7))
	assert.Contains(t, pp.accountText.Text, "The OS keyring cannot be used")

	pp.login(aliceToken)
	require.NotNil(t, pp.keyringDialog, "the panel explains the keyring failure")
	assert.Contains(t, topDialog(w), "Use for this session only")
	assert.Contains(t, topDialog(w), "it belongs to alice")
	assert.Nil(t, pp.account, "not logged in before the user agrees")

	pp.keyringDialog.Confirm()
	require.NotNil(t, pp.account)
	assert.Equal(t, "alice", pp.account.User)
	assert.Equal(t, sourceSession, pp.token.Source)
	assert.Contains(t, pp.accountText.Text, "from this session only")
	assert.False(t, pp.publishBtn.Disabled())

	test.Tap(pp.logoutBtn)
	assert.Nil(t, pp.account)
	assert.True(t, pp.session.IsZero(), "the session token is forgotten")
}

func TestPublishPanelWrongToken(t *testing.T) {
	srv := startTestHub(t)
	pp, w := newTestPublishPanel(t, srv.URL())
	pp.SetPipeline(jobPipeline(t, 7))

	pp.login("hf_not_a_token_the_hub_knows_0123456789")

	require.NotNil(t, w.Canvas().Overlays().Top(), "an error dialog")
	assert.Contains(t, topDialog(w), "The Hub refused the token")
	text := overlayLabels(w)
	assert.Contains(t, text, `HTTP 401; "Invalid credentials in Authorization header"`, "what the Hub said")
	assertAdviceOnce(t, text)
	assert.NotContains(t, text, "/settings/tokens", "a local Hub has no token page")
	assert.Nil(t, pp.account)

	// The full error, with the Hub's request id, is under Details….
	test.Tap(dialogButton(t, w, "Details…"))
	assert.Contains(t, overlayLabels(w), "request id Root=")
	_, err := keyring.Get(auth.Service, auth.Account(srv.URL()))
	assert.ErrorIs(t, err, keyring.ErrNotFound, "a refused token is not kept")

	dismissDialogs(w)
	pp.login("   ")
	assert.Contains(t, topDialog(w), "Not a Hub token")
}

func TestPublishPanelReadOnlyToken(t *testing.T) {
	srv := startTestHub(t)
	pp, _ := newTestPublishPanel(t, srv.URL())
	storeToken(t, srv.URL(), readToken)
	pp.SetPipeline(jobPipeline(t, 7))
	require.NotNil(t, pp.account)
	assert.Contains(t, pp.accountText.Text, "read-only")
	assert.Equal(t, 1, strings.Count(pp.accountText.Text, "write role"), "the advice once: %s", pp.accountText.Text)
	assert.Contains(t, pp.accountText.Text, "use a token the local Hub was started with")
	assert.True(t, pp.publishBtn.Disabled(), "a read token cannot publish")
	assert.False(t, pp.dryRunBtn.Disabled())
}

func TestPublishPanelTarget(t *testing.T) {
	srv := startTestHub(t)
	pp, _ := newTestPublishPanel(t, srv.URL())
	storeToken(t, srv.URL(), aliceToken)
	showFolder(pp, jobPipeline(t, 7))
	require.NotNil(t, pp.account)

	assert.Equal(t, "Upload StableDiffusionPipeline", pp.message.PlaceHolder)
	assert.True(t, pp.branch.Disabled())
	pp.mode.SetSelected(modeBranch)
	assert.False(t, pp.branch.Disabled())
	assert.True(t, pp.publishBtn.Disabled(), "a branch needs a name")
	assert.Contains(t, pp.targetHint.Text, "Name the branch")
	test.Type(pp.branch, "dev")
	assert.False(t, pp.publishBtn.Disabled())
	assert.False(t, pp.targetHint.Visible())

	pp.repoName.SetText("bad--name")
	assert.True(t, pp.publishBtn.Disabled())
	assert.True(t, pp.dryRunBtn.Disabled())
	assert.Contains(t, pp.targetHint.Text, "Not a repository name")

	pp.namespace.SetSelected("studio")
	pp.repoName.SetText("cats")
	assert.Equal(t, "studio/cats", pp.repoID())
	assert.Contains(t, pp.cards.card.Body(), `"studio/cats"`, "the generated card names the repository")
}

func TestRepoNameFor(t *testing.T) {
	for in, want := range map[string]string{
		"/m/sd15":                        "sd15",
		"/m/My Model (v2)":               "My-Model-v2",
		"/m/..hidden..":                  "hidden",
		"/m/a--b..c":                     "a-b.c",
		"/m/x.git":                       "x",
		"/m/???":                         "model",
		"/m/" + strings.Repeat("a", 120): strings.Repeat("a", 96),
	} {
		got := repoNameFor(in)
		assert.Equal(t, want, got, in)
		_, err := hub.ParseRepoID("ns/" + got)
		assert.NoError(t, err, got)
	}
}

// Without an account the dry run reads nothing on the Hub: every file is
// to send, "not compared".
func TestPublishPanelDryRun(t *testing.T) {
	srv := startTestHub(t)
	pp, _ := newTestPublishPanel(t, srv.URL())
	pp.SetPipeline(jobPipeline(t, 7))
	pp.e.choices.set(0, "fp16")
	srv.ResetRequests()

	pp.DryRun()

	assert.Empty(t, srv.Requests(), "a dry run without an account sends nothing to the Hub")
	assert.False(t, pp.Busy())
	require.NotEmpty(t, pp.rows)
	paths := map[string]publish.PlanEntry{}
	var total int64
	for _, e := range pp.rows {
		paths[e.Path] = e
		total += e.Size
		assert.Equal(t, publish.ChangeUnknown, e.Change, e.Path)
		assert.Equal(t, e.Size, e.Bytes, e.Path)
	}
	assert.Contains(t, paths, "README.md")
	assert.False(t, paths["README.md"].LFS)
	fp16 := paths["unet/diffusion_pytorch_model.fp16.safetensors"]
	require.NotEmpty(t, fp16.Path, "the chosen variant")
	assert.True(t, fp16.LFS)
	text, _ := fileCell(fp16, colChange, false)
	assert.Equal(t, "not compared", text)
	assert.Equal(t, fmt.Sprintf("unet/diffusion_pytorch_model.fp16.safetensors: not compared, %s, an LFS file; %s to send.",
		formatSize(fp16.Size), formatSize(fp16.Size)), fileDetail(fp16, false))
	assert.Contains(t, pp.status.Text, fmt.Sprintf("Dry run: sd15 would hold %d files (%s)", len(pp.rows), formatSize(total)))
	assert.Contains(t, pp.status.Text, "not compared with the Hub")
	assert.Contains(t, pp.filesText.Text, "plan: ")
	assert.Equal(t, stepSkipped, stateOf(pp, publish.StepCheck))
	assert.Equal(t, stepDone, stateOf(pp, publish.StepStage))
	assert.Equal(t, stepDone, stateOf(pp, publish.StepCard))
	assert.Equal(t, stepSkipped, stateOf(pp, publish.StepUpload))
	assert.Equal(t, "Compare with the Hub (not logged in)", pp.stepLabels[stepIndex(publish.StepUpload)].Text)
	assert.Equal(t, stepSkipped, stateOf(pp, publish.StepCommit))
	assert.False(t, pp.link.Visible())

	pp.e.choices.set(0, "")
	assert.Nil(t, pp.plan, "a plan made for other choices goes")
	assert.Empty(t, pp.rows)

	pp.DryRun()
	require.NotNil(t, pp.plan)
	reread, err := pipeline.Open(context.Background(), pp.p.Dir)
	require.NoError(t, err)
	pp.SetPipeline(reread)
	assert.Nil(t, pp.plan, "a plan made for the folder as it was read before goes")
}

// download fetches a file of a repo from the emulator.
func download(t *testing.T, srv *hubemu.Server, repo, rev, path string) []byte {
	t.Helper()
	resp, err := http.Get(srv.URL() + "/" + repo + "/resolve/" + rev + "/" + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", path, b)
	return b
}

// remoteFiles lists the files of repo at rev on the emulator.
func remoteFiles(t *testing.T, srv *hubemu.Server, repo, rev string) map[string]int64 {
	t.Helper()
	c, err := hub.NewClient(hub.Options{Endpoint: srv.URL(), Token: aliceToken})
	require.NoError(t, err)
	id, err := hub.ParseRepoID(repo)
	require.NoError(t, err)
	entries, err := c.ListTree(context.Background(), id, rev, "", true)
	require.NoError(t, err)
	out := map[string]int64{}
	for _, e := range entries {
		if e.Type == "file" {
			out[e.Path] = e.Size
		}
	}
	return out
}

func TestPublishPanelPublishesAndOpensPullRequest(t *testing.T) {
	srv := startTestHub(t)
	pp, w := newTestPublishPanel(t, srv.URL())
	storeToken(t, srv.URL(), aliceToken)
	showFolder(pp, jobPipeline(t, 7))
	require.NotNil(t, pp.account)
	pp.cards.license.SetText("apache-2.0")
	pp.cards.body.SetText("\n# Cats\n\nDraws cats.\n")
	want, err := pp.cards.Card()
	require.NoError(t, err)
	wantBytes, err := want.Bytes()
	require.NoError(t, err)

	pp.Publish()

	require.Empty(t, topDialog(w), "no error")
	assert.False(t, pp.Busy())
	require.True(t, pp.link.Visible(), pp.status.Text)
	assert.Contains(t, pp.link.Text, srv.URL()+"/alice/sd15/commit/")
	assert.Equal(t, pp.link.Text, pp.link.URL.String())
	assert.Contains(t, pp.status.Text, "Committed to alice/sd15")
	for _, s := range publish.Steps {
		assert.Equal(t, stepDone, stateOf(pp, s), s)
	}
	assert.Equal(t, wantBytes, download(t, srv, "alice/sd15", "main", "README.md"), "the card of the card panel")
	mainFiles := remoteFiles(t, srv, "alice/sd15", "main")
	assert.Contains(t, mainFiles, "unet/diffusion_pytorch_model.safetensors")

	pp.cards.body.SetText("\n# Cats\n\nDraws cats, and dogs.\n")
	pp.mode.SetSelected(modePR)
	pp.message.SetText("Mention dogs")
	pp.Publish()

	require.Empty(t, topDialog(w), "no error")
	assert.Contains(t, pp.link.Text, "/alice/sd15/discussions/1")
	assert.Contains(t, pp.status.Text, "Pull request opened on alice/sd15")
	assert.Equal(t, "Open the pull request", pp.stepLabels[stepIndex(publish.StepCommit)].Text)
	assert.Equal(t, wantBytes, download(t, srv, "alice/sd15", "main", "README.md"), "main is untouched")
	assert.Equal(t, mainFiles, remoteFiles(t, srv, "alice/sd15", "main"))
	assert.Contains(t, string(download(t, srv, "alice/sd15", "refs%2Fpr%2F1", "README.md")), "and dogs")

	// Nothing overlaps: "… from keyring." under its heading, each label as
	// tall as its wrapped text at its width, also after the panel narrows.
	assertStacked(t, pp.left)
	assertStacked(t, pp.right)
	w.Resize(fyne.NewSize(820, 760))
	assertStacked(t, pp.left)
	assertStacked(t, pp.right)
}

// assertStacked checks that c's visible objects stand one under the other
// without overlapping, each at least as tall as it asks to be.
func assertStacked(t *testing.T, c *fyne.Container) {
	t.Helper()
	var prev fyne.CanvasObject
	for _, o := range c.Objects {
		if !o.Visible() {
			continue
		}
		assert.GreaterOrEqual(t, o.Size().Height, o.MinSize().Height, "%T is cut", o)
		if prev != nil {
			assert.GreaterOrEqual(t, o.Position().Y, prev.Position().Y+prev.Size().Height, "%T overlaps the %T above", o, prev)
		}
		prev = o
	}
}

func TestPublishPanelInvalidCard(t *testing.T) {
	srv := startTestHub(t)
	pp, w := newTestPublishPanel(t, srv.URL())
	storeToken(t, srv.URL(), aliceToken)
	showFolder(pp, jobPipeline(t, 7))
	pp.cards.license.SetText("nope")
	srv.ResetRequests()

	pp.Publish()

	assert.Contains(t, topDialog(w), "The model card has problems")
	assert.Contains(t, topDialog(w), "Model card tab")
	assert.False(t, pp.Busy())
	assert.Empty(t, srv.Requests(), "nothing started")
}

func TestPublishPanelErrorDialog(t *testing.T) {
	srv := startTestHub(t)
	pp, w := newTestPublishPanel(t, srv.URL())
	storeToken(t, srv.URL(), aliceToken)
	pp.SetPipeline(jobPipeline(t, 7))
	require.NotNil(t, pp.account)
	// The token is revoked after the account check.
	pp.token = auth.NewToken("hf_revoked_token_0123456789abcdefghij", auth.SourceKeyring)

	pp.Publish()

	markup := topDialog(w)
	assert.Contains(t, markup, "The Hub refused the token")
	assertAdviceOnce(t, overlayLabels(w))
	assert.Equal(t, stepFailed, stateOf(pp, publish.StepCheck))
	assert.True(t, pp.failureBox.Visible(), "Progress says why")
	assert.NotContains(t, pp.failure.Text, "request id")
	assert.False(t, pp.Busy())
	assert.False(t, pp.publishBtn.Disabled(), "it may be tried again")
}

func TestPublishErrorText(t *testing.T) {
	wrap := func(err error) error {
		return &publish.StepError{Step: publish.StepUpload, Err: fmt.Errorf("x: %w", err)}
	}
	for _, tt := range []struct {
		err        error
		title, has string
	}{
		{wrap(publish.ErrReadOnlyToken), "The token cannot write", "write role"},
		{wrap(publish.ErrNamespace), "The token cannot write to this namespace", "namespace the token may write to"},
		{wrap(hub.ErrUnauthorized), "The Hub refused the token", "Log in again"},
		{wrap(publish.ErrCard), "The model card has invalid metadata", "Model card tab"},
		{wrap(publish.ErrBusy), "The folder is being published already", "Wait"},
		{wrap(hub.ErrNetwork), "Cannot reach the Hub", "connection"},
		{wrap(hub.ErrRateLimited), "The Hub is limiting requests", "Wait a minute"},
		{errors.New("boom"), "Publishing failed", "publish again"},
	} {
		title, next := publishErrorText(tt.err, "https://hub.test")
		assert.Equal(t, tt.title, title, tt.err)
		assert.Contains(t, next, tt.has, tt.err)
	}
}

// The cause shown above the advice has no request id, and no hint of the
// Hub client where the app gives its own advice.
func TestPublishErrorCause(t *testing.T) {
	network := &publish.StepError{Step: publish.StepCheck, Err: &hub.Error{Kind: hub.ErrNetwork, Op: "whoami",
		Err: errors.New("connection refused"), RequestID: "req-1", Hint: "check the network connection"}}
	got := publishErrorCause(network, "http://127.0.0.1:1")
	assert.Contains(t, got, "connection refused")
	assert.NotContains(t, got, "req-1")
	assert.NotContains(t, got, "check the network connection", "the app says what to do")

	other := &hub.Error{Kind: hub.ErrBadRequest, Op: "commit", StatusCode: 400, Message: "nope", RequestID: "req-2",
		Hint: "the Hub rejected the request; see its message"}
	got = publishErrorCause(other, "http://127.0.0.1:1")
	assert.Contains(t, got, "see its message", "no advice of the app's: the hint stays")
	assert.NotContains(t, got, "req-2")
}

// A publish whose LFS uploads are slowed stops within a second of Cancel,
// and the panel is ready again. The job runs on its own goroutine here;
// its UI updates queue for the test goroutine, as for the real main one.
func TestPublishPanelCancel(t *testing.T) {
	srv := startTestHub(t)
	pp, _ := newTestPublishPanel(t, srv.URL())
	loop := newTestLoop()
	pp.e.spawn = func(f func()) { go f() }
	pp.e.do = loop.do
	storeToken(t, srv.URL(), aliceToken)
	faults, err := hubemu.ParseFaults("seed=1,rate=1,kinds=slow,endpoints=lfs-upload,slow=300ms")
	require.NoError(t, err)
	srv.SetFaults(faults)
	var running sync.WaitGroup // the job's goroutine, so the test ends after it
	spawn := pp.e.spawn
	pp.e.spawn = func(f func()) {
		running.Add(1)
		spawn(func() { defer running.Done(); f() })
	}
	t.Cleanup(running.Wait)

	pp.SetPipeline(jobPipeline(t, 7))
	require.True(t, loop.runUntil(func() bool { return pp.account != nil }, 10*time.Second), pp.accountText.Text)
	pp.Publish()
	require.True(t, pp.Busy())
	assert.True(t, pp.publishBtn.Disabled())
	assert.True(t, pp.dryRunBtn.Disabled())
	assert.False(t, pp.cancelBtn.Disabled())
	require.True(t, loop.runUntil(func() bool {
		return pp.shown.current == stepIndex(publish.StepUpload) && pp.shown.phase == "upload"
	}, 60*time.Second), "the upload starts")

	began := time.Now()
	test.Tap(pp.cancelBtn)
	assert.True(t, pp.cancelBtn.Disabled())
	require.True(t, loop.runUntil(func() bool { return !pp.Busy() }, 5*time.Second))
	elapsed := time.Since(began)

	t.Logf("stopped %v after Cancel", elapsed)
	assert.Less(t, elapsed, 1500*time.Millisecond, "the job stops within about a second")
	assert.True(t, pp.shown.cancelled)
	assert.Equal(t, stepFailed, stateOf(pp, publish.StepUpload))
	assert.Contains(t, pp.status.Text, "Cancelled")
	assert.False(t, pp.publishBtn.Disabled(), "the buttons are back")
	assert.False(t, pp.dryRunBtn.Disabled())
	assert.True(t, pp.cancelBtn.Disabled())
	assert.False(t, pp.link.Visible())
	idle := false
	pp.OnIdle(func() { idle = true })
	assert.True(t, idle)
}

func TestPublishTracker(t *testing.T) {
	tr := newPublishTracker(false, true)
	tr.event(publish.Event{Step: publish.StepCheck, Message: "checking"})
	s := tr.event(publish.Event{Step: publish.StepStage, Bytes: 10, Total: 100, File: "unet/x.safetensors"})
	assert.Equal(t, []stepState{stepDone, stepDone, stepRunning, stepPending, stepPending, stepPending}, s.states)
	assert.Equal(t, "unet/x.safetensors", s.file)
	s = tr.event(publish.Event{Step: publish.StepUpload, Phase: "hash"})
	assert.Equal(t, "Hashing the files", s.message)
	assert.Equal(t, int64(0), s.bytes, "a new step starts from zero")
	assert.Equal(t, []stepState{stepDone, stepDone, stepRunning, stepPending, stepRunning, stepPending}, s.states,
		"the save goes on while the first files upload")
	s = tr.event(publish.Event{Step: publish.StepStage, Bytes: 50, Total: 100})
	assert.Equal(t, int64(0), s.bytes, "the bar stays on the upload while the save counts on")
	s = tr.event(publish.Event{Step: publish.StepValidate, Bytes: 20, Total: 100})
	assert.Equal(t, stepRunning, s.states[3])
	s = tr.event(publish.Event{Step: publish.StepStage, Done: true, Message: "staged"})
	assert.Equal(t, stepDone, s.states[2])
	s = tr.event(publish.Event{Step: publish.StepUpload, Bytes: 30, Total: 100})
	assert.Equal(t, int64(30), s.bytes)
	s.states[0] = stepFailed
	assert.Equal(t, stepDone, tr.p.states[0], "a snapshot is a copy")
	s = tr.finish(&publish.StepError{Step: publish.StepUpload, Err: context.Canceled})
	assert.True(t, s.cancelled)
	assert.Equal(t, stepFailed, s.states[4])

	tr = newPublishTracker(true, false)
	s = tr.finish(errors.New("no folder"))
	assert.Equal(t, stepFailed, s.states[1], "the first step a dry run without a token takes")

	// A dry run with a token checks it and compares with the Hub; it
	// commits nothing.
	tr = newPublishTracker(true, true)
	assert.Equal(t, []stepState{stepPending, stepPending, stepPending, stepPending, stepPending, stepSkipped}, tr.snapshot().states)
	tr.event(publish.Event{Step: publish.StepUpload, Phase: "compare"})
	s = tr.event(publish.Event{Step: publish.StepDone, Done: true})
	assert.Equal(t, []stepState{stepDone, stepDone, stepDone, stepDone, stepDone, stepSkipped}, s.states)
}

func TestProgressBridge(t *testing.T) {
	var shown []int
	clock := time.Unix(0, 0)
	b := newProgressBridge(func(f func()) { f() }, func(v int) { shown = append(shown, v) })
	b.now = func() time.Time { return clock }

	for i := 1; i <= 100; i++ { // 100 updates in one second
		b.set(i)
		clock = clock.Add(10 * time.Millisecond)
	}
	b.flush()
	b.flush()

	assert.LessOrEqual(t, len(shown), 11, "at most ten a second, and the last")
	assert.Equal(t, 1, shown[0], "the first goes out at once")
	assert.Equal(t, 100, shown[len(shown)-1], "the last is always shown")
	assert.Equal(t, "1.00 MB of 4.00 MB · 500 KB/s · 6 s left", byteProgress(1_000_000, 4_000_000, 500_000, 6*time.Second))
	assert.Equal(t, "3 min 20 s", formatETA(200*time.Second))
	assert.Equal(t, "2 h 5 min", formatETA(125*time.Minute))
}

// The transfer is chosen under Advanced, handed to the job, and kept for
// the next runs of the app; a plan made with another goes. A dry run that
// may use Xet says its estimate of the new bytes.
func TestPublishPanelTransfer(t *testing.T) {
	pp, _ := newTestPublishPanel(t, startTestHub(t).URL())
	prefs := fyne.CurrentApp().Preferences()
	pp.e.prefs = prefs
	assert.Equal(t, transferAuto, pp.transfer.Selected, "auto by default")
	var got []hub.Transfer
	run := pp.runJob
	cached := int64(0) // what the job's estimate found, as the test says
	pp.runJob = func(ctx context.Context, o publish.Options) (*publish.Result, error) {
		got = append(got, o.Transfer)
		res, err := run(ctx, o)
		if err == nil && res.Summary.Estimated {
			res.Summary.Cached = cached
		}
		return res, err
	}
	pp.SetPipeline(jobPipeline(t, 7))

	pp.DryRun()
	require.NotNil(t, pp.plan)
	assert.Contains(t, pp.status.Text, "Nothing was sent.")
	assert.NotContains(t, pp.status.Text, "Xet", "an empty Xet cache knows nothing worth saying")
	cached = 1_000_000
	pp.DryRun()
	assert.Regexp(t, `Nothing was sent\. Through Xet, about [0-9.]+ [KMG]?B would be new of [0-9.]+ [KMG]?B \(1\.00 MB already in this computer's Xet cache\)\.$`,
		pp.status.Text)

	pp.transfer.SetSelected(transferLFS)
	assert.Nil(t, pp.plan, "a plan made with another transfer goes")
	assert.Equal(t, "lfs", prefs.String(prefTransfer))
	pp.DryRun()
	assert.NotContains(t, pp.status.Text, "Xet")
	assert.Equal(t, []hub.Transfer{hub.TransferAuto, hub.TransferAuto, hub.TransferLFS}, got)

	// The next run of the app shows the choice kept.
	e := jobTestEnv()
	e.prefs = prefs
	assert.Equal(t, transferLFS, newPublishPanel(e, nil).transfer.Selected)
	prefs.SetString(prefTransfer, "smoke signals")
	assert.Equal(t, transferAuto, newPublishPanel(e, nil).transfer.Selected, "what is not a transfer reads as auto")
}

// Through Xet the bar counts the bytes the Hub already held as done, and
// the byte line says what was sent and what was held.
func TestPublishPanelShowsDeduplicatedBytes(t *testing.T) {
	pp, _ := newTestPublishPanel(t, "http://127.0.0.1:1")
	tr := newPublishTracker(false, true)
	tr.event(publish.Event{Step: publish.StepUpload, Phase: "upload", Message: "uploading"})
	s := tr.event(publish.Event{Step: publish.StepUpload, Phase: "upload", Bytes: 12_000_000, Deduped: 4_150_000_000,
		Total: 4_200_000_000, Rate: 3e6, ETA: 5 * time.Second})
	assert.EqualValues(t, 4_150_000_000, s.deduped)
	pp.showProgress(s)
	assert.InDelta(t, 4_162.0/4_200, pp.bar.Value, 1e-9)
	assert.Equal(t, "sent 12.0 MB of 4.20 GB — 4.15 GB already on the Hub · 3.00 MB/s · 5 s left", pp.bytesText.Text)

	s = tr.event(publish.Event{Step: publish.StepCommit, Phase: "commit", Message: "committing"})
	assert.Zero(t, s.deduped, "the commit counts nothing held")
}

// A dry run without an account leaves the comparison with the Hub out,
// yet estimates the new bytes under it: the step stays left out, the bar
// shows the estimate.
func TestPublishTrackerKeepsSkippedSteps(t *testing.T) {
	tr := newPublishTracker(true, false)
	s := tr.event(publish.Event{Step: publish.StepUpload, Phase: "estimate", Message: "estimating", Bytes: 10, Total: 100})
	assert.Equal(t, stepSkipped, s.states[stepIndex(publish.StepUpload)])
	assert.Equal(t, int64(10), s.bytes)
	assert.Equal(t, "estimating", s.message)
	s = tr.event(publish.Event{Step: publish.StepUpload, Phase: "estimate", Done: true, Bytes: 100, Total: 100})
	assert.Equal(t, stepSkipped, s.states[stepIndex(publish.StepUpload)])
}
