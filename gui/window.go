package gui

import (
	"context"
	"fmt"
	"path/filepath"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"modelpub/assets"
	"modelpub/core/pipeline"
)

// UI is the main window: a header with the open folder, the component tree
// on the left, the panels as tabs on the right with the details of the
// tree's selection under them, and a welcome view before any folder is
// open. Every method runs on the UI goroutine.
type UI struct {
	e *env

	// onSave runs File ▸ Save locally… (Ctrl+S) and onPublish runs
	// Ctrl+Enter; each is offered only while a folder is open and the hook
	// is set.
	onSave    func()
	onPublish func()
	// browse shows the native folder picker and blocks until it closes;
	// see nativeBrowse. Tests replace it: the real one needs GTK.
	browse func(startDir string) (string, error)
	// openPipeline reads a folder; pipeline.OpenWith, replaced in tests.
	openPipeline func(ctx context.Context, dir string, opts pipeline.OpenOptions) (*pipeline.Pipeline, error)
	// trusted are the folders whose links outside the user chose to follow
	// (for this session only).
	trusted map[string]bool
	// quit ends the app (File ▸ Quit).
	quit func()
	// revealOnOpen is a tree node to select when the next folder opens.
	revealOnOpen string

	pipeline  *pipeline.Pipeline
	cards     *cardPanel
	publisher *publishPanel
	saver     *saveJob
	panels    []namedPanel
	tabs      *container.AppTabs
	tree      *componentTree
	details   *detailsView
	selected  string // the tree node the details pane shows

	folder   *widget.Label
	activity *widget.Activity
	status   *widget.Label
	welcome  *welcomeView
	main     fyne.CanvasObject
	openBtn  *widget.Button
	saveBtn  *widget.Button
	menu     *fyne.MainMenu
	recent   *fyne.MenuItem
	saveItem *fyne.MenuItem
	pubItem  *fyne.MenuItem
	opening  openState
}

// Keyboard shortcuts of the window.
var (
	shortcutOpen    = &desktop.CustomShortcut{KeyName: fyne.KeyO, Modifier: fyne.KeyModifierShortcutDefault}
	shortcutSave    = &desktop.CustomShortcut{KeyName: fyne.KeyS, Modifier: fyne.KeyModifierShortcutDefault}
	shortcutPublish = &desktop.CustomShortcut{KeyName: fyne.KeyReturn, Modifier: fyne.KeyModifierShortcutDefault}
	// shortcutPublishKeypad is Ctrl+Enter on the numeric keypad.
	shortcutPublishKeypad = &desktop.CustomShortcut{KeyName: fyne.KeyEnter, Modifier: fyne.KeyModifierShortcutDefault}
	shortcutQuit          = &desktop.CustomShortcut{KeyName: fyne.KeyQ, Modifier: fyne.KeyModifierShortcutDefault}
)

// newUI builds the window's content, menu, shortcuts and drop target into
// e.win. It needs no running driver: tests pass a test window and a
// synchronous e.spawn.
func newUI(e *env) *UI {
	if e.prefs == nil {
		e.prefs = fyne.CurrentApp().Preferences()
	}
	if e.choices == nil {
		e.choices = &choices{}
	}
	u := &UI{e: e, browse: nativeBrowse, openPipeline: pipeline.OpenWith, trusted: map[string]bool{},
		quit: func() { fyne.CurrentApp().Quit() }}

	u.tree = newComponentTree()
	u.tree.onSelected = u.showDetails
	u.details = newDetailsView()
	u.makeJobs()
	u.panels = u.makePanels()
	u.tabs = container.NewAppTabs()
	for _, np := range u.panels {
		u.tabs.Append(container.NewTabItemWithIcon(np.title, np.icon, np.p.Content()))
	}
	right := container.NewVSplit(u.tabs, u.details.content)
	right.Offset = 0.78
	split := container.NewHSplit(u.tree.tree, right)
	split.Offset = 0.36
	u.main = split

	u.welcome = newWelcomeView(u)
	u.main.Hide()
	e.win.SetContent(container.NewBorder(u.header(), nil, nil, nil, container.NewStack(u.welcome.content, u.main)))

	u.menu = u.buildMenu()
	e.win.SetMainMenu(u.menu)
	c := e.win.Canvas()
	c.AddShortcut(shortcutOpen, func(fyne.Shortcut) { u.chooseFolder() })
	c.AddShortcut(shortcutSave, func(fyne.Shortcut) { u.save() })
	c.AddShortcut(shortcutPublish, func(fyne.Shortcut) { u.publish() })
	c.AddShortcut(shortcutPublishKeypad, func(fyne.Shortcut) { u.publish() })
	c.AddShortcut(shortcutQuit, func(fyne.Shortcut) { u.quit() })
	e.win.SetOnDropped(u.dropped)
	u.refresh()
	return u
}

// header is the strip above everything: the Open button, the open folder
// and the opening activity.
func (u *UI) header() fyne.CanvasObject {
	u.openBtn = widget.NewButtonWithIcon("Open…", theme.FolderOpenIcon(), u.chooseFolder)
	u.folder = widget.NewLabel("")
	u.folder.Truncation = fyne.TextTruncateEllipsis
	u.activity = widget.NewActivity()
	u.activity.Hide()
	u.status = widget.NewLabel("")
	u.status.Importance = widget.LowImportance
	u.status.Hide()
	u.saveBtn = widget.NewButtonWithIcon("Save locally…", theme.DocumentSaveIcon(), u.save)
	right := container.NewHBox(u.activity, u.status, u.saveBtn)
	return container.NewVBox(container.NewBorder(nil, nil, u.openBtn, right, u.folder), widget.NewSeparator())
}

func (u *UI) buildMenu() *fyne.MainMenu {
	open := fyne.NewMenuItem("Open…", u.chooseFolder)
	open.Icon, open.Shortcut = theme.FolderOpenIcon(), shortcutOpen
	u.recent = fyne.NewMenuItem("Open Recent", nil)
	u.recent.ChildMenu = fyne.NewMenu("")
	u.saveItem = fyne.NewMenuItem("Save locally…", u.save)
	u.saveItem.Icon, u.saveItem.Shortcut = theme.DocumentSaveIcon(), shortcutSave
	u.pubItem = fyne.NewMenuItem("Publish…", u.publish)
	u.pubItem.Icon, u.pubItem.Shortcut = theme.UploadIcon(), shortcutPublish
	quit := fyne.NewMenuItem("Quit", func() { u.quit() })
	quit.IsQuit, quit.Shortcut = true, shortcutQuit
	file := fyne.NewMenu("File", open, u.recent, fyne.NewMenuItemSeparator(), u.saveItem, u.pubItem,
		fyne.NewMenuItemSeparator(), quit)
	help := fyne.NewMenu("Help", fyne.NewMenuItem("About Modelpub", u.showAbout))
	return fyne.NewMainMenu(file, help)
}

// refresh brings the header, the menu and the welcome view up to date with
// the open folder and the recent folders.
func (u *UI) refresh() {
	recent := u.recentFolders()
	items := make([]*fyne.MenuItem, 0, len(recent))
	for _, dir := range recent {
		items = append(items, fyne.NewMenuItem(shortPath(dir), func() { u.OpenPath(dir) }))
	}
	if len(items) == 0 {
		none := fyne.NewMenuItem("No recent folders", nil)
		none.Disabled = true
		items = append(items, none)
	}
	u.recent.ChildMenu.Items = items
	open := u.pipeline != nil
	u.saveItem.Disabled = !open || u.onSave == nil
	if u.saveItem.Disabled {
		u.saveBtn.Disable()
	} else {
		u.saveBtn.Enable()
	}
	u.pubItem.Disabled = !open || u.onPublish == nil
	u.menu.Refresh()
	u.welcome.setRecent(recent)

	switch {
	case open:
		u.folder.SetText(shortPath(u.pipeline.Dir))
		u.e.win.SetTitle("Modelpub — " + filepath.Base(u.pipeline.Dir))
	default:
		u.folder.SetText("No folder open")
		u.e.win.SetTitle("Modelpub")
	}
	if u.opening.busy() {
		u.activity.Show()
		u.activity.Start()
		u.status.SetText("Opening " + filepath.Base(u.opening.path) + "…")
		u.status.Show()
	} else {
		u.activity.Stop()
		u.activity.Hide()
		u.status.Hide()
	}
	u.welcome.setOpening(u.opening.path)
}

// setPipeline shows an opened folder in the tree and every panel.
func (u *UI) setPipeline(p *pipeline.Pipeline) {
	u.pipeline = p
	u.tree.setPipeline(p)
	for _, np := range u.panels {
		np.p.SetPipeline(p)
	}
	if p != nil {
		u.welcome.content.Hide()
		u.main.Show()
	} else {
		u.main.Hide()
		u.welcome.content.Show()
	}
	u.refresh()
}

// showDetails shows tree node id in the details pane; "" clears it.
func (u *UI) showDetails(id string) {
	u.selected = id
	u.details.show(u.tree.model.details(id))
	if n := u.tree.model.files[id]; n != nil && n.set != nil && !n.isIndex && n.set.Format == "safetensors" && !n.metaLoaded {
		u.loadMetadata(id, n)
	}
}

// selectTab shows the tab called title; it reports whether there is one.
func (u *UI) selectTab(title string) bool {
	for i, np := range u.panels {
		if np.title == title {
			u.tabs.SelectIndex(i)
			return true
		}
	}
	return false
}

func (u *UI) save() {
	if u.pipeline != nil && u.onSave != nil {
		u.onSave()
	}
}

func (u *UI) publish() {
	if u.pipeline != nil && u.onPublish != nil {
		u.onPublish()
	}
}

func (u *UI) showAbout() {
	logo := canvas.NewImageFromResource(fyne.NewStaticResource("icon.png", assets.IconPNG))
	logo.FillMode = canvas.ImageFillContain
	logo.SetMinSize(fyne.NewSize(64, 64))
	name := "Modelpub"
	if a := fyne.CurrentApp(); a != nil && a.Metadata().Version != "" {
		name += " " + a.Metadata().Version
	}
	text := widget.NewLabel(name + "\nInspect, reshard, convert and publish Diffusers model folders.\n" +
		"The command line does the same without a window: modelpub help")
	dialog.ShowCustom("About Modelpub", "Close", container.NewHBox(logo, text), u.e.win)
}

// welcomeView is shown until a folder is open: what to do, and the recent
// folders as buttons.
type welcomeView struct {
	content fyne.CanvasObject
	recent  *fyne.Container
	heading *widget.Label
	opening *widget.Label
	buttons []*widget.Button // one per recent folder, for tests
	open    func(string)
}

func newWelcomeView(u *UI) *welcomeView {
	v := &welcomeView{recent: container.NewVBox(), open: u.OpenPath}
	logo := canvas.NewImageFromResource(fyne.NewStaticResource("icon.png", assets.IconPNG))
	logo.FillMode = canvas.ImageFillContain
	logo.SetMinSize(fyne.NewSize(96, 96))
	title := widget.NewLabelWithStyle("Modelpub", fyne.TextAlignCenter, fyne.TextStyle{Bold: true})
	hint := widget.NewLabelWithStyle("Drop a Diffusers folder here or press Ctrl+O", fyne.TextAlignCenter, fyne.TextStyle{})
	open := widget.NewButtonWithIcon("Open a folder…", theme.FolderOpenIcon(), u.chooseFolder)
	open.Importance = widget.HighImportance
	v.heading = widget.NewLabelWithStyle("Recent folders", fyne.TextAlignCenter, fyne.TextStyle{Bold: true})
	v.opening = widget.NewLabelWithStyle("", fyne.TextAlignCenter, fyne.TextStyle{Italic: true})
	v.opening.Hide()
	v.content = container.NewCenter(container.NewVBox(logo, title, hint, container.NewCenter(open), v.opening,
		v.heading, v.recent))
	return v
}

func (v *welcomeView) setRecent(dirs []string) {
	v.buttons = v.buttons[:0]
	objs := make([]fyne.CanvasObject, 0, len(dirs))
	for _, dir := range dirs {
		b := widget.NewButtonWithIcon(shortPath(dir), theme.FolderIcon(), func() { v.open(dir) })
		b.Alignment = widget.ButtonAlignLeading
		v.buttons = append(v.buttons, b)
		objs = append(objs, b)
	}
	v.recent.Objects = objs
	v.recent.Refresh()
	v.heading.Hidden = len(dirs) == 0
	v.heading.Refresh()
}

func (v *welcomeView) setOpening(path string) {
	if path == "" {
		v.opening.Hide()
		return
	}
	v.opening.SetText(fmt.Sprintf("Opening %s…", shortPath(path)))
	v.opening.Show()
}
