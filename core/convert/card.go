package convert

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"modelpub/core/card"
	"modelpub/core/folder"
	"modelpub/core/hub"
	"modelpub/core/pipeline"
	"modelpub/core/tensors"
)

// SourceFile identifies the checkpoint a folder was converted from, as its
// card records it.
type SourceFile struct {
	Name   string `json:"name"`   // the file's base name
	Size   int64  `json:"size"`   // bytes
	SHA256 string `json:"sha256"` // of the whole file, lowercase hex
}

// sourceHash hashes the checkpoint on a goroutine of its own while the
// conversion writes and verifies: the writer copies byte ranges in the
// kernel and Verify reads only the mapped ranges, in output order, so
// neither pass sees the whole file in order; one more sequential read,
// overlapped with the rest, costs little wall time. A checkpoint the hash
// cache knows, unchanged since (same size, modification time and file
// id), is not read at all.
type sourceHash struct {
	cancel context.CancelFunc
	done   chan struct{}
	read   atomic.Int64 // bytes hashed so far
	src    SourceFile
	err    error
}

// hashSource starts hashing the file at path, through hc (nil: no cache).
// wait gives the result; stop (deferred by the caller) ends the goroutine
// on every path.
func hashSource(ctx context.Context, hc *hub.HashCache, path string) *sourceHash {
	ctx, cancel := context.WithCancel(ctx)
	h := &sourceHash{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(h.done)
		h.src, h.err = hashFile(ctx, hc, path, func(n int64) { h.read.Add(n) })
	}()
	return h
}

// wait returns the source file's identity once hashed, calling progress
// with the bytes hashed and the file's size every 100 ms until then.
func (h *sourceHash) wait(size int64, progress func(done, total int64)) (SourceFile, error) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-h.done:
			return h.src, h.err
		case <-tick.C:
			progress(min(h.read.Load(), size), size)
		}
	}
}

// stop cancels the hash if it still runs and waits for its goroutine.
func (h *sourceHash) stop() {
	h.cancel()
	<-h.done
}

// hashFile is the name, size and sha256 of the file at path: from hc when
// it knows the file unchanged, else read once (and stored in hc).
func hashFile(ctx context.Context, hc *hub.HashCache, path string, progress func(int64)) (SourceFile, error) {
	st, err := os.Stat(path)
	if err != nil {
		return SourceFile{}, err
	}
	h, err := hub.HashFile(ctx, hc, path, true, progress)
	if err != nil {
		return SourceFile{}, err
	}
	if h.SHA256 == "" {
		return SourceFile{}, fmt.Errorf("%s: no sha256", path)
	}
	return SourceFile{Name: filepath.Base(path), Size: st.Size(), SHA256: h.SHA256}, nil
}

// publishedLine ends every generated card body (card.Generate); the
// source section goes before it.
const publishedLine = "Published with Modelpub.\n"

// cardFor is the model card of a converted folder: core/card's generated
// card for the folder as it will be named (dst), its body with a Source
// section naming the checkpoint's file, size and sha256, the type detected
// and whether every tensor was verified against it.
func cardFor(p *pipeline.Pipeline, dst string, d Detection, src SourceFile, verified bool) ([]byte, error) {
	name := filepath.Base(dst)
	if abs, err := filepath.Abs(dst); err == nil {
		name = filepath.Base(abs)
	}
	c := card.Generate(p, card.GenerateOptions{RepoID: card.PlaceholderNamespace + "/" + name})
	var b strings.Builder
	b.WriteString("## Source\n\n")
	fmt.Fprintf(&b, "Converted by Modelpub from the single-file checkpoint %s (%s), as diffusers' `from_single_file` followed by `save_pretrained` converts it",
		mdCode(src.Name), d.Name)
	if verified {
		b.WriteString("; every tensor was checked against the checkpoint's bytes")
	}
	b.WriteString(".\n\n| Checkpoint | Size | SHA-256 |\n| --- | ---: | --- |\n")
	fmt.Fprintf(&b, "| %s | %s | `%s` |\n\n", strings.ReplaceAll(mdCode(src.Name), "|", `\|`), tensors.FormatSize(src.Size), src.SHA256)
	body := c.Body()
	if i := strings.LastIndex(body, publishedLine); i >= 0 {
		body = body[:i] + b.String() + body[i:]
	} else {
		body += "\n" + b.String()
	}
	c.SetBody(body)
	return c.Bytes()
}

// mdCode writes a file name as a Markdown code span: printable (control
// characters escaped, see folder.Printable), fenced by more backticks than
// it holds in a row.
func mdCode(s string) string {
	s = folder.Printable(s)
	run, longest := 0, 0
	for _, r := range s {
		if r == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	fence := strings.Repeat("`", longest+1)
	if longest > 0 {
		return fence + " " + s + " " + fence
	}
	return fence + s + fence
}

// writeCard writes the card into the staging folder.
func (w *writer) writeCard(ctx context.Context, p *pipeline.Pipeline, dst string, h *sourceHash) error {
	src, err := h.wait(w.c.Size, func(done, total int64) { w.progress("hash", "", done, total) })
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	w.res.Source = src
	data, err := cardFor(p, dst, w.plan.Detection, src, !w.opts.SkipVerify)
	if err != nil {
		return fmt.Errorf("model card: %w", err)
	}
	if err := os.WriteFile(filepath.Join(w.stage, card.FileName), data, 0o644); err != nil {
		return err
	}
	w.res.Files = append(w.res.Files, card.FileName)
	w.res.Bytes += int64(len(data))
	return nil
}
