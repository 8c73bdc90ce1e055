package publish

import (
	"sync"
	"time"
)

// emitter sends Events one at a time, filling in Rate and ETA for steps
// that count bytes. It does not throttle: the steps of a publish overlap
// (a file uploads while the next is saved), and whoever shows the events
// (the CLI printer, the app's bridge) decides how often to draw.
type emitter struct {
	mu    sync.Mutex
	fn    func(Event)
	start map[Step]time.Time // each step's first event
	now   func() time.Time
}

func newEmitter(fn func(Event)) *emitter {
	return &emitter{fn: fn, now: time.Now, start: map[Step]time.Time{}}
}

// emit sends e.
func (m *emitter) emit(e Event) {
	if m == nil || m.fn == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.start[e.Step]; !ok {
		m.start[e.Step] = m.now()
	}
	m.fill(&e)
	m.fn(e)
}

// progress sends a byte-progress event (the same as emit: kept apart to
// say what the event is).
func (m *emitter) progress(e Event) { m.emit(e) }

// fill computes Rate (when the source did not) and ETA from the step's
// elapsed time. Bytes deduplicated count as done for the ETA: they cost
// no sending.
func (m *emitter) fill(e *Event) {
	el := m.now().Sub(m.start[e.Step]).Seconds()
	if e.Rate == 0 && e.Bytes > 0 && el > 0.2 {
		e.Rate = float64(e.Bytes) / el
	}
	done, rate := e.Bytes, e.Rate
	if e.Deduped > 0 {
		done += e.Deduped
		if el > 0.2 {
			rate = float64(done) / el
		}
	}
	if rate > 0 && e.Total > done {
		e.ETA = time.Duration(float64(e.Total-done) / rate * float64(time.Second)).Round(time.Second)
	}
}
