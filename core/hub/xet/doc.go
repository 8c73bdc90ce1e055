// Package xet speaks the Hugging Face Hub's Xet storage protocol
// (docs/xet/*.md in huggingface/hub-docs): content-defined chunks, xorbs,
// shards and the CAS API, for chunk-deduplicated uploads.
//
// The pure parts, which read and write bytes only:
//
//   - Chunker and Chunks cut a stream into 8–128 KiB chunks with the Gear
//     hash exactly as the reference implementations do (conformance_test.go
//     runs @huggingface/xetchunk-wasm on the same inputs); ChunkHash,
//     XorbHash, FileHash, VerificationHash and HMAC are the keyed BLAKE3
//     hashes of docs/xet/hashing.md, checked against xet-core's published
//     vectors (vectors_test.go). Hash.String is the API's hex form (bytes
//     reversed per 8-byte group).
//   - XorbWriter serializes chunks into a xorb (≤ 64 MiB, ≤ 8192 chunks),
//     each chunk stored raw, as an LZ4 frame, or byte-grouped then LZ4
//     (PolicyAuto decides by periodic trials); ReadXorb and ReadXorbIndex
//     decode and verify one.
//   - Shard.Marshal writes a shard (the upload form has no footer);
//     ParseShard reads any.
//   - Packer reads each file once — chunks, chunk hashes, sha256, file hash
//     — skips chunks already packed or known (Lookup), packs the others into
//     xorbs handed to the caller, and gives each file's FileInfo: its terms
//     with their verification hashes.
//   - ShardCache keeps shards on disk within a budget and answers where a
//     chunk already is; DedupEligible says which chunks may go to the
//     global deduplication query.
//
// The network part: FetchToken and TokenSource get and refresh the CAS
// token from the Hub's xet-write-token endpoint; CASClient uploads xorbs and
// shards and queries global deduplication, with core/hub's retry policy and
// a closed set of errors (*CASError wrapping ErrUnauthorized, ErrForbidden,
// ErrNotFound, ErrRefused, ErrRateLimited, ErrServer or ErrNetwork).
//
// The package imports nothing of core/hub (core/hub imports it), tensors or
// pipelines. Memory is bounded by buffers: 1 MiB for the Chunker, one xorb
// (64 MiB at most) per XorbWriter, (Parallel+1) × XorbSize for an Uploader
// (96 MiB with DefaultXorbSize, 32 MiB, and 2 in flight), one chunk's data
// for ReadXorbIndex.
package xet
