package gui

import (
	"image/color"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"modelpub/core/pipeline"
	"modelpub/core/tensors"
)

// formatSize is a byte count for people: "3.44 GB", "812 B".
func formatSize(n int64) string { return tensors.FormatSize(n) }

// formatShape is "[320, 4, 3, 3]"; a scalar is "[]".
func formatShape(shape []int64) string {
	parts := make([]string, len(shape))
	for i, d := range shape {
		parts[i] = strconv.FormatInt(d, 10)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// plural is "1 tensor", "3 tensors".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// componentLabel names a component; a single-model folder's component,
// which has no name, is called after its folder.
func componentLabel(p *pipeline.Pipeline, c *pipeline.Component) string {
	if c.Name == "" {
		return filepath.Base(p.Dir)
	}
	return c.Name
}

// componentSize is the size of all files of a component folder.
func componentSize(c *pipeline.Component) int64 {
	var n int64
	for _, f := range c.Files {
		n += f.Size
	}
	return n
}

// pipelineSize is the size of all files of a pipeline folder.
func pipelineSize(p *pipeline.Pipeline) int64 {
	var n int64
	for _, f := range p.RootFiles {
		n += f.Size
	}
	for _, c := range p.Components {
		n += componentSize(c)
	}
	return n
}

// pipelineTitle is the pipeline class, or "Single model (Class)".
func pipelineTitle(p *pipeline.Pipeline) string {
	if p.Index != nil {
		return p.Index.ClassName
	}
	if len(p.Components) == 1 && p.Components[0].Class != "" {
		return "Single model (" + p.Components[0].Class + ")"
	}
	return "Single model"
}

// shortPath shows a path with the home folder as "~".
func shortPath(path string) string {
	home, err := os.UserHomeDir()
	if err != nil || home == "" || home == "/" {
		return path
	}
	if path == home {
		return "~"
	}
	if rest, ok := strings.CutPrefix(path, home+string(filepath.Separator)); ok {
		return "~" + string(filepath.Separator) + rest
	}
	return path
}

// secondaryText is text of less importance: sizes beside names, warning
// codes. Its colour is the theme's placeholder colour, readable in light and
// dark themes alike.
func secondaryText(s string) *widget.RichText {
	return widget.NewRichText(&widget.TextSegment{Text: s,
		Style: widget.RichTextStyle{ColorName: theme.ColorNamePlaceHolder, Inline: true}})
}

// compact shows o with less padding inside its widgets, for dense tables.
func compact(o fyne.CanvasObject) *container.ThemeOverride {
	return container.NewThemeOverride(o, compactTheme{})
}

// compactTheme is the app's theme with a quarter of the padding inside
// widgets.
type compactTheme struct{}

func appTheme() fyne.Theme { return fyne.CurrentApp().Settings().Theme() }

func (compactTheme) Color(n fyne.ThemeColorName, v fyne.ThemeVariant) color.Color {
	return appTheme().Color(n, v)
}

func (compactTheme) Font(s fyne.TextStyle) fyne.Resource { return appTheme().Font(s) }

func (compactTheme) Icon(n fyne.ThemeIconName) fyne.Resource { return appTheme().Icon(n) }

func (compactTheme) Size(n fyne.ThemeSizeName) float32 {
	if n == theme.SizeNameInnerPadding {
		return appTheme().Size(n) / 4
	}
	return appTheme().Size(n)
}
