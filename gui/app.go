// Package gui is Modelpub's desktop window. It presents what the core
// packages compute and never does business logic or file I/O itself.
package gui

import (
	"os"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/app"

	"modelpub/assets"
	"modelpub/core/drafts"
)

// AppID identifies the application to Fyne (preferences, storage).
const AppID = "io.modelpub.app"

// Environment variables Run honours, for scripted runs such as
// make screenshots.
const (
	// EnvOpen names a folder (or a file inside one) to open at start.
	EnvOpen = "MODELPUB_OPEN"
	// EnvTab names the tab to show at start: Overview, Shards, …
	EnvTab = "MODELPUB_TAB"
	// EnvSelect is a component tree node to select once EnvOpen is open,
	// e.g. "c/unet" (see the node ids in tree.go).
	EnvSelect = "MODELPUB_SELECT"
)

// Run opens the main window and blocks until it is closed. Given a path
// (a folder, or a file inside one) it opens that folder, else EnvOpen's.
func Run(path string) {
	a := app.NewWithID(AppID)
	icon := fyne.NewStaticResource("icon.png", assets.IconPNG)
	a.SetIcon(icon)
	w := a.NewWindow("Modelpub")
	w.SetIcon(icon)
	e := &env{
		win:     w,
		spawn:   func(f func()) { go f() },
		do:      fyne.Do,
		choices: &choices{},
		prefs:   a.Preferences(),
	}
	if dir, err := drafts.DefaultDir(); err == nil {
		e.drafts = drafts.NewStore(dir)
	} else {
		e.draftsErr = err
	}
	u := newUI(e)
	u.quit = func() { u.confirmClose(a.Quit) }
	w.SetCloseIntercept(func() { u.confirmClose(w.Close) })
	w.Resize(fyne.NewSize(1200, 760))
	if tab := os.Getenv(EnvTab); tab != "" && !u.selectTab(tab) {
		fyne.LogError("no tab called "+tab, nil)
	}
	if path == "" {
		path = os.Getenv(EnvOpen)
	}
	if path != "" {
		u.revealOnOpen = os.Getenv(EnvSelect)
		u.OpenPath(path)
	}
	w.ShowAndRun()
}
