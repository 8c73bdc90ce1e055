package publish

import (
	"sync"
	"time"
)

// emitter sends Events one at a time, throttling byte progress to ten a
// second per step and filling in Rate and ETA for steps that count bytes.
type emitter struct {
	mu    sync.Mutex
	fn    func(Event)
	step  Step
	start time.Time // of the current step
	last  time.Time // last progress event sent
	now   func() time.Time
}

func newEmitter(fn func(Event)) *emitter {
	return &emitter{fn: fn, now: time.Now}
}

const progressInterval = 100 * time.Millisecond

// emit sends e unconditionally (step changes, messages, ends).
func (m *emitter) emit(e Event) {
	if m == nil || m.fn == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.enter(e.Step)
	m.fill(&e)
	m.fn(e)
}

// progress sends e unless one went out less than progressInterval ago.
func (m *emitter) progress(e Event) {
	if m == nil || m.fn == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.enter(e.Step)
	now := m.now()
	if now.Sub(m.last) < progressInterval && (e.Total == 0 || e.Bytes < e.Total) {
		return
	}
	m.last = now
	m.fill(&e)
	m.fn(e)
}

func (m *emitter) enter(s Step) {
	if s != m.step {
		m.step, m.start, m.last = s, m.now(), time.Time{}
	}
}

// fill computes Rate (when the source did not) and ETA from the step's
// elapsed time.
func (m *emitter) fill(e *Event) {
	if e.Rate == 0 && e.Bytes > 0 {
		if el := m.now().Sub(m.start).Seconds(); el > 0.2 {
			e.Rate = float64(e.Bytes) / el
		}
	}
	if e.Rate > 0 && e.Total > e.Bytes {
		e.ETA = time.Duration(float64(e.Total-e.Bytes) / e.Rate * float64(time.Second)).Round(time.Second)
	}
}
