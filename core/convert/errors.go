package convert

import "errors"

// Errors of this package, for errors.Is. Messages wrap them with the file,
// the keys and what was found.
var (
	// ErrNotCheckpoint: the file is neither safetensors nor a PyTorch
	// checkpoint.
	ErrNotCheckpoint = errors.New("convert: not a single-file checkpoint")
	// ErrUnknownArchitecture: no supported model type's signature keys
	// match the checkpoint.
	ErrUnknownArchitecture = errors.New("convert: unknown checkpoint layout")
	// ErrUnsupportedType: the checkpoint was recognised (SDXL refiner,
	// SD 3, ControlNet, …) but converting it is not supported.
	ErrUnsupportedType = errors.New("convert: model type not supported")
	// ErrTypeMismatch: the type asked for does not match the checkpoint.
	ErrTypeMismatch = errors.New("convert: the checkpoint is not of the type asked for")
	// ErrUnmappedTensor: a tensor of a component's part of the checkpoint
	// maps to no tensor of the diffusers model.
	ErrUnmappedTensor = errors.New("convert: tensor has no place in the diffusers model")
	// ErrMissingTensor: a tensor the diffusers model needs is not in the
	// checkpoint.
	ErrMissingTensor = errors.New("convert: tensor missing from the checkpoint")
	// ErrBadShape: a tensor's shape is not what its architecture or its
	// mapping needs.
	ErrBadShape = errors.New("convert: unexpected tensor shape")
	// ErrDestination: the destination exists and is not an empty folder.
	ErrDestination = errors.New("convert: the destination exists and is not an empty folder")
	// ErrNoSpace: the destination's file system cannot hold the output.
	ErrNoSpace = errors.New("convert: not enough free disk space")
	// ErrOptions: an option value is not supported.
	ErrOptions = errors.New("convert: invalid option")
	// ErrNotVerified: the written folder does not hold exactly the mapped
	// checkpoint, or does not load (Convert removes it).
	ErrNotVerified = errors.New("convert: the converted folder failed its checks")
)
