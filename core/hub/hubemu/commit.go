package hubemu

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
)

// MaxRegularFileSize is the Hub's limit for a file committed as a regular
// git blob; larger files must go through LFS.
const MaxRegularFileSize = 10 << 20

const tooLargeMessage = "Your push was rejected because it contains files larger than 10 MiB. " +
	"Please use https://git-lfs.github.com/ to store large files."

type commitOp struct {
	kind  string // file, lfsFile, deletedFile, deletedFolder
	path  string
	entry fileEntry
}

// readLine reads one NDJSON line of at most max bytes.
func readLine(br *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(line)+len(chunk) > max {
			return nil, errTooLarge
		}
		line = append(line, chunk...)
		if err == bufio.ErrBufferFull {
			continue
		}
		return line, err
	}
}

var errTooLarge = errors.New("line too large")

func decodeContent(content, encoding string) ([]byte, error) {
	switch strings.ToLower(encoding) {
	case "utf-8", "utf8":
		return []byte(content), nil
	case "", "base64":
		data, err := base64.StdEncoding.DecodeString(content)
		if err != nil {
			data, err = base64.RawStdEncoding.DecodeString(content)
		}
		return data, err
	}
	return nil, fmt.Errorf("unknown encoding %q", encoding)
}

// parseCommitBody reads the NDJSON body, storing regular files' content
// as it goes (content-addressed, so an aborted commit leaves nothing
// visible). On failure it has answered.
func (c *call) parseCommitBody() (summary, description, parent string, ops []commitOp, ok bool) {
	// A line holds at most 10 MiB of base64 content plus a path.
	const maxLine = MaxRegularFileSize/3*4 + 64<<10
	br := bufio.NewReaderSize(c.r.Body, 64<<10)
	sawHeader := false
	for {
		line, err := readLine(br, maxLine)
		if errors.Is(err, errTooLarge) {
			c.fail(http.StatusBadRequest, "", tooLargeMessage)
			return
		}
		if err != nil && err != io.EOF {
			c.fail(http.StatusBadRequest, "", "Reading the commit body: %v", err)
			return
		}
		if t := bytes.TrimSpace(line); len(t) > 0 {
			var l struct {
				Key   string `json:"key"`
				Value struct {
					Summary      string `json:"summary"`
					Description  string `json:"description"`
					ParentCommit string `json:"parentCommit"`
					Path         string `json:"path"`
					Content      string `json:"content"`
					Encoding     string `json:"encoding"`
					Algo         string `json:"algo"`
					Oid          string `json:"oid"`
					Size         *int64 `json:"size"`
				} `json:"value"`
			}
			if e := json.Unmarshal(t, &l); e != nil {
				c.fail(http.StatusBadRequest, "", "Invalid NDJSON line: %v", e)
				return
			}
			v := &l.Value
			if !sawHeader && l.Key != "header" {
				c.fail(http.StatusBadRequest, "", "The first line of a commit must be its header")
				return
			}
			if l.Key != "header" {
				p := v.Path
				if l.Key == "deletedFolder" {
					p = strings.TrimSuffix(p, "/")
				}
				if e := validatePath(p); e != nil {
					c.fail(http.StatusBadRequest, "", "Invalid path: %v", e)
					return
				}
				v.Path = p
			}
			switch l.Key {
			case "header":
				if sawHeader {
					c.fail(http.StatusBadRequest, "", "A commit has one header")
					return
				}
				sawHeader = true
				summary, description, parent = v.Summary, v.Description, v.ParentCommit
			case "file":
				data, e := decodeContent(v.Content, v.Encoding)
				if e != nil {
					c.fail(http.StatusBadRequest, "", "Invalid content for %s: %v", v.Path, e)
					return
				}
				if len(data) > MaxRegularFileSize {
					c.fail(http.StatusBadRequest, "", tooLargeMessage)
					return
				}
				sha, e := c.s.storeBlob(data)
				if e != nil {
					c.fail(http.StatusInternalServerError, "", "storage: %v", e)
					return
				}
				ops = append(ops, commitOp{"file", v.Path, fileEntry{Oid: sha, Size: int64(len(data))}})
			case "lfsFile":
				if v.Algo != "" && v.Algo != "sha256" {
					c.fail(http.StatusBadRequest, "", "Unsupported LFS algo %q", v.Algo)
					return
				}
				size := int64(-1)
				if v.Size != nil {
					size = *v.Size
				}
				ops = append(ops, commitOp{"lfsFile", v.Path, fileEntry{LFS: true, Oid: strings.ToLower(v.Oid), Size: size}})
			case "deletedFile", "deletedFolder":
				ops = append(ops, commitOp{l.Key, v.Path, fileEntry{}})
			default:
				c.fail(http.StatusBadRequest, "", "Unknown commit operation %q", l.Key)
				return
			}
		}
		if err == io.EOF {
			break
		}
	}
	if !sawHeader {
		c.fail(http.StatusBadRequest, "", "Empty commit body: a header line is required")
		return
	}
	return summary, description, parent, ops, true
}

// lfsNotFound is the Hub's refusal of an lfsFile whose object the repo
// cannot use; it is the same whether or not the server stores the object,
// so it tells nothing about other repos.
const lfsNotFound = "Your push was rejected because an LFS pointer pointed to a file that does not exist: %s (oid %s). Upload it through the LFS batch first."

// lfsGrants returns, among the oids the commit references that target may
// not use yet, those that another repo the caller can read references in
// one of its commits: the Hub lets a commit point at content the committer
// can already download. Each repo is locked on its own (never two at once).
func (c *call) lfsGrants(target *repo, ops []commitOp) map[string]bool {
	var need []string
	for _, op := range ops {
		if op.kind == "lfsFile" && validOid(op.entry.Oid) && !target.hasLFS(op.entry.Oid) {
			need = append(need, op.entry.Oid)
		}
	}
	grants := map[string]bool{}
	if len(need) == 0 {
		return grants
	}
	c.s.mu.Lock()
	repos := make([]*repo, 0, len(c.s.repos))
	for _, rp := range c.s.repos {
		if rp != target {
			repos = append(repos, rp)
		}
	}
	c.s.mu.Unlock()
	for _, rp := range repos {
		rp.mu.Lock()
		readable := !rp.deleted && c.canRead(&rp.meta)
		rp.mu.Unlock()
		if !readable {
			continue
		}
		for _, oid := range need {
			if !grants[oid] && rp.hasMarker(lfsReferenced, oid) {
				grants[oid] = true
			}
		}
	}
	return grants
}

// applyOps returns the files of base changed by ops, or an answered error.
// An lfsFile must name an object rp may use, or one of grants.
func (c *call) applyOps(rp *repo, base map[string]fileEntry, ops []commitOp, grants map[string]bool) (map[string]fileEntry, bool) {
	files := make(map[string]fileEntry, len(base)+len(ops))
	for p, e := range base {
		files[p] = e
	}
	for _, op := range ops {
		switch op.kind {
		case "file":
			files[op.path] = op.entry
		case "lfsFile":
			stored := int64(-1)
			if rp.hasLFS(op.entry.Oid) || grants[op.entry.Oid] {
				stored = c.s.objectSize(op.entry.Oid)
			}
			if stored < 0 {
				c.fail(http.StatusBadRequest, "", lfsNotFound, op.path, op.entry.Oid)
				return nil, false
			}
			if op.entry.Size >= 0 && op.entry.Size != stored {
				c.fail(http.StatusBadRequest, "", "LFS file %s: size %d does not match the stored object (%d bytes)", op.path, op.entry.Size, stored)
				return nil, false
			}
			e := op.entry
			e.Size = stored
			files[op.path] = e
		case "deletedFile":
			if _, ok := files[op.path]; !ok {
				c.fail(http.StatusNotFound, "EntryNotFound", "A file with this name doesn't exist: %s", op.path)
				return nil, false
			}
			delete(files, op.path)
		case "deletedFolder":
			n := 0
			for p := range files {
				if strings.HasPrefix(p, op.path+"/") {
					delete(files, p)
					n++
				}
			}
			if n == 0 {
				c.fail(http.StatusNotFound, "EntryNotFound", "A folder with this name doesn't exist: %s", op.path)
				return nil, false
			}
		}
	}
	// A path cannot be both a file and a folder.
	for p := range files {
		for d := p; ; {
			i := strings.LastIndexByte(d, '/')
			if i < 0 {
				break
			}
			d = d[:i]
			if _, ok := files[d]; ok {
				c.fail(http.StatusBadRequest, "", "Path conflict: %s is a file, so %s cannot be created", d, p)
				return nil, false
			}
		}
	}
	return files, true
}

func (c *call) commit(ref repoRef, rest []string) {
	rp := c.repo(ref, true)
	if rp == nil {
		return
	}
	rp.mu.Unlock()
	rev := revArg(rest[1:])
	q := c.r.URL.Query().Get("create_pr")
	createPR := q == "1" || q == "true"

	summary, description, parent, ops, ok := c.parseCommitBody()
	if !ok {
		return
	}
	c.s.recordCommit(c.rec, ops)
	grants := c.lfsGrants(rp, ops)
	c.takeXetFiles(rp, ops, grants)
	if rp = c.repo(ref, true); rp == nil {
		return
	}
	defer rp.mu.Unlock()

	var base *commitRec
	var target string // the ref that moves; "" for a new PR
	if createPR {
		if parent != "" {
			base, ok = rp.commit(parent)
			if !ok {
				c.revisionNotFound(parent)
				return
			}
		} else if base, ok = rp.resolveRev(rev); !ok {
			c.revisionNotFound(rev)
			return
		}
	} else {
		id, isRef := rp.refTarget(rev)
		if !isRef {
			if _, isCommit := rp.commit(rev); isCommit {
				c.fail(http.StatusBadRequest, "", "Cannot commit to a commit id (%s): use a branch", rev)
			} else {
				c.revisionNotFound(rev)
			}
			return
		}
		base, _ = rp.commit(id)
		if parent != "" && parent != base.ID {
			c.fail(http.StatusPreconditionFailed, "", "The branch was updated since you opened this page. Please refresh and try again.")
			return
		}
		target = rev
	}
	files, ok := c.applyOps(rp, base.Files, ops, grants)
	if !ok {
		return
	}
	if !c.checkReadme(rp.meta.Type, ops) {
		return
	}
	cm, err := c.s.newCommit(rp, []string{base.ID}, summary, description, c.user, files)
	if err != nil {
		c.fail(http.StatusInternalServerError, "", "storage: %v", err)
		return
	}
	old := rp.meta
	rp.meta.Branches = cloneMap(old.Branches)
	rp.meta.PRs = cloneMap(old.PRs)
	prNum := 0
	switch {
	case createPR:
		prNum = max(rp.meta.NextPR, 1)
		rp.meta.NextPR = prNum + 1
		rp.meta.PRs[strconv.Itoa(prNum)] = cm.ID
	case strings.HasPrefix(target, "refs/pr/"):
		rp.meta.PRs[strings.TrimPrefix(target, "refs/pr/")] = cm.ID
	default:
		rp.meta.Branches[strings.TrimPrefix(target, "refs/heads/")] = cm.ID
	}
	rp.meta.LastWrite = cm.Date
	if err := rp.saveMeta(c.s); err != nil {
		rp.meta = old
		c.fail(http.StatusInternalServerError, "", "storage: %v", err)
		return
	}
	for _, op := range ops {
		if op.kind == "lfsFile" {
			if err := rp.markLFS(lfsReferenced, op.entry.Oid); err != nil {
				c.s.logf("hubemu: %s: marking %s: %v", rp.fullID(), op.entry.Oid, err)
			}
		}
	}
	out := map[string]any{"success": true, "commitOid": cm.ID, "commitUrl": c.repoURL(rp) + "/commit/" + cm.ID, "hookOutput": ""}
	if createPR {
		out["pullRequestUrl"] = c.repoURL(rp) + "/discussions/" + strconv.Itoa(prNum)
	}
	c.json(http.StatusOK, out)
}

// checkReadme refuses a commit that writes a README.md whose metadata the
// Hub would refuse (the rules of validate-yaml). On failure it has answered.
func (c *call) checkReadme(typ string, ops []commitOp) bool {
	for _, op := range ops {
		if op.kind != "file" || op.path != "README.md" {
			continue
		}
		data, err := os.ReadFile(c.s.blobPath(op.entry.Oid))
		if err != nil {
			c.fail(http.StatusInternalServerError, "", "storage: %v", err)
			return false
		}
		if p := checkCard(string(data), typ); len(p.errors) > 0 {
			c.fail(http.StatusBadRequest, "", "Your push was rejected because of invalid metadata in README.md: %s", strings.Join(p.errors, "; "))
			return false
		}
	}
	return true
}

func cloneMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
