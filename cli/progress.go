package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"modelpub/core/tensors"
)

// progressBar draws "[#####.....]  45%  1.2 GB / 2.7 GB" on one terminal
// line, at most every 100 ms. It draws nothing when its output is not a
// terminal, so logs and pipes stay clean.
type progressBar struct {
	w     io.Writer
	on    bool
	last  time.Time
	drawn bool
}

// newProgressBar draws on w's terminal. The bar's \r and erase-line are its
// own, so it writes under Run's safeWriter; it prints no names.
func newProgressBar(w io.Writer) *progressBar {
	return &progressBar{w: rawWriter(w), on: isTerminal(w)}
}

func (p *progressBar) update(done, total int64) { p.updateWith(done, total, "") }

// updateWith draws the bar followed by tail (a rate, an ETA).
func (p *progressBar) updateWith(done, total int64, tail string) {
	if !p.on || (time.Since(p.last) < 100*time.Millisecond && done < total) {
		return
	}
	p.last = time.Now()
	p.drawn = true
	fmt.Fprint(p.w, "\r"+renderBar(done, total, 30)+tail+"\x1b[K")
}

// done ends the bar's line.
func (p *progressBar) done() {
	if p.drawn {
		fmt.Fprintln(p.w)
	}
}

func renderBar(done, total int64, width int) string {
	frac := 1.0
	if total > 0 {
		frac = min(1, float64(done)/float64(total))
	}
	n := int(frac * float64(width))
	return fmt.Sprintf("[%s%s] %3.0f%%  %s / %s", strings.Repeat("#", n), strings.Repeat(".", width-n),
		frac*100, tensors.FormatSize(done), tensors.FormatSize(total))
}
