package gui

import (
	"errors"
	"maps"
	"slices"
	"sync"
	"time"

	"modelpub/core/drafts"
)

// draftDelay is how long the card panel waits after an edit before it
// writes the card to its draft.
const draftDelay = 500 * time.Millisecond

// errNoDraftStore is why edits cannot be kept when the app has no folder
// for drafts (no config dir).
var errNoDraftStore = errors.New("no folder to keep card drafts in")

// cardDrafts keeps the card panel's edits of one folder in a drafts.Store,
// so they survive a restart: an edit marks the card dirty, and once the
// typing pauses (draftDelay) the card is written off the UI goroutine;
// flush writes it at once, on the UI goroutine (closing the window, opening
// another folder). Every method runs on the UI goroutine.
type cardDrafts struct {
	e *env
	// store is where drafts go; nil when there is none (storeErr says
	// why): edits are then never kept, and closing asks.
	store    *drafts.Store
	storeErr error
	debounce *debouncer
	// snapshot is the draft of the card as shown, for folder; a nil
	// draft means the card is as loaded, so no draft is needed (any is
	// removed). Set by the card panel.
	snapshot func() (folder string, snap *drafts.Draft, err error)
	// changed runs after dirty, exists or err changed.
	changed func()

	seq    int   // counts writes asked for; a write older than the last one done for its folder is skipped
	dirty  bool  // edits not written yet
	exists bool  // the folder shown has a draft on disk
	err    error // the last write failed: the edits are not kept
	w      *draftWriter
	// held are the drafts of folders shown earlier whose write failed,
	// by folder: shown again if the folder is opened again, and written
	// (or asked about) when the window closes.
	held map[string]*drafts.Draft
}

func newCardDrafts(e *env) *cardDrafts {
	d := &cardDrafts{e: e, store: e.drafts, storeErr: e.draftsErr,
		debounce: &debouncer{delay: draftDelay, do: e.do}, w: &draftWriter{done: map[string]int{}},
		held: map[string]*drafts.Draft{}}
	if d.store == nil && d.storeErr == nil {
		d.storeErr = errNoDraftStore
	}
	return d
}

// edited notes an edit of the card and schedules its write.
func (d *cardDrafts) edited() {
	d.dirty = true
	if d.store == nil {
		if d.err == nil {
			d.failed(nil) // nowhere to write: say so at once
		}
		return
	}
	d.debounce.call(d.flushAsync)
}

// flushAsync writes the card as shown now, off the UI goroutine.
func (d *cardDrafts) flushAsync() {
	if !d.dirty {
		return
	}
	folder, snap, err := d.snapshot()
	if err != nil || d.store == nil {
		d.failed(err)
		return
	}
	d.seq++
	seq, store := d.seq, d.store
	d.e.spawn(func() {
		err := d.w.write(store, seq, folder, snap)
		d.e.do(func() {
			if seq != d.seq {
				return // a later write (or drop) decides
			}
			d.done(snap, err)
		})
	})
}

// flush writes pending edits now and reports whether they are kept; with
// nothing pending (and no failed write) it does nothing.
func (d *cardDrafts) flush() error {
	d.debounce.cancel()
	if !d.dirty && d.err == nil {
		return nil
	}
	folder, snap, err := d.snapshot()
	if err != nil || d.store == nil {
		d.failed(err)
		return d.err
	}
	d.seq++
	d.done(snap, d.w.write(d.store, d.seq, folder, snap))
	return d.err
}

// flushAll is flush, then writes the held drafts; it reports the first
// failure (the drafts that failed stay held).
func (d *cardDrafts) flushAll() error {
	first := d.flush()
	if d.store == nil {
		if first == nil && len(d.held) > 0 {
			first = d.storeErr
		}
		return first
	}
	for _, folder := range slices.Sorted(maps.Keys(d.held)) {
		d.seq++
		if err := d.w.write(d.store, d.seq, folder, d.held[folder]); err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		delete(d.held, folder)
	}
	return first
}

// leave writes the pending edits before another folder is shown; if that
// fails they are held, to be shown again or written later.
func (d *cardDrafts) leave() {
	if d.flush() == nil {
		return
	}
	if folder, snap, err := d.snapshot(); err == nil && snap != nil {
		d.held[folder] = snap
	}
}

// hold keeps snap as folder's draft until it can be written.
func (d *cardDrafts) hold(folder string, snap *drafts.Draft) { d.held[folder] = snap }

// takeHeld returns (and forgets) folder's held draft, if any.
func (d *cardDrafts) takeHeld(folder string) *drafts.Draft {
	snap := d.held[folder]
	delete(d.held, folder)
	return snap
}

// drop removes folder's draft; pending edits are forgotten.
func (d *cardDrafts) drop(folder string) error {
	d.debounce.cancel()
	d.seq++
	d.dirty, d.err = false, nil
	var err error
	if d.store != nil {
		err = d.w.write(d.store, d.seq, folder, nil)
	}
	d.exists = err != nil
	d.changed()
	return err
}

// discard forgets the edits not written, held ones too (the user chose to
// lose them); a draft already on disk stays.
func (d *cardDrafts) discard() {
	d.debounce.cancel()
	d.seq++
	d.dirty, d.err = false, nil
	clear(d.held)
	d.changed()
}

// reset starts over for a newly shown folder; exists says it has a draft.
func (d *cardDrafts) reset(exists bool) {
	d.debounce.cancel()
	d.seq++
	d.dirty, d.exists, d.err = false, exists, nil
	d.changed()
}

// failed records a write that could not be made.
func (d *cardDrafts) failed(err error) {
	if err == nil {
		err = d.storeErr
	}
	d.err = err
	d.changed()
}

// done records the outcome of writing snap (nil: the draft was removed).
func (d *cardDrafts) done(snap *drafts.Draft, err error) {
	d.err = err
	if err == nil {
		d.dirty = false
		d.exists = snap != nil
	}
	d.changed()
}

// draftWriter serialises the writes of drafts: one at a time, and a write
// older than the last one done for its folder is skipped, so a late
// background write never replaces a newer draft or brings back a dropped
// one. Safe for concurrent use.
type draftWriter struct {
	mu   sync.Mutex
	done map[string]int // folder → seq of the last write done
}

// write saves snap as folder's draft, or deletes the draft when snap is
// nil, unless a write with a later seq was done for folder.
func (w *draftWriter) write(store *drafts.Store, seq int, folder string, snap *drafts.Draft) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done[folder] > seq {
		return nil
	}
	w.done[folder] = seq
	if snap == nil {
		return store.Delete(folder)
	}
	return store.Save(snap)
}
