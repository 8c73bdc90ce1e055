// Package converttest builds single-file Stable Diffusion checkpoints in
// the original layout (model.diffusion_model.*, first_stage_model.*,
// cond_stage_model.transformer.*) with the real SD 1.5 key names and shapes
// (widths scaled as pipelinetest scales them) and seeded values, as
// safetensors or torch.save zip files, for the tests of core/convert and of
// the CLI.
//
// Its mapping table, sd15-mapping.tsv, says what diffusers' conversion
// makes of each key of a real SD 1.5 checkpoint (and sd2-, sdxl- and
// sdxl-refiner-mapping.tsv of the others). gen_mappings.go
// derives it from diffusers' own tables and pipelinetest's real diffusers
// names, never from core/convert, so the tests compare the converter with
// an independent statement of the facts.
package converttest

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	_ "embed"
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

// Scale shrinks SD 1.5's widths (pipelinetest.ScaleWidth) so a whole
// checkpoint is about 2 MB; names and tensor counts do not depend on it.
const Scale = 0.0004

//go:embed sd15-mapping.tsv
var sd15Mapping string

//go:embed sdxl-mapping.tsv
var sdxlMapping string

//go:embed flux-mapping.tsv
var fluxMapping string

// Row is one line of a mapping table: what diffusers makes of an original
// key.
type Row struct {
	LDM string // the checkpoint key
	// Component is the diffusers component ("unet", "vae", "text_encoder",
	// "text_encoder_2"), or "-" for a key diffusers drops.
	Component string
	Diffusers string // the diffusers name (for a dropped key: why)
	// Op is how the checkpoint holds the tensor: "-" as diffusers does,
	// "1x1" as a [out, in, 1, 1] convolution of the [out, in] linear
	// weight, "T" transposed, "rows0/3", "rows1/3", "rows2/3" as that
	// third of the rows of a fused q/k/v tensor.
	Op string
	// Reshape is Op == "1x1".
	Reshape bool
}

func parseMapping(table string) []Row {
	var rows []Row
	sc := bufio.NewScanner(strings.NewReader(table))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		p := strings.Split(line, "\t")
		if len(p) != 4 {
			panic("converttest: bad mapping line: " + line)
		}
		rows = append(rows, Row{LDM: p[0], Component: p[1], Diffusers: p[2], Op: p[3], Reshape: p[3] == "1x1"})
	}
	return rows
}

// SD15Mapping returns the mapping table of an SD 1.5 checkpoint.
func SD15Mapping() []Row { return parseMapping(sd15Mapping) }

// SDXLMapping returns the mapping table of an SDXL base checkpoint.
func SDXLMapping() []Row { return parseMapping(sdxlMapping) }

// Tensor is a tensor of a test checkpoint, with its bytes.
type Tensor struct {
	Name  string
	DType tensors.DType
	Shape []int64
	Data  []byte
}

// NumElements is the product of the shape.
func NumElements(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	return n
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

// Float makes a tensor of seeded values in dtype d (F32, F16 or BF16).
func Float(name string, d tensors.DType, shape []int64) Tensor {
	vals := seeded(name, NumElements(shape))
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
	return Tensor{name, d, shape, b}
}

// Int makes an I64 or I32 tensor holding vals, then 0, 1, 2, … by index.
func Int(name string, d tensors.DType, shape []int64, vals ...int64) Tensor {
	size := int(d.Bits() / 8)
	n := int(NumElements(shape))
	b := make([]byte, size*n)
	for i := range n {
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
	return Tensor{name, d, shape, b}
}

// Options say how to build an SD 1.5 checkpoint.
type Options struct {
	DType      tensors.DType // of the float tensors; F32 when 0
	InChannels int64         // the UNet's conv_in input channels; 4 when 0
	// Extras adds what real checkpoints carry beside the model: the noise
	// schedule buffers, EMA bookkeeping and a few EMA copies.
	Extras bool
	// Edit changes the tensor list before it is returned.
	Edit func([]Tensor) []Tensor
}

// ScheduleBuffers are the noise-schedule buffers of ldm's DDPM that SD 1.x
// checkpoints carry.
var ScheduleBuffers = []string{"betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod",
	"sqrt_one_minus_alphas_cumprod", "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod",
	"sqrt_recipm1_alphas_cumprod", "posterior_variance", "posterior_log_variance_clipped",
	"posterior_mean_coef1", "posterior_mean_coef2"}

// Model is an architecture's mapping table and diffusers specs.
type Model struct {
	Mapping []Row
	// Specs maps each diffusers tensor name to its spec (at Scale), per
	// component.
	Specs map[string]map[string]pipelinetest.Spec
}

func specMap(specs map[string][]pipelinetest.Spec) map[string]map[string]pipelinetest.Spec {
	out := map[string]map[string]pipelinetest.Spec{}
	for comp, list := range specs {
		out[comp] = map[string]pipelinetest.Spec{}
		for _, s := range list {
			out[comp][s.Name] = s
		}
	}
	return out
}

// SD15Model is Stable Diffusion 1.5.
func SD15Model() Model {
	return Model{Mapping: SD15Mapping(), Specs: specMap(map[string][]pipelinetest.Spec{
		UNet:        pipelinetest.SD15TensorSpecs(pipelinetest.UNet, Scale),
		VAE:         pipelinetest.SD15TensorSpecs(pipelinetest.VAE, Scale),
		TextEncoder: pipelinetest.SD15TensorSpecs(pipelinetest.TextEncoder, Scale),
	})}
}

// FluxModel is a FLUX.1 transformer: dev (guidance true) or schnell.
func FluxModel(guidance bool) Model {
	var rows []Row
	for _, r := range parseMapping(fluxMapping) {
		if guidance || !strings.HasPrefix(r.LDM, "guidance_in.") {
			rows = append(rows, r)
		}
	}
	return Model{Mapping: rows, Specs: specMap(map[string][]pipelinetest.Spec{Transformer: FluxTensorSpecs(guidance, Scale)})}
}

// Flux builds a FLUX.1 transformer checkpoint (see Build).
func Flux(guidance bool, o Options) []Tensor { return Build(FluxModel(guidance), o) }

// rowRange parses an op "rows{a}/{of}" or "rows{a}-{b}/{of}".
func rowRange(op string) (from, to, of int64, ok bool) {
	spec, found := strings.CutPrefix(op, "rows")
	if !found {
		return 0, 0, 0, false
	}
	if _, err := fmt.Sscanf(spec, "%d-%d/%d", &from, &to, &of); err == nil {
		return from, to, of, true
	}
	if _, err := fmt.Sscanf(spec, "%d/%d", &from, &of); err == nil {
		return from, from + 1, of, true
	}
	panic("converttest: bad op " + op)
}

// SDXLModel is Stable Diffusion XL base.
func SDXLModel() Model {
	specs := map[string][]pipelinetest.Spec{}
	for _, c := range []string{UNet, VAE, TextEncoder, TextEncoder2} {
		specs[c] = SDXLTensorSpecs(c, Scale)
	}
	return Model{Mapping: SDXLMapping(), Specs: specMap(specs)}
}

// DiffusersSpecs maps each diffusers tensor name of SD 1.5 (at Scale) to
// its spec, per component.
func DiffusersSpecs() map[string]map[string]pipelinetest.Spec { return SD15Model().Specs }

// ConvInKey is the UNet's first convolution in the original layout.
const ConvInKey = "model.diffusion_model.input_blocks.0.0.weight"

// SD15 builds an original-layout SD 1.5 checkpoint (see Build).
func SD15(o Options) []Tensor { return Build(SD15Model(), o) }

// SDXL builds an original-layout SDXL base checkpoint (see Build).
func SDXL(o Options) []Tensor { return Build(SDXLModel(), o) }

// Build builds an original-layout checkpoint from m's mapping table: the
// keys of its LDM column, each with the shape the diffusers tensors it maps
// to imply (a 1×1 convolution's trailing 1s, a transposed matrix, the three
// parts of a fused q/k/v tensor stacked), seeded values; CLIP's
// position_ids as an I64 [1, 77] buffer, OpenCLIP's logit_scale as a
// scalar.
func Build(m Model, o Options) []Tensor {
	d := o.DType
	if d == 0 {
		d = tensors.F32
	}
	var ts []Tensor
	seen := map[string]bool{}
	for _, r := range m.Mapping {
		if seen[r.LDM] {
			continue
		}
		seen[r.LDM] = true
		if r.Component == "-" {
			switch r.Diffusers {
			case "position-ids":
				ts = append(ts, Int(r.LDM, tensors.I64, []int64{1, 77}))
			case "logit-scale":
				ts = append(ts, Float(r.LDM, d, nil))
			case "last-layer", "text-projection":
				t, ok := droppedFloat(ts, r, d)
				if !ok {
					panic("converttest: " + r.LDM + ": a " + r.Diffusers + " row needs a like:KEY op")
				}
				ts = append(ts, t)
			default:
				panic("converttest: unknown dropped key class " + r.Diffusers)
			}
			continue
		}
		spec, ok := m.Specs[r.Component][r.Diffusers]
		if !ok {
			panic(fmt.Sprintf("converttest: %s: no diffusers tensor %s", r.Component, r.Diffusers))
		}
		shape := append([]int64(nil), spec.Shape...)
		switch {
		case r.Op == "1x1":
			shape = append(shape, 1, 1)
		case r.Op == "T":
			shape = []int64{shape[1], shape[0]}
		case strings.HasPrefix(r.Op, "rows"):
			from, to, of, _ := rowRange(r.Op)
			shape[0] = shape[0] * of / (to - from)
		}
		if r.LDM == ConvInKey && o.InChannels != 0 {
			shape[1] = o.InChannels
		}
		ts = append(ts, Float(r.LDM, d, shape))
	}
	if o.Extras {
		for _, name := range ScheduleBuffers {
			ts = append(ts, Float(name, tensors.F32, []int64{1000}))
		}
		ts = append(ts, Float("model_ema.decay", tensors.F32, nil), Int("model_ema.num_updates", tensors.I32, nil, 7))
		// EMA copies are named with the dots of the UNet key removed.
		ts = append(ts, Float("model_ema.diffusion_modelinput_blocks00weight", d, []int64{6, 4, 3, 3}),
			Float("model_ema.diffusion_modelout2bias", d, []int64{4}))
	}
	if o.Edit != nil {
		ts = o.Edit(ts)
	}
	return ts
}

// Expected returns the bytes diffusers' conversion gives the diffusers
// tensor of row r, from the checkpoint tensor src: src's bytes, a third of
// its rows, its halves swapped, or its transpose (computed here, element by
// element).
func Expected(r Row, src Tensor) []byte {
	es := int64(src.DType.Bits() / 8)
	switch {
	case r.Op == "T":
		a, b := src.Shape[0], src.Shape[1]
		out := make([]byte, len(src.Data))
		for i := range a {
			for j := range b {
				copy(out[(j*a+i)*es:(j*a+i+1)*es], src.Data[(i*b+j)*es:(i*b+j+1)*es])
			}
		}
		return out
	case strings.HasPrefix(r.Op, "rows"):
		from, to, of, _ := rowRange(r.Op)
		unit := int64(len(src.Data)) / of
		return src.Data[from*unit : to*unit]
	case r.Op == "swap":
		half := len(src.Data) / 2
		return append(append([]byte(nil), src.Data[half:]...), src.Data[:half]...)
	}
	return src.Data
}

// WriteSafetensors writes ts as a safetensors file.
func WriteSafetensors(t testing.TB, path string, ts []Tensor) {
	t.Helper()
	var ws []tensors.WriteTensor
	for _, c := range ts {
		ws = append(ws, tensors.WriteTensor{Name: c.Name, DType: c.DType, Shape: c.Shape, Data: tensors.Bytes(c.Data)})
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

// TorchOptions shape a torch.save checkpoint.
type TorchOptions struct {
	// Nested puts the tensors under "state_dict" beside a "global_step",
	// as Lightning checkpoints (.ckpt) do.
	Nested bool
	// Outside adds a tensor "loose" beside state_dict (with Nested), which
	// diffusers ignores.
	Outside bool
	// Forbidden makes the pickle call os.system: a loader that runs pickle
	// code would create the file MarkerFile.
	Forbidden bool
}

// MarkerFile is what a Forbidden checkpoint's pickle would create if run.
const MarkerFile = "/tmp/modelpub-converttest-pwned"

// WriteTorch writes ts as torch.save (zip format) does: data.pkl, one
// storage per tensor under data/, byteorder and version records.
func WriteTorch(t testing.TB, path string, ts []Tensor, o TorchOptions) {
	t.Helper()
	var p pickler
	p.op(0x80, 2)
	if o.Nested {
		p.op('}', '(')
		p.str("global_step")
		p.int(470000)
		if o.Outside {
			pickleTensor(&p, Tensor{"loose", tensors.F32, []int64{2}, make([]byte, 8)}, "9999")
		}
		p.str("state_dict")
	}
	if o.Forbidden {
		p.global("os", "system")
		p.str("touch " + MarkerFile)
		p.op(0x85, 'R', '0') // TUPLE1, REDUCE, POP
	}
	p.global("collections", "OrderedDict")
	p.op(')', 'R', '(')
	for i, c := range ts {
		pickleTensor(&p, c, fmt.Sprint(i))
	}
	p.op('u')
	if o.Nested {
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
		add(fmt.Sprintf("data/%d", i), c.Data)
	}
	if o.Nested && o.Outside {
		add("data/9999", make([]byte, 8))
	}
	add("version", []byte("3\n"))
	require.NoError(t, zw.Close())
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
}

// pickleTensor pickles "name": _rebuild_tensor_v2(storage, 0, shape,
// contiguous strides, False, OrderedDict()).
func pickleTensor(p *pickler, c Tensor, key string) {
	p.str(c.Name)
	p.global("torch._utils", "_rebuild_tensor_v2")
	p.op('(', '(')
	p.str("storage")
	p.global("torch", storageClass[c.DType])
	p.str(key)
	p.str("cpu")
	p.int(NumElements(c.Shape))
	p.op('t', 'Q')
	p.int(0)
	p.tuple(c.Shape)
	strides := make([]int64, len(c.Shape))
	s := int64(1)
	for i := len(c.Shape) - 1; i >= 0; i-- {
		strides[i] = s
		s *= c.Shape[i]
	}
	p.tuple(strides)
	p.op(0x89)
	p.global("collections", "OrderedDict")
	p.op(')', 'R', 't', 'R')
}
