package hub

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"modelpub/core/hub/xet"
)

// UploadOptions configures an upload (StartUpload, UploadFiles,
// UploadFolder). The zero value commits to main with the defaults below.
type UploadOptions struct {
	Revision          string         // branch to commit to (or to open the PR against); "" → "main"
	CreatePR          bool           // open a pull request instead of committing to Revision
	CommitMessage     string         // "" → "Upload folder using modelpub"
	CommitDescription string         //
	Concurrency       int            // files in the LFS batch and upload at once; 0 → 4 (Xet packs one at a time, 2 xorbs in flight)
	PartConcurrency   int            // part and basic PUTs in flight across all objects; 0 → 8
	HashConcurrency   int            // files hashed at once; 0 → GOMAXPROCS
	Progress          func(Progress) // reports (serialized, not throttled); nil → none
	HashCache         *HashCache     // nil → the cache at DefaultHashCachePath (none if that fails)
	// Delete lists paths of the repository to delete in the same commit
	// (deletedFile lines), so the commit holds the new files and the
	// removal of the old ones at once (UploadFiles, UploadFolder; an Upload
	// takes them in Commit). A path also being added is refused. A commit
	// of deletions alone is made like any other.
	Delete []string
	// ParentCommit, when set, is the head the caller planned against:
	// when the revision's head is another commit at preupload, the upload
	// fails with ErrConflict before any object is sent, and the commit is
	// made against it (a branch that moves later is ErrConflict too).
	ParentCommit string
	// XetCache is the shard cache of Xet uploads: where chunks already
	// sent are, so they are not sent again (by a rerun after a crash, a
	// re-publish). nil → the cache under xet.DefaultShardCacheDir, one
	// folder per CAS, bounded by DefaultXetCacheBytes (none if that fails).
	XetCache *xet.ShardCache
}

// FileOutcome is what UploadFolder did with one file.
type FileOutcome string

// The outcomes of a file.
const (
	FileSent      FileOutcome = "sent"      // committed, its content sent
	FileStored    FileOutcome = "stored"    // committed; the Hub already stored its LFS object (or, through Xet, every chunk), nothing sent
	FileUnchanged FileOutcome = "unchanged" // the same content is on the Hub at that path: not committed
	FileIgnored   FileOutcome = "ignored"   // excluded by the repository's .gitignore: not committed
)

// UploadReport says what UploadFolder did, from what it sent.
type UploadReport struct {
	Files   []FileResult // every file of the folder, in the order of the folder's walk
	Deleted []string     // paths the commit deleted
	Sent    int64        // bytes sent: LFS objects uploaded (Xet: their new chunks) plus the contents of regular files committed
	Deduped int64        // bytes of large files not sent because the Hub already held them (Xet chunks)
}

// FileResult is the outcome of one file of the folder.
type FileResult struct {
	Path    string      // path in the repo
	Size    int64       //
	LFS     bool        // stored through Git LFS (preupload's verdict)
	OID     string      // sha256 for LFS, git blob sha1 otherwise ("" when ignored)
	Remote  string      // the oid preupload gave for the path ("" when it was new)
	Outcome FileOutcome //
	Sent    int64       // bytes of this file sent (an object shared by several paths counts once; Xet: its new chunks, before compression)
}

// Count returns how many files had outcome o and their bytes sent.
func (r *UploadReport) Count(o FileOutcome) (n int, sent int64) {
	if r == nil {
		return 0, 0
	}
	for _, f := range r.Files {
		if f.Outcome == o {
			n++
			sent += f.Sent
		}
	}
	return n, sent
}

// UploadFolder uploads every file under dir to the root of the repository
// as one commit, the way huggingface_hub's upload_folder does (§10): a thin
// wrapper over UploadFiles with one Addition per file.
//
//   - Folders named .git or .cache are skipped (the Hub refuses them);
//     symlinks to regular files are followed, other special files skipped.
//   - Files whose preupload oid equals the local one are not committed; LFS
//     objects the Hub already has are not sent. opts.Delete adds deletions
//     to the same commit. When nothing changed and nothing is deleted, no
//     commit is made and the head is returned with NoChanges set.
//     CommitInfo.Upload reports the outcome of every file.
//   - Hashes are computed once per file content, in parallel, and cached
//     by the file's real path and identity.
//   - Every request is retried on its own (a part re-sends only that part);
//     the commit is re-sent only after checking the branch head (Commit).
//
// It returns only after every goroutine it started has finished.
func (c *Client) UploadFolder(ctx context.Context, id RepoID, dir string, opts UploadOptions) (*CommitInfo, error) {
	if err := id.Validate(); err != nil {
		return nil, err
	}
	files, err := scanFolder(dir)
	if err != nil {
		return nil, err
	}
	return c.UploadFiles(ctx, id, files, opts)
}

// short abbreviates a commit id as git does.
func short(oid string) string {
	if len(oid) > 7 {
		return oid[:7]
	}
	return oid
}

// scanFolder lists the regular files under dir with their repo paths.
func scanFolder(dir string) ([]Addition, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("hub: %s is not a folder", dir)
	}
	var files []Addition
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != dir && (d.Name() == ".git" || d.Name() == ".cache") {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := os.Stat(p) // follows symlinks
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // dangling symlink
			}
			return err
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		clean, err := CleanPath(filepath.ToSlash(rel))
		if err != nil {
			return err
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return err
		}
		files = append(files, Addition{Path: clean, Size: info.Size(), Local: abs})
		return nil
	})
	if err != nil {
		var he *Error
		if errors.As(err, &he) {
			return nil, err
		}
		return nil, fmt.Errorf("hub: scan %s: %w", dir, err)
	}
	return files, nil
}
