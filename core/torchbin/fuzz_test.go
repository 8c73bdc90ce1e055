package torchbin

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// planPickle is the pickle-to-plan step of Open: scan, unpickle, plan.
func planPickle(data []byte, legacy bool) (*unpickled, []Tensor, error) {
	rec, err := scanPickle(bytes.NewReader(data), int64(len(data)), int64(len(data)), allowedGlobal)
	if err != nil {
		return nil, nil, err
	}
	res, err := unpickle(rec, legacy)
	if err != nil {
		return nil, nil, err
	}
	ts, _, err := res.plan()
	return res, ts, err
}

// legacyMainPickle returns the main pickle of a legacy-format file.
func legacyMainPickle(t testing.TB, path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(bytes.NewReader(b))
	var main []byte
	for i := 0; i < 4; i++ {
		allowed := noGlobals
		if i == 3 {
			allowed = allowedGlobal
		}
		if main, err = scanPickle(br, int64(len(b)), 0, allowed); err != nil {
			t.Fatal(err)
		}
	}
	return main
}

// addCheckpointPickles seeds f with the main pickle of every checkpoint in
// testdata: data.pkl of each zip (legacy false) and that of legacy.pt
// (legacy true).
func addCheckpointPickles(f *testing.F) {
	zips, _ := filepath.Glob(filepath.Join("testdata", "*.pt"))
	bins, _ := filepath.Glob(filepath.Join("testdata", "*.bin"))
	for _, p := range append(zips, bins...) {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte("PK")) {
			continue
		}
		_, ents := readZipEntries(f, p)
		for _, e := range ents {
			if e.name == "data.pkl" && len(e.data) < 64<<10 {
				f.Add(e.data, false)
			}
		}
	}
	f.Add(legacyMainPickle(f, filepath.Join("testdata", "legacy.pt")), true)
}

func FuzzPlan(f *testing.F) {
	addCheckpointPickles(f)
	f.Add(statePickle(spec{"w", "HalfStorage", "0", 16, 2, []int64{2, 3}, []int64{1, 2}}), false)
	f.Add([]byte("\x80\x02c__builtin__\nlist\n)R."), false)
	// Crashers found by the fuzzer live in testdata/fuzz/FuzzPlan and are
	// replayed by every go test.

	f.Fuzz(func(t *testing.T, data []byte, legacy bool) {
		res, ts, err := planPickle(data, legacy)
		if err != nil {
			if !isOurs(err) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		names := map[string]bool{}
		for _, tn := range ts {
			if names[tn.Name] {
				t.Fatalf("duplicate name %q", tn.Name)
			}
			names[tn.Name] = true
			st := res.storages[tn.StorageKey]
			if st == nil || st.root != tn.StorageKey || st.dtype != tn.DType {
				t.Fatalf("tensor %q: bad storage %q", tn.Name, tn.StorageKey)
			}
			n, err := checkView(tn.Shape, tn.Strides, tn.Offset, st.numel)
			if err != nil {
				t.Fatalf("tensor %q escapes its storage: %v", tn.Name, err)
			}
			if n > math.MaxInt64/8 || n != tn.NumElements() {
				t.Fatalf("tensor %q: %d elements", tn.Name, n)
			}
		}
	})
}

// fuzzLimits are the VM's limits scaled down so that inputs of a few
// hundred bytes reach them.
var fuzzLimits = vmLimits{
	opsFloor: 256, opsPerByte: opsPerByte,
	stackFloor: 16, stackBytesPerItem: stackBytesPerItem,
	memoFloor: 16, memoBytesPerEntry: memoBytesPerEntry,
	containerFloor: 16, containerBytesPerEntry: containerBytesPerEntry,
	heapFloor: 16 << 10, heapPerByte: heapPerByte, maxHeap: 4 << 20,
	nesting: 8,
}

// FuzzScanLimits runs the scanner with small limits, then gopickle and the
// plan on what it accepts, and checks that the scanner's shadow stack
// follows gopickle's (an accepted pickle never underflows gopickle's
// stack) and that its heap estimate bounds what gopickle allocates (plus
// the per-opcode garbage the estimate leaves out).
func FuzzScanLimits(f *testing.F) {
	addCheckpointPickles(f)
	for _, proto := range []int{2, 4} {
		f.Add(newTorchPickle(proto).stateDict(3, func(i int) string { return fmt.Sprint("w", i) }), false)
	}
	odict := "\x80\x02ccollections\nOrderedDict\nq\x00)R"
	for _, bomb := range []string{
		strings.Repeat("]", 40), strings.Repeat("(", 12), "]" + strings.Repeat("2", 40),
		"N" + strings.Repeat("\x94", 40), "N" + strings.Repeat("r\x01\x02\x03\x04", 40),
		odict + "(" + strings.Repeat(")N", 20) + "u", "]q\x00" + strings.Repeat("]h\x00aq\x000", 12),
		"N" + strings.Repeat("\x85", 12), odict + "0}q\x01(\x8c\x01aN\x8c\x01bNu" + strings.Repeat("h\x00)Rh\x01b", 20),
		"]q\x00h\x00a(h\x00tQ", strings.Repeat("\x8a\xff"+strings.Repeat("\x7f", 255)+"0", 8) + "N",
	} {
		f.Add([]byte("\x80\x02"+bomb+"."), false)
	}

	f.Fuzz(func(t *testing.T, data []byte, legacy bool) {
		stored := int64(len(data))
		if legacy {
			stored = 0
		}
		s, err := scanWith(bytes.NewReader(data), int64(len(data)), stored, allowedGlobal, &fuzzLimits)
		if err != nil {
			if !isOurs(err) {
				t.Fatalf("untyped error: %v", err)
			}
			var le *LimitError
			if errors.Is(err, ErrPickleLimit) != errors.As(err, &le) {
				t.Fatalf("ErrPickleLimit without a *LimitError: %v", err)
			}
			return
		}
		rec := s.rec.Bytes()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		res, err := unpickle(rec, legacy)
		if err == nil {
			_, _, err = res.plan()
		}
		runtime.ReadMemStats(&after)
		if err != nil {
			if !isOurs(err) {
				t.Fatalf("untyped error: %v", err)
			}
			if strings.Contains(err.Error(), "stack is empty") || strings.Contains(err.Error(), "OBJ class missing") {
				t.Fatalf("the scanner accepted a pickle that underflows gopickle's stack: %v", err)
			}
		}
		// gopickle allocates for each opcode's argument and line, and a
		// big.Int per byte of a LONG, which is garbage the estimate
		// leaves out
		alloc := int64(after.TotalAlloc - before.TotalAlloc)
		bound := s.heap + int64(len(rec)) + 64*s.ops + 2*int64(len(rec)) + 32*s.longs + 64<<10
		if alloc > bound {
			t.Fatalf("gopickle allocated %d bytes, over the estimate %d (+ garbage: bound %d), for %d opcodes", alloc, s.heap, bound, s.ops)
		}
	})
}
