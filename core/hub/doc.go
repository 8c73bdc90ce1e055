// Package hub will speak the Hugging Face Hub's publish protocol: preupload,
// LFS batch and multipart uploads, NDJSON commits and pull requests. It knows
// nothing of tensors or pipelines; it moves files.
package hub
