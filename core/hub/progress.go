package hub

import (
	"sync"
	"time"
)

// Progress is one report of UploadFolder. Reports come from one goroutine
// at a time (never concurrently), throttled to one per ProgressInterval
// except phase changes and finished files, which are always reported. They
// never contain the token or any URL.
type Progress struct {
	Phase      string  // "scan", "preupload", "hash", "upload", "commit", "done"
	File       string  // path in the repo this report is about; "" for phase-wide reports
	FileBytes  int64   // File's bytes done in this phase
	FileSize   int64   // File's bytes to do in this phase
	FileDone   bool    // File finished this phase
	Bytes      int64   // bytes done in this phase, all files (upload: LFS bytes sent)
	Total      int64   // bytes to do in this phase
	Files      int     // files finished in this phase
	FilesTotal int     // files to do in this phase
	Rate       float64 // bytes per second in this phase, smoothed
	Elapsed    time.Duration
}

// reporter aggregates per-file byte counts into throttled Progress reports.
type reporter struct {
	fn       func(Progress)
	interval time.Duration

	mu        sync.Mutex
	p         Progress
	perFile   map[string]*[2]int64 // done, size
	start     time.Time
	last      time.Time
	rateAt    time.Time
	rateBytes int64
}

func newReporter(fn func(Progress), interval time.Duration) *reporter {
	if interval <= 0 {
		interval = 100 * time.Millisecond
	}
	return &reporter{fn: fn, interval: interval}
}

// phase starts a new phase and reports it.
func (r *reporter) phase(name string, total int64, files int) {
	if r.fn == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	r.p = Progress{Phase: name, Total: total, FilesTotal: files}
	r.perFile = map[string]*[2]int64{}
	r.start, r.last, r.rateAt, r.rateBytes = now, now, now, 0
	r.emit(now, "", false)
}

// file registers a file's size for the phase.
func (r *reporter) file(path string, size int64) {
	if r.fn == nil {
		return
	}
	r.mu.Lock()
	r.perFile[path] = &[2]int64{0, size}
	r.mu.Unlock()
}

// add counts delta bytes of path (negative to take back a failed attempt).
func (r *reporter) add(path string, delta int64) {
	if r.fn == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.p.Bytes += delta
	if f := r.perFile[path]; f != nil {
		f[0] += delta
	}
	if now := time.Now(); now.Sub(r.last) >= r.interval {
		r.emit(now, path, false)
	}
}

// done marks path finished and always reports it.
func (r *reporter) done(path string) {
	if r.fn == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.p.Files++
	r.emit(time.Now(), path, true)
}

func (r *reporter) emit(now time.Time, path string, fileDone bool) {
	if dt := now.Sub(r.rateAt).Seconds(); dt >= 0.05 {
		inst := float64(r.p.Bytes-r.rateBytes) / dt
		if r.p.Rate == 0 {
			r.p.Rate = inst
		} else {
			r.p.Rate = 0.7*r.p.Rate + 0.3*inst
		}
		r.rateAt, r.rateBytes = now, r.p.Bytes
	}
	p := r.p
	p.Elapsed = now.Sub(r.start)
	p.File, p.FileDone = path, fileDone
	if f := r.perFile[path]; f != nil {
		p.FileBytes, p.FileSize = f[0], f[1]
	}
	r.last = now
	r.fn(p)
}
