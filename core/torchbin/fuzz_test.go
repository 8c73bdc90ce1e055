package torchbin

import (
	"bufio"
	"bytes"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// planPickle is the pickle-to-plan step of Open: scan, unpickle, plan.
func planPickle(data []byte, legacy bool) (*unpickled, []Tensor, error) {
	rec, err := scanPickle(bytes.NewReader(data), int64(len(data)), allowedGlobal)
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
		if main, err = scanPickle(br, int64(len(b)), allowed); err != nil {
			t.Fatal(err)
		}
	}
	return main
}

func FuzzPlan(f *testing.F) {
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
