package pipelinetest

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
)

// HFCacheSnapshot lays the files of folder src out as the Hugging Face cache
// keeps a downloaded repository: each file's bytes in
// cache/models--org--name/blobs/<sha256>, and the snapshot
// cache/models--org--name/snapshots/<rev>/… made of relative symbolic links
// to them. It returns the snapshot folder.
func HFCacheSnapshot(src, cache, repo, rev string) (string, error) {
	repoDir := filepath.Join(cache, repo)
	snap := filepath.Join(repoDir, "snapshots", rev)
	if err := os.MkdirAll(filepath.Join(repoDir, "blobs"), 0o755); err != nil {
		return "", err
	}
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(snap, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		blob := filepath.Join(repoDir, "blobs", hex.EncodeToString(sum[:]))
		if err := os.WriteFile(blob, data, 0o644); err != nil {
			return err
		}
		link := filepath.Join(snap, rel)
		target, err := filepath.Rel(filepath.Dir(link), blob)
		if err != nil {
			return err
		}
		return os.Symlink(target, link)
	})
	return snap, err
}
