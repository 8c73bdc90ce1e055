package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"sync/atomic"
)

// DefaultPartConcurrency is how many part (and basic) PUTs run at once.
const DefaultPartConcurrency = 8

var lfsHeader = http.Header{"Accept": {"application/vnd.git-lfs+json"}, "Content-Type": {"application/vnd.git-lfs+json"}}

// LFSUploadOptions configures UploadLFSObject.
type LFSUploadOptions struct {
	PartConcurrency int               // parts in flight for this object; 0 → 8 (ignored when Slots is set)
	Slots           chan struct{}     // a semaphore shared by several objects' PUTs; nil → own of PartConcurrency
	Progress        func(delta int64) // bytes sent (negative when a failed attempt is rolled back); goroutine-safe
}

// UploadLFSObject uploads src (size bytes, the object of a) as the batch
// answer asks (§4): one basic PUT, or multipart part PUTs followed by the
// completion POST; then verify when asked. Upload and completion URLs never
// receive the token. Each PUT is retried on its own, re-reading only its
// bytes; an action without upload does nothing.
func (c *Client) UploadLFSObject(ctx context.Context, id RepoID, a LFSAction, src io.ReaderAt, opts LFSUploadOptions) error {
	up := a.Upload()
	if up == nil {
		return nil
	}
	slots := opts.Slots
	if slots == nil {
		n := opts.PartConcurrency
		if n <= 0 {
			n = DefaultPartConcurrency
		}
		slots = make(chan struct{}, n)
	}
	progress := opts.Progress
	if progress == nil {
		progress = func(int64) {}
	}
	short := a.OID
	if len(short) > 12 {
		short = short[:12]
	}
	if cs, ok := up.Header["chunk_size"]; ok {
		m, err := newMultipart(a, up, cs, src)
		if err != nil {
			return err
		}
		if err := c.uploadParts(ctx, m, slots, progress, short); err != nil {
			m.abort()
			return err
		}
	} else {
		if err := acquire(ctx, slots); err != nil {
			return err
		}
		_, err := c.putSection(ctx, "upload object "+short, up.Href, io.NewSectionReader(src, 0, a.Size), progress)
		<-slots
		if err != nil {
			return err
		}
	}
	if a.Actions.Verify != nil && a.Actions.Verify.Href != "" {
		// huggingface_hub sends the token here (the verify URL is the Hub's).
		_, err := c.call(ctx, &request{op: "verify object " + short, method: http.MethodPost, url: a.Actions.Verify.Href,
			header: jsonHeader, body: marshalBody(verifyRequest{OID: a.OID, Size: a.Size}), auth: true, retry: true})
		if err != nil {
			return err
		}
	}
	return nil
}

// putSection PUTs one section with retries and no token; a failed
// attempt's bytes are taken back from progress. It returns the ETag.
func (c *Client) putSection(ctx context.Context, op, href string, sec *io.SectionReader, progress func(int64)) (string, error) {
	var attempt atomic.Int64 // bytes the current attempt has read
	r := &request{op: op, method: http.MethodPut, url: href,
		body: func() (io.ReadCloser, int64, error) {
			attempt.Store(0)
			return io.NopCloser(&countingReader{r: io.NewSectionReader(sec, 0, sec.Size()), n: &attempt, progress: progress}), sec.Size(), nil
		},
		retry:   true,
		onRetry: func() { progress(-attempt.Swap(0)) },
	}
	resp, err := c.call(ctx, r)
	if err != nil {
		progress(-attempt.Swap(0))
		return "", err
	}
	return resp.header.Get("ETag"), nil
}

// countingReader reports bytes as the transport reads them.
type countingReader struct {
	r        io.Reader
	n        *atomic.Int64
	progress func(int64)
}

func (cr *countingReader) Read(p []byte) (int, error) {
	k, err := cr.r.Read(p)
	if k > 0 {
		cr.n.Add(int64(k))
		cr.progress(int64(k))
	}
	return k, err
}

// multipart is one HF multipart upload, with rclone's verbs: write part n,
// complete, abort.
type multipart struct {
	oid        string
	completion string   // POST here when every part is in
	parts      []string // presigned PUT URL of part i+1
	chunk      int64
	size       int64
	src        io.ReaderAt
	etags      []string
}

var digits = regexp.MustCompile(`^[0-9]+$`)

// newMultipart validates the server's multipart answer (§4): an integer
// chunk_size, all-digit part keys, ceil(size/chunk) of them.
func newMultipart(a LFSAction, up *LFSHref, chunkSize string, src io.ReaderAt) (*multipart, error) {
	chunk, err := strconv.ParseInt(chunkSize, 10, 64)
	if err != nil || chunk <= 0 {
		return nil, errorf(ErrBadRequest, "lfs batch", "invalid chunk_size %q for object %s", chunkSize, a.OID)
	}
	type kv struct {
		n   int
		url string
	}
	var keys []kv
	for k, v := range up.Header {
		if digits.MatchString(k) {
			n, _ := strconv.Atoi(k)
			keys = append(keys, kv{n, v})
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].n < keys[j].n })
	want := (a.Size + chunk - 1) / chunk
	if int64(len(keys)) != want {
		return nil, errorf(ErrBadRequest, "lfs batch", "the Hub sent %d part URLs for object %s, expected %d (size %d, chunk %d)", len(keys), a.OID, want, a.Size, chunk)
	}
	m := &multipart{oid: a.OID, completion: up.Href, chunk: chunk, size: a.Size, src: src, etags: make([]string, len(keys))}
	for _, k := range keys {
		m.parts = append(m.parts, k.url)
	}
	return m, nil
}

// writePart uploads part n (0-based) from its own section of the file.
func (m *multipart) writePart(ctx context.Context, c *Client, n int, progress func(int64), short string) error {
	off := int64(n) * m.chunk
	sec := io.NewSectionReader(m.src, off, min(m.chunk, m.size-off))
	etag, err := c.putSection(ctx, fmt.Sprintf("upload part %d/%d of %s", n+1, len(m.parts), short), m.parts[n], sec, progress)
	if err != nil {
		return err
	}
	if etag == "" {
		return errorf(ErrBadRequest, "upload part", "part %d of %s was accepted without an ETag; the upload cannot be completed", n+1, short)
	}
	m.etags[n] = etag
	return nil
}

// complete posts the part list to the completion URL (no token).
func (m *multipart) complete(ctx context.Context, c *Client, short string) error {
	body := completionRequest{OID: m.oid}
	for i, e := range m.etags {
		body.Parts = append(body.Parts, completionPart{PartNumber: i + 1, ETag: e})
	}
	b, _ := json.Marshal(body)
	_, err := c.call(ctx, &request{op: "complete upload of " + short, method: http.MethodPost, url: m.completion,
		header: lfsHeader, body: bytesBody(b), retry: true})
	return err
}

// abort gives up. The Hub has no abort call: incomplete multipart uploads
// expire on the storage side, so there is nothing to send.
func (m *multipart) abort() {}

// uploadParts is the driver: parts in parallel within the shared slots,
// every byte accounted for, then the completion.
func (c *Client) uploadParts(ctx context.Context, m *multipart, slots chan struct{}, progress func(int64), short string) error {
	g := newGroup(ctx, len(slots)+cap(slots))
	for n := range m.parts {
		n := n
		if err := acquire(g.ctx, slots); err != nil {
			break
		}
		if !g.do(func(ctx context.Context) error {
			defer func() { <-slots }()
			return m.writePart(ctx, c, n, progress, short)
		}) {
			<-slots
			break
		}
	}
	if err := g.wait(); err != nil {
		return err
	}
	var total int64
	for n := range m.parts {
		if m.etags[n] == "" {
			return errorf(ErrBadRequest, "upload", "part %d of %s is missing", n+1, short)
		}
		total += min(m.chunk, m.size-int64(n)*m.chunk)
	}
	if total != m.size {
		return fmt.Errorf("hub: multipart upload of %s: parts cover %d bytes, expected %d: %w", short, total, m.size, io.ErrUnexpectedEOF)
	}
	return m.complete(ctx, c, short)
}
