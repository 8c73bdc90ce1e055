package xet

import (
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// threadCPU is the calling thread's CPU time: the machine running the
// tests is shared, and wall time measures the neighbours.
func threadCPU() time.Duration {
	var r syscall.Rusage
	_ = syscall.Getrusage(1 /* RUSAGE_THREAD */, &r)
	return time.Duration(r.Utime.Nano() + r.Stime.Nano())
}

// TestMeasureCompression prints, per input and policy, the stored/raw ratio
// and the CPU throughput of building xorbs: the numbers behind PolicyAuto.
// It runs only with XET_MEASURE=1.
func TestMeasureCompression(t *testing.T) {
	if os.Getenv("XET_MEASURE") != "1" {
		t.Skip("XET_MEASURE=1 runs the compression measurement")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	inputs := []struct {
		name string
		data []byte
	}{
		{"F32 N(0,0.02)", weights("F32", 16<<20, 1)},
		{"F16 N(0,0.02)", weights("F16", 16<<20, 2)},
		{"BF16 N(0,0.02)", weights("BF16", 16<<20, 3)},
	}
	for _, name := range []string{"lora_disney_inpainting.safetensors", "pytorch_lora_weights.safetensors"} {
		data, err := os.ReadFile(filepath.Join("testdata", "real", name))
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, struct {
			name string
			data []byte
		}{name, data})
	}
	policies := []struct {
		name string
		p    Policy
	}{{"none", PolicyNone}, {"lz4", PolicyLZ4}, {"bg4-lz4", PolicyBG4LZ4}, {"best", PolicyBest}, {"auto", PolicyAuto}}
	for _, in := range inputs {
		chunks := Chunks(in.data)
		c0 := threadCPU()
		rounds := 0
		for threadCPU()-c0 < 200*time.Millisecond {
			Chunks(in.data)
			rounds++
		}
		chunkRate := float64(rounds*len(in.data)) / (threadCPU() - c0).Seconds() / 1e6
		t.Logf("%-36s chunk+hash %6.0f MB/s", in.name, chunkRate)
		for _, p := range policies {
			x := NewXorbWriter(p.p)
			c0 := threadCPU()
			rounds := 0
			for threadCPU()-c0 < 300*time.Millisecond {
				x.Reset()
				off := 0
				for _, c := range chunks {
					if !x.Add(c, in.data[off:off+int(c.Size)]) {
						t.Fatal("xorb full")
					}
					off += int(c.Size)
				}
				rounds++
			}
			rate := float64(rounds*len(in.data)) / (threadCPU() - c0).Seconds() / 1e6
			t.Logf("%-36s %-8s stored/raw %.4f  %6.0f MB/s  %v", in.name, p.name, float64(x.Len())/float64(len(in.data)), rate, x.Schemes())
		}
	}
}
