package convert

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"modelpub/core/pipeline/pipelinetest"
	"modelpub/core/tensors"
)

// testScale shrinks SD 1.5's widths (pipelinetest.ScaleWidth) so a whole
// checkpoint is a few MB; names and tensor counts do not depend on it.
const testScale = 0.0004

// mappingRow is one line of testdata/sd15-mapping.tsv: what diffusers makes
// of an original SD 1.5 key (see testdata/gen_sd15_mapping.go).
type mappingRow struct {
	ldm, component, diffusers string
	reshape                   bool // held as a [out, in, 1, 1] convolution
}

func readMapping(t testing.TB, path string) []mappingRow {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var rows []mappingRow
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		p := strings.Split(line, "\t")
		require.Len(t, p, 4, line)
		rows = append(rows, mappingRow{ldm: p[0], component: p[1], diffusers: p[2], reshape: p[3] == "1x1"})
	}
	require.NoError(t, sc.Err())
	return rows
}

// ckTensor is a tensor of a test checkpoint, with its bytes.
type ckTensor struct {
	name  string
	dtype tensors.DType
	shape []int64
	data  []byte
}

// seeded returns n float32 values in [-0.5, 0.5) determined by name, so
// every tensor holds different bytes and a swap cannot go unnoticed.
func seeded(name string, n int64) []float32 {
	h := fnv.New64a()
	h.Write([]byte(name))
	s := h.Sum64() | 1
	out := make([]float32, n)
	for i := range out {
		s ^= s << 13
		s ^= s >> 7
		s ^= s << 17
		out[i] = float32(s>>40)/float32(1<<24) - 0.5
	}
	return out
}

func numel(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	return n
}

// floatTensor makes a tensor of seeded values in dtype d (F32, F16, BF16).
func floatTensor(name string, d tensors.DType, shape []int64) ckTensor {
	vals := seeded(name, numel(shape))
	b := make([]byte, 4*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	switch d {
	case tensors.F16:
		out := make([]byte, 2*len(vals))
		tensors.ConvertF32ToF16(out, b)
		b = out
	case tensors.BF16:
		out := make([]byte, 2*len(vals))
		tensors.ConvertF32ToBF16(out, b)
		b = out
	}
	return ckTensor{name, d, shape, b}
}

func intTensor(name string, d tensors.DType, shape []int64, vals ...int64) ckTensor {
	size := int(d.Bits() / 8)
	b := make([]byte, size*int(numel(shape)))
	for i := range int(numel(shape)) {
		v := int64(i)
		if i < len(vals) {
			v = vals[i]
		}
		switch size {
		case 8:
			binary.LittleEndian.PutUint64(b[8*i:], uint64(v))
		case 4:
			binary.LittleEndian.PutUint32(b[4*i:], uint32(v))
		}
	}
	return ckTensor{name, d, shape, b}
}

// sd15Options say how to build a test checkpoint.
type sd15Options struct {
	dtype      tensors.DType // of the float tensors; F32 when 0
	inChannels int64         // the UNet's conv_in input channels; 4 when 0
	// extras adds what real checkpoints carry beside the model: the noise
	// schedule buffers, EMA bookkeeping and a few EMA copies.
	extras bool
	// edit changes the tensor list before it is written.
	edit func([]ckTensor) []ckTensor
}

// diffusersShapes maps each diffusers tensor name of SD 1.5 (at testScale)
// to its shape, per component.
func diffusersShapes() map[string]map[string]pipelinetest.Spec {
	out := map[string]map[string]pipelinetest.Spec{}
	for _, comp := range []string{pipelinetest.UNet, pipelinetest.VAE, pipelinetest.TextEncoder} {
		out[comp] = map[string]pipelinetest.Spec{}
		for _, s := range pipelinetest.SD15TensorSpecs(comp, testScale) {
			out[comp][s.Name] = s
		}
	}
	return out
}

// sd15Tensors builds an original-layout SD 1.5 checkpoint from the mapping
// table: the keys of its ldm column, each with the shape of the diffusers
// tensor it maps to (plus the trailing 1×1 of the VAE's attention
// convolutions).
func sd15Tensors(t testing.TB, rows []mappingRow, o sd15Options) []ckTensor {
	t.Helper()
	d := o.dtype
	if d == 0 {
		d = tensors.F32
	}
	shapes := diffusersShapes()
	var ts []ckTensor
	for _, r := range rows {
		if r.component == "-" {
			require.Equal(t, "position-ids", r.diffusers)
			ts = append(ts, intTensor(r.ldm, tensors.I64, []int64{1, 77}))
			continue
		}
		spec, ok := shapes[r.component][r.diffusers]
		require.True(t, ok, "%s: no diffusers tensor %s", r.component, r.diffusers)
		shape := append([]int64(nil), spec.Shape...)
		if r.reshape {
			shape = append(shape, 1, 1)
		}
		if r.ldm == keyInpainting && o.inChannels != 0 {
			shape[1] = o.inChannels
		}
		ts = append(ts, floatTensor(r.ldm, d, shape))
	}
	if o.extras {
		for _, name := range []string{"betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod",
			"sqrt_one_minus_alphas_cumprod", "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod",
			"sqrt_recipm1_alphas_cumprod", "posterior_variance", "posterior_log_variance_clipped",
			"posterior_mean_coef1", "posterior_mean_coef2"} {
			ts = append(ts, floatTensor(name, tensors.F32, []int64{1000}))
		}
		ts = append(ts, floatTensor("model_ema.decay", tensors.F32, nil), intTensor("model_ema.num_updates", tensors.I32, nil, 7))
		// EMA copies are named with the dots of the UNet key removed.
		ts = append(ts, floatTensor("model_ema.diffusion_modelinput_blocks00weight", d, []int64{6, 4, 3, 3}),
			floatTensor("model_ema.diffusion_modelout2bias", d, []int64{4}))
	}
	if o.edit != nil {
		ts = o.edit(ts)
	}
	return ts
}

func writeSafetensors(t testing.TB, path string, ts []ckTensor) {
	t.Helper()
	var ws []tensors.WriteTensor
	for _, c := range ts {
		ws = append(ws, tensors.WriteTensor{Name: c.name, DType: c.dtype, Shape: c.shape, Data: tensors.Bytes(c.data)})
	}
	_, err := tensors.WriteFile(context.Background(), path, ws, nil, tensors.WriteOptions{})
	require.NoError(t, err)
}

// pickler writes pickle opcodes (protocol 2, as torch.save does).
type pickler struct{ bytes.Buffer }

func (p *pickler) op(b ...byte)       { p.Write(b) }
func (p *pickler) global(m, n string) { p.WriteString("c" + m + "\n" + n + "\n") }
func (p *pickler) str(s string) {
	p.op('X')
	binary.Write(&p.Buffer, binary.LittleEndian, uint32(len(s)))
	p.WriteString(s)
}
func (p *pickler) int(v int64) {
	p.op('J')
	binary.Write(&p.Buffer, binary.LittleEndian, int32(v))
}
func (p *pickler) tuple(vs []int64) {
	p.op('(')
	for _, v := range vs {
		p.int(v)
	}
	p.op('t')
}

var storageClass = map[tensors.DType]string{
	tensors.F32: "FloatStorage", tensors.F16: "HalfStorage", tensors.BF16: "BFloat16Storage",
	tensors.I64: "LongStorage", tensors.I32: "IntStorage",
}

// torchOptions shape a torch.save checkpoint.
type torchOptions struct {
	// nested puts the tensors under "state_dict" beside a "global_step",
	// as Lightning checkpoints (.ckpt) do.
	nested bool
	// outside adds a tensor beside state_dict, which diffusers ignores.
	outside bool
	// forbidden references os.system in the pickle.
	forbidden bool
}

// writeTorch writes ts as torch.save (zip format) does: data.pkl, one
// storage per tensor under data/, version and byteorder records.
func writeTorch(t testing.TB, path string, ts []ckTensor, o torchOptions) {
	t.Helper()
	var p pickler
	p.op(0x80, 2)
	if o.nested {
		p.op('}', '(')
		p.str("global_step")
		p.int(470000)
		if o.outside {
			writePickledTensor(&p, "loose", ckTensor{"loose", tensors.F32, []int64{2}, make([]byte, 8)}, "9999")
		}
		p.str("state_dict")
	}
	if o.forbidden {
		p.global("os", "system")
		p.str("touch /tmp/modelpub-pwned")
		p.op(0x85, 'R', '0') // TUPLE1, REDUCE, POP
	}
	p.global("collections", "OrderedDict")
	p.op(')', 'R', '(')
	for i, c := range ts {
		writePickledTensor(&p, c.name, c, fmt.Sprint(i))
	}
	p.op('u')
	if o.nested {
		p.op('u')
	}
	p.op('.')

	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	add := func(name string, data []byte) {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: "archive/" + name, Method: zip.Store})
		require.NoError(t, err)
		_, err = w.Write(data)
		require.NoError(t, err)
	}
	add("data.pkl", p.Bytes())
	add("byteorder", []byte("little"))
	for i, c := range ts {
		add(fmt.Sprintf("data/%d", i), c.data)
	}
	if o.nested && o.outside {
		add("data/9999", make([]byte, 8))
	}
	add("version", []byte("3\n"))
	require.NoError(t, zw.Close())
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
}

// writePickledTensor pickles name: _rebuild_tensor_v2(storage, 0, shape,
// contiguous strides, False, OrderedDict()).
func writePickledTensor(p *pickler, name string, c ckTensor, key string) {
	p.str(name)
	p.global("torch._utils", "_rebuild_tensor_v2")
	p.op('(', '(')
	p.str("storage")
	p.global("torch", storageClass[c.dtype])
	p.str(key)
	p.str("cpu")
	p.int(numel(c.shape))
	p.op('t', 'Q')
	p.int(0)
	p.tuple(c.shape)
	strides := make([]int64, len(c.shape))
	s := int64(1)
	for i := len(c.shape) - 1; i >= 0; i-- {
		strides[i] = s
		s *= c.shape[i]
	}
	p.tuple(strides)
	p.op(0x89)
	p.global("collections", "OrderedDict")
	p.op(')', 'R', 't', 'R')
}
