package torchbin

import (
	"context"

	"modelpub/core/tensors"
)

// WriteSafetensors converts the whole checkpoint to one safetensors file at
// path, streaming every tensor from the checkpoint (see Source). The file
// is written atomically by tensors.WriteFile, with {"format":"pt"}
// metadata. Tensors that share a storage each get their own copy.
func WriteSafetensors(ctx context.Context, c *Checkpoint, path string) error {
	wts := make([]tensors.WriteTensor, len(c.Tensors))
	for i, t := range c.Tensors {
		wts[i] = tensors.WriteTensor{Name: t.Name, DType: t.DType, Shape: t.Shape, Data: c.Source(t)}
	}
	_, err := tensors.WriteFile(ctx, path, wts, nil, tensors.WriteOptions{})
	return pathErr(c.Path, err)
}
