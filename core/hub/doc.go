// Package hub speaks the Hugging Face Hub's publish protocol: whoami, repo
// creation and info, tree listing, branches, preupload, the git-LFS batch
// API with basic, multipart and xet transfers (the Xet storage through
// core/hub/xet), and NDJSON commits (optionally as pull requests). It knows nothing of tensors or pipelines; it moves files.
// The wire facts it follows are in shared/reference/hub-protocol.md (§ refs
// in comments point there).
//
// # Client
//
// NewClient takes Options: the endpoint (else HF_ENDPOINT, else
// https://huggingface.co), a token, the version for the User-Agent
// ("modelpub/<version> (go…; os/arch)"), an optional *http.Client, a
// RetryPolicy and a log function. The token is sent as "Authorization:
// Bearer" only on Hub API calls whose URL has the endpoint's origin; upload
// URLs (basic PUT, part PUTs) and completion URLs never get it, even on the
// same origin, and a redirect to another origin drops it.
//
// Each call is a method: WhoAmI, CreateRepo (ExistOK turns a 409 into the
// url from its body), RepoInfo, Revision (a revision's head commit — id,
// title, authors, date — and the private flag), ListCommits, ListTree and
// ListTreeWith (the whole tree, recursive, with sizes, LFS oids and, with
// Expand, each entry's last commit; follows Link rel="next"), PathsInfo,
// ReadFile, ValidateYAML (POST /api/validate-yaml: the Hub's errors and
// warnings on a README.md's metadata), CreateBranch, Preupload (batches of
// 256), LFSBatch (batches of 256, transfers basic+multipart, hash_algo
// sha256), UploadLFSObject and Commit. Commit operations are plain data:
// AddFile (streamed from disk, base64), AddLFS, DeleteFile, DeleteFolder.
// Repo ids (ParseRepoID, RepoID.Validate) and paths (CleanPath) are
// validated as huggingface_hub does before any request.
//
// # URLs in text
//
// User info in the endpoint ("http://user:token@host") is dropped when the
// client is made: it is never sent (net/http would turn it into a Basic
// Authorization header beside the Bearer token), Endpoint returns the URL
// without it, and it is scrubbed like the token from every message and log
// line. RedactURL (user info, query and fragment removed) and RedactText
// (user info of every URL in a text) are for callers that show an
// endpoint or a URL; the client applies them to net/http's *url.Error and
// to the URLs the Hub returns.
//
// # Errors
//
// Every failure of a Hub call is an *Error that wraps one sentinel of a
// closed set: ErrUnauthorized, ErrForbidden, ErrRepoNotFound,
// ErrRevisionNotFound, ErrEntryNotFound, ErrRateLimited (Error.RetryAfter),
// ErrConflict, ErrTooLarge, ErrServer, ErrBadRequest, ErrNetwork,
// ErrXetUnavailable (TransferXet and a Hub without Xet), plus
// ErrInvalidRepoID and ErrInvalidPath for local validation. The kind comes
// from X-Error-Code, X-Error-Message, the JSON error and the status, as
// huggingface_hub's hf_raise_for_status maps them; Error.Hint says what is
// wrong or what to do (for a read-only token: "the token has read access
// only"; where to get a token is core/advice's to say). The token is scrubbed from
// every message and never passed to Logf or Progress; URL queries
// (signatures) and user info are dropped from network errors.
//
// # Retries
//
// Idempotent calls (whoami, repo info, commit listing, listing pages,
// paths-info, validate-yaml, downloads, preupload, LFS batch, each PUT,
// completion, verify, create branch, and create repo with ExistOK, where a
// retry after a lost answer meets the repo as a 409 with its url) are
// retried per request on 408, 429, 500, 502, 503, 504 and network errors,
// with exponential backoff and jitter (defaults 1s doubling to 8s, 5
// retries), honouring Retry-After and, on 429, RateLimit's t; 401, 403,
// 404 and other 4xx are not retried. A part retry re-reads only its own
// io.SectionReader. Create repo without ExistOK is sent once. The commit
// is never re-sent blindly: after a lost answer
// or a 5xx it reads the branch head; unchanged means the commit did not
// land and it is sent again, moved means it checks (paths-info) whether
// the files now match the operations — then the commit landed — otherwise
// it reports ErrConflict. Cancelling ctx stops waits, requests and hashing
// promptly.
//
// # Upload engine
//
// UploadFolder uploads a folder as one commit: scan and validate
// (skipping .git and .cache folders), preupload, hash (SHA-256 for LFS
// files, git blob SHA-1 for regular ones, both for files up to 10 MiB; one
// read pass per file, several files at once), LFS batch, uploads (Concurrency
// objects at once; PartConcurrency PUTs in flight across all of them, default
// 8), commit. A file whose preupload oid equals the local one is not
// committed; an LFS object answered without actions is not sent; when
// nothing changed no commit is made and the head is returned with
// CommitInfo.NoChanges. UploadOptions.Delete puts deletions (deletedFile)
// in the same commit, so a new layout and the removal of the old one land
// together; deletions alone still make a commit. UploadOptions.ParentCommit
// fails the upload with ErrConflict at preupload, before any object is
// sent, when the branch has left the head the caller planned against.
// CommitInfo.Upload reports each file's outcome (sent, stored: its LFS
// object was already on the Hub, unchanged, ignored), the paths deleted
// and the bytes actually sent. Files are streamed from disk and never held
// whole in memory. A HashCache (JSON, default os.UserCacheDir()/modelpub/
// hub-hashes.json) keyed by path, size, mtime and inode means an unchanged
// file is never hashed twice; HashFile gives a caller the same hashes
// through the same cache (a plan made before the upload costs no second
// read). Progress reports per file and in total (bytes, rate) go to one
// callback, serialized and throttled.
//
// # Xet
//
// Options.Transfer chooses how large files go: TransferAuto (the default)
// offers ["basic", "multipart", "xet"] in the LFS batch, as @huggingface/hub
// does, and follows the answer; TransferLFS offers basic and multipart
// only; TransferXet offers xet only and fails with ErrXetUnavailable when
// the Hub answers another transfer. When the batch answers "xet"
// (xetupload.go), the file is read and cut into chunks; chunks
// the upload already packed, that the shard cache knows (UploadOptions.
// XetCache, default Client.OpenXetCache: one folder per Hub under
// xet.DefaultShardCacheDir, bounded) or that the CAS's global
// deduplication query finds are referenced, not sent; the others go up in
// 32 MiB xorbs, two at a time, recorded in the cache as each is accepted
// (a rerun after a crash does not send them again). Before the commit the
// shards register the files (their sha256 in the metadata extension); the
// commit names each file by its sha256 as for LFS. The first CAS token
// comes from the batch's action, the next ones from the Hub's
// xet-write-token endpoint of the branch (create_pr=1 for a pull request);
// the CAS gets the CAS token only, and every CAS request the batch's
// X-Xet-Session-Id. With TransferAuto, a Hub that answers basic or
// multipart, or a Xet session that cannot start, means Git LFS. A shard the
// CAS refuses after cache hits (a local Hub started afresh) clears the
// cache and sends the files again. Progress's upload phase counts the new
// chunks' bytes in Bytes as their xorbs are accepted and the rest in
// Deduped; UploadReport.Deduped and FileResult.Sent say the same.
//
// Multipart uploads follow rclone's contract: write part n, complete,
// abort (the Hub has no abort call; unfinished uploads expire), with one
// driver owning the concurrency and the final byte-count check.
package hub
