package gui

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"

	"modelpub/core/folder"
	"modelpub/core/pipeline"
	"modelpub/core/tensors"
)

// variantNone is the radio choice for no variant.
const variantNone = "None"

// maxLossRows caps the tensors listed after a scan; the totals count all.
const maxLossRows = 200

// progressInterval is the least time between two progress updates of the
// UI: ten a second.
const progressInterval = 100 * time.Millisecond

// variantPanel chooses the precision variant Save adds, shows what it costs
// on disk, and scans the weights for the values converting them would lose.
type variantPanel struct {
	e *env
	p *pipeline.Pipeline

	choice  *widget.RadioGroup
	present *widget.Label // the variants the folder already has
	sizes   *widget.Label
	scanBtn *widget.Button
	cancel  *widget.Button
	bar     *widget.ProgressBar
	status  *widget.Label
	table   *widget.Table
	content *fyne.Container

	sizeGen     int // counts size plans asked for
	scanGen     int // counts scans started; a stale scan's updates are dropped
	stop        context.CancelFunc
	scanning    bool
	scanVariant string // the variant of the running or shown scan
	result      *pipeline.VariantScan
	rows        []pipeline.TensorLoss

	// onTensor selects a tensor of the scan in the component tree.
	onTensor func(component, tensor string)
	// linking is set while the table follows the tree, so that selecting
	// its row does not select in the tree again.
	linking bool
	// selectedRow is the row of the table selected, -1 for none.
	selectedRow int
}

func newVariantPanel(e *env) *variantPanel {
	v := &variantPanel{e: e, selectedRow: -1}
	v.choice = widget.NewRadioGroup([]string{variantNone, "fp16", "bf16"}, func(s string) {
		if s == variantNone {
			s = ""
		}
		v.e.choices.set(v.e.choices.MaxShardSize, s)
	})
	v.choice.Horizontal = true
	v.choice.Required = true
	v.choice.SetSelected(radioValue(e.choices.Variant))
	v.present = widget.NewLabel("")
	v.present.Wrapping = fyne.TextWrapWord
	v.sizes = widget.NewLabel("")
	v.sizes.Wrapping = fyne.TextWrapWord
	v.scanBtn = widget.NewButton("Scan for lost values", v.startScan)
	v.cancel = widget.NewButton("Cancel", v.cancelScan)
	v.cancel.Disable()
	v.bar = widget.NewProgressBar()
	v.bar.Hide()
	v.status = widget.NewLabel("")
	v.status.Wrapping = fyne.TextWrapWord
	v.table = v.newLossTable()
	v.table.Hide()

	intro := widget.NewLabel("A variant stores the floating-point weights again at half precision beside the full ones " +
		"(diffusion_pytorch_model.fp16.safetensors), loaded with variant=\"fp16\". fp16 overflows above 65504 and " +
		"underflows below 6e-8; bf16 keeps float32's range with fewer digits.")
	intro.Wrapping = fyne.TextWrapWord
	top := container.NewVBox(
		container.NewHBox(widget.NewLabel("Variant"), v.choice),
		intro, v.present, v.sizes,
		container.NewBorder(nil, nil, container.NewHBox(v.scanBtn, v.cancel), nil, v.bar),
		v.status)
	v.content = container.NewBorder(top, nil, nil, nil, v.table)
	e.choices.onChange(v.choicesChanged)
	v.update()
	return v
}

// Content implements panel.
func (v *variantPanel) Content() fyne.CanvasObject { return v.content }

// SetPipeline implements panel.
func (v *variantPanel) SetPipeline(p *pipeline.Pipeline) {
	v.p = p
	v.clearScan()
	v.update()
}

// choicesChanged follows a variant or limit chosen here or elsewhere.
func (v *variantPanel) choicesChanged() {
	if want := radioValue(v.e.choices.Variant); v.choice.Selected != want {
		v.choice.SetSelected(want)
	}
	if (v.result != nil || v.scanning) && v.scanVariant != v.e.choices.Variant {
		v.clearScan()
	}
	v.update()
}

func radioValue(variant string) string {
	if variant == "" {
		return variantNone
	}
	return variant
}

// update refreshes everything that depends on the pipeline and choices but
// not on a scan: the note on variants present, the sizes, the Scan button.
func (v *variantPanel) update() {
	variant := v.e.choices.Variant
	v.present.SetText(presentVariants(v.p, variant))
	if hide := v.present.Text == ""; hide != v.present.Hidden {
		v.present.Hidden = hide
		if v.content != nil {
			v.content.Refresh() // a hidden object is left out of the layout
		}
	}
	if v.p == nil || variant == "" || v.scanning {
		v.scanBtn.Disable()
	} else {
		v.scanBtn.Enable()
	}
	v.sizeGen++
	gen, p := v.sizeGen, v.p
	if p == nil {
		v.sizes.SetText("Open a folder to add a variant to it.")
		return
	}
	opts := pipeline.SaveOptions{MaxShardSize: v.e.choices.MaxShardSize, Variant: variant}
	v.e.spawn(func() {
		text := outputSizes(p, opts)
		v.e.do(func() {
			if gen == v.sizeGen {
				v.sizes.SetText(text)
			}
		})
	})
}

// outputSizes describes the size of Save's output without and with the
// variant of opts.
func outputSizes(p *pipeline.Pipeline, opts pipeline.SaveOptions) string {
	variant := opts.Variant
	opts.Variant = ""
	before, err := pipeline.Plan(p, opts)
	if err != nil {
		return "Cannot plan the output: " + err.Error()
	}
	if variant == "" {
		return fmt.Sprintf("Output: %s, no variant.", tensors.FormatSize(before.Total()))
	}
	opts.Variant = variant
	after, err := pipeline.Plan(p, opts)
	if err != nil {
		return "Cannot plan the output: " + err.Error()
	}
	return fmt.Sprintf("Output: %s without the variant, %s with %s (+%s).", tensors.FormatSize(before.Total()),
		tensors.FormatSize(after.Total()), variant, tensors.FormatSize(after.Total()-before.Total()))
}

// presentVariants says which variants the folder's models already have,
// and what Save does with them.
func presentVariants(p *pipeline.Pipeline, chosen string) string {
	if p == nil {
		return ""
	}
	have := map[string][]string{}
	var order []string
	models := 0
	for _, c := range p.Components {
		if c.Role != pipeline.RoleModel || c.Null {
			continue
		}
		models++
		for _, vr := range c.Variants() {
			if _, ok := have[vr]; !ok {
				order = append(order, vr)
			}
			have[vr] = append(have[vr], componentTitle(c.Name))
		}
	}
	var lines []string
	for _, vr := range order {
		who := "every model"
		if len(have[vr]) < models {
			who = strings.Join(have[vr], ", ")
		}
		line := fmt.Sprintf("The folder already has %s weights for %s", vr, who)
		if vr == chosen {
			line += ": Save converts them again from the full-precision weights."
		} else {
			line += ": they are carried over."
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}

// startScan runs ScanVariant off the UI goroutine with a progress bar.
func (v *variantPanel) startScan() {
	p, variant := v.p, v.e.choices.Variant
	if p == nil || variant == "" || v.scanning {
		return
	}
	v.clearScan()
	v.scanGen++
	gen := v.scanGen
	ctx, stop := context.WithCancel(context.Background())
	v.stop, v.scanning, v.scanVariant = stop, true, variant
	v.scanBtn.Disable()
	v.cancel.Enable()
	v.bar.SetValue(0)
	v.bar.Show()
	v.status.SetText(fmt.Sprintf("Converting every float tensor to %s, without writing anything…", variant))
	v.content.Refresh()
	v.e.spawn(func() {
		var last time.Time // only this goroutine reads and writes it
		scan, err := pipeline.ScanVariant(ctx, p, variant, func(done, total int64) {
			if now := time.Now(); now.Sub(last) >= progressInterval && done < total {
				last = now
				frac := float64(done) / float64(max(total, 1))
				v.e.do(func() {
					if gen == v.scanGen {
						v.bar.SetValue(frac)
					}
				})
			}
		})
		stop()
		v.e.do(func() {
			if gen == v.scanGen {
				v.finishScan(scan, err)
			}
		})
	})
}

// cancelScan stops the running scan; its goroutine reports the end.
func (v *variantPanel) cancelScan() {
	if v.stop != nil {
		v.stop()
	}
	v.cancel.Disable()
}

// clearScan drops a scan's results and abandons a running one.
func (v *variantPanel) clearScan() {
	if v.stop != nil {
		v.stop()
		v.stop = nil
	}
	v.scanGen++
	v.scanning = false
	v.result, v.rows = nil, nil
	v.table.UnselectAll()
	v.selectedRow = -1
	v.cancel.Disable()
	v.bar.Hide()
	v.status.SetText("")
	v.showTable(false)
}

// showTable shows or hides the table of lossy tensors; the layout around it
// runs again, as a hidden object is left out of it.
func (v *variantPanel) showTable(show bool) {
	if show {
		v.table.Show()
	} else {
		v.table.Hide()
	}
	v.table.Refresh()
	if v.content != nil {
		v.content.Refresh()
	}
}

func (v *variantPanel) finishScan(scan *pipeline.VariantScan, err error) {
	v.scanning, v.stop = false, nil
	v.cancel.Disable()
	v.bar.Hide()
	v.update()
	switch {
	case errors.Is(err, context.Canceled):
		v.status.SetText("Scan cancelled.")
		v.showTable(false)
		return
	case err != nil:
		v.status.SetText("The scan failed: " + folder.Reason(err))
		v.showTable(false)
		return
	}
	v.result = scan
	v.rows = scan.Tensors[:min(len(scan.Tensors), maxLossRows)]
	if len(scan.Tensors) == 0 {
		v.status.SetText(fmt.Sprintf("Nothing is lost: all %s values of %s convert to %s without overflow or underflow.",
			groupDigits(scan.Values), countNoun(scan.Scanned, "tensor"), scan.Variant))
		v.showTable(false)
		return
	}
	text := fmt.Sprintf("Converting to %s turns %s into ±Inf and %s into 0, in %s of %s (%s values).",
		scan.Variant, valueCount(scan.Overflow), valueCount(scan.Underflow),
		countNoun(len(scan.Tensors), "tensor"), countNoun(scan.Scanned, "tensor"), groupDigits(scan.Values))
	if len(scan.Tensors) > len(v.rows) {
		text += fmt.Sprintf(" The worst %d are listed.", len(v.rows))
	}
	v.status.SetText(text)
	v.showTable(true)
}

// valueCount is "1 value", "1,024 values".
func valueCount(n int64) string {
	if n == 1 {
		return "1 value"
	}
	return groupDigits(n) + " values"
}

// groupDigits writes n with thousands separators: 1,095,000.
func groupDigits(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// lossColumns are the headings of the table of lossy tensors.
var lossColumns = []string{"Component", "Tensor", "Overflow", "Underflow", "Of values"}

func (v *variantPanel) newLossTable() *widget.Table {
	t := newTextTable(lossColumns, []float32{120, 380, 90, 90, 90}, func(col int) bool { return col >= 2 }, func() int { return len(v.rows) },
		func(row, col int) string { return lossCell(v.rows[row], col) })
	t.OnSelected = func(id widget.TableCellID) {
		v.selectedRow = id.Row
		if !v.linking && v.onTensor != nil && id.Row >= 0 && id.Row < len(v.rows) {
			v.onTensor(v.rows[id.Row].Component, v.rows[id.Row].Tensor)
		}
	}
	return t
}

// showTensor selects the row of the tensor called name of component, if
// the scan lists it, and clears the selection otherwise.
func (v *variantPanel) showTensor(component, name string) {
	v.linking = true
	defer func() { v.linking = false }()
	for i, r := range v.rows {
		if r.Component == component && r.Tensor == name {
			v.table.Select(widget.TableCellID{Row: i, Col: 1})
			return
		}
	}
	v.table.UnselectAll()
	v.selectedRow = -1
}

// lossCell is the text of column col for a lossy tensor.
func lossCell(l pipeline.TensorLoss, col int) string {
	switch col {
	case 0:
		return componentTitle(l.Component)
	case 1:
		return l.Tensor
	case 2:
		return groupDigits(l.Overflow)
	case 3:
		return groupDigits(l.Underflow)
	}
	pct := 100 * float64(l.Overflow+l.Underflow) / float64(max(l.Values, 1))
	return fmt.Sprintf("%.3g%%", pct)
}

var _ panel = (*variantPanel)(nil)
