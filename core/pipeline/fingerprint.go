package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Fingerprint hashes the names, sizes and modification times of every file
// under dir (hidden folders aside, and the root README.md unless
// withReadme) and the extra strings: what decides whether a staging made
// from dir is still current. The README.md is left out where only the
// weights matter: editing the card's text never restages a model.
func Fingerprint(dir string, withReadme bool, extra ...string) (string, error) {
	h := sha256.New()
	for _, e := range extra {
		fmt.Fprintf(h, "%s\x00", e)
	}
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != dir && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "README.md" && !withReadme {
			return nil
		}
		lines = append(lines, fmt.Sprintf("%s\x00%d\x00%d\x00%o", filepath.ToSlash(rel), st.Size(), st.ModTime().UnixNano(), st.Mode()))
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Strings(lines)
	for _, l := range lines {
		fmt.Fprintf(h, "%s\n", l)
	}
	return hex.EncodeToString(h.Sum(nil)[:10]), nil
}
