package gui

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"syscall"
	"time"
	"unicode"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"modelpub/core/auth"
	"modelpub/core/card"
	"modelpub/core/hub"
	"modelpub/core/pipeline"
	"modelpub/core/publish"
)

// hubConfig says which Hub the Publish panel talks to and where it keeps
// the token. The zero value is the real thing: $HF_ENDPOINT or
// huggingface.co, the OS keyring, the user's cache folder; tests point it
// at an emulator and a mock keyring.
type hubConfig struct {
	Endpoint   string              // "" → $HF_ENDPOINT → https://huggingface.co
	Keyring    auth.Keyring        // nil → the OS keyring
	Getenv     func(string) string // nil → os.Getenv (HF_TOKEN, HF_ENDPOINT, …)
	Home       string              // home folder for the token file of `hf auth login`; "" → the user's
	CacheDir   string              // staging and upload state; "" → $XDG_CACHE_HOME/modelpub
	HTTPClient *http.Client        // nil → the hub client's default
	Retry      hub.RetryPolicy     // zero → the hub client's default
	Version    string              // Modelpub's version, for the User-Agent
}

func (c hubConfig) authOptions() auth.Options {
	return auth.Options{Endpoint: c.Endpoint, Keyring: c.Keyring, Getenv: c.Getenv, Home: c.Home}
}

// endpoint is the Hub's base URL, without a trailing slash.
func (c hubConfig) endpoint() string { return c.authOptions().EndpointURL() }

// host names the Hub for people: "huggingface.co", "127.0.0.1:8765".
func (c hubConfig) host() string { return auth.Account(c.endpoint()) }

// accountTimeout bounds the whoami call of the account check and the login.
const accountTimeout = 30 * time.Second

// whoami asks the Hub what token may do.
func (c hubConfig) whoami(token string) (*publish.Account, error) {
	client, err := hub.NewClient(hub.Options{Endpoint: c.endpoint(), Token: token, Version: c.Version,
		HTTPClient: c.HTTPClient, Retry: c.Retry})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), accountTimeout)
	defer cancel()
	return publish.CheckAccount(ctx, client)
}

// sourceSession marks a token kept in memory for this session only, as
// the keyring could not keep it.
const sourceSession auth.Source = "this session only"

// The ways to publish, the choices of the mode radio.
const (
	modeMain   = "Commit to main"
	modePR     = "Open a pull request"
	modeBranch = "Commit to branch"
)

// stepState is how far a step of the job got.
type stepState int

const (
	stepPending stepState = iota
	stepRunning
	stepDone
	stepFailed
	stepSkipped // not part of this run (a dry run has no check, upload or commit)
)

// stepTitles describe the steps of publish.Steps.
var stepTitles = map[publish.Step]string{
	publish.StepCheck:    "Check the token and the namespace",
	publish.StepStage:    "Save the folder in the chosen form",
	publish.StepValidate: "Validate the saved copy against the folder",
	publish.StepCard:     "Write the model card",
	publish.StepUpload:   "Upload the files",
	publish.StepCommit:   "Commit",
}

// dryRunSkips are the steps a dry run does not take.
var dryRunSkips = map[publish.Step]bool{publish.StepCheck: true, publish.StepUpload: true, publish.StepCommit: true}

// publishProgress is the state of a running job, as shown.
type publishProgress struct {
	states       []stepState // one per publish.Steps
	current      int         // index of the running (or last) step; -1 before the first
	phase        string      // the upload's sub-phase: scan, preupload, hash, upload, commit
	message      string
	file         string
	bytes, total int64
	rate         float64
	eta          time.Duration
	cancelled    bool
}

// phaseTexts describe the upload's sub-phases.
var phaseTexts = map[string]string{
	"scan":      "Listing the files to upload",
	"preupload": "Asking the Hub which files it needs",
	"hash":      "Hashing the files",
	"upload":    "Uploading",
	"commit":    "Committing",
}

// publishTracker folds the job's events into a publishProgress. The job
// calls it one event at a time, from its goroutine.
type publishTracker struct{ p publishProgress }

func newPublishTracker(dry bool) *publishTracker {
	t := &publishTracker{p: publishProgress{states: make([]stepState, len(publish.Steps)), current: -1}}
	for i, s := range publish.Steps {
		if dry && dryRunSkips[s] {
			t.p.states[i] = stepSkipped
		}
	}
	return t
}

// snapshot returns a copy the UI goroutine may keep.
func (t *publishTracker) snapshot() publishProgress {
	p := t.p
	p.states = append([]stepState(nil), t.p.states...)
	return p
}

// event records e and returns the new state.
func (t *publishTracker) event(e publish.Event) publishProgress {
	p := &t.p
	if e.Step == publish.StepDone {
		for i, s := range p.states {
			if s == stepRunning || s == stepPending {
				p.states[i] = stepDone
			}
		}
		p.message, p.file, p.bytes, p.rate, p.eta = e.Message, "", p.total, 0, 0
		return t.snapshot()
	}
	idx := stepIndex(e.Step)
	if idx < 0 {
		return t.snapshot()
	}
	if idx != p.current {
		for i := 0; i < idx; i++ {
			if p.states[i] == stepRunning || p.states[i] == stepPending {
				p.states[i] = stepDone
			}
		}
		p.current = idx
		p.phase, p.message, p.file, p.bytes, p.total, p.rate, p.eta = "", "", "", 0, 0, 0, 0
	}
	if e.Phase != "" && e.Phase != p.phase {
		p.phase = e.Phase
		if text, ok := phaseTexts[e.Phase]; ok && e.Message == "" {
			p.message = text
		}
	}
	p.states[idx] = stepRunning
	if e.Done {
		p.states[idx] = stepDone
	}
	if e.Message != "" {
		p.message = e.Message
	}
	if e.File != "" {
		p.file = e.File
	}
	if e.Total > 0 || e.Bytes > 0 {
		p.bytes, p.total, p.rate, p.eta = e.Bytes, e.Total, e.Rate, e.ETA
	}
	return t.snapshot()
}

// finish records the job's end: the failed step, or a cancellation.
func (t *publishTracker) finish(err error) publishProgress {
	p := &t.p
	if err == nil {
		return t.snapshot()
	}
	failed := p.current
	var se *publish.StepError
	if errors.As(err, &se) {
		if i := stepIndex(se.Step); i >= 0 {
			failed = i
		}
	}
	if failed < 0 {
		failed = 0
		for failed < len(p.states)-1 && p.states[failed] == stepSkipped {
			failed++
		}
	}
	for i := range p.states {
		if p.states[i] == stepRunning {
			p.states[i] = stepPending
		}
	}
	p.states[failed] = stepFailed
	p.current = failed
	p.cancelled = errors.Is(err, context.Canceled)
	p.rate, p.eta = 0, 0
	return t.snapshot()
}

func stepIndex(s publish.Step) int {
	for i, st := range publish.Steps {
		if st == s {
			return i
		}
	}
	return -1
}

// publishPanel publishes the open folder to the Hub: the account (the
// token kept in the OS keyring), the target repository and how to commit,
// then a Dry run or a Publish with per-step progress, and the commit or
// pull request at the end.
type publishPanel struct {
	e     *env
	cards *cardPanel
	cfg   hubConfig
	p     *pipeline.Pipeline

	// The account: the token and what it may do. session is a token the
	// keyring could not keep, held in memory until the app quits.
	token      auth.Token
	account    *publish.Account
	session    auth.Token
	checked    bool   // an account check ran (or a login or logout happened)
	noKeyring  string // why the OS keyring cannot be used, when it cannot
	accountGen int    // counts account checks, logins and logouts; a stale answer is dropped

	// The job.
	running    bool
	cancelling bool
	stop       context.CancelFunc
	runGen     int
	idle       []func() // OnIdle callbacks waiting for the job's end
	files      []publish.FileInfo
	shown      publishProgress // the state last shown, for tests

	accountText *widget.Label
	loginBtn    *widget.Button
	logoutBtn   *widget.Button

	namespace   *widget.Select
	repoName    *widget.Entry
	targetHint  *widget.Label
	private     *widget.Check
	mode        *widget.RadioGroup
	branch      *widget.Entry
	message     *widget.Entry
	description *widget.Entry
	output      *widget.Label

	dryRunBtn  *widget.Button
	publishBtn *widget.Button
	cancelBtn  *widget.Button

	stepIcons  []*widget.Icon
	stepLabels []*widget.Label
	bar        *widget.ProgressBar
	bytesText  *widget.Label
	fileText   *widget.Label
	status     *widget.Label
	link       *widget.Hyperlink
	table      *widget.Table
	left       *fyne.Container // the settings; laid out again when the target hint shows or hides
	right      *fyne.Container // the progress; laid out again when the link or the table shows or hides
	content    fyne.CanvasObject

	// The dialogs last shown, for tests.
	loginDialog   *dialog.FormDialog
	loginEntry    *widget.Entry
	keyringDialog *dialog.ConfirmDialog
}

func newPublishPanel(e *env, cards *cardPanel) *publishPanel {
	pp := &publishPanel{e: e, cards: cards}
	if e.hub != nil {
		pp.cfg = *e.hub
	}

	pp.accountText = widget.NewLabel("")
	pp.accountText.Wrapping = fyne.TextWrapWord
	pp.loginBtn = widget.NewButtonWithIcon("Log in…", theme.LoginIcon(), pp.showLogin)
	pp.logoutBtn = widget.NewButtonWithIcon("Log out", theme.LogoutIcon(), pp.logout)

	pp.namespace = widget.NewSelect(nil, func(string) { pp.targetChanged() })
	pp.namespace.PlaceHolder = "namespace"
	pp.repoName = widget.NewEntry()
	pp.repoName.PlaceHolder = "repository name"
	pp.repoName.OnChanged = func(string) { pp.targetChanged() }
	pp.targetHint = widget.NewLabel("")
	pp.targetHint.Wrapping = fyne.TextWrapWord
	pp.targetHint.Importance = widget.DangerImportance
	pp.targetHint.Hide()
	pp.private = widget.NewCheck("Private (a new repository only; an existing one keeps its visibility)", nil)
	pp.mode = widget.NewRadioGroup([]string{modeMain, modePR, modeBranch}, func(string) { pp.targetChanged() })
	pp.mode.Required = true
	pp.mode.Selected = modeMain
	pp.branch = widget.NewEntry()
	pp.branch.PlaceHolder = "branch name (created from main when missing)"
	pp.branch.OnChanged = func(string) { pp.targetChanged() }
	pp.message = widget.NewEntry()
	pp.message.PlaceHolder = "Upload model"
	pp.description = widget.NewMultiLineEntry()
	pp.description.PlaceHolder = "optional: what changed and why"
	pp.description.Wrapping = fyne.TextWrapWord
	pp.description.SetMinRowsVisible(3)
	pp.output = widget.NewLabel("")
	pp.output.Wrapping = fyne.TextWrapWord
	pp.output.Importance = widget.LowImportance

	pp.dryRunBtn = widget.NewButtonWithIcon("Dry run", theme.VisibilityIcon(), pp.DryRun)
	pp.publishBtn = widget.NewButtonWithIcon("Publish", theme.UploadIcon(), pp.Publish)
	pp.publishBtn.Importance = widget.HighImportance
	pp.cancelBtn = widget.NewButtonWithIcon("Cancel", theme.CancelIcon(), pp.Cancel)

	steps := container.New(layout.NewFormLayout())
	for _, s := range publish.Steps {
		icon := widget.NewIcon(nil)
		label := widget.NewLabel(stepTitles[s])
		pp.stepIcons = append(pp.stepIcons, icon)
		pp.stepLabels = append(pp.stepLabels, label)
		steps.Add(icon)
		steps.Add(label)
	}
	pp.bar = widget.NewProgressBar()
	pp.bytesText = widget.NewLabel("")
	pp.fileText = widget.NewLabel("")
	pp.fileText.Truncation = fyne.TextTruncateEllipsis
	pp.status = widget.NewLabel("")
	pp.status.Wrapping = fyne.TextWrapWord
	pp.link = widget.NewHyperlink("", nil)
	pp.link.Wrapping = fyne.TextWrapBreak
	pp.link.Hide()
	pp.table = pp.newFilesTable()
	pp.table.Hide()

	heading := func(s string) *widget.Label {
		return widget.NewLabelWithStyle(s, fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	}
	target := container.New(layout.NewFormLayout(),
		widget.NewLabel("Repository"),
		container.NewBorder(nil, nil, container.NewHBox(pp.namespace, widget.NewLabel("/")), nil, pp.repoName),
		layout.NewSpacer(), pp.private,
		widget.NewLabel("Upload as"), pp.mode,
		widget.NewLabel("Branch"), pp.branch,
		widget.NewLabel("Commit message"), pp.message,
		widget.NewLabel("Description"), pp.description)
	pp.left = container.NewVBox(
		heading("Account"),
		container.NewBorder(nil, nil, nil, container.NewVBox(container.NewHBox(pp.loginBtn, pp.logoutBtn)), pp.accountText),
		widget.NewSeparator(),
		heading("Target"), target, pp.targetHint, pp.output,
		container.NewHBox(pp.dryRunBtn, pp.publishBtn, pp.cancelBtn))
	pp.right = container.NewBorder(
		container.NewVBox(heading("Progress"), steps, pp.bar, pp.bytesText, pp.fileText, pp.status, pp.link),
		nil, nil, nil, pp.table)
	split := container.NewHSplit(container.NewVScroll(pp.left), pp.right)
	split.Offset = 0.5
	pp.content = split

	if e.choices != nil {
		e.choices.onChange(pp.showOutput)
	}
	pp.showOutput()
	pp.showAccount()
	pp.showProgress(newPublishTracker(false).snapshot())
	pp.clearResult()
	pp.update()
	return pp
}

// Content implements panel.
func (pp *publishPanel) Content() fyne.CanvasObject { return pp.content }

// SetPipeline implements panel. A new folder gets a repository name from
// its folder name; the account is checked the first time a folder shows.
func (pp *publishPanel) SetPipeline(p *pipeline.Pipeline) {
	changed := p == nil || pp.p == nil || p.Dir != pp.p.Dir
	pp.p = p
	if changed && p != nil {
		pp.repoName.SetText(repoNameFor(p.Dir))
		pp.message.PlaceHolder = publish.DefaultCommitMessage(p)
		pp.message.Refresh()
		if !pp.running {
			pp.clearResult()
			pp.showProgress(newPublishTracker(false).snapshot())
		}
	}
	if p != nil && !pp.checked {
		pp.checkAccount()
	}
	pp.update()
}

// Busy reports whether a dry run or a publish is running.
func (pp *publishPanel) Busy() bool { return pp.running }

// Cancel stops the running job; it ends within a second and reports the
// cancellation. See OnIdle to act once it has.
func (pp *publishPanel) Cancel() {
	if !pp.running || pp.cancelling {
		return
	}
	pp.cancelling = true
	pp.stop()
	pp.status.SetText("Cancelling…")
	pp.update()
}

// OnIdle runs f on the UI goroutine once no job runs: now, or when the
// running one has ended (say, to close the window after Cancel).
func (pp *publishPanel) OnIdle(f func()) {
	if !pp.running {
		f()
		return
	}
	pp.idle = append(pp.idle, f)
}

// Publish starts the publish, if it may start (Ctrl+Enter); with a folder
// but no account it asks to log in first.
func (pp *publishPanel) Publish() {
	switch {
	case !pp.publishBtn.Disabled():
		pp.start(false)
	case !pp.running && pp.p != nil && pp.account == nil:
		pp.showLogin()
	}
}

// DryRun starts a dry run, if it may start.
func (pp *publishPanel) DryRun() {
	if !pp.dryRunBtn.Disabled() {
		pp.start(true)
	}
}

// repoID is "namespace/name" as chosen, "name" without a namespace.
func (pp *publishPanel) repoID() string {
	name := strings.TrimSpace(pp.repoName.Text)
	if pp.namespace.Selected == "" {
		return name
	}
	return pp.namespace.Selected + "/" + name
}

// targetProblem says what is wrong with the chosen target, "" if nothing.
func (pp *publishPanel) targetProblem() string {
	name := strings.TrimSpace(pp.repoName.Text)
	if name == "" {
		return "Name the repository."
	}
	if _, err := hub.ParseRepoID(pp.repoID()); err != nil {
		return "Not a repository name the Hub accepts: use letters, digits, '-', '_' and '.', at most 96, " +
			"without '--', '..' or a '-' or '.' at either end."
	}
	if pp.mode.Selected == modeBranch && strings.TrimSpace(pp.branch.Text) == "" {
		return "Name the branch to commit to."
	}
	return ""
}

// targetChanged follows an edit of the target.
func (pp *publishPanel) targetChanged() {
	if pp.cards != nil && pp.namespace.Selected != "" && strings.TrimSpace(pp.repoName.Text) != "" {
		pp.cards.followRepo(pp.repoID())
	}
	pp.update()
}

// update enables what may be used now and shows the target's problem.
func (pp *publishPanel) update() {
	setEnabled := func(w fyne.Disableable, on bool) {
		if on {
			w.Enable()
		} else {
			w.Disable()
		}
	}
	problem := pp.targetProblem()
	if pp.p == nil {
		problem = ""
	}
	pp.targetHint.SetText(problem)
	if (problem == "") != pp.targetHint.Hidden {
		pp.targetHint.Hidden = problem == ""
		pp.targetHint.Refresh()
		if pp.left != nil {
			pp.left.Refresh()
		}
	}
	idle := !pp.running
	canWrite := pp.account != nil && pp.account.Role != "read" && pp.namespace.Selected != ""
	setEnabled(pp.dryRunBtn, idle && pp.p != nil && problem == "")
	setEnabled(pp.publishBtn, idle && pp.p != nil && problem == "" && canWrite)
	setEnabled(pp.cancelBtn, pp.running && !pp.cancelling)
	setEnabled(pp.loginBtn, idle)
	setEnabled(pp.logoutBtn, idle && !pp.token.IsZero())
	for _, w := range []fyne.Disableable{pp.namespace, pp.repoName, pp.private, pp.mode, pp.message, pp.description} {
		setEnabled(w, idle)
	}
	setEnabled(pp.branch, idle && pp.mode.Selected == modeBranch)
}

// showOutput says what the Shards and Variant panels chose.
func (pp *publishPanel) showOutput() {
	var shards, variant string
	var ch choices
	if pp.e.choices != nil {
		ch = *pp.e.choices
	}
	if ch.MaxShardSize > 0 {
		shards = "shards of at most " + formatSize(ch.MaxShardSize)
	} else {
		shards = "each library's default shard size"
	}
	if ch.Variant != "" {
		variant = "with an " + ch.Variant + " variant"
	} else {
		variant = "no variant"
	}
	pp.output.SetText(fmt.Sprintf("Uploaded as saved: %s, %s (the Shards and Variant tabs choose).", shards, variant))
}

// checkAccount finds the token and asks the Hub what it may do, off the UI
// goroutine.
func (pp *publishPanel) checkAccount() {
	pp.checked = true
	pp.accountGen++
	gen, cfg, session := pp.accountGen, pp.cfg, pp.session
	pp.setAccountText("Checking the token with "+cfg.host()+"…", widget.MediumImportance)
	pp.e.spawn(func() {
		tok, err := session, error(nil)
		if tok.IsZero() {
			tok, err = auth.Resolve(cfg.authOptions())
		}
		var acct *publish.Account
		if err == nil {
			acct, err = cfg.whoami(tok.Value())
		}
		pp.e.do(func() {
			if gen == pp.accountGen {
				pp.setAccount(tok, acct, err)
			}
		})
	})
}

// setAccount shows the outcome of an account check.
func (pp *publishPanel) setAccount(tok auth.Token, acct *publish.Account, err error) {
	pp.token, pp.account = tok, acct
	if err != nil {
		pp.account = nil
		if errors.Is(err, auth.ErrNoToken) {
			pp.token = auth.Token{}
		}
	}
	var ke *auth.KeyringError
	if errors.Is(err, auth.ErrNoToken) && errors.As(err, &ke) {
		pp.noKeyring = ke.Reason
	}
	pp.showAccount()
	if err != nil && !errors.Is(err, auth.ErrNoToken) {
		what := "The token"
		if !tok.IsZero() {
			what = fmt.Sprintf("The token (from %s)", tok.Source)
		}
		next := "Log in again with a valid token."
		if errors.Is(err, hub.ErrNetwork) || errors.Is(err, context.DeadlineExceeded) {
			next = "Check the connection, then log in again to retry."
		}
		pp.setAccountText(fmt.Sprintf("%s could not be checked with %s: %v\n%s", what, pp.cfg.host(), err, next),
			widget.DangerImportance)
	}
	pp.update()
}

// showAccount shows who is logged in and fills the namespace picker.
func (pp *publishPanel) showAccount() {
	a := pp.account
	if a == nil {
		text := fmt.Sprintf("Not logged in to %s. Log in with a Hub token that has the write role "+
			"to publish; Dry run works without one.", pp.cfg.host())
		if pp.noKeyring != "" {
			text += "\nThe OS keyring cannot be used (" + pp.noKeyring + "): a token you log in with can be " +
				"kept for this session only."
		}
		pp.setAccountText(text, widget.MediumImportance)
		pp.namespace.SetOptions(nil)
		pp.namespace.ClearSelected()
		return
	}
	text := fmt.Sprintf("Logged in to %s as %s: token role %s, from %s.", pp.cfg.host(), a.User, a.Role, pp.token.Source)
	if orgs := a.Namespaces[min(1, len(a.Namespaces)):]; len(orgs) > 0 {
		text += " Organisations you can write to: " + strings.Join(orgs, ", ") + "."
	}
	imp := widget.MediumImportance
	if a.Role == "read" {
		imp = widget.DangerImportance
		text += fmt.Sprintf(" This token is read-only: it cannot publish. Create one with the write role at "+
			"%s/settings/tokens and log in with it.", pp.cfg.endpoint())
	}
	pp.setAccountText(text, imp)
	prev := pp.namespace.Selected
	pp.namespace.SetOptions(a.Namespaces)
	switch {
	case prev != "" && containsFold(a.Namespaces, prev):
		pp.namespace.SetSelected(prev)
	case len(a.Namespaces) > 0:
		pp.namespace.SetSelected(a.Namespaces[0])
	}
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// setAccountText shows text about the account; the settings are laid out
// again, as its height may change.
func (pp *publishPanel) setAccountText(text string, imp widget.Importance) {
	pp.accountText.Importance = imp
	pp.accountText.SetText(text)
	if pp.left != nil {
		pp.left.Refresh()
	}
}

// showLogin asks for a token.
func (pp *publishPanel) showLogin() {
	entry := widget.NewPasswordEntry()
	entry.PlaceHolder = "hf_…"
	entry.Validator = func(s string) error {
		if strings.TrimSpace(s) == "" {
			return errors.New("paste a token")
		}
		return nil
	}
	item := widget.NewFormItem("Token", entry)
	item.HintText = fmt.Sprintf("A token with the write role, from %s/settings/tokens. It is kept in the OS keyring.",
		pp.cfg.endpoint())
	d := dialog.NewForm("Log in to "+pp.cfg.host(), "Log in", "Cancel", []*widget.FormItem{item}, func(ok bool) {
		if ok {
			pp.login(entry.Text)
		}
	}, pp.e.win)
	pp.loginDialog, pp.loginEntry = d, entry
	d.Resize(fyne.NewSize(min(560, pp.e.win.Canvas().Size().Width*0.9), d.MinSize().Height))
	d.Show()
	pp.e.win.Canvas().Focus(entry)
}

// login checks token with the Hub, then keeps it in the keyring; a keyring
// that cannot keep it is explained, with the offer to use the token for
// this session only.
func (pp *publishPanel) login(raw string) {
	token, err := auth.ReadToken(strings.NewReader(raw))
	if err != nil {
		pp.e.showProblem("Not a Hub token", "What was pasted is not a token: it is empty, or has spaces or "+
			"control characters inside.", fmt.Sprintf("Copy the token again from %s/settings/tokens "+
			"(it starts with hf_) and log in again.", pp.cfg.endpoint()))
		return
	}
	pp.checked = true
	pp.accountGen++
	gen, cfg := pp.accountGen, pp.cfg
	pp.setAccountText("Checking the token with "+cfg.host()+"…", widget.MediumImportance)
	pp.loginBtn.Disable()
	pp.e.spawn(func() {
		acct, err := cfg.whoami(token)
		var storeErr error
		if err == nil {
			storeErr = auth.Store(cfg.authOptions(), token)
		}
		pp.e.do(func() {
			if gen == pp.accountGen {
				pp.loggedIn(token, acct, err, storeErr)
			}
		})
	})
}

// loggedIn shows the outcome of a login.
func (pp *publishPanel) loggedIn(token string, acct *publish.Account, err, storeErr error) {
	if err != nil {
		pp.showAccount() // as before the attempt
		pp.update()
		title, next := "The Hub refused the token", fmt.Sprintf("Copy the token again from %s/settings/tokens, "+
			"or create a new one with the write role, and log in with it.", pp.cfg.endpoint())
		if !errors.Is(err, hub.ErrUnauthorized) {
			title, next = publishErrorText(err, pp.cfg.endpoint())
		}
		pp.e.showProblem(title, "Logging in to "+pp.cfg.host()+" failed: "+err.Error(), next)
		return
	}
	if storeErr != nil {
		pp.showAccount()
		pp.update()
		if errors.Is(storeErr, auth.ErrNoKeyring) {
			pp.offerSessionToken(token, acct, storeErr)
			return
		}
		pp.e.showProblem("The token was not kept", storeErr.Error(), "Log in again.")
		return
	}
	pp.session = auth.Token{}
	pp.setAccount(auth.NewToken(token, auth.SourceKeyring), acct, nil)
}

// offerSessionToken explains why the keyring cannot keep a working token
// and offers to use it until the app quits.
func (pp *publishPanel) offerSessionToken(token string, acct *publish.Account, storeErr error) {
	// The KeyringError's own hint is for the command line (--token-stdin);
	// the text below says what to do here.
	reason := storeErr.Error()
	var ke *auth.KeyringError
	if errors.As(storeErr, &ke) {
		reason = ke.Reason
	}
	pp.noKeyring = reason
	text := fmt.Sprintf("The token works: it belongs to %s. But Modelpub cannot keep it in the OS keyring: %s.\n\n"+
		"Use it for this session only: Modelpub keeps it in memory and forgets it when it quits. To keep a "+
		"token across sessions, fix the keyring and log in again, or set HF_TOKEN before starting Modelpub.",
		acct.User, reason)
	label := widget.NewLabel(text)
	label.Wrapping = fyne.TextWrapWord
	d := dialog.NewCustomConfirm("The token cannot be kept", "Use for this session only", "Cancel", label,
		func(ok bool) {
			if ok {
				pp.useSessionToken(token, acct)
			}
		}, pp.e.win)
	pp.keyringDialog = d
	d.Resize(fyne.NewSize(min(560, pp.e.win.Canvas().Size().Width*0.9), d.MinSize().Height))
	label.Resize(fyne.NewSize(min(560, pp.e.win.Canvas().Size().Width*0.9)-4*theme.Padding(), label.MinSize().Height))
	d.Resize(fyne.NewSize(min(560, pp.e.win.Canvas().Size().Width*0.9), d.MinSize().Height))
	d.Show()
}

// useSessionToken logs in with a token kept in memory only.
func (pp *publishPanel) useSessionToken(token string, acct *publish.Account) {
	pp.accountGen++
	pp.session = auth.NewToken(token, sourceSession)
	pp.setAccount(pp.session, acct, nil)
}

// logout forgets the token: a session token at once, a keyring one in the
// keyring. A token from HF_TOKEN or the file of `hf auth login` is not
// Modelpub's to remove: a dialog says how.
func (pp *publishPanel) logout() {
	switch pp.token.Source {
	case sourceSession:
		pp.session = auth.Token{}
		pp.loggedOut()
	case auth.SourceKeyring:
		pp.accountGen++
		gen, cfg := pp.accountGen, pp.cfg
		pp.logoutBtn.Disable()
		pp.e.spawn(func() {
			err := auth.Forget(cfg.authOptions())
			pp.e.do(func() {
				if gen != pp.accountGen {
					return
				}
				if err != nil && !errors.Is(err, auth.ErrNotLoggedIn) {
					pp.update()
					pp.e.showProblem("Cannot log out", err.Error(), "Remove the entry \""+auth.Service+
						"\" for "+cfg.host()+" with the desktop's password manager (Passwords and Keys), then restart Modelpub.")
					return
				}
				pp.loggedOut()
			})
		})
	case auth.SourceEnv:
		dialog.ShowInformation("The token comes from HF_TOKEN", "Modelpub uses the token of the HF_TOKEN "+
			"environment variable and does not change it. To log out, unset HF_TOKEN and start Modelpub again.", pp.e.win)
	case auth.SourceFile:
		dialog.ShowInformation("The token comes from hf", fmt.Sprintf("Modelpub uses the token that `hf auth login` "+
			"keeps in %s, and only reads it. To log out, run `hf auth logout`, then start Modelpub again.", pp.token.Path), pp.e.win)
	default:
		pp.loggedOut()
	}
}

func (pp *publishPanel) loggedOut() {
	pp.accountGen++
	pp.token, pp.account = auth.Token{}, nil
	pp.showAccount()
	pp.update()
}

// start runs a dry run or a publish off the UI goroutine, with progress.
func (pp *publishPanel) start(dry bool) {
	if pp.running || pp.p == nil {
		return
	}
	var cd *card.Card
	if pp.cards != nil {
		var err error
		// Without a card yet (the card panel never saw the folder), the
		// job generates one as the command line does.
		if cd, err = pp.cards.Card(); err != nil && !errors.Is(err, errNoCard) {
			pp.e.showProblem("The model card has problems", err.Error(),
				"Fix them in the Model card tab (they are listed in red under the form), then try again.")
			return
		}
	}
	opts := publish.Options{
		Source:            pp.p.Dir,
		AllowOutsideLinks: pp.p.Files() != nil && pp.p.Files().AllowsOutsideLinks(),
		Repo:              pp.repoID(),
		Private:           pp.private.Checked,
		CreatePR:          pp.mode.Selected == modePR,
		CommitMessage:     strings.TrimSpace(pp.message.Text),
		CommitDescription: strings.TrimSpace(pp.description.Text),
		Card:              cd,
		ReplaceBody:       !pp.cards.generated, // the user's own text replaces the Hub's; a generated one does not
		Endpoint:          pp.cfg.endpoint(),
		DryRun:            dry,
		CacheDir:          pp.cfg.CacheDir,
		Version:           pp.cfg.Version,
		HTTPClient:        pp.cfg.HTTPClient,
		Retry:             pp.cfg.Retry,
	}
	if pp.mode.Selected == modeBranch {
		opts.Branch = strings.TrimSpace(pp.branch.Text)
	}
	if pp.e.choices != nil {
		opts.MaxShardSize, opts.Variant = pp.e.choices.MaxShardSize, pp.e.choices.Variant
	}
	if !dry {
		opts.Token = pp.token.Value()
	}

	ctx, stop := context.WithCancel(context.Background())
	pp.running, pp.cancelling, pp.stop = true, false, stop
	pp.runGen++
	gen := pp.runGen
	tracker := newPublishTracker(dry)
	pp.clearResult()
	pp.showProgress(tracker.snapshot())
	if dry {
		pp.status.SetText("Dry run: saving and checking " + filepath.Base(opts.Source) + "; nothing is uploaded.")
	} else {
		pp.status.SetText("Publishing " + filepath.Base(opts.Source) + " to " + opts.Repo + "…")
	}
	pp.update()
	bridge := newProgressBridge(pp.e.do, func(s publishProgress) {
		if gen == pp.runGen {
			pp.showProgress(s)
		}
	})
	stage := "" // the step and phase last reported
	opts.Events = func(ev publish.Event) {
		bridge.set(tracker.event(ev))
		if now := string(ev.Step) + "/" + ev.Phase; now != stage {
			stage = now
			bridge.flush() // a new step or phase shows at once, not with the next progress
		}
	}
	pp.e.spawn(func() {
		res, err := publish.Run(ctx, opts)
		stop()
		bridge.flush()
		final := tracker.finish(err)
		pp.e.do(func() {
			if gen == pp.runGen {
				pp.finish(final, res, err, dry)
			}
		})
	})
}

// finish shows the job's outcome.
func (pp *publishPanel) finish(final publishProgress, res *publish.Result, err error, dry bool) {
	pp.running, pp.cancelling, pp.stop = false, false, nil
	pp.showProgress(final)
	pp.update()
	defer pp.runIdle()
	switch {
	case errors.Is(err, context.Canceled):
		pp.status.SetText("Cancelled. Files the Hub already received are kept there and not sent again next time.")
		return
	case err != nil:
		title, next := publishErrorText(err, pp.cfg.endpoint())
		pp.status.SetText(title + ".")
		pp.e.showProblem(title, err.Error(), next)
		return
	}
	pp.bar.SetValue(1)
	pp.bytesText.SetText("")
	pp.fileText.SetText("")
	pp.files = res.Files
	pp.table.Show()
	pp.table.Refresh()
	pp.right.Refresh()
	summary := fmt.Sprintf("%s, %s", plural(len(res.Files), "file", "files"), formatSize(res.Bytes))
	if dry {
		pp.status.SetText(fmt.Sprintf("Dry run: %s would be uploaded to %s. Nothing was sent.", summary, res.Repo))
		return
	}
	var link string
	switch {
	case res.NoChanges:
		pp.status.SetText(fmt.Sprintf("The Hub already has every file of %s: nothing to commit.", res.Repo))
		link = pp.cfg.endpoint() + "/" + res.Repo
	case res.PullRequestURL != "":
		pp.status.SetText(fmt.Sprintf("Pull request opened on %s (%s):", res.Repo, summary))
		link = res.PullRequestURL
	default:
		pp.status.SetText(fmt.Sprintf("Committed to %s (%s):", res.Repo, summary))
		link = res.URL
	}
	if u, err := url.Parse(link); err == nil && link != "" {
		// Tapping opens it with fyne.CurrentApp().OpenURL.
		pp.link.SetURL(u)
		pp.link.SetText(link)
		pp.link.Show()
		pp.right.Refresh()
	}
}

func (pp *publishPanel) runIdle() {
	idle := pp.idle
	pp.idle = nil
	for _, f := range idle {
		f()
	}
}

// clearResult hides the outcome of the previous job.
func (pp *publishPanel) clearResult() {
	pp.files = nil
	pp.table.Hide()
	pp.link.Hide()
	pp.status.SetText("Dry run saves the folder as chosen and lists what would be uploaded, without sending " +
		"anything; Publish uploads it.")
	if pp.right != nil {
		pp.right.Refresh()
	}
}

// showProgress shows a state of the job.
func (pp *publishPanel) showProgress(s publishProgress) {
	pp.shown = s
	for i, st := range s.states {
		pp.stepIcons[i].SetResource(stepIcon(st, s.cancelled))
		title := stepTitles[publish.Steps[i]]
		if publish.Steps[i] == publish.StepCommit && pp.mode.Selected == modePR {
			title = "Open the pull request"
		}
		switch st {
		case stepSkipped:
			title += " (not in a dry run)"
		case stepFailed:
			if s.cancelled {
				title += " (cancelled)"
			} else {
				title += " (failed)"
			}
		}
		pp.stepLabels[i].SetText(title)
		imp := widget.MediumImportance
		if st == stepSkipped || st == stepPending {
			imp = widget.LowImportance
		}
		if pp.stepLabels[i].Importance != imp {
			pp.stepLabels[i].Importance = imp
			pp.stepLabels[i].Refresh()
		}
	}
	if s.total > 0 {
		pp.bar.SetValue(float64(s.bytes) / float64(s.total))
	} else {
		pp.bar.SetValue(0)
	}
	switch {
	case s.total > 0 || s.bytes > 0:
		pp.bytesText.SetText(byteProgress(s.bytes, s.total, s.rate, s.eta))
	default:
		pp.bytesText.SetText(s.message)
	}
	if s.file != "" {
		pp.fileText.SetText(s.file)
	} else if s.total > 0 || s.bytes > 0 {
		pp.fileText.SetText(s.message)
	} else {
		pp.fileText.SetText("")
	}
}

// stepIcon is the icon of a step's state.
func stepIcon(st stepState, cancelled bool) fyne.Resource {
	switch st {
	case stepRunning:
		return theme.NewPrimaryThemedResource(theme.MediaPlayIcon())
	case stepDone:
		return theme.NewSuccessThemedResource(theme.ConfirmIcon())
	case stepFailed:
		if cancelled {
			return theme.NewWarningThemedResource(theme.CancelIcon())
		}
		return theme.NewErrorThemedResource(theme.ErrorIcon())
	case stepSkipped:
		return theme.NewDisabledResource(theme.ContentRemoveIcon())
	}
	return theme.NewDisabledResource(theme.RadioButtonIcon())
}

// fileColumns are the headings of the table of uploaded files.
var fileColumns = []string{"File", "Size", "Upload"}

func (pp *publishPanel) newFilesTable() *widget.Table {
	return newTextTable(fileColumns, []float32{300, 90, 70}, func(col int) bool { return col == 1 }, func() int { return len(pp.files) },
		func(row, col int) string { return fileCell(pp.files[row], col) })
}

// fileCell is the text of column col for an uploaded file.
func fileCell(f publish.FileInfo, col int) string {
	switch col {
	case 0:
		return f.Path
	case 1:
		return formatSize(f.Size)
	}
	if f.LFS {
		return "LFS"
	}
	return "regular"
}

// publishErrorText names a failure of the job and says what to do next.
func publishErrorText(err error, endpoint string) (title, next string) {
	tokens := endpoint + "/settings/tokens"
	switch {
	case errors.Is(err, publish.ErrReadOnlyToken):
		return "The token cannot write", "Create a token with the write role at " + tokens +
			", then use Log in… with it and publish again."
	case errors.Is(err, publish.ErrNamespace):
		return "The token cannot write to this namespace", "Pick a namespace you can write to in the list " +
			"(your own, or an organisation where you have the write role), or ask an admin of the organisation for it."
	case errors.Is(err, publish.ErrNoToken), errors.Is(err, auth.ErrNoToken):
		return "Not logged in", "Use Log in… with a token that has the write role, from " + tokens + "."
	case errors.Is(err, hub.ErrUnauthorized):
		return "The Hub refused the token", "Log in again (Log out, then Log in…) with a valid token from " + tokens + "."
	case errors.Is(err, hub.ErrForbidden):
		return "The Hub refused the write", "Check that the token may write to this repository (a fine-grained " +
			"token needs write access to it) at " + tokens + ", or publish as a pull request."
	case errors.Is(err, publish.ErrCard):
		return "The model card has invalid metadata", "Fix the metadata in the Model card tab (problems show " +
			"in red under the form), then publish again."
	case errors.Is(err, publish.ErrInvalid):
		return "The saved copy did not match the folder", "Nothing was uploaded. Open the folder again to check " +
			"it for warnings, try Save locally… to inspect the output, and report the problem if it stays."
	case errors.Is(err, publish.ErrBusy):
		return "The folder is being published already", "Another Modelpub (or the command line) is publishing " +
			"this folder. Wait for it to finish, then publish again."
	case errors.Is(err, hub.ErrInvalidRepoID):
		return "The repository name is not valid", "Use letters, digits, '-', '_' and '.' (at most 96), " +
			"without '--' or '..'."
	case errors.Is(err, hub.ErrRateLimited):
		return "The Hub is limiting requests", "Wait a minute and publish again: files already uploaded are not sent again."
	case errors.Is(err, hub.ErrNetwork), errors.Is(err, context.DeadlineExceeded):
		return "Cannot reach the Hub", "Check the connection (and HF_ENDPOINT, if set) and publish again: " +
			"files already uploaded are not sent again."
	case errors.Is(err, hub.ErrServer):
		return "The Hub had an error", "Try again in a few minutes: files already uploaded are not sent again."
	case errors.Is(err, hub.ErrTooLarge):
		return "The Hub refused a file as too large", "Choose a smaller maximum shard size in the Shards tab and publish again."
	case errors.Is(err, hub.ErrConflict):
		return "The branch changed during the upload", "Publish again: the commit is made on the new head."
	case errors.Is(err, hub.ErrRevisionNotFound):
		return "The branch does not exist", "Check the branch name, or commit to main or open a pull request instead."
	case errors.Is(err, pipeline.ErrUnreadableWeights), errors.Is(err, pipeline.ErrUnsupportedVariant):
		return "The folder cannot be saved", "Check the folder's weights in the tree (a file may be damaged " +
			"or incomplete), download it again if needed, and publish again."
	case errors.Is(err, pipeline.ErrNoSpace), errors.Is(err, syscall.ENOSPC):
		return "The disk is full", "Modelpub stages a copy in its cache folder before uploading. Free some " +
			"space (or set XDG_CACHE_HOME to a larger disk) and publish again."
	case errors.Is(err, fs.ErrPermission):
		return "Permission denied", "Check that Modelpub may read the folder and write its cache folder, then publish again."
	}
	return "Publishing failed", "Fix the cause above and publish again: steps already done are reused."
}

// repoNameFor makes a repository name from a folder name: characters the
// Hub does not accept become '-', runs of '-' or '.' collapse, and '-' or
// '.' at either end go.
func repoNameFor(dir string) string {
	var b strings.Builder
	for _, r := range filepath.Base(dir) {
		if unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || r == '-' || r == '.' {
			b.WriteRune(r)
		} else {
			b.WriteRune('-')
		}
	}
	s := b.String()
	for strings.Contains(s, "--") || strings.Contains(s, "..") {
		s = strings.NewReplacer("--", "-", "..", ".").Replace(s)
	}
	s = strings.TrimSuffix(strings.Trim(s, "-."), ".git")
	if r := []rune(s); len(r) > 96 {
		s = strings.Trim(string(r[:96]), "-.")
	}
	if s == "" {
		return "model"
	}
	return s
}

var _ panel = (*publishPanel)(nil)
