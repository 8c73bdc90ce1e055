package torchbin

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// maxPickle bounds the size of one pickle (data.pkl, or a legacy pickle).
// A state dict's pickle takes 45 to 170 bytes per tensor (names, memo
// references, shapes), so a 1,000,000-tensor state dict has a pickle of
// 45 to 170 MB.
const maxPickle = 256 << 20

// Limits of the pickle VM. A pickle is a program, and a few bytes of it
// can ask gopickle for a lot of memory: an EMPTY_LIST opcode is one byte
// and ~100 bytes of heap, and deflate packs 60 million of them in 58 KB.
// The scanner runs the pickle on a shadow stack that records only the
// kind of each item (and, for containers, their size and depth), and
// refuses it, before gopickle sees it, when a count crosses its limit.
//
// Every limit but the nesting depth is a floor, which any small pickle
// gets, plus a share of n, the number of bytes the pickle takes in the
// file (the compressed size of a deflated data.pkl; for the legacy
// format, whose pickles carry no length, the bytes read so far). torch
// writes data.pkl uncompressed, and its state-dict pickles (measured on
// protocol 2 and 4 pickles of up to 100,000 tensors, names of 1 to 66
// characters) spend per tensor 45 to 170 bytes, about 30 opcodes, 6 to 8
// memo entries, one entry of the state dict, and 2.7 to 3.4 KB of
// estimated heap: 20 to 60 bytes of heap per byte of pickle. Each share
// below is at least twice that; the floors cover small pickles written by
// other tools, compressed or not.
const (
	// opcodes: the work of scanning and unpickling. A stored pickle cannot
	// exceed one opcode per byte; a deflated one may reach 8.
	opsFloor   = 1 << 20
	opsPerByte = 8
	// items on gopickle's stack, including those under open MARKs. Python
	// batches lists, dicts and sets by 1000 items, so a real state dict
	// never holds more than a few thousand.
	stackFloor        = 1 << 16
	stackBytesPerItem = 8
	// memo entries (PUT, BINPUT, LONG_BINPUT, MEMOIZE): one per 2 bytes.
	memoFloor         = 1 << 16
	memoBytesPerEntry = 2
	// entries of one list, tuple, set or dict (a dict entry is a pair):
	// one per 2 bytes; the state dict has one per tensor.
	containerFloor         = 1 << 20
	containerBytesPerEntry = 2
	// memory: an estimate of what gopickle and the plan allocate (see
	// cost*, within 1.2 times the peak heap measured on real state dicts),
	// under heapFloor + heapPerByte × n, and under maxHeap whatever n (a
	// 1,000,000-tensor state dict is estimated at 3.4 GB at most).
	heapFloor   = 64 << 20
	heapPerByte = 128
	maxHeap     = 4 << 30
	// inflated size of a deflated data.pkl: the declared size is checked
	// first, and the entry is read through the same limit, as the
	// declared size can lie.
	inflateFloor   = 16 << 20
	inflatePerByte = 8
	// nesting: open MARKs, and containers inside containers as far as the
	// scanner can see (the plan walks at most maxDepth levels). Python's
	// pickler cannot write structures deeper than its recursion limit,
	// 1000.
	maxNesting = 1000
)

// vmLimits are the limits above, as values, so that tests and fuzzing can
// run the scanner with smaller ones.
type vmLimits struct {
	opsFloor, opsPerByte                   int64
	stackFloor, stackBytesPerItem          int64
	memoFloor, memoBytesPerEntry           int64
	containerFloor, containerBytesPerEntry int64
	heapFloor, heapPerByte, maxHeap        int64
	nesting                                int
}

var defaultLimits = vmLimits{
	opsFloor: opsFloor, opsPerByte: opsPerByte,
	stackFloor: stackFloor, stackBytesPerItem: stackBytesPerItem,
	memoFloor: memoFloor, memoBytesPerEntry: memoBytesPerEntry,
	containerFloor: containerFloor, containerBytesPerEntry: containerBytesPerEntry,
	heapFloor: heapFloor, heapPerByte: heapPerByte, maxHeap: maxHeap,
	nesting: maxNesting,
}

// Estimated heap, in bytes, that gopickle (and the plan after it) keeps
// for each object; they are upper bounds of what Go allocates, with the
// slack of a slice or map that grows by doubling.
const (
	costSlot    = 32  // one item of a stack or list: an interface, doubled
	costMark    = 256 // a MARK: gopickle starts a new 16-item stack
	costBox     = 16  // an int or float boxed in an interface
	costString  = 32  // a string or bytes header, plus its length
	costGlobal  = 32  // a class from FindClass
	costStorage = 192 // a persistent id: a storageRef, its map entry, its key
	costODict   = 256 // a new collections.OrderedDict: struct, map, list, __dict__
	costReduce  = 640 // a tensor: tensorRef, shape and strides, its plan entry and name
	costList    = 96  // an empty list, with room for 4 items
	costDict    = 160 // an empty dict, with room for 4 entries
	costSet     = 224 // an empty set
	costTuple   = 32  // a tuple's header
	costMemo    = 64  // a memo entry
	costPair    = 64  // a dict entry: key and value, doubled
	costODEntry = 192 // an OrderedDict entry: map slot, list element, entry
	costSetItem = 64  // a set entry
	costAttr    = 96  // an attribute set by BUILD
)

// Integers: LONG1 holds at most 255 bytes, and LONG4 and LONG (decimal)
// are refused beyond as much, as gopickle decodes them in quadratic time
// (a 1 MB LONG4 takes minutes). torch's pickles hold 8-byte integers and
// the legacy format's 10-byte magic number.
const (
	maxLongBytes  = 255
	maxLongDigits = 620 // 255 bytes in decimal, with a sign and an L
)

// maxGlobalName bounds the module and class names of GLOBAL and INST:
// those of the allow-list are short, and longer lines are refused as soon
// as they pass it.
const maxGlobalName = 1024

// maxKnownString is the longest string the scanner remembers for
// STACK_GLOBAL; longer module or class names are never allowed anyway.
const maxKnownString = 64

// scanPickle reads one pickle, opcode by opcode, from in, and returns its
// bytes, without building any object. It is the gate in front of gopickle:
//
//   - every global the pickle names (GLOBAL, INST, STACK_GLOBAL) must be in
//     allowed, else ErrForbiddenGlobal; STACK_GLOBAL is accepted only when
//     its two operands are strings pushed right before it (as Python's
//     pickler writes it), so the names are known without evaluating
//     anything;
//   - every length argument (strings, bytes, frames) must fit in what is
//     left of max bytes, so no declared size ever causes an allocation;
//   - extension-registry, out-of-band buffer and unknown opcodes are
//     refused, as are zero-length and negative lengths that would make
//     the unpickler misbehave;
//   - the pickle runs on a shadow stack within the limits above, relative
//     to stored, the bytes the pickle takes in the file (0 when unknown:
//     then the bytes read so far), else a *LimitError (ErrPickleLimit).
//
// It stops after the STOP opcode; bytes after it are not consumed.
func scanPickle(in io.Reader, max, stored int64, allowed func(module, name string) bool) ([]byte, error) {
	s, err := scanWith(in, max, stored, allowed, &defaultLimits)
	if err != nil {
		return nil, err
	}
	return s.rec.Bytes(), nil
}

// scanWith is scanPickle with the given limits; the scanner it returns
// holds the pickle (rec) and what the scan counted.
func scanWith(in io.Reader, max, stored int64, allowed func(module, name string) bool, lim *vmLimits) (*scanner, error) {
	br, ok := in.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(in, 64<<10)
	}
	s := &scanner{in: br, max: max, stored: stored, allowed: allowed, lim: lim}
	if max <= stored {
		// an uncompressed data.pkl: its size is known and within limits
		s.rec.Grow(int(max))
	}
	if err := s.run(); err != nil {
		return nil, err
	}
	return s, nil
}

type sval struct {
	known bool
	long  bool // a string over maxKnownString bytes
	s     string
}

// kind is what the shadow stack knows of an item.
type kind uint8

const (
	kValue      kind = iota // a scalar, string, global, storage, tensor: nothing can be added to it
	kList                   // a list: APPEND, APPENDS
	kTuple                  // a tuple or frozenset
	kDict                   // a dict: SETITEM, SETITEMS
	kODict                  // a collections.OrderedDict
	kSet                    // a set: ADDITEMS
	kODictClass             // the collections.OrderedDict class
)

// item is one entry of the shadow stack. For a list, dict, OrderedDict
// or set, id indexes scanner.conts; a tuple cannot change, so its id is
// its depth.
type item struct {
	kind kind
	str  uint8 // in the memo: strNone, strKnown or strLong
	used bool  // in the memo: the entry exists
	id   uint32
}

const (
	strNone uint8 = iota
	strKnown
	strLong
)

// cont is what the scanner knows of one container.
type cont struct {
	size  int32 // entries
	depth int32 // 1 for a container of scalars
}

// memoTable is the scanner's memo: a slice for the dense indices pickles
// use (0, 1, 2, ...), a map for the others, and the strings short enough
// to be the name of a global.
type memoTable struct {
	dense  []item
	sparse map[int64]item
	strs   map[int64]string
	n      int64 // entries
}

// get returns the entry at i and its string, if known; a missing entry
// is None to gopickle.
func (m *memoTable) get(i int64) (item, sval) {
	var it item
	if i >= 0 && i < int64(len(m.dense)) {
		it = m.dense[i]
	} else {
		it = m.sparse[i]
	}
	switch it.str {
	case strKnown:
		return it, sval{known: true, s: m.strs[i]}
	case strLong:
		return it, sval{long: true}
	}
	return it, sval{}
}

// set stores it (and its string v) at i and reports whether i is a new
// entry.
func (m *memoTable) set(i int64, it item, v sval) bool {
	if old, _ := m.get(i); old.str == strKnown {
		delete(m.strs, i)
	}
	it.used = true
	it.str = strNone
	if v.known {
		it.str = strKnown
		if m.strs == nil {
			m.strs = map[int64]string{}
		}
		m.strs[i] = v.s
	} else if v.long {
		it.str = strLong
	}
	// the slice grows only as far as twice the entries, so that a far
	// index costs a map entry, not a long slice
	if i >= int64(len(m.dense)) && i < 2*m.n+1024 {
		if _, ok := m.sparse[i]; ok {
			delete(m.sparse, i) // moves into the slice: not a new entry
			m.n--
		}
		for int64(len(m.dense)) <= i {
			m.dense = append(m.dense, item{})
		}
	}
	if i >= 0 && i < int64(len(m.dense)) {
		isNew := !m.dense[i].used
		m.dense[i] = it
		if isNew {
			m.n++
		}
		return isNew
	}
	if m.sparse == nil {
		m.sparse = map[int64]item{}
	}
	_, had := m.sparse[i]
	m.sparse[i] = it
	if !had {
		m.n++
	}
	return !had
}

type scanner struct {
	in      *bufio.Reader
	rec     bytes.Buffer
	max     int64
	stored  int64
	allowed func(module, name string) bool
	lim     *vmLimits
	memo    memoTable
	last    [2]sval // the two most recent pushes, when both are strings

	// the shadow VM
	stack   []item // every frame's items
	marks   []int  // where each open MARK's frame starts in stack
	conts   []cont // containers created so far
	ops     int64  // opcodes run
	heap    int64  // estimated bytes allocated for objects
	maxDict int64  // entries of the largest dict so far
	peak    int    // the most items the stack held
	longs   int64  // bytes of LONG1 and LONG4 integers, for tests: gopickle's decoding makes garbage
	opc     byte   // the opcode being run, for errors
	opAt    int    // its offset
}

var errTruncated = fmt.Errorf("%w: the pickle ends early", ErrCorrupt)

// n is the size the limits are relative to.
func (s *scanner) n() int64 {
	if s.stored > 0 {
		return min(s.stored, maxPickle)
	}
	return int64(s.rec.Len())
}

func (s *scanner) limit(what string, max int64) error {
	return &LimitError{Limit: what, Max: max, Stored: s.n()}
}

func (s *scanner) byte1() (byte, error) {
	if int64(s.rec.Len())+1 > s.max {
		return 0, errTruncated
	}
	b, err := s.in.ReadByte()
	if err != nil {
		return 0, errTruncated
	}
	s.rec.WriteByte(b)
	return b, nil
}

// bytesN reads n bytes after checking that they fit.
func (s *scanner) bytesN(n int64, what string) ([]byte, error) {
	if n < 0 || n > s.max-int64(s.rec.Len()) {
		return nil, fmt.Errorf("%w: the pickle declares a %d-byte %s, past the end of its %d bytes", ErrCorrupt, n, what, s.max)
	}
	start := s.rec.Len()
	// in steps, so that a declared length allocates no more than the
	// bytes that are really there
	for left := n; left > 0; {
		k := int(min(left, 1<<20))
		s.rec.Grow(k)
		buf := s.rec.AvailableBuffer()[:k]
		if _, err := io.ReadFull(s.in, buf); err != nil {
			return nil, errTruncated
		}
		s.rec.Write(buf)
		left -= int64(k)
	}
	return s.rec.Bytes()[start:], nil
}

func (s *scanner) line() (string, error) {
	b, err := s.lineBytes()
	return string(b), err
}

// lineBytes reads a line; the bytes are valid until the next read.
func (s *scanner) lineBytes() ([]byte, error) {
	b, _, err := s.lineMax(-1)
	return b, err
}

// lineMax reads a line, or only max bytes of it when it is longer (long
// is then true); the bytes are valid until the next read.
func (s *scanner) lineMax(max int) (line []byte, long bool, err error) {
	start := s.rec.Len()
	for {
		b, err := s.byte1()
		if err != nil {
			return nil, false, err
		}
		if b == '\n' {
			return s.rec.Bytes()[start : s.rec.Len()-1], false, nil
		}
		if max >= 0 && s.rec.Len()-start > max {
			return s.rec.Bytes()[start:], true, nil
		}
	}
}

// length reads a little-endian length of k bytes (1, 4 or 8).
func (s *scanner) length(k int) (int64, error) {
	b, err := s.bytesN(int64(k), "length")
	if err != nil {
		return 0, err
	}
	switch k {
	case 1:
		return int64(b[0]), nil
	case 4:
		v := binary.LittleEndian.Uint32(b)
		if v > 1<<31-1 {
			return 0, fmt.Errorf("%w: negative length in the pickle", ErrCorrupt)
		}
		return int64(v), nil
	default:
		v := binary.LittleEndian.Uint64(b)
		if v > 1<<62 {
			return 0, fmt.Errorf("%w: a pickle length of %d bytes", ErrCorrupt, v)
		}
		return int64(v), nil
	}
}

func strVal(b []byte) sval {
	if len(b) > maxKnownString {
		return sval{long: true}
	}
	return sval{known: true, s: string(b)}
}

func (s *scanner) pushString(v sval) { s.last = [2]sval{s.last[1], v} }
func (s *scanner) clobber()          { s.last = [2]sval{} }

func (s *scanner) global(module, name string) error {
	if !s.allowed(module, name) {
		return forbidden(module, name)
	}
	s.clobber()
	return nil
}

// Shadow stack. Its operations fail as gopickle's would: popping an empty
// frame, or closing a MARK that is not open, is a malformed pickle.

func (s *scanner) underflow() error {
	name := opNames[s.opc]
	if name == "" {
		name = fmt.Sprintf("opcode 0x%02x", s.opc)
	}
	return fmt.Errorf("%w: malformed pickle: %s at byte %d on an empty stack", ErrCorrupt, name, s.opAt)
}

func (s *scanner) frameStart() int {
	if len(s.marks) == 0 {
		return 0
	}
	return s.marks[len(s.marks)-1]
}

func (s *scanner) push(it item) error {
	if max := s.lim.stackFloor + s.n()/s.lim.stackBytesPerItem; int64(len(s.stack)) >= max {
		return s.limit("stack", max)
	}
	s.stack = append(s.stack, it)
	s.peak = max(s.peak, len(s.stack))
	return nil
}

func (s *scanner) pushValue(cost int64) error {
	if err := s.charge(cost); err != nil {
		return err
	}
	return s.push(item{kind: kValue})
}

func (s *scanner) pop() (item, error) {
	if len(s.stack) == s.frameStart() {
		return item{}, s.underflow()
	}
	it := s.stack[len(s.stack)-1]
	s.stack = s.stack[:len(s.stack)-1]
	return it, nil
}

func (s *scanner) top() (item, error) {
	if len(s.stack) == s.frameStart() {
		return item{}, s.underflow()
	}
	return s.stack[len(s.stack)-1], nil
}

func (s *scanner) mark() error {
	if len(s.marks) >= s.lim.nesting {
		return s.limit("nesting", int64(s.lim.nesting))
	}
	s.marks = append(s.marks, len(s.stack))
	return s.charge(costMark)
}

// popMark closes the innermost MARK and returns its items, which stay
// valid until the next push.
func (s *scanner) popMark() ([]item, error) {
	if len(s.marks) == 0 {
		return nil, s.underflow()
	}
	start := s.marks[len(s.marks)-1]
	s.marks = s.marks[:len(s.marks)-1]
	items := s.stack[start:]
	s.stack = s.stack[:start]
	return items, nil
}

func (s *scanner) depth(it item) int32 {
	switch it.kind {
	case kValue, kODictClass:
		return 0
	case kTuple:
		return int32(it.id)
	}
	return s.conts[it.id].depth
}

// newCont pushes a new container of kind k holding items (entries for a
// dict: pairs).
func (s *scanner) newCont(k kind, items []item, entries int64) error {
	d := int32(0)
	for _, it := range items {
		d = max(d, s.depth(it))
	}
	if int(d)+1 > s.lim.nesting {
		return s.limit("nesting", int64(s.lim.nesting))
	}
	if max := s.lim.containerFloor + s.n()/s.lim.containerBytesPerEntry; entries > max {
		return s.limit("container", max)
	}
	if k == kTuple {
		return s.push(item{kind: k, id: uint32(d + 1)})
	}
	s.conts = append(s.conts, cont{size: int32(entries), depth: d + 1})
	if k == kDict || k == kODict {
		s.maxDict = max(s.maxDict, entries)
	}
	return s.push(item{kind: k, id: uint32(len(s.conts) - 1)})
}

// add records items added to the container c (entries: how many), and
// charges their cost, which depends on c's kind.
func (s *scanner) add(c item, items []item, entries int64) error {
	var cost int64
	switch c.kind {
	case kList:
		cost = costSlot * entries
	case kDict:
		cost = costPair * entries
	case kODict:
		cost = costODEntry * entries
	case kSet:
		cost = costSetItem * entries
	default:
		// gopickle refuses to add to anything else; charge as much as
		// the costliest container in case it does not.
		cost = costODEntry * int64(len(items))
	}
	if err := s.charge(cost); err != nil {
		return err
	}
	if c.kind == kValue || c.kind == kODictClass || c.kind == kTuple {
		return nil
	}
	ct := &s.conts[c.id]
	size := int64(ct.size) + entries
	if max := s.lim.containerFloor + s.n()/s.lim.containerBytesPerEntry; size > max {
		return s.limit("container", max)
	}
	ct.size = int32(size)
	if c.kind == kDict || c.kind == kODict {
		s.maxDict = max(s.maxDict, size)
	}
	for _, it := range items {
		if d := s.depth(it) + 1; d > ct.depth {
			if int(d) > s.lim.nesting {
				return s.limit("nesting", int64(s.lim.nesting))
			}
			ct.depth = d
		}
	}
	return nil
}

// charge adds cost bytes to the estimated heap and checks the memory
// limit. The estimate also counts the pickle's own bytes (which gopickle
// reads from) and the stack.
func (s *scanner) charge(cost int64) error {
	s.heap += cost
	est := s.heap + int64(s.rec.Len()) + costSlot*int64(len(s.stack))
	if max := min(s.lim.maxHeap, s.lim.heapFloor+s.lim.heapPerByte*s.n()); est > max {
		return s.limit("memory", max)
	}
	return nil
}

func (s *scanner) store(idx int64) error {
	it, err := s.top()
	if err != nil {
		return err
	}
	if !s.memo.set(idx, it, s.last[1]) {
		return nil
	}
	if max := s.lim.memoFloor + s.n()/s.lim.memoBytesPerEntry; s.memo.n > max {
		return s.limit("memo", max)
	}
	return s.charge(costMemo)
}

func (s *scanner) run() error {
	for {
		s.opAt = s.rec.Len()
		op, err := s.byte1()
		if err != nil {
			return err
		}
		s.ops++
		if max := s.lim.opsFloor + s.lim.opsPerByte*s.n(); s.ops > max {
			return s.limit("opcodes", max)
		}
		if err := s.op(op); err != nil {
			if errors.Is(err, errStop) {
				return nil
			}
			return err
		}
	}
}

var errStop = errors.New("stop")

// op consumes the argument of opcode op, runs it on the shadow stack and
// updates the string tracking. The shadow stack mirrors gopickle's
// (github.com/nlpodyssey/gopickle v0.3.0, pickle/pickle.go).
func (s *scanner) op(op byte) error {
	s.opc = op
	switch op {
	case '.': // STOP
		if _, err := s.pop(); err != nil {
			return err
		}
		return errStop
	case '(': // MARK
		s.clobber()
		return s.mark()
	case '0': // POP: an empty frame pops its MARK
		s.clobber()
		if len(s.stack) == s.frameStart() {
			_, err := s.popMark()
			return err
		}
		_, err := s.pop()
		return err
	case '1': // POP_MARK
		s.clobber()
		_, err := s.popMark()
		return err
	case '2': // DUP
		s.clobber()
		it, err := s.top()
		if err != nil {
			return err
		}
		return s.push(it)
	case 'N', 0x88, 0x89: // NONE, NEWTRUE, NEWFALSE
		s.clobber()
		return s.pushValue(0)
	case ')': // EMPTY_TUPLE
		s.clobber()
		if err := s.charge(costTuple); err != nil {
			return err
		}
		return s.newCont(kTuple, nil, 0)
	case ']': // EMPTY_LIST
		s.clobber()
		if err := s.charge(costList); err != nil {
			return err
		}
		return s.newCont(kList, nil, 0)
	case '}': // EMPTY_DICT
		s.clobber()
		if err := s.charge(costDict); err != nil {
			return err
		}
		return s.newCont(kDict, nil, 0)
	case 0x8f: // EMPTY_SET
		s.clobber()
		if err := s.charge(costSet); err != nil {
			return err
		}
		return s.newCont(kSet, nil, 0)
	case 0x85, 0x86, 0x87: // TUPLE1, TUPLE2, TUPLE3
		s.clobber()
		n := int(op-0x85) + 1
		var items [3]item
		for i := n - 1; i >= 0; i-- {
			it, err := s.pop()
			if err != nil {
				return err
			}
			items[i] = it
		}
		if err := s.charge(costTuple + costSlot*int64(n)); err != nil {
			return err
		}
		return s.newCont(kTuple, items[:n], int64(n))
	case 't', 'l', 0x91: // TUPLE, LIST, FROZENSET: from the items since MARK
		s.clobber()
		items, err := s.popMark()
		if err != nil {
			return err
		}
		k, per := kTuple, int64(costSlot)
		switch op {
		case 'l':
			k = kList
		case 0x91:
			per = costSetItem
		}
		// gopickle keeps the MARK's frame as the tuple's or list's
		// storage: 16 items were charged with the MARK, more doubled it
		more := int64(0)
		if len(items) > 16 {
			more = int64(len(items))
		}
		if op == 0x91 {
			more = int64(len(items)) // a new map
		}
		if err := s.charge(costTuple + per*more); err != nil {
			return err
		}
		return s.newCont(k, items, int64(len(items)))
	case 'd': // DICT: from the pairs since MARK
		s.clobber()
		items, err := s.popMark()
		if err != nil {
			return err
		}
		pairs := int64(len(items)+1) / 2
		if err := s.charge(costDict + costPair*pairs); err != nil {
			return err
		}
		return s.newCont(kDict, items, pairs)
	case 'a': // APPEND
		s.clobber()
		v, err := s.pop()
		if err != nil {
			return err
		}
		l, err := s.pop()
		if err != nil {
			return err
		}
		if err := s.add(l, []item{v}, 1); err != nil {
			return err
		}
		return s.push(l)
	case 'e', 'u', 0x90: // APPENDS, SETITEMS, ADDITEMS
		s.clobber()
		items, err := s.popMark()
		if err != nil {
			return err
		}
		// items stays valid: nothing is pushed before add reads it
		c, err := s.pop()
		if err != nil {
			return err
		}
		entries := int64(len(items))
		if op == 'u' {
			entries = (entries + 1) / 2
		}
		if err := s.add(c, items, entries); err != nil {
			return err
		}
		return s.push(c)
	case 's': // SETITEM: the dict stays on the stack
		s.clobber()
		v, err := s.pop()
		if err != nil {
			return err
		}
		k, err := s.pop()
		if err != nil {
			return err
		}
		d, err := s.top()
		if err != nil {
			return err
		}
		return s.add(d, []item{k, v}, 1)
	case 'b': // BUILD: copies a dict state into the instance's __dict__
		s.clobber()
		state, err := s.pop()
		if err != nil {
			return err
		}
		if _, err := s.top(); err != nil {
			return err
		}
		n := s.maxDict // a (dict, slots) tuple: the dict is at most the largest
		if state.kind == kDict || state.kind == kODict {
			n = int64(s.conts[state.id].size)
		} else if state.kind != kTuple && state.kind != kValue {
			n = 0
		}
		return s.charge(costAttr * n)
	case 'R', 0x81: // REDUCE, NEWOBJ: callable, args → result
		s.clobber()
		if _, err := s.pop(); err != nil {
			return err
		}
		fn, err := s.pop()
		if err != nil {
			return err
		}
		return s.result(fn)
	case 0x92: // NEWOBJ_EX: class, args, kwargs → result
		s.clobber()
		for range 2 {
			if _, err := s.pop(); err != nil {
				return err
			}
		}
		fn, err := s.pop()
		if err != nil {
			return err
		}
		return s.result(fn)
	case 'o': // OBJ: MARK class args... → result
		s.clobber()
		items, err := s.popMark()
		if err != nil {
			return err
		}
		if len(items) == 0 {
			return s.underflow()
		}
		return s.result(items[0])
	case 0x94: // MEMOIZE: the index is len(memo), as gopickle computes it
		return s.store(s.memo.n)
	case 'p': // PUT
		l, err := s.line()
		if err != nil {
			return err
		}
		i, err := strconv.Atoi(l)
		if err != nil || i < 0 {
			return fmt.Errorf("%w: bad PUT index %q", ErrCorrupt, clip(l))
		}
		return s.store(int64(i))
	case 'q': // BINPUT
		n, err := s.length(1)
		if err != nil {
			return err
		}
		return s.store(n)
	case 'r': // LONG_BINPUT
		b, err := s.bytesN(4, "memo index")
		if err != nil {
			return err
		}
		return s.store(int64(binary.LittleEndian.Uint32(b)))
	case 'g', 'h', 'j': // GET, BINGET, LONG_BINGET
		var i int64
		switch op {
		case 'g':
			l, err := s.line()
			if err != nil {
				return err
			}
			v, err := strconv.Atoi(l)
			if err != nil {
				return fmt.Errorf("%w: bad GET index %q", ErrCorrupt, clip(l))
			}
			i = int64(v)
		case 'h':
			n, err := s.length(1)
			if err != nil {
				return err
			}
			i = n
		default:
			b, err := s.bytesN(4, "memo index")
			if err != nil {
				return err
			}
			i = int64(binary.LittleEndian.Uint32(b))
		}
		it, sv := s.memo.get(i)
		if sv.known || sv.long {
			s.pushString(sv)
		} else {
			s.clobber()
		}
		it.used, it.str = false, strNone
		return s.push(it)
	case 0x80: // PROTO
		_, err := s.bytesN(1, "protocol")
		return err
	case 0x95: // FRAME: frames are transparent to the opcode stream
		n, err := s.length(8)
		if err != nil {
			return err
		}
		if n > s.max-int64(s.rec.Len()) {
			return fmt.Errorf("%w: the pickle declares a %d-byte frame, past its end", ErrCorrupt, n)
		}
		// gopickle copies the frame before running it
		return s.charge(n)
	case 'F', 'I', 'L': // FLOAT, INT, LONG: one line
		s.clobber()
		l, long, err := s.lineMax(maxLongDigits)
		if err != nil {
			return err
		}
		if long {
			// gopickle's big.Int.SetString takes quadratic time
			return s.limit("integer", maxLongDigits)
		}
		return s.pushValue(costBox + int64(len(l)))
	case 'S', 'V': // STRING, UNICODE: one line
		s.clobber()
		l, err := s.lineBytes()
		if err != nil {
			return err
		}
		return s.pushValue(costString + int64(len(l)))
	case 'P': // PERSID
		s.clobber()
		l, err := s.lineBytes()
		if err != nil {
			return err
		}
		return s.pushValue(costStorage + int64(len(l)))
	case 'Q': // BINPERSID
		s.clobber()
		if _, err := s.pop(); err != nil {
			return err
		}
		return s.pushValue(costStorage)
	case 'J', 'K', 'M', 'G': // BININT, BININT1, BININT2, BINFLOAT
		s.clobber()
		k := int64(4)
		switch op {
		case 'K':
			k = 1
		case 'M':
			k = 2
		case 'G':
			k = 8
		}
		if _, err := s.bytesN(k, "number"); err != nil {
			return err
		}
		return s.pushValue(costBox)
	case 0x8a, 0x8b: // LONG1, LONG4
		s.clobber()
		k := 1
		if op == 0x8b {
			k = 4
		}
		n, err := s.length(k)
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("%w: a zero-length LONG in the pickle", ErrUnsupported)
		}
		if n > maxLongBytes {
			// gopickle decodes it a byte at a time, shifting a big.Int:
			// quadratic time
			return s.limit("integer", maxLongBytes)
		}
		if _, err := s.bytesN(n, "integer"); err != nil {
			return err
		}
		s.longs += n
		return s.pushValue(costString + 2*n)
	case 'X', 0x8c, 0x8d: // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8: strings
		k := 4
		switch op {
		case 0x8c:
			k = 1
		case 0x8d:
			k = 8
		}
		n, err := s.length(k)
		if err != nil {
			return err
		}
		b, err := s.bytesN(n, "string")
		if err != nil {
			return err
		}
		s.pushString(strVal(b))
		return s.pushValue(costString + n)
	case 'T', 'U', 'B', 'C', 0x8e, 0x96: // BINSTRING, SHORT_BINSTRING, BINBYTES, SHORT_BINBYTES, BINBYTES8, BYTEARRAY8
		k := 4
		switch op {
		case 'U', 'C':
			k = 1
		case 0x8e, 0x96:
			k = 8
		}
		n, err := s.length(k)
		if err != nil {
			return err
		}
		if _, err := s.bytesN(n, "byte string"); err != nil {
			return err
		}
		s.clobber()
		return s.pushValue(costString + n)
	case 'c', 'i': // GLOBAL, INST
		var names [2]string
		for i := range names {
			l, long, err := s.lineMax(maxGlobalName)
			if err != nil {
				return err
			}
			if long {
				return fmt.Errorf("%w: the pickle names a global over %d bytes long (%s...)", ErrForbiddenGlobal, maxGlobalName, clip(string(l)))
			}
			names[i] = string(l)
		}
		module, name := names[0], names[1]
		if err := s.global(module, name); err != nil {
			return err
		}
		k := kValue
		if module == "collections" && name == "OrderedDict" {
			k = kODictClass
		}
		if op == 'c' {
			if err := s.charge(costGlobal); err != nil {
				return err
			}
			return s.push(item{kind: k})
		}
		if _, err := s.popMark(); err != nil {
			return err
		}
		return s.result(item{kind: k})
	case 0x93: // STACK_GLOBAL
		if s.last[0].long || s.last[1].long {
			return fmt.Errorf("%w: the pickle names a global over %d bytes long", ErrForbiddenGlobal, maxKnownString)
		}
		if !s.last[0].known || !s.last[1].known {
			return fmt.Errorf("%w: the pickle computes the name of a global (STACK_GLOBAL on values not written right before it)", ErrForbiddenGlobal)
		}
		module, name := s.last[0].s, s.last[1].s
		if err := s.global(module, name); err != nil {
			return err
		}
		for range 2 {
			if _, err := s.pop(); err != nil {
				return err
			}
		}
		k := kValue
		if module == "collections" && name == "OrderedDict" {
			k = kODictClass
		}
		if err := s.charge(costGlobal); err != nil {
			return err
		}
		return s.push(item{kind: k})
	case 0x82, 0x83, 0x84: // EXT1, EXT2, EXT4
		return fmt.Errorf("%w: the pickle loads a global from the copyreg extension registry (opcode 0x%x)", ErrForbiddenGlobal, op)
	case 0x97, 0x98: // NEXT_BUFFER, READONLY_BUFFER
		return fmt.Errorf("%w: out-of-band pickle buffers (opcode 0x%x)", ErrUnsupported, op)
	default:
		return fmt.Errorf("%w: unknown pickle opcode 0x%02x at byte %d", ErrCorrupt, op, s.rec.Len()-1)
	}
}

// result pushes what calling fn makes: an OrderedDict for the
// OrderedDict class, else (a rebuild function) a tensor.
func (s *scanner) result(fn item) error {
	if fn.kind == kODictClass {
		if err := s.charge(costODict); err != nil {
			return err
		}
		return s.newCont(kODict, nil, 0)
	}
	return s.pushValue(costReduce)
}

// opNames names the opcodes in errors, as pickletools does.
var opNames = map[byte]string{
	'.': "STOP", '(': "MARK", '0': "POP", '1': "POP_MARK", '2': "DUP", 'a': "APPEND", 'e': "APPENDS",
	'u': "SETITEMS", 's': "SETITEM", 0x90: "ADDITEMS", 'b': "BUILD", 'R': "REDUCE", 0x81: "NEWOBJ",
	0x92: "NEWOBJ_EX", 'o': "OBJ", 'i': "INST", 't': "TUPLE", 'l': "LIST", 'd': "DICT", 0x91: "FROZENSET",
	0x85: "TUPLE1", 0x86: "TUPLE2", 0x87: "TUPLE3", 'Q': "BINPERSID", 0x93: "STACK_GLOBAL",
	0x94: "MEMOIZE", 'p': "PUT", 'q': "BINPUT", 'r': "LONG_BINPUT",
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// forbidden is the error for a global outside the allow-list. Python
// pickles os.system as posix.system (nt.system on Windows) and, at
// protocol 2, builtins as __builtin__: the message gives the usual name too.
func forbidden(module, name string) error {
	what := clip(module) + "." + clip(name)
	alias := map[string]string{"posix": "os", "nt": "os", "__builtin__": "builtins", "_subprocess": "subprocess"}[module]
	if alias != "" {
		what += " (" + alias + "." + name + ")"
	}
	return fmt.Errorf("%w: the pickle references %s, which a PyTorch state dict never needs (nothing was executed)", ErrForbiddenGlobal, what)
}
