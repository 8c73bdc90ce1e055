package gui

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"modelpub/assets"
	"modelpub/core/demo"
	"modelpub/core/hub"
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
	// browse shows the native folder picker titled title and blocks until
	// it closes; see nativeBrowse. Tests replace it: the real one needs GTK.
	browse func(title, startDir string) (string, error)
	// openPipeline reads a folder; pipeline.OpenWith, replaced in tests.
	openPipeline func(ctx context.Context, dir string, opts pipeline.OpenOptions) (*pipeline.Pipeline, error)
	// trusted are the folders whose links outside the user chose to follow
	// (for this session only).
	trusted map[string]bool
	// quit ends the app (File ▸ Quit).
	quit func()
	// revealOnOpen is a tree node to select when the next folder opens.
	revealOnOpen string
	// demoJob writes the demo model, convertJob converts a checkpoint.
	demoJob, convertJob *bgJob
	// demoDir is where the demo model goes (defaultDemoDir); writeDemo
	// writes it (demo.Write at demo.Scale). Tests replace both.
	demoDir   func() (string, error)
	writeDemo func(ctx context.Context, dir string, progress func(done, total int64)) (*demo.Result, error)
	// pickConvertDir asks where a converted checkpoint goes and calls done
	// with the folder, "" when cancelled; tests replace it.
	pickConvertDir func(start string, done func(dir string, err error))
	// convertAsk is the last "Convert this checkpoint?" dialog, for tests.
	convertAsk *dialog.ConfirmDialog
	// hashes is the hash cache conversions use, opened once (hashCache);
	// stopPrehash cancels the hash of the checkpoint last offered for
	// conversion, started while the user decides.
	hashes      *hub.HashCache
	stopPrehash context.CancelFunc
	// detailsHidden says the user closed the details pane; the next
	// selection in the tree opens it again.
	detailsHidden bool

	pipeline  *pipeline.Pipeline
	shardMap  *shardsPanel
	variants  *variantPanel
	cards     *cardPanel
	publisher *publishPanel
	saver     *saveJob
	panels    []namedPanel
	tabs      *container.AppTabs
	tree      *componentTree
	details   *detailsView
	selected  string // the tree node the details pane shows

	folder     *tapLabel
	blocked    *tapLabel // why Save and Publish are off, beside the folder
	headerMid  *fyne.Container
	activity   *widget.Activity
	status     *widget.Label
	welcome    *welcomeView
	main       *container.Split
	right      *container.Split // the tabs over the details pane
	openBtn    *widget.Button
	saveBtn    *widget.Button
	menu       *fyne.MainMenu
	recent     *fyne.MenuItem
	saveItem   *fyne.MenuItem
	pubItem    *fyne.MenuItem
	reloadItem *fyne.MenuItem
	opening    openState
}

// Keyboard shortcuts of the window.
var (
	shortcutOpen    = &desktop.CustomShortcut{KeyName: fyne.KeyO, Modifier: fyne.KeyModifierShortcutDefault}
	shortcutSave    = &desktop.CustomShortcut{KeyName: fyne.KeyS, Modifier: fyne.KeyModifierShortcutDefault}
	shortcutPublish = &desktop.CustomShortcut{KeyName: fyne.KeyReturn, Modifier: fyne.KeyModifierShortcutDefault}
	// shortcutPublishKeypad is Ctrl+Enter on the numeric keypad.
	shortcutPublishKeypad = &desktop.CustomShortcut{KeyName: fyne.KeyEnter, Modifier: fyne.KeyModifierShortcutDefault}
	shortcutQuit          = &desktop.CustomShortcut{KeyName: fyne.KeyQ, Modifier: fyne.KeyModifierShortcutDefault}
	// shortcutReload is Ctrl+R; F5 reloads too (a key without a modifier
	// is not a shortcut to Fyne: see typedKey).
	shortcutReload = &desktop.CustomShortcut{KeyName: fyne.KeyR, Modifier: fyne.KeyModifierShortcutDefault}
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
		quit: func() { fyne.CurrentApp().Quit() }, demoDir: defaultDemoDir,
		writeDemo: func(ctx context.Context, dir string, progress func(done, total int64)) (*demo.Result, error) {
			return demo.Write(ctx, dir, demo.Scale, progress)
		}}
	u.demoJob = newBgJob(e, "Demo model")
	u.convertJob = newBgJob(e, "Convert a checkpoint")
	u.pickConvertDir = u.pickConvertDirDefault

	u.tree = newComponentTree()
	u.tree.onSelected = u.showDetails
	u.details = newDetailsView(u.hideDetails)
	u.makeJobs()
	u.panels = u.makePanels()
	u.tabs = container.NewAppTabs()
	for _, np := range u.panels {
		// A panel never widens the window: what it cannot fit, it wraps,
		// cuts with an ellipsis or scrolls (see cappedWidth).
		u.tabs.Append(container.NewTabItemWithIcon(np.title, np.icon, cappedWidth(np.p.Content())))
	}
	u.tabs.OnSelected = func(*container.TabItem) { u.showDetailsPane() }
	u.right = container.NewVSplit(u.tabs, u.details.content)
	u.right.Offset = 0.74
	u.main = container.NewHSplit(u.tree.tree, u.right)
	u.main.Offset = 0.3
	u.showDetailsPane()

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
	c.AddShortcut(shortcutReload, func(fyne.Shortcut) { u.reload() })
	c.SetOnTypedKey(u.typedKey)
	e.win.SetOnDropped(u.dropped)
	u.refresh()
	return u
}

// header is the strip above everything: the Open button, the open folder
// and the opening activity.
func (u *UI) header() fyne.CanvasObject {
	u.openBtn = widget.NewButtonWithIcon("Open…", theme.FolderOpenIcon(), u.chooseFolder)
	// The path and the problem are cut to fit; a click shows them whole
	// (the pipeline's details, the Overview's Problems).
	u.folder = newTapLabel("", func() {
		if u.pipeline != nil {
			u.detailsHidden = false
			u.tree.reveal(pipelineNodeID)
		}
	})
	u.blocked = newTapLabel("", func() { u.selectTab("Overview") })
	u.blocked.Importance = widget.DangerImportance
	u.headerMid = container.NewStack(u.folder)
	u.activity = widget.NewActivity()
	u.activity.Hide()
	u.status = widget.NewLabel("")
	u.status.Importance = widget.LowImportance
	u.status.Truncation = fyne.TextTruncateEllipsis
	u.status.Hide()
	u.saveBtn = widget.NewButtonWithIcon("Save locally…", theme.DocumentSaveIcon(), u.save)
	right := container.NewHBox(u.activity, u.saveBtn)
	mid := container.NewBorder(nil, nil, nil, nil, u.headerMid)
	return container.NewVBox(container.NewBorder(nil, nil, u.openBtn, right, mid), widget.NewSeparator())
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
	u.reloadItem = fyne.NewMenuItem("Reload", u.reload)
	u.reloadItem.Icon, u.reloadItem.Shortcut = theme.ViewRefreshIcon(), shortcutReload
	quit := fyne.NewMenuItem("Quit", func() { u.quit() })
	quit.IsQuit, quit.Shortcut = true, shortcutQuit
	file := fyne.NewMenu("File", open, u.recent, u.reloadItem, fyne.NewMenuItemSeparator(), u.saveItem, u.pubItem,
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
	blocked := u.blocker()
	u.saveItem.Disabled = !open || u.onSave == nil || blocked != ""
	if u.saveItem.Disabled {
		u.saveBtn.Disable()
	} else {
		u.saveBtn.Enable()
	}
	u.pubItem.Disabled = !open || u.onPublish == nil || blocked != ""
	u.reloadItem.Disabled = !open
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
	u.showBlocked(blocked)
	if u.opening.busy() {
		u.activity.Show()
		u.activity.Start()
		u.status.SetText("Opening " + filepath.Base(u.opening.path) + "…")
		u.status.Show()
		u.headerMid.Objects = []fyne.CanvasObject{container.NewGridWithColumns(2, u.folder, u.status)}
		u.headerMid.Refresh()
	} else {
		u.activity.Stop()
		u.activity.Hide()
		u.status.Hide()
	}
	u.welcome.setOpening(u.opening.path)
}

// showBlocked shows why Save and Publish are off beside the folder's path,
// or only the path when nothing stops them.
func (u *UI) showBlocked(reason string) {
	objs := []fyne.CanvasObject{u.folder}
	u.blocked.Hidden = reason == ""
	if reason != "" {
		u.blocked.SetText("Save and Publish are off: " + reason)
		objs = []fyne.CanvasObject{container.NewGridWithColumns(2, u.folder,
			container.NewBorder(nil, nil, widget.NewIcon(theme.ErrorIcon()), nil, u.blocked))}
	}
	u.headerMid.Objects = objs
	u.headerMid.Refresh()
}

// setPipeline shows an opened folder in the tree and every panel.
func (u *UI) setPipeline(p *pipeline.Pipeline) {
	u.pipeline = p
	u.tree.setPipeline(p)
	for _, np := range u.panels {
		np.p.SetPipeline(p)
	}
	if p != nil {
		u.fitTree()
		u.welcome.content.Hide()
		u.main.Show()
	} else {
		u.main.Hide()
		u.welcome.content.Show()
	}
	u.refresh()
}

// maxTreeShare is the most of the window's width the tree's column takes
// when it opens a folder: the panels (the card editor) keep the rest.
const maxTreeShare = 0.38

// fitTree widens the tree's column, within limits, so that the rows of the
// pipeline and its components show whole (class names, sizes; at the limit
// the sizes and parameter counts go first).
func (u *UI) fitTree() {
	width := u.e.win.Canvas().Size().Width
	if width <= 0 || u.pipeline == nil {
		return
	}
	need := u.tree.rowsWidth()
	offset := min(max(float64(need/width), 0.22), maxTreeShare)
	if offset == u.main.Offset {
		return
	}
	u.main.Offset = offset
	if u.main.Visible() {
		u.main.Refresh()
	}
}

// showDetails shows tree node id in the details pane; "" clears it.
func (u *UI) showDetails(id string) {
	u.selected = id
	if id != "" {
		u.detailsHidden = false
	}
	u.details.show(u.tree.model.details(id))
	if n := u.tree.model.files[id]; n != nil && n.set != nil && !n.isIndex && n.set.Format == "safetensors" && !n.metaLoaded {
		u.loadMetadata(id, n)
	}
	u.showDetailsPane()
	u.linkSelection(id)
}

// detailsTabs are the tabs under which the details pane shows: the Model
// card and Publish tabs need the room.
var detailsTabs = []string{"Overview", "Shards", "Variant"}

// showDetailsPane shows the details pane under the tabs while a node is
// selected, on the tabs where it helps, unless the user closed it.
func (u *UI) showDetailsPane() {
	if u.tabs == nil || u.right == nil {
		return
	}
	show := u.selected != "" && !u.detailsHidden && u.tabs.Selected() != nil &&
		slices.Contains(detailsTabs, u.tabs.Selected().Text)
	if show == u.details.content.Visible() {
		return
	}
	if show {
		u.details.content.Show()
	} else {
		u.details.content.Hide()
	}
	u.right.Refresh()
}

// hideDetails closes the details pane until the next selection.
func (u *UI) hideDetails() {
	u.detailsHidden = true
	u.showDetailsPane()
}

// reload reads the open folder again (File ▸ Reload, Ctrl+R, F5), say once
// a damaged file was replaced; the selection in the tree is kept.
func (u *UI) reload() {
	if u.pipeline == nil {
		return
	}
	if u.busy() {
		u.e.showMessage("Reload later", theme.InfoIcon(), "A save or a publish is reading this folder. "+
			"Reload it once that has finished (or cancel it).")
		return
	}
	u.revealOnOpen = u.selected
	u.OpenPath(u.pipeline.Dir)
}

// typedKey handles the keys no focused widget took: F5 reloads.
func (u *UI) typedKey(ev *fyne.KeyEvent) {
	if ev.Name == fyne.KeyF5 {
		u.reload()
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
	if u.pipeline == nil || u.onSave == nil {
		return
	}
	if reason := u.blocker(); reason != "" {
		u.showBlockedDialog("Cannot save this folder", reason)
		return
	}
	u.onSave()
}

func (u *UI) publish() {
	if u.pipeline == nil || u.onPublish == nil {
		return
	}
	if reason := u.blocker(); reason != "" {
		u.showBlockedDialog("Cannot publish this folder", reason)
		return
	}
	u.onPublish()
}

// showBlockedDialog says why a shortcut's action is off, and shows the
// Overview with the problems.
func (u *UI) showBlockedDialog(title, reason string) {
	u.selectTab("Overview")
	u.e.showProblem(title, reason+".", "Replace the damaged files (download them again), then reload the "+
		"folder (File ▸ Reload, F5). The Overview lists the problems.")
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
	demo    *widget.Button
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
	v.demo = widget.NewButtonWithIcon("Try with a demo model", theme.MediaPlayIcon(), u.tryDemo)
	demoHint := widget.NewLabelWithStyle("No model at hand? The demo is shaped as Stable Diffusion 1.5 (215 MB).",
		fyne.TextAlignCenter, fyne.TextStyle{Italic: true})
	v.heading = widget.NewLabelWithStyle("Recent folders", fyne.TextAlignCenter, fyne.TextStyle{Bold: true})
	v.opening = widget.NewLabelWithStyle("", fyne.TextAlignCenter, fyne.TextStyle{Italic: true})
	v.opening.Hide()
	v.content = container.NewCenter(container.NewVBox(logo, title, hint,
		container.NewCenter(container.NewHBox(open, v.demo)), demoHint, v.opening, v.heading, v.recent))
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

// linkSelection shows the node selected in the tree in the other views:
// a tensor's blocks in the shard map, its row in the variant scan.
func (u *UI) linkSelection(id string) {
	component, tensor := "", ""
	if n, t, ok := u.tree.model.tensor(id); ok {
		component, tensor = n.comp.Name, t.Name
	}
	if u.shardMap != nil {
		u.shardMap.showTensor(component, tensor)
	}
	if u.variants != nil {
		u.variants.showTensor(component, tensor)
	}
}

// revealTensor selects in the tree the tensor called name of component,
// chosen in another view: in file, one of the component's files, when
// given; else in the weight set of variant the folder has, or else in
// the main weights (a planned file's tensors are read from these).
func (u *UI) revealTensor(component, variant, file, name string) {
	if id := u.tree.model.tensorNode(component, variant, file, name); id != "" && id != u.selected {
		u.detailsHidden = false
		u.tree.reveal(id)
	}
}
