package xet

// DefragPolicy is xet-core's fragmentation rule (deduplication.md,
// "Fragmentation Prevention"; xet-core's DefragPrevention): a file's
// reconstruction should not become many tiny terms, each a range request
// when the file is downloaded. The Packer keeps the chunk count of the
// file's last Ranges terms; once they average fewer than
// MinChunksPerRange×Hysteresis chunks, a known run of chunks shorter than
// that average is packed again as new data instead of referenced, until
// the average is back at MinChunksPerRange. A run that continues the
// file's last term is always referenced: it adds no term.
//
// Where Modelpub chose: a run is the chunks that follow each other in the
// xorb where the Packer found the run's first (xet-core also cuts runs at
// the end of the batch of chunks it processes); the matchable-density
// bypass of newer xet-core (defrag_prevention_matchable_density_bypass)
// is not applied (docs/xet-protocol.md, item 8).
type DefragPolicy struct {
	Ranges            int     // terms in the rolling average; 0 turns the rule off
	MinChunksPerRange float32 // the average sought, in chunks per term
	Hysteresis        float32 // the rule starts below MinChunksPerRange × Hysteresis (< 1)
}

// DefaultDefrag is xet-core's default: 128 terms, 8 chunks per term
// (about 512 KiB at 64 KiB chunks), a hysteresis of 0.5.
var DefaultDefrag = DefragPolicy{Ranges: 128, MinChunksPerRange: 8, Hysteresis: 0.5}

// defragTracker applies a DefragPolicy to one file, as xet-core's
// DefragPrevention does: it is told each term as it opens (addRange) or
// grows (extend), and decides whether a known run of chunks that would
// open a new term may be referenced (allow). Its arithmetic is float32,
// as xet-core's (f32).
type defragTracker struct {
	policy DefragPolicy
	ring   []int // chunk counts of the last terms, a ring of policy.Ranges
	next   int   // ring slot of the next term
	n      int   // terms in the ring
	sum    int   // their chunks
	// low: the rule starts below MinChunksPerRange × Hysteresis (true
	// until a run is refused); false: it holds until the average reaches
	// MinChunksPerRange.
	low bool
}

// reset starts a file: xet-core keeps one DefragPrevention per file.
func (d *defragTracker) reset(policy DefragPolicy) {
	d.policy = policy
	if cap(d.ring) < policy.Ranges {
		d.ring = make([]int, policy.Ranges)
	}
	d.ring = d.ring[:max(policy.Ranges, 0)]
	d.next, d.n, d.sum, d.low = 0, 0, 0, true
}

// addRange records a new term of n chunks.
func (d *defragTracker) addRange(n int) {
	if len(d.ring) == 0 {
		return
	}
	if d.n == len(d.ring) {
		d.sum -= d.ring[d.next]
	} else {
		d.n++
	}
	d.ring[d.next] = n
	d.sum += n
	d.next = (d.next + 1) % len(d.ring)
}

// extend records n more chunks in the last term.
func (d *defragTracker) extend(n int) {
	if d.n == 0 {
		return
	}
	last := (d.next + len(d.ring) - 1) % len(d.ring)
	d.ring[last] += n
	d.sum += n
}

// average is the chunks per term over the last policy.Ranges terms; ok
// is false until there are that many (xet-core: no estimate yet, every
// run allowed).
func (d *defragTracker) average() (cpr float32, ok bool) {
	if len(d.ring) == 0 || d.n < len(d.ring) {
		return 0, false
	}
	return float32(d.sum) / float32(d.n), true
}

func (d *defragTracker) target() float32 {
	if d.low {
		return d.policy.MinChunksPerRange * d.policy.Hysteresis
	}
	return d.policy.MinChunksPerRange
}

// pending reports whether allow's answer depends on the run's length:
// then a run is allowed when it holds at least bound chunks, and the
// caller must know that much of it before asking. When not pending,
// allow answers true whatever the length.
func (d *defragTracker) pending() (bound float32, ok bool) {
	cpr, ok := d.average()
	if !ok || cpr >= d.target() {
		return 0, false
	}
	return cpr, true
}

// allow decides whether a known run of n chunks that would open a new
// term is referenced (true) or packed as new data (false), and moves
// between the thresholds as xet-core does: refusing raises the threshold
// to MinChunksPerRange; allowing at or above the current threshold lowers
// it to MinChunksPerRange × Hysteresis; allowing a run long enough for a
// fragmented file (n ≥ the average) leaves it.
func (d *defragTracker) allow(n int) bool {
	cpr, ok := d.average()
	if !ok {
		return true
	}
	if cpr < d.target() {
		// Fragmented: a run shorter than the average would not raise it.
		if float32(n) < cpr {
			d.low = false
			return false
		}
		return true
	}
	d.low = true
	return true
}
