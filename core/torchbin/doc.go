// Package torchbin reads PyTorch checkpoints (pytorch_model.bin,
// diffusion_pytorch_model.bin, *.pt) without running any pickle code, and
// streams their tensors into safetensors.
//
// # Formats
//
//   - zip (torch >= 1.6): one top folder (any name; torch's rule: the folder
//     of the first entry) holding data.pkl, data/<key> storages stored
//     uncompressed, byteorder (must be "little" when present) and version.
//     TorchScript archives (constants.pkl, code/) are refused.
//   - legacy (before 1.6, or _use_new_zipfile_serialization=False): five
//     pickles in one stream (the magic number 0x1950a86a20f9469cfc6c,
//     protocol version 1001, a sys-info dict, the object, the sorted list of
//     storage keys) followed by the storages in the order of that list, each
//     an 8-byte little-endian element count and its bytes. Legacy view
//     storages (a sixth persistent-id item) are supported. The older tar
//     format is refused.
//
// # Safety
//
// Every pickle is first read opcode by opcode by a scanner that builds
// nothing: each global the pickle names (GLOBAL, INST, STACK_GLOBAL) must be
// on the allow-list below, or Open fails with ErrForbiddenGlobal naming it
// ("refusing to load: the pickle references posix.system (os.system)");
// STACK_GLOBAL is accepted only when both names are strings written right
// before it, so names are never computed; the extension registry (EXT1/2/4)
// and out-of-band buffers are refused; every declared length (strings,
// bytes, frames) must fit in the pickle before anything is allocated, and a
// pickle is at most 256 MiB. Only then is the pickle handed to
// github.com/nlpodyssey/gopickle with a FindClass that returns inert
// descriptions of the allowed globals and a persistent-load that records
// storages. Nothing is executed in any case: gopickle has no Python.
//
// The allow-list is exactly what state dicts of torch 1.x and 2.x reference:
//
//	collections.OrderedDict
//	torch._utils._rebuild_tensor_v2
//	torch._utils._rebuild_parameter
//	torch._utils._rebuild_parameter_with_state
//	torch.{Float,Half,BFloat16,Double,Long,Int,Short,Char,Byte,Bool}Storage
//	torch.UntypedStorage (bytes: loaded as uint8, as torch does)
//	torch.{float32,float,float16,half,bfloat16,float64,double,int64,long,
//	       int32,int,int16,short,int8,uint8,bool} (dtype objects)
//
// Complex and quantized storage classes are recognised but fail with
// ErrUnsupported (no safetensors dtype). Everything else is refused,
// including globals gopickle would otherwise resolve on its own
// (builtins.list, copy_reg._reconstructor, ...), numpy scalars and
// torch._utils._rebuild_from_type_v2 (tensor subclasses / tensors with
// attributes).
//
// # Pickle bombs
//
// A pickle is a program for a stack machine, and a few bytes can ask for
// gigabytes: 60 million EMPTY_LIST opcodes deflate to 58 KB and took 6 GB.
// The scanner therefore also runs the pickle on a shadow stack (the kind
// of each item; the size and depth of each container; the memo) and
// refuses it with ErrPickleLimit, wrapping a *LimitError that names the
// limit, before gopickle runs. The limits are relative to n, the bytes the
// pickle takes in the file (for a deflated data.pkl, its compressed size):
//
//	opcodes              1 Mi + 8 per byte
//	items on the stack   64 Ki + 1 per 8 bytes (counting those under MARKs)
//	memo entries         64 Ki + 1 per 2 bytes
//	entries of one list, tuple, set or dict   1 Mi + 1 per 2 bytes
//	nesting              1000 open MARKs, or containers 1000 deep
//	estimated memory     64 MiB + 128 bytes per byte, at most 4 GiB
//	inflated data.pkl    16 MiB + 8 per byte (declared, and as read)
//	an integer           255 bytes (gopickle decodes LONG4 in quadratic time)
//	a flattened name     4096 bytes
//
// The memory estimate prices what gopickle allocates for each object (an
// OrderedDict entry, a MARK's new stack, a memo entry, a BUILD's copy of
// its state); it is within 1.2 times the peak heap measured while opening
// real state dicts. torch writes data.pkl uncompressed, and a state dict
// spends 45 to 170 bytes of pickle, 30 opcodes, 8 memo entries and 2.7 KB
// of estimated memory per tensor, so each limit is at least twice what it
// needs, and a 1,000,000-tensor state dict fits them (the tests
// extrapolate from 10,000 tensors; 200,000 open in seconds). The scanner
// keeps 8 bytes per stack item, memo entry and mutable container, so a
// refused bomb costs little (under 100 MB in the tests, for files of up
// to 4 MB); a pickle within the limits costs gopickle at most about the
// memory limit.
//
// # Plan and streaming
//
// Open records each tensor as (storage key, dtype, offset, shape, strides)
// and checks, before any read or allocation, that every element of every
// view lies inside its storage, that every storage's declared size fits its
// zip entry (or legacy record) and the file. The state dict's order is kept;
// nested dicts, lists and tuples are flattened with "."; non-tensor values
// are listed in Checkpoint.Skipped.
//
// Checkpoint.Source streams a tensor in row-major order: a contiguous view
// is a byte-range copy (copy_file_range when writing to a file); any other
// view (transposed, sliced, expanded) is gathered in chunks of 256K output
// elements (boxes of whole outer rows when they fit), reading either the
// one span that covers a chunk (≤ 4 MiB) or runs in offset order (a box
// visited by decreasing stride is already in offset order; otherwise the
// chunk is sorted), so memory stays around 10 MB whatever the tensor's
// size. Measured: a 512 MiB zip or legacy checkpoint with 8192×8192
// transposed and sliced views converts with a peak RSS of 20 MB, in 15 s.
// Tensors that share a storage (tied weights, views) are reported in
// Tensor.SharesStorageWith (k tensors of one storage share one list of 2k
// names) and each gets its own copy, as safetensors forbids aliasing.
// fp16 and bf16 bits are copied, never widened.
//
// # Errors
//
// Every error is an *Error naming the checkpoint file and wraps one of
// ErrNotCheckpoint, ErrForbiddenGlobal, ErrCorrupt, ErrUnsupported or
// ErrPickleLimit (or an os error from opening the file). Malformed pickles
// that would make gopickle panic are reported as ErrCorrupt; errors never
// print pickled values, which can be containers that hold themselves.
package torchbin
