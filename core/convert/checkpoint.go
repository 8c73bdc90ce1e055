package convert

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"modelpub/core/folder"
	"modelpub/core/tensors"
	"modelpub/core/torchbin"
)

// Checkpoint formats.
const (
	FormatSafetensors = "safetensors"
	FormatTorchZip    = "torch-zip"    // torch.save since 1.6 (.ckpt, .pt, .bin)
	FormatTorchLegacy = "torch-legacy" // torch.save before 1.6
)

// SourceTensor is one tensor of a checkpoint, named as diffusers sees it.
type SourceTensor struct {
	// Name is the key after unwrapping "state_dict" (torch checkpoints).
	Name string
	// Key is the tensor's name in the file.
	Key   string
	DType tensors.DType
	Shape []int64
	Size  int64 // bytes
}

// Checkpoint is an open single-file checkpoint: its tensors and where their
// bytes are. Opening reads the safetensors header or the torch pickle, never
// tensor data.
type Checkpoint struct {
	Path   string
	Format string // FormatSafetensors, FormatTorchZip or FormatTorchLegacy
	// Tensors in file order (torch: state-dict order).
	Tensors []SourceTensor
	// OutsideStateDict lists tensors of a torch checkpoint that are not
	// under its "state_dict" entry; diffusers ignores them.
	OutsideStateDict []string
	// Skipped lists the non-tensor entries of a torch checkpoint
	// ("global_step", "epoch", …).
	Skipped []string
	// Size is the file's size in bytes.
	Size int64

	st     *tensors.File
	tb     *torchbin.Checkpoint
	byName map[string]int
}

// OpenCheckpoint opens the checkpoint at path: a .safetensors file, or a
// PyTorch pickle (.ckpt, .pt, .bin; zip or legacy format) read by
// core/torchbin without running any pickle code. The format is recognised
// from the file's first bytes, not its name. A FIFO, device or socket is
// refused without being opened for reading.
func OpenCheckpoint(path string) (*Checkpoint, error) {
	f, err := folder.OpenRegular(path)
	if err != nil {
		return nil, err
	}
	var head [9]byte
	n, err := f.ReadAt(head[:], 0)
	st, serr := f.Stat()
	f.Close()
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if serr != nil {
		return nil, serr
	}
	c := &Checkpoint{Path: path, Size: st.Size()}
	// A safetensors file starts with its header's length (8 bytes, little
	// endian) and the header's "{"; the length's first byte can be 0x80, a
	// pickle's first opcode, so the "{" is checked first.
	isZip := n >= 4 && (string(head[:4]) == "PK\x03\x04" || string(head[:4]) == "PK\x05\x06")
	isSafetensors := n == 9 && head[8] == '{'
	switch {
	case isZip, !isSafetensors && n >= 1 && head[0] == 0x80:
		if err := c.openTorch(); err != nil {
			return nil, err
		}
	case n >= 8:
		sf, err := tensors.Open(path)
		if err != nil {
			return nil, err
		}
		c.Format, c.st = FormatSafetensors, sf
		for _, t := range sf.Header.Tensors {
			c.Tensors = append(c.Tensors, SourceTensor{Name: t.Name, Key: t.Name, DType: t.DType, Shape: t.Shape, Size: t.Size()})
		}
	default:
		return nil, fmt.Errorf("%s: %w: %d bytes, too short for any format", path, ErrNotCheckpoint, st.Size())
	}
	c.byName = make(map[string]int, len(c.Tensors))
	for i, t := range c.Tensors {
		c.byName[t.Name] = i
	}
	return c, nil
}

// openTorch reads a torch pickle and unwraps "state_dict" as diffusers'
// load_single_file_checkpoint does ("while 'state_dict' in checkpoint:
// checkpoint = checkpoint['state_dict']"): torchbin flattens nested dicts
// with ".", so the tensors under it are those named "state_dict.…".
func (c *Checkpoint) openTorch() error {
	tb, err := torchbin.Open(c.Path)
	if err != nil {
		return err
	}
	c.tb = tb
	c.Format = FormatTorchZip
	if tb.Format == "legacy" {
		c.Format = FormatTorchLegacy
	}
	c.Skipped = tb.Skipped
	names := make([]string, len(tb.Tensors))
	for i, t := range tb.Tensors {
		names[i] = t.Name
	}
	const wrapper = "state_dict."
	for slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, wrapper) }) {
		for i, n := range names {
			if rest, ok := strings.CutPrefix(n, wrapper); ok {
				names[i] = rest
			} else if n != "" {
				c.OutsideStateDict = append(c.OutsideStateDict, tb.Tensors[i].Name)
				names[i] = ""
			}
		}
	}
	for i, t := range tb.Tensors {
		if names[i] == "" {
			continue
		}
		c.Tensors = append(c.Tensors, SourceTensor{Name: names[i], Key: t.Name, DType: t.DType, Shape: t.Shape, Size: t.ByteSize()})
	}
	return nil
}

// Tensor returns the tensor called name (after unwrapping).
func (c *Checkpoint) Tensor(name string) (SourceTensor, bool) {
	i, ok := c.byName[name]
	if !ok {
		return SourceTensor{}, false
	}
	return c.Tensors[i], true
}

// Has reports whether the checkpoint holds a tensor called name.
func (c *Checkpoint) Has(name string) bool {
	_, ok := c.byName[name]
	return ok
}

// Source streams the bytes of t, in row-major order: a byte range of the
// file (copied in the kernel where the system allows), or for a
// non-contiguous torch view a bounded gather.
func (c *Checkpoint) Source(t SourceTensor) tensors.Source {
	if c.st != nil {
		info, _ := c.st.Header.Tensor(t.Key)
		return c.st.TensorSource(info)
	}
	bt, _ := c.tb.Tensor(t.Key)
	return c.tb.Source(bt)
}

// Close closes the file.
func (c *Checkpoint) Close() error {
	if c.st != nil {
		return c.st.Close()
	}
	if c.tb != nil {
		return c.tb.Close()
	}
	return nil
}

// planned streams the plan's tensor t from the checkpoint: the whole
// source tensor, a range of its rows (a byte range), or its transpose
// (streamed in bounded memory).
func (c *Checkpoint) planned(t Tensor) (tensors.Source, error) {
	st, ok := c.Tensor(t.Source)
	if !ok {
		return nil, fmt.Errorf("%s: tensor %q is gone", c.Path, t.Source)
	}
	switch {
	case len(t.Rows) == 1:
		return c.rows(st, t.Rows[0][0], t.Rows[0][1]), nil
	case len(t.Rows) > 1:
		var parts []tensors.Source
		for _, r := range t.Rows {
			parts = append(parts, c.rows(st, r[0], r[1]))
		}
		return concatSource(parts), nil
	case t.Transpose:
		return c.transposed(st), nil
	}
	return c.Source(st), nil
}

// rows streams n rows (slices along the first dimension) of t from row r0.
func (c *Checkpoint) rows(t SourceTensor, r0, n int64) tensors.Source {
	rowBytes := t.Size / t.Shape[0]
	if c.st != nil {
		info, _ := c.st.Header.Tensor(t.Key)
		info.Begin += r0 * rowBytes
		info.End = info.Begin + n*rowBytes
		return c.st.TensorSource(info)
	}
	bt, _ := c.tb.Tensor(t.Key)
	view := bt
	view.Shape = append([]int64{n}, bt.Shape[1:]...)
	view.Offset = bt.Offset + r0*bt.Strides[0]
	return c.tb.Source(view)
}

// transposed streams the matrix t as its transpose.
func (c *Checkpoint) transposed(t SourceTensor) tensors.Source {
	if c.st != nil {
		info, _ := c.st.Header.Tensor(t.Key)
		return &transposeSource{r: c.st, off: c.st.Header.DataStart + info.Begin,
			a: t.Shape[0], b: t.Shape[1], es: int64(t.DType.Bits() / 8)}
	}
	bt, _ := c.tb.Tensor(t.Key)
	view := bt
	view.Shape = []int64{bt.Shape[1], bt.Shape[0]}
	view.Strides = []int64{bt.Strides[1], bt.Strides[0]}
	return c.tb.Source(view)
}

// concatSource streams its sources one after the other.
type concatSource []tensors.Source

func (s concatSource) Size() int64 {
	var n int64
	for _, p := range s {
		n += p.Size()
	}
	return n
}

func (s concatSource) CopyTo(ctx context.Context, w io.Writer) error {
	for _, p := range s {
		if err := p.CopyTo(ctx, w); err != nil {
			return err
		}
	}
	return nil
}
