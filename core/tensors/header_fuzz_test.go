package tensors

import (
	"bytes"
	"os"
	"testing"
)

// FuzzReadHeader feeds arbitrary files to the header reader. It must never
// panic or allocate by an unchecked length, and whatever it accepts must
// describe a buffer the writer can lay out again and the reader accept again
// with the same tensors.
func FuzzReadHeader(f *testing.F) {
	for _, p := range realFiles(f) {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		if len(b) > 4<<10 {
			// Big inputs make the fuzzer's minimizer crawl: seed a file
			// laid out from the first tensors and metadata of the big one.
			h, err := parseBytes(b)
			if err != nil {
				f.Fatal(err)
			}
			var ws []WriteTensor
			for _, ti := range h.Tensors[:min(3, len(h.Tensors))] {
				ws = append(ws, WriteTensor{Name: ti.Name, DType: ti.DType, Shape: ti.Shape,
					Data: Bytes(b[h.DataStart+ti.Begin : h.DataStart+ti.End])})
			}
			l, err := PlanLayout(ws, h.Metadata[:min(3, len(h.Metadata))])
			if err != nil {
				f.Fatal(err)
			}
			b = l.Header
			for _, w := range ws {
				b = append(b, w.Data.(bytesSource)...)
			}
			if len(b) > 16<<10 {
				continue
			}
		}
		f.Add(b)
	}
	f.Add(mkFile(`{"a":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}`, 2))
	f.Add(mkFile(`{"__metadata__":{"a":"b"},"x":{"dtype":"BF16","shape":[2,0],"data_offsets":[0,0]}}`, 0))
	f.Add(mkFile(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, 1))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})

	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ReadHeader(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			if h != nil {
				t.Fatal("header returned with an error")
			}
			return
		}
		var end int64
		ws := make([]WriteTensor, 0, len(h.Tensors))
		for _, ti := range h.Tensors {
			if ti.Begin != end || ti.End < ti.Begin {
				t.Fatalf("accepted a bad layout: %+v after %d", ti, end)
			}
			end = ti.End
			ws = append(ws, WriteTensor{Name: ti.Name, DType: ti.DType, Shape: ti.Shape,
				Data: Bytes(b[h.DataStart+ti.Begin : h.DataStart+ti.End])})
		}
		if h.DataStart+end != int64(len(b)) {
			t.Fatalf("accepted %d bytes of data in a %d-byte file", end, len(b))
		}
		l, err := PlanLayout(ws, h.Metadata)
		if err != nil {
			t.Fatalf("accepted header cannot be written again: %v", err)
		}
		var out bytes.Buffer
		out.Write(l.Header)
		for _, ti := range l.Tensors {
			src, _ := h.Tensor(ti.Name)
			out.Write(b[h.DataStart+src.Begin : h.DataStart+src.End])
		}
		h2, err := parseBytes(out.Bytes())
		if err != nil {
			t.Fatalf("rewritten file rejected: %v", err)
		}
		if len(h2.Tensors) != len(h.Tensors) || len(h2.Metadata) != len(h.Metadata) {
			t.Fatalf("rewrite changed the header: %d/%d tensors", len(h2.Tensors), len(h.Tensors))
		}
	})
}
