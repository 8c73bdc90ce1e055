package gui

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"

	"modelpub/assets"
)

// UI holds the widgets of the main window.
type UI struct {
	Content fyne.CanvasObject
	Hint    *widget.Label
}

// New builds the main window's content. It does not need a running app
// driver, so tests build it with fyne's test driver.
func New() *UI {
	logo := canvas.NewImageFromResource(fyne.NewStaticResource("icon.png", assets.IconPNG))
	logo.FillMode = canvas.ImageFillContain
	logo.SetMinSize(fyne.NewSize(96, 96))
	title := widget.NewLabelWithStyle("Modelpub", fyne.TextAlignCenter, fyne.TextStyle{Bold: true})
	hint := widget.NewLabelWithStyle("Inspect, reshard and publish Diffusers model folders.\n"+
		"Opening folders here is on its way; today the command line reshards weights: modelpub help",
		fyne.TextAlignCenter, fyne.TextStyle{})
	u := &UI{Hint: hint}
	u.Content = container.NewCenter(container.NewVBox(logo, title, hint))
	return u
}
