package pipelinetest

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"runtime"
	"sync"

	"modelpub/core/tensors"
)

// chunkBytes is how much of a tensor a source generates at a time.
const chunkBytes = 1 << 20

var chunkPool = sync.Pool{New: func() any { b := make([]byte, chunkBytes); return &b }}

// tensorSeed is the seed of one tensor's values: a function of the pipeline
// seed, the component and the tensor name only, so a tensor has the same
// bytes whatever else is written, in a single file or a shard.
func tensorSeed(seed int64, component, name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(component))
	h.Write([]byte{0})
	h.Write([]byte(name))
	return mix64(h.Sum64() ^ mix64(uint64(seed)))
}

// mix64 is the finalizer of SplitMix64.
func mix64(z uint64) uint64 {
	z = (z ^ z>>30) * 0xBF58476D1CE4E5B9
	z = (z ^ z>>27) * 0x94D049BB133111EB
	return z ^ z>>31
}

const golden = 0x9E3779B97F4A7C15

// irwinHallStd is the standard deviation of the sum of four independent
// uniform 16-bit integers: sqrt(4·(65536²−1)/12).
var irwinHallStd = math.Sqrt(4 * (65536.0*65536.0 - 1) / 12)

// randomSource is a tensors.Source generating a tensor's values, element i
// from SplitMix64(seed + (i+1)·golden), so any chunk can be generated on its
// own and the same source gives the same bytes on every CopyTo.
//
// A float value is c + k·(s − 131070) where s is the sum of the four 16-bit
// fields of the random word: an Irwin–Hall approximation of a normal
// distribution, bounded by ±3.46 standard deviations. Its nonzero values
// are at least k in magnitude (5.3e-7 for weights, 1.3e-7 for biases), far
// above float16's underflow threshold 2⁻²⁵, and at most 1.07, far below its
// overflow threshold 65520.
type randomSource struct {
	spec Spec
	seed uint64
}

func newSource(seed int64, component string, s Spec) tensors.Source {
	return randomSource{spec: s, seed: tensorSeed(seed, component, s.Name)}
}

func (r randomSource) Size() int64 { return r.spec.Size() }

func (r randomSource) CopyTo(ctx context.Context, w io.Writer) error {
	elem := int64(r.spec.DType.Bits() / 8)
	if elem == 0 {
		return fmt.Errorf("pipelinetest: no generator for %s", r.spec.DType)
	}
	n := r.spec.NumElements()
	per := int64(chunkBytes) / elem
	chunks := (n + per - 1) / per
	// chunk returns the first element and the byte length of chunk i.
	chunk := func(i int64) (int64, int) {
		first := i * per
		return first, int(min(per, n-first) * elem)
	}
	workers := int64(min(runtime.GOMAXPROCS(0), maxWorkers))
	if chunks < 4 || workers < 2 {
		bp := chunkPool.Get().(*[]byte)
		defer chunkPool.Put(bp)
		for i := range chunks {
			if err := ctx.Err(); err != nil {
				return err
			}
			first, k := chunk(i)
			b := (*bp)[:k]
			if err := r.fill(b, first); err != nil {
				return err
			}
			if _, err := w.Write(b); err != nil {
				return err
			}
		}
		return nil
	}

	// Large tensors: worker j generates the chunks i ≡ j (mod workers),
	// each into one of its two buffers, while the chunks are written in
	// order. At most 2·workers chunks are in memory.
	if err := r.fill(nil, 0); err != nil {
		return err // an Init the generator does not know
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	ready := make([]chan *[]byte, workers)
	free := make([]chan *[]byte, workers)
	for j := range workers {
		ready[j] = make(chan *[]byte, 2)
		free[j] = make(chan *[]byte, 2)
		free[j] <- chunkPool.Get().(*[]byte)
		free[j] <- chunkPool.Get().(*[]byte)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := j; i < chunks; i += workers {
				var bp *[]byte
				select {
				case bp = <-free[j]:
				case <-stop:
					return
				}
				first, k := chunk(i)
				_ = r.fill((*bp)[:k], first) // checked above
				ready[j] <- bp               // buffered: never blocks
			}
		}()
	}
	err := func() error {
		for i := range chunks {
			if err := ctx.Err(); err != nil {
				return err
			}
			j := i % workers
			bp := <-ready[j]
			_, k := chunk(i)
			_, err := w.Write((*bp)[:k])
			free[j] <- bp
			if err != nil {
				return err
			}
		}
		return nil
	}()
	close(stop)
	wg.Wait()
	for j := range workers {
		for range 2 {
			select {
			case bp := <-free[j]:
				chunkPool.Put(bp)
			case bp := <-ready[j]:
				chunkPool.Put(bp)
			}
		}
	}
	return err
}

// maxWorkers bounds the goroutines generating one tensor.
const maxWorkers = 8

// fill writes the elements from index first on into b.
func (r randomSource) fill(b []byte, first int64) error {
	switch r.spec.Init {
	case InitPositionIDs:
		if r.spec.DType != tensors.I64 {
			break
		}
		for j := 0; j < len(b); j += 8 {
			binary.LittleEndian.PutUint64(b[j:], uint64(first+int64(j/8)))
		}
		return nil
	case InitFP16Unsafe:
		if r.spec.DType != tensors.F32 {
			break
		}
		for j := 0; j < len(b); j += 4 {
			v := FP16UnsafeValues[(first+int64(j/4))%int64(len(FP16UnsafeValues))]
			binary.LittleEndian.PutUint32(b[j:], math.Float32bits(v))
		}
		return nil
	case InitWeight, InitBias, InitNormWeight, InitNormBias:
		if r.spec.DType != tensors.F32 {
			break
		}
		var c, std float64
		switch r.spec.Init {
		case InitWeight:
			std = 0.02
		case InitBias, InitNormBias:
			std = 0.005
		case InitNormWeight:
			c, std = 1, 0.02
		}
		fillNormal(b, r.seed+uint64(first)*golden, float32(c), float32(std/irwinHallStd))
		return nil
	}
	return fmt.Errorf("pipelinetest: no generator for %s %s", r.spec.Init, r.spec.DType)
}

// fillNormal writes len(b)/4 float32 values c + k·(s − 131070), the i-th
// from the random word mix64(state + (i+1)·golden).
func fillNormal(b []byte, state uint64, c, k float32) {
	for j := 0; j+4 <= len(b); j += 4 {
		state += golden
		z := mix64(state)
		s := int32(z&0xFFFF) + int32(z>>16&0xFFFF) + int32(z>>32&0xFFFF) + int32(z>>48)
		binary.LittleEndian.PutUint32(b[j:], math.Float32bits(c+k*float32(s-131070)))
	}
}
