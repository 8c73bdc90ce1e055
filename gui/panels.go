package gui

import (
	"errors"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
)

// namedPanel is one tab of the window.
type namedPanel struct {
	title string
	icon  fyne.Resource
	p     panel
}

// makePanels lists the tabs on the right of the window, in order. Each
// panel is built once, with the window's env.
func (u *UI) makePanels() []namedPanel {
	overview := newOverviewPanel(u.e)
	overview.reload = u.reload
	u.shardMap = newShardsPanel(u.e)
	u.shardMap.onTensor = u.revealTensor
	u.variants = newVariantPanel(u.e)
	u.variants.onTensor = func(component, tensor string) { u.revealTensor(component, "", "", tensor) }
	return []namedPanel{
		{"Overview", theme.InfoIcon(), overview},
		{"Shards", theme.GridIcon(), u.shardMap},
		{"Variant", theme.ColorPaletteIcon(), u.variants},
		{"Model card", theme.DocumentIcon(), u.cards},
		{"Publish", theme.UploadIcon(), u.publisher},
	}
}

// makeJobs builds the card and publish panels and the save job, and wires
// Save locally (Ctrl+S) and Publish (Ctrl+Enter) to them.
func (u *UI) makeJobs() {
	u.cards = newCardPanel(u.e)
	u.publisher = newPublishPanel(u.e, u.cards)
	u.saver = newSaveJob(u.e)
	u.saver.card = u.cards.Readme
	u.saver.pick = func(start string, done func(string, error)) {
		dir, err := u.callBrowse(titleSave, start)
		switch {
		case errors.Is(err, errPickCancelled):
			done("", nil)
		case err != nil:
			u.saver.pickWithFyne(start, done)
		default:
			done(dir, nil)
		}
	}
	u.onSave = func() { u.saver.Run(u.pipeline) }
	u.onPublish = func() {
		u.selectTab("Publish")
		u.publisher.Publish()
	}
}

// busy reports whether a publish, a save, a conversion or the demo's
// writing is running.
func (u *UI) busy() bool {
	return u.publisher.Busy() || u.saver.Busy() || u.convertJob.Busy() || u.demoJob.Busy()
}

// confirmClose is the window's close intercept (and File ▸ Quit's, Ctrl+Q):
// it writes the model card's pending edits to their draft, asking first if
// they cannot be kept; then, with a job running, it asks again, cancels the
// job and closes once it has stopped.
func (u *UI) confirmClose(closeWindow func()) {
	u.cards.confirmKeep(func() { u.confirmStop(closeWindow) })
}

// confirmStop closes at once when no job runs, or asks first, then cancels
// the job and closes once it has stopped.
func (u *UI) confirmStop(closeWindow func()) {
	if !u.busy() {
		closeWindow()
		return
	}
	what := "A publish is running. Quitting cancels it; run it again later to resume where it stopped."
	switch {
	case u.saver.Busy():
		what = "A save is running. Quitting cancels it; run it again later to resume where it stopped."
	case u.convertJob.Busy():
		what = "A conversion is running. Quitting cancels it and leaves nothing behind."
	case u.demoJob.Busy():
		what = "The demo model is being written. Quitting cancels it and leaves nothing behind."
	}
	dialog.ShowConfirm("Stop and quit?", what,
		func(ok bool) {
			if !ok {
				return
			}
			u.publisher.Cancel()
			u.saver.Cancel()
			u.convertJob.Cancel()
			u.demoJob.Cancel()
			u.publisher.OnIdle(func() {
				u.saver.OnIdle(func() { u.convertJob.OnIdle(func() { u.demoJob.OnIdle(closeWindow) }) })
			})
		}, u.e.win)
}
