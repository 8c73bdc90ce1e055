package hubemu

import (
	"encoding/base64"
	"net/http"
	"os"
)

type preuploadRequest struct {
	Files []struct {
		Path   string `json:"path"`
		Sample string `json:"sample"`
		Size   int64  `json:"size"`
	} `json:"files"`
	GitIgnore     *string `json:"gitIgnore"`
	GitAttributes *string `json:"gitAttributes"`
}

// readSmallFile reads a regular file of a commit for .gitattributes and
// .gitignore, at most 1 MiB.
func (s *Server) readSmallFile(cm *commitRec, p string) string {
	e, ok := cm.Files[p]
	if !ok || e.LFS || e.Size > 1<<20 {
		return ""
	}
	data, err := os.ReadFile(s.blobPath(e.Oid))
	if err != nil {
		return ""
	}
	return string(data)
}

func (c *call) preupload(ref repoRef, rest []string) {
	cm, ok := c.commitAt(ref, true, revArg(rest[1:]))
	if !ok {
		return
	}
	var req preuploadRequest
	if !c.readJSON(&req, 16<<20) {
		return
	}
	if len(req.Files) > 1000 {
		c.fail(http.StatusBadRequest, "", "Too many files in one preupload call: %d (at most 1000)", len(req.Files))
		return
	}
	attrs := c.s.readSmallFile(cm, ".gitattributes")
	if req.GitAttributes != nil {
		attrs = *req.GitAttributes
	}
	ignore := c.s.readSmallFile(cm, ".gitignore")
	if req.GitIgnore != nil {
		ignore = *req.GitIgnore
	}
	lfsRules, ignoreRules := parseGitattributes(attrs), parseGitignore(ignore)

	type fileOut struct {
		Path         string `json:"path"`
		UploadMode   string `json:"uploadMode"`
		ShouldIgnore bool   `json:"shouldIgnore"`
		Oid          string `json:"oid,omitempty"`
	}
	out := make([]fileOut, 0, len(req.Files))
	for _, f := range req.Files {
		if err := validatePath(f.Path); err != nil {
			c.fail(http.StatusBadRequest, "", "Invalid path: %v", err)
			return
		}
		if f.Size < 0 {
			c.fail(http.StatusBadRequest, "", "Invalid size %d for %s", f.Size, f.Path)
			return
		}
		sample, err := base64.StdEncoding.DecodeString(f.Sample)
		if err != nil || len(sample) > 1024 {
			c.fail(http.StatusBadRequest, "", "Invalid sample for %s: base64 of the first 512 bytes expected", f.Path)
			return
		}
		mode := "regular"
		if f.Size > 0 && (lfsTracked(lfsRules, f.Path) || f.Size >= MaxRegularFileSize ||
			looksBinary(sample, f.Size > int64(len(sample)))) {
			mode = "lfs"
		}
		fo := fileOut{Path: f.Path, UploadMode: mode, ShouldIgnore: ignored(ignoreRules, f.Path)}
		if e, ok := cm.Files[f.Path]; ok {
			fo.Oid = e.Oid
		}
		out = append(out, fo)
	}
	c.json(http.StatusOK, map[string]any{"files": out, "commitOid": cm.ID})
}
