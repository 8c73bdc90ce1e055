// Package gui is Modelpub's desktop window. It presents what the core
// packages compute and never does business logic or file I/O itself.
package gui

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/app"

	"modelpub/assets"
)

// AppID identifies the application to Fyne (preferences, storage).
const AppID = "io.modelpub.app"

// Run opens the main window and blocks until it is closed.
func Run() {
	a := app.NewWithID(AppID)
	icon := fyne.NewStaticResource("icon.png", assets.IconPNG)
	a.SetIcon(icon)
	w := a.NewWindow("Modelpub")
	w.SetIcon(icon)
	ui := New()
	w.SetContent(ui.Content)
	w.Resize(fyne.NewSize(1024, 700))
	w.ShowAndRun()
}
