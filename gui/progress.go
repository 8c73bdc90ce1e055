package gui

import (
	"fmt"
	"sync"
	"time"
)

// progressBridge carries the progress of a job running off the UI goroutine
// to the widgets that show it. The job calls set with its latest state as
// often as it likes, from any goroutine (one call at a time); the state
// reaches show, on the UI goroutine through env.do, at most once per
// interval (ten times a second). A state that came too soon is kept and
// goes out with the next set that may pass, or with flush, which the job
// calls before it reports its end, so the last state is always shown. No
// timer runs: a job that reports nothing for a while is not shown anything
// new either.
//
// This is restic's progress.Counter idea without its goroutine: a 10 GB
// upload calling back for every buffer queues ten UI updates a second, not
// millions.
type progressBridge[T any] struct {
	do       func(func())
	show     func(T)
	interval time.Duration
	now      func() time.Time // time.Now; tests replace it

	mu      sync.Mutex
	last    time.Time // when a state last went out
	pending T         // the latest state not shown yet
	waiting bool      // pending holds one
}

// bridgeInterval is the least time between two states a progressBridge
// shows: ten a second.
const bridgeInterval = 100 * time.Millisecond

// newProgressBridge returns a bridge that shows states with show, called
// on the UI goroutine through do, at most once per bridgeInterval.
func newProgressBridge[T any](do func(func()), show func(T)) *progressBridge[T] {
	return &progressBridge[T]{do: do, show: show, interval: bridgeInterval, now: time.Now}
}

// set records v as the job's latest state and shows it unless a state went
// out less than an interval ago.
func (b *progressBridge[T]) set(v T) {
	b.mu.Lock()
	now := b.now()
	if !b.last.IsZero() && now.Sub(b.last) < b.interval {
		b.pending, b.waiting = v, true
		b.mu.Unlock()
		return
	}
	b.last = now
	var zero T
	b.pending, b.waiting = zero, false
	b.mu.Unlock()
	b.do(func() { b.show(v) })
}

// flush shows the latest state if it has not been shown yet.
func (b *progressBridge[T]) flush() {
	b.mu.Lock()
	v, waiting := b.pending, b.waiting
	var zero T
	b.pending, b.waiting = zero, false
	if waiting {
		b.last = b.now()
	}
	b.mu.Unlock()
	if waiting {
		b.do(func() { b.show(v) })
	}
}

// byteProgress is "1.2 MB of 4.5 MB · 3.1 MB/s · 2 s left"; the rate and
// the time left are left out when unknown (zero), the total when it is.
func byteProgress(done, total int64, rate float64, eta time.Duration) string {
	s := formatSize(done)
	if total > 0 {
		s += " of " + formatSize(total)
	}
	if rate > 0 {
		s += " · " + formatSize(int64(rate)) + "/s"
	}
	if eta > 0 {
		s += " · " + formatETA(eta) + " left"
	}
	return s
}

// formatETA is "45 s", "3 min 20 s", "2 h 5 min".
func formatETA(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min %d s", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%d h %d min", int(d.Hours()), int(d.Minutes())%60)
}
