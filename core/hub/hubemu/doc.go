// Package hubemu is a local Hugging Face Hub: the publish protocol of
// huggingface.co (hub-protocol.md) served over HTTP, with real repo state
// on disk. It exists to test Hub clients offline — ours and the official
// ones — and to rehearse a publish and browse what would have been pushed.
// It has its own wire structs and does not import the client in core/hub.
//
// Endpoints (the repo type prefix is models/datasets/spaces in API URLs
// and ""/datasets//spaces/ in git and resolve URLs):
//
//	GET    /api/whoami-v2
//	POST   /api/repos/create                      409 with "url" when it exists
//	DELETE /api/repos/delete
//	POST   /api/validate-yaml                     core/card's rules; 400 {"errors"}
//	GET    /api/{type}s/{ns}/{name}[/revision/{rev}]   repo info (?blobs=true)
//	POST   /api/{type}s/{ns}/{name}/preupload/{rev}
//	POST   /api/{type}s/{ns}/{name}/commit/{rev}  NDJSON, ?create_pr=1
//	GET    /api/{type}s/{ns}/{name}/tree/{rev}[/{path}]  Link pagination, expand=true: lastCommit
//	POST   /api/{type}s/{ns}/{name}/paths-info/{rev}     JSON or form
//	POST   /api/{type}s/{ns}/{name}/branch/{branch}      body {"startingPoint"}
//	DELETE /api/{type}s/{ns}/{name}/branch/{branch}
//	GET    /api/{type}s/{ns}/{name}/refs[?include_prs=1]
//	GET    /api/{type}s/{ns}/{name}/commits/{rev}        ?limit=, Link pagination
//	PUT    /api/{type}s/{ns}/{name}/settings             {"private","gated"}
//	POST   /{prefix}{ns}/{name}.git/info/lfs/objects/batch
//	POST   /{prefix}{ns}/{name}.git/info/lfs/objects/verify
//	GET|HEAD /{prefix}{ns}/{name}/resolve/{rev}/{path}   Range, ETag
//	GET|HEAD /{prefix}{ns}/{name}/raw/{rev}/{path}       LFS pointers
//	PUT    /_emu/lfs/upload/{oid}?…&sig=          presigned basic upload
//	PUT    /_emu/lfs/part/{oid}/{n}?…&sig=        presigned part, answers ETag
//	POST   /_emu/lfs/complete/{oid}?…&sig=        multipart completion
//	GET    /api/{type}s/{ns}/{name}/xet-write-token/{rev}  CAS token (write access)
//	GET    /api/{type}s/{ns}/{name}/xet-read-token/{rev}   CAS token (read access)
//	…      /v1/… and /v2/…                        the Xet CAS (XetCAS): xorbs, shards, chunks, reconstructions, fetch
//
// Deliberate differences from huggingface.co:
//   - LFS files are served by resolve directly (200/206) instead of a 302 to
//     a CDN; the headers a client reads (ETag, X-Linked-Etag, X-Linked-Size,
//     X-Repo-Commit, Content-Range) are the Hub's.
//   - The LFS batch answers "transfer":"xet" when the client lists "xet"
//     in its transfers (as the Hub does; Options.NoXet turns it off): each
//     object's upload action is the xet-write-token URL with a CAS token
//     in its headers, and the bytes go to the CAS (xorbs and shards)
//     served on the same origin. Otherwise it answers "basic", with a
//     verify action for basic uploads only. A commit's lfsFile may name a
//     file the CAS holds (by the sha256 of the shard's metadata extension)
//     when the repo's batch offered that oid to Xet and a shard uploaded
//     with a CAS token of that repo registered the file; the commit then
//     checks the file's bytes against the oid and stores them as the LFS
//     object, so resolve and raw serve it as any other. Resolve with
//     Accept application/vnd.xet-fileinfo+json answers such a file's Xet
//     file info (X-Xet-Hash, X-Linked-Size, Link xet-reconstruction-info
//     and xet-auth) and no body.
//   - LFS objects are stored once, content-addressed, for the whole
//     server; but, as on the Hub, a repo may only use the objects uploaded
//     through its own batch actions or referenced by its own commits. The
//     batch answers "stored" (no actions) only for those; any other oid,
//     stored or not, gets upload actions, and the upload's bytes are
//     checked against the oid even when the server holds the object. A
//     commit's lfsFile may also name an object that a repo the committer
//     can read (public and not gated, or writable by it) references in a
//     commit, standing in for the Hub's lfs-files/duplicate. Anything else
//     is refused as a pointer to a file that does not exist, so knowing an
//     oid gives neither the bytes nor whether they exist.
//   - validate-yaml applies core/card's rules (a copy, kept in step by the
//     test in ./cardparity), and a commit writing a root README.md whose
//     metadata they refuse is refused (400), as the Hub refuses invalid
//     card metadata.
//   - Paths are refused (400, the Hub's error envelope) when empty, with an
//     empty, "." or ".." segment, a leading '/', a ".git" or ".cache"
//     segment, a backslash, a control character (C0, DEL, C1) or invalid
//     UTF-8.
//   - Only the root .gitattributes decides the upload mode; nested ones are
//     ignored. Preupload answers "lfs" for a non-empty file that the
//     attributes track, that is ≥ 10 MiB, or whose sample is binary (NUL
//     or not UTF-8); the commit refuses a regular file over 10 MiB.
//   - Tokens map to users; a user writes to its own namespace and to the
//     Options.Orgs where its role is not "read"; a token of ReadTokens
//     writes nowhere. With Options.Tokens nil, any "hf_" token is user
//     "user" and may write anywhere.
//   - Presigned upload URLs refuse a request carrying Authorization (400, as
//     S3 does), and every such request is recorded, so tests can assert that
//     a client never sends its token to storage.
//   - With Options.Record, a commit request's operations (kind, path, size)
//     are kept on its Request.Commit, so tests can compare what a client
//     says it committed and deleted with what the Hub received.
//
// Faults (Options.Faults, ParseFaults) strike per endpoint class, at a
// rate drawn from a seed, or on the first requests of each method and
// path (FaultSpec.First, "first=2": a client's first attempts fail and its
// retries succeed). 500, 503,
// 429 and drop happen before the handler runs, so they never change state;
// slow delays the request; lost runs the handler to completion — a commit
// is applied atomically — and then drops the connection, the case where a
// client must look at the branch head before retrying.
package hubemu
