package hub

import (
	"sync"
	"time"
)

// Progress is one report of an upload. Reports come from one goroutine at
// a time (never concurrently) and are not throttled: whoever shows them
// (the CLI printer, the app's bridge) decides how often to draw. They never
// contain the token or any URL.
//
// An upload's phases overlap (a file is uploaded while the next one is
// hashed): each report is about one phase, with that phase's totals so far.
// Totals grow as files are added to an upload.
type Progress struct {
	Phase      string  // "scan", "preupload", "hash", "upload", "commit", "done"
	File       string  // path in the repo this report is about; "" for phase-wide reports
	FileBytes  int64   // File's bytes done in this phase (upload: sent or deduplicated)
	FileSize   int64   // File's bytes to do in this phase
	FileDone   bool    // File finished this phase
	Bytes      int64   // bytes done in this phase, all files (upload: bytes sent; Xet: file bytes of the new chunks in xorbs the CAS accepted)
	Deduped    int64   // upload: bytes not sent because the Hub already held them (Xet); Bytes + Deduped reach Total
	Total      int64   // bytes to do in this phase, as known so far
	Files      int     // files finished in this phase
	FilesTotal int     // files to do in this phase, as known so far
	Rate       float64 // bytes per second in this phase, smoothed
	Elapsed    time.Duration
}

// reporter aggregates per-file byte counts of each phase into Progress
// reports.
type reporter struct {
	fn func(Progress)

	mu     sync.Mutex
	phases map[string]*phaseState
}

type phaseState struct {
	p         Progress
	perFile   map[string]*[2]int64 // done, size
	start     time.Time
	rateAt    time.Time
	rateBytes int64
}

func newReporter(fn func(Progress)) *reporter {
	return &reporter{fn: fn, phases: map[string]*phaseState{}}
}

func (r *reporter) state(name string) *phaseState {
	s := r.phases[name]
	if s == nil {
		now := time.Now()
		s = &phaseState{p: Progress{Phase: name}, perFile: map[string]*[2]int64{}, start: now, rateAt: now}
		r.phases[name] = s
	}
	return s
}

// phase reports a phase-wide event: its start, or more work added to it
// (total bytes and files added to what it had).
func (r *reporter) phase(name string, total int64, files int) {
	if r.fn == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.state(name)
	s.p.Total += total
	s.p.FilesTotal += files
	r.emit(s, time.Now(), "", false)
}

// file registers a file's size for a phase.
func (r *reporter) file(phase, path string, size int64) {
	if r.fn == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.state(phase).perFile[path] = &[2]int64{0, size}
}

// add counts delta bytes of path in a phase (negative to take back a
// failed attempt).
func (r *reporter) add(phase, path string, delta int64) {
	if r.fn == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.state(phase)
	s.p.Bytes += delta
	if f := s.perFile[path]; f != nil {
		f[0] += delta
	}
	r.emit(s, time.Now(), path, false)
}

// dedup counts n bytes of path that need no sending (Xet chunks the Hub
// holds): Deduped and the file's bytes grow, Bytes does not.
func (r *reporter) dedup(phase, path string, n int64) {
	if r.fn == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.state(phase)
	s.p.Deduped += n
	if f := s.perFile[path]; f != nil {
		f[0] += n
	}
	r.emit(s, time.Now(), path, false)
}

// done marks path finished in a phase.
func (r *reporter) done(phase, path string) {
	if r.fn == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.state(phase)
	s.p.Files++
	r.emit(s, time.Now(), path, true)
}

func (r *reporter) emit(s *phaseState, now time.Time, path string, fileDone bool) {
	if dt := now.Sub(s.rateAt).Seconds(); dt >= 0.05 {
		inst := float64(s.p.Bytes-s.rateBytes) / dt
		if s.p.Rate == 0 {
			s.p.Rate = inst
		} else {
			s.p.Rate = 0.7*s.p.Rate + 0.3*inst
		}
		s.rateAt, s.rateBytes = now, s.p.Bytes
	}
	p := s.p
	p.Elapsed = now.Sub(s.start)
	p.File, p.FileDone = path, fileDone
	if f := s.perFile[path]; f != nil {
		p.FileBytes, p.FileSize = f[0], f[1]
	}
	r.fn(p)
}
