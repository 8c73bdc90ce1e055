package gui

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
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

// The ways to publish, the choices of the mode radio.
const (
	modeMain   = "Commit to main"
	modePR     = "Open a pull request"
	modeBranch = "Commit to branch"
)

// The transfers of the Transfer radio, with the hub.Transfer each stands for.
const (
	transferAuto = "Auto (Xet when the Hub takes it)"
	transferXet  = "Xet only"
	transferLFS  = "Git LFS only"
)

var transferChoices = []struct {
	label string
	t     hub.Transfer
}{{transferAuto, hub.TransferAuto}, {transferXet, hub.TransferXet}, {transferLFS, hub.TransferLFS}}

// prefTransfer keeps the chosen transfer across runs, as auto, xet or lfs.
const prefTransfer = "publish.transfer"

// publishPanel publishes the open folder to the Hub: the account (the
// token kept in the OS keyring), the target repository, how to commit and
// what to delete on the Hub; beside them the target as the Hub holds it,
// then a Dry run or a Publish with per-step progress, and under them the
// files: the Hub's, then the plan with a badge per path.
type publishPanel struct {
	e     *env
	cards *cardPanel
	cfg   hubConfig
	p     *pipeline.Pipeline

	// The Hub: publish.ReadRemote and publish.Run, which tests wrap.
	readRemote func(context.Context, publish.Options) (*publish.Remote, error)
	runJob     func(context.Context, publish.Options) (*publish.Result, error)

	// The account: the token and what it may do. session is a token the
	// keyring could not keep, held in memory until the app quits.
	token      auth.Token
	account    *publish.Account
	session    auth.Token
	checked    bool   // an account check ran (or a login or logout happened)
	noKeyring  string // why the OS keyring cannot be used, when it cannot
	accountGen int    // counts account checks, logins and logouts; a stale answer is dropped

	// The target as the Hub holds it (see publishremote.go).
	remote         *publish.Remote
	remoteErr      error
	remoteFor      string // the remoteKey remote, remoteErr or the read on its way are for
	remoteReading  bool
	remoteGen      int                // counts reads; a stale answer is dropped
	remoteStop     context.CancelFunc // cancels the read on its way
	remoteDebounce *debouncer

	// The job.
	running    bool
	cancelling bool
	stop       context.CancelFunc
	runGen     int
	idle       []func()        // OnIdle callbacks waiting for the job's end
	shown      publishProgress // the state last shown, for tests

	// The plan of the last dry run or publish, while the target and the
	// choices it was made with stay.
	plan        []publish.PlanEntry
	planSummary publish.Summary
	planDone    bool                // a publish's: what was done, not what would be
	planTarget  string              // the targetID it was made for
	rows        []publish.PlanEntry // what the files table shows

	accountText *widget.Label
	loginBtn    *widget.Button
	logoutBtn   *widget.Button

	namespace    *widget.Select
	repoName     *widget.Entry
	targetHint   *widget.Label
	private      *widget.Check
	mode         *widget.RadioGroup
	branch       *widget.Entry
	message      *widget.Entry
	description  *widget.Entry
	deleteExtra  *widget.Check
	noDelete     *widget.Check
	noDeleteWarn *widget.Label
	transfer     *widget.RadioGroup
	output       *widget.Label

	dryRunBtn  *widget.Button
	publishBtn *widget.Button
	cancelBtn  *widget.Button

	hubText    *widget.Label
	hubLink    *widget.Hyperlink
	stepIcons  []*widget.Icon
	stepLabels []*widget.Label
	bar        *widget.ProgressBar
	bytesText  *widget.Label
	fileText   *widget.Label
	status     *widget.Label
	failure    *widget.Label   // the error of the last job, on one line; Details… shows it whole
	failureBox *fyne.Container // failure and its Details… button, shown after a failed job
	failed     error           // that error
	warnings   *widget.Label
	link       *widget.Hyperlink
	filesText  *widget.Label
	table      *widget.Table
	fileDetail *widget.Label
	left       *fyne.Container // the settings; laid out again when the target hint shows or hides
	right      *fyne.Container // the Hub and the progress; laid out again when a link or the warnings show or hide
	content    fyne.CanvasObject

	// The dialogs last shown, for tests.
	loginDialog   *dialog.FormDialog
	loginEntry    *widget.Entry
	keyringDialog *dialog.ConfirmDialog
	failureDialog *dialog.CustomDialog
	detailsDialog *dialog.CustomDialog
}

func newPublishPanel(e *env, cards *cardPanel) *publishPanel {
	pp := &publishPanel{e: e, cards: cards, readRemote: publish.ReadRemote, runJob: publish.Run,
		remoteDebounce: &debouncer{delay: remoteDelay, do: e.do}}
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
	pp.private = widget.NewCheck("Private (new repository only)",
		func(bool) { pp.showRemote() })
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
	pp.deleteExtra = widget.NewCheck("Delete other files on the Hub", func(bool) { pp.deleteChanged() })
	// In the text colour, as every hint of the panel: the disabled colour
	// is faint in the light theme.
	deleteHint := widget.NewLabel("Weight files of another layout (old shards, variants) are always deleted, so " +
		"the Hub holds one layout. Other files only on the Hub (sample images, docs) are kept unless this is checked.")
	deleteHint.Wrapping = fyne.TextWrapWord
	pp.noDelete = widget.NewCheck("Delete nothing", func(bool) { pp.deleteChanged() })
	pp.noDeleteWarn = widget.NewLabel("Not even weights of another layout. Not advised: the old weight files stay " +
		"beside the new ones, and diffusers may " +
		"load them (an old shard index is read before a single file; variant= loads an old variant). The dry run " +
		"names them.")
	pp.noDeleteWarn.Wrapping = fyne.TextWrapWord
	pp.noDeleteWarn.Importance = widget.WarningImportance
	pp.noDeleteWarn.Hide()
	pp.transfer = widget.NewRadioGroup([]string{transferAuto, transferXet, transferLFS}, func(string) { pp.transferChanged() })
	pp.transfer.Required = true
	pp.transfer.Selected = transferLabel(pp.savedTransfer())
	transferHint := widget.NewLabel("Xet cuts files into chunks and sends only the chunks the Hub does not hold yet, " +
		"from any repository: a re-publish with another shard size, or a fine-tune whose other components are on the " +
		"Hub, sends little. The dry run estimates the new bytes from what this computer uploaded before.")
	transferHint.Wrapping = fyne.TextWrapWord
	pp.output = widget.NewLabel("") // in the text colour: a hint in the disabled colour is faint in the light theme
	pp.output.Wrapping = fyne.TextWrapWord

	pp.dryRunBtn = widget.NewButtonWithIcon("Dry run", theme.VisibilityIcon(), pp.DryRun)
	pp.publishBtn = widget.NewButtonWithIcon("Publish", theme.UploadIcon(), pp.Publish)
	pp.publishBtn.Importance = widget.HighImportance
	pp.cancelBtn = widget.NewButtonWithIcon("Cancel", theme.CancelIcon(), pp.Cancel)

	pp.hubText = widget.NewLabel("")
	pp.hubText.Wrapping = fyne.TextWrapWord
	pp.hubLink = widget.NewHyperlink("Open on the Hub", nil)
	pp.hubLink.Hide()
	steps := container.New(layout.NewFormLayout())
	for _, s := range publish.Steps {
		icon := widget.NewIcon(nil)
		label := widget.NewLabel(stepTitles[s])
		label.Truncation = fyne.TextTruncateEllipsis
		pp.stepIcons = append(pp.stepIcons, icon)
		pp.stepLabels = append(pp.stepLabels, label)
		steps.Add(icon)
		steps.Add(label)
	}
	pp.bar = widget.NewProgressBar()
	pp.bytesText = widget.NewLabel("")
	pp.bytesText.Truncation = fyne.TextTruncateEllipsis
	pp.fileText = widget.NewLabel("")
	pp.fileText.Truncation = fyne.TextTruncateEllipsis
	pp.status = widget.NewLabel("")
	pp.status.Wrapping = fyne.TextWrapWord
	// An error can be one line of thousands of characters (a path in a
	// path): it is cut to the column, and Details… shows it whole.
	pp.failure = widget.NewLabel("")
	pp.failure.Truncation = fyne.TextTruncateEllipsis
	pp.failure.Importance = widget.DangerImportance
	pp.failureBox = container.NewBorder(nil, nil, nil,
		widget.NewButton("Details…", func() {
			if pp.failed != nil {
				pp.showDetails(strings.TrimSuffix(pp.status.Text, "."), pp.failed.Error())
			}
		}), pp.failure)
	pp.failureBox.Hide()
	pp.warnings = widget.NewLabel("")
	pp.warnings.Wrapping = fyne.TextWrapWord
	pp.warnings.Importance = widget.WarningImportance
	pp.warnings.Hide()
	pp.link = widget.NewHyperlink("", nil)
	pp.link.Wrapping = fyne.TextWrapBreak
	pp.link.Hide()
	pp.filesText = widget.NewLabel("")
	pp.filesText.Truncation = fyne.TextTruncateEllipsis
	pp.fileDetail = widget.NewLabel("")
	pp.fileDetail.Wrapping = fyne.TextWrapBreak
	pp.table = pp.newFilesTable()

	heading := func(s string) *widget.Label {
		return widget.NewLabelWithStyle(s, fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	}
	target := container.New(layout.NewFormLayout(),
		widget.NewLabel("Repository"),
		container.NewBorder(nil, nil, container.NewHBox(pp.namespace, widget.NewLabel("/")), nil, pp.repoName),
		layout.NewSpacer(), container.NewVBox(pp.hubText, pp.hubLink),
		layout.NewSpacer(), pp.private,
		widget.NewLabel("Upload as"), pp.mode,
		widget.NewLabel("Branch"), pp.branch,
		widget.NewLabel("Message"), pp.message,
		widget.NewLabel("Description"), pp.description,
		widget.NewLabel("On the Hub"), container.NewVBox(pp.deleteExtra, deleteHint),
		layout.NewSpacer(), widget.NewAccordion(widget.NewAccordionItem("Advanced",
			container.NewVBox(pp.noDelete, pp.noDeleteWarn, widget.NewSeparator(),
				widget.NewLabelWithStyle("Transfer", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}), pp.transfer, transferHint))))
	pp.left = container.New(wrapVBox{},
		heading("Account"),
		pp.accountText, container.NewHBox(pp.loginBtn, pp.logoutBtn),
		widget.NewSeparator(),
		heading("Target"), target, pp.targetHint, pp.output)
	// The buttons stay in sight under the settings, however they scroll.
	settings := container.NewBorder(nil,
		container.NewVBox(widget.NewSeparator(), container.NewHBox(pp.dryRunBtn, pp.publishBtn, pp.cancelBtn)),
		nil, nil, container.NewVScroll(pp.left))
	// The outcome first, then the steps; the files below, as tall as the
	// split lets them.
	pp.right = container.New(wrapVBox{},
		heading("Progress"), pp.status, pp.failureBox, pp.warnings, pp.link, compact(steps), pp.bar, pp.bytesText, pp.fileText)
	files := container.NewBorder(container.NewBorder(nil, nil, heading("Files"), nil, pp.filesText), pp.fileDetail, nil, nil,
		container.New(&fillWidth{t: pp.table, change: changeWidth()}, pp.table))
	right := container.NewVSplit(container.NewVScroll(pp.right), files)
	right.Offset = 0.42
	split := container.NewHSplit(settings, right)
	split.Offset = 0.5
	pp.content = split

	if e.choices != nil {
		e.choices.onChange(func() {
			pp.showOutput()
			pp.dropPlan() // made for other choices
		})
	}
	pp.showOutput()
	pp.showAccount()
	pp.showProgress(newPublishTracker(false, true).snapshot())
	pp.clearResult()
	pp.showRemote()
	pp.update()
	return pp
}

// Content implements panel.
func (pp *publishPanel) Content() fyne.CanvasObject { return pp.content }

// SetPipeline implements panel. A new folder gets a repository name from
// its folder name; the account is checked the first time a folder shows. A
// plan made for the folder as it was read before goes.
func (pp *publishPanel) SetPipeline(p *pipeline.Pipeline) {
	changed := p == nil || pp.p == nil || p.Dir != pp.p.Dir
	if p != pp.p {
		pp.dropPlan()
	}
	pp.p = p
	if changed && p != nil {
		pp.repoName.SetText(repoNameFor(p.Dir))
		pp.message.PlaceHolder = publish.DefaultCommitMessage(p)
		pp.message.Refresh()
		if !pp.running {
			pp.clearResult()
			pp.showProgress(newPublishTracker(false, true).snapshot())
		}
	}
	if p != nil && !pp.checked {
		pp.checkAccount()
	}
	pp.update()
	pp.scheduleRemote()
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

// targetChanged follows an edit of the target: the plan made for another
// one goes, and the Hub is read again once the target rests.
func (pp *publishPanel) targetChanged() {
	if pp.cards != nil && pp.namespace.Selected != "" && strings.TrimSpace(pp.repoName.Text) != "" {
		pp.cards.followRepo(pp.repoID())
	}
	if pp.plan != nil && pp.targetID() != pp.planTarget {
		pp.dropPlan()
	}
	pp.update()
	pp.scheduleRemote()
}

// deleteChanged follows the delete options: they exclude each other, and
// a plan made with others goes.
func (pp *publishPanel) deleteChanged() {
	if pp.noDelete.Checked && pp.deleteExtra.Checked {
		pp.deleteExtra.SetChecked(false) // calls deleteChanged again
		return
	}
	if pp.noDelete.Checked != pp.noDeleteWarn.Visible() {
		pp.noDeleteWarn.Hidden = !pp.noDelete.Checked
		pp.noDeleteWarn.Refresh()
		if pp.left != nil {
			pp.left.Refresh()
		}
	}
	pp.dropPlan()
	pp.update()
}

// transferChanged keeps the chosen transfer for the next runs of the app;
// a plan made with another goes (its estimate depends on it).
func (pp *publishPanel) transferChanged() {
	if pp.e.prefs != nil {
		pp.e.prefs.SetString(prefTransfer, string(pp.chosenTransfer()))
	}
	pp.dropPlan()
}

// chosenTransfer is the transfer the radio shows.
func (pp *publishPanel) chosenTransfer() hub.Transfer {
	for _, c := range transferChoices {
		if c.label == pp.transfer.Selected {
			return c.t
		}
	}
	return hub.TransferAuto
}

// savedTransfer is the transfer chosen in an earlier run; auto when none
// was, or when what was kept is not one.
func (pp *publishPanel) savedTransfer() hub.Transfer {
	if pp.e.prefs == nil {
		return hub.TransferAuto
	}
	t, err := hub.ParseTransfer(pp.e.prefs.String(prefTransfer))
	if err != nil {
		return hub.TransferAuto
	}
	return t
}

func transferLabel(t hub.Transfer) string {
	for _, c := range transferChoices {
		if c.t == t {
			return c.label
		}
	}
	return transferAuto
}

// dropPlan forgets the plan of the last run, once the target or the
// choices it was made with change; the table shows the Hub's files again.
func (pp *publishPanel) dropPlan() {
	if pp.plan == nil || pp.running {
		return
	}
	pp.clearResult()
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
	if b := blockerOf(pp.p); b != "" { // a folder that cannot be read: see problems.go
		problem = "Publish is off: " + b + ". Replace the damaged files, then reload the folder (File ▸ Reload, F5)."
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
	for _, w := range []fyne.Disableable{pp.namespace, pp.repoName, pp.private, pp.mode, pp.message, pp.description, pp.noDelete, pp.transfer} {
		setEnabled(w, idle)
	}
	setEnabled(pp.deleteExtra, idle && !pp.noDelete.Checked)
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
		shards = "shards of at most " + formatLimit(ch.MaxShardSize) // as the Shards tab writes it
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
	opts := pp.targetOptions()
	opts.AllowOutsideLinks = pp.p.Files() != nil && pp.p.Files().AllowsOutsideLinks()
	opts.Pipeline = pp.p // opened already: publish reads the headers no second time
	opts.CommitMessage = strings.TrimSpace(pp.message.Text)
	opts.CommitDescription = strings.TrimSpace(pp.description.Text)
	opts.Card = cd
	opts.ReplaceBody = pp.cards != nil && !pp.cards.generated // the user's own text replaces the Hub's; a generated one does not
	opts.DeleteExtra, opts.NoDelete = pp.deleteExtra.Checked, pp.noDelete.Checked
	opts.Transfer = pp.chosenTransfer()
	opts.DryRun = dry
	opts.CacheDir = pp.cfg.CacheDir
	if pp.e.choices != nil {
		opts.MaxShardSize, opts.Variant = pp.e.choices.MaxShardSize, pp.e.choices.Variant
	}
	// A dry run compares with the Hub when an account is logged in; without
	// one it reads nothing there.
	compared := !dry || pp.account != nil
	if compared {
		opts.Token = pp.token.Value()
	}

	ctx, stop := context.WithCancel(context.Background())
	pp.running, pp.cancelling, pp.stop = true, false, stop
	pp.runGen++
	gen := pp.runGen
	tracker := newPublishTracker(dry, compared)
	pp.clearResult()
	pp.planTarget = pp.targetID()
	pp.showProgress(tracker.snapshot())
	switch {
	case dry && compared:
		pp.status.SetText("Dry run: saving and checking " + filepath.Base(opts.Source) + ", then comparing it with " +
			opts.Repo + " on the Hub; nothing is uploaded.")
	case dry:
		pp.status.SetText("Dry run: saving and checking " + filepath.Base(opts.Source) + "; nothing is uploaded, " +
			"and the Hub is not read (not logged in).")
	default:
		pp.status.SetText("Publishing " + filepath.Base(opts.Source) + " to " + opts.Repo + "…")
	}
	pp.update()
	run := pp.runJob
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
		res, err := run(ctx, opts)
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

// finish shows the job's outcome: the plan in the files table, the counts
// in the status, the warnings, the commit or pull request; after a publish
// (done or not) the Hub is read again.
func (pp *publishPanel) finish(final publishProgress, res *publish.Result, err error, dry bool) {
	pp.running, pp.cancelling, pp.stop = false, false, nil
	pp.showProgress(final)
	pp.update()
	defer pp.runIdle()
	if !dry {
		defer pp.refreshRemote()
	}
	switch {
	case errors.Is(err, context.Canceled):
		pp.status.SetText("Cancelled. Files the Hub already received are kept there and not sent again next time.")
		return
	case err != nil:
		title, next := publishErrorText(err, pp.cfg.endpoint())
		pp.status.SetText(title + ".")
		pp.failed = err
		cause := publishErrorCause(err, pp.cfg.endpoint())
		pp.failure.SetText(cause)
		pp.failureBox.Show()
		pp.right.Refresh()
		pp.showFailure(title, cause, next, err.Error())
		return
	}
	pp.bar.SetValue(1)
	pp.bytesText.SetText("")
	pp.fileText.SetText("")
	if dry && res.Remote != nil && pp.remoteKey() != "" {
		// The dry run read the target just now: show that.
		pp.stopRemote()
		pp.remoteFor = pp.remoteKey()
		pp.setRemote(res.Remote, nil)
	}
	pp.plan, pp.planSummary, pp.planDone = res.Plan, res.Summary, !dry
	if pp.plan == nil {
		pp.plan = []publish.PlanEntry{}
	}
	pp.showFiles()
	if len(res.Warnings) > 0 {
		pp.warnings.SetText(appWords("Warning: " + strings.Join(res.Warnings, "\nWarning: ")))
		pp.warnings.Show()
	}
	holds := fmt.Sprintf("%s (%s)", plural(len(res.Files), "file", "files"), formatSize(res.Bytes))
	if dry {
		estimate := ""
		if s := res.Summary; s.Estimated && s.Cached > 0 {
			estimate = fmt.Sprintf(" Through Xet, about %s would be new of %s (%s already in this computer's Xet cache).",
				formatSize(s.Bytes-s.Cached), formatSize(s.Bytes), formatSize(s.Cached))
		}
		pp.status.SetText(fmt.Sprintf("Dry run: %s would hold %s; %s. Nothing was sent.%s", res.Repo, holds, planText(res.Summary), estimate))
		pp.right.Refresh()
		return
	}
	var link string
	switch {
	case res.NoChanges:
		pp.status.SetText(fmt.Sprintf("The Hub already has every file of %s: nothing to commit.", res.Repo))
		link = pp.cfg.pageURL() + "/" + res.Repo
	case res.PullRequestURL != "":
		pp.status.SetText(fmt.Sprintf("Pull request opened on %s: %s; it holds %s.", res.Repo, res.Summary, holds))
		link = res.PullRequestURL
	default:
		pp.status.SetText(fmt.Sprintf("Committed to %s: %s; it holds %s.", res.Repo, res.Summary, holds))
		link = res.URL
	}
	if u, err := url.Parse(link); err == nil && link != "" {
		// Tapping opens it with fyne.CurrentApp().OpenURL.
		pp.link.SetURL(u)
		pp.link.SetText(link)
		pp.link.Show()
	}
	pp.right.Refresh()
}

func (pp *publishPanel) runIdle() {
	idle := pp.idle
	pp.idle = nil
	for _, f := range idle {
		f()
	}
}

// clearResult hides the outcome of the previous job: its status, link,
// warnings and plan (the table shows the Hub's files again).
func (pp *publishPanel) clearResult() {
	pp.plan, pp.planSummary, pp.planDone, pp.planTarget = nil, publish.Summary{}, false, ""
	pp.link.Hide()
	pp.failed = nil
	pp.failure.SetText("")
	pp.failureBox.Hide()
	pp.warnings.Hide()
	pp.warnings.SetText("")
	pp.status.SetText("Dry run saves the folder as chosen and lists what would be sent, kept and deleted, " +
		"without sending anything; Publish uploads it.")
	pp.showFiles()
	if pp.right != nil {
		pp.right.Refresh()
	}
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
