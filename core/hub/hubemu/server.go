package hubemu

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Server.
type Options struct {
	Dir                string                       // repo state on disk (created); "" = a temp dir removed on Close
	Tokens             map[string]string            // token → user name; nil = open mode (any "hf_" token, user "user", every namespace writable)
	ReadTokens         map[string]bool              // tokens of Tokens whose role is "read": they may read but never write
	Orgs               map[string]map[string]string // org → member user → role in the org ("admin", "write", "contributor", "read")
	ChunkSize          int64                        // multipart chunk size offered by the LFS batch; 0 = 64 MiB
	MultipartThreshold int64                        // objects larger than this go multipart; 0 = ChunkSize
	TreePageSize       int                          // entries per tree page; 0 = 1000, as the Hub
	BaseURL            string                       // origin put in returned URLs; "" = from the request (scheme + Host)
	NoXet              bool                         // the LFS batch never answers the "xet" transfer (the Hub does when the client offers it)
	Faults             FaultSpec                    // injected failures
	Record             bool                         // keep a log of requests, see Requests
	Logf               func(format string, a ...any)
}

// Request is one recorded request. Secrets are not kept: Authorization is
// reduced to whether it was present.
type Request struct {
	Time     time.Time   // arrival
	Class    string      // endpoint class (Class* constants)
	Method   string      // HTTP method
	Path     string      // escaped path
	Query    string      // raw query
	Header   http.Header // request headers without Authorization and Cookie
	Auth     bool        // an Authorization header arrived
	BodySize int64       // request body bytes read by the server
	Status   int         // response status; 0 if the connection was dropped
	Fault    FaultKind   // the injected fault, if any
	// Commit lists the operations of a commit request's body, in order,
	// once the body was read whole (nil for other requests).
	Commit []CommitOp
}

// CommitOp is one operation line of a recorded commit.
type CommitOp struct {
	Kind string // "file", "lfsFile", "deletedFile" or "deletedFolder"
	Path string //
	Size int64  // file: the decoded content's length; lfsFile: the declared size (-1 if none); deletions: 0
}

// Server is a local Hugging Face Hub: the publish protocol over HTTP with
// its state on disk.
type Server struct {
	opts      Options
	dir       string
	removeDir bool
	key       []byte // signs upload URLs
	faults    atomic.Pointer[faulter]
	cas       *XetCAS // the Xet CAS, under dir/xet, served under /v1/ and /v2/

	mu       sync.Mutex
	repos    map[string]*repo
	sessions map[string]*mpSession

	recMu sync.Mutex
	reqs  []*Request

	inflight sync.WaitGroup
	srvMu    sync.Mutex
	srv      *http.Server
	serveErr chan error
	url      string
	closed   bool
}

// New prepares a server over opts.Dir; it serves through Handler or Start.
func New(opts Options) (*Server, error) {
	s := &Server{opts: opts, repos: map[string]*repo{}, sessions: map[string]*mpSession{}}
	if s.opts.ChunkSize <= 0 {
		s.opts.ChunkSize = 64 << 20
	}
	if s.opts.MultipartThreshold <= 0 {
		s.opts.MultipartThreshold = s.opts.ChunkSize
	}
	if s.opts.TreePageSize <= 0 {
		s.opts.TreePageSize = 1000
	}
	s.opts.BaseURL = strings.TrimRight(s.opts.BaseURL, "/")
	s.faults.Store(newFaulter(opts.Faults))
	s.key = make([]byte, 32)
	if _, err := rand.Read(s.key); err != nil {
		return nil, err
	}
	if opts.Dir == "" {
		d, err := os.MkdirTemp("", "hubemu-*")
		if err != nil {
			return nil, err
		}
		s.dir, s.removeDir = d, true
	} else {
		abs, err := filepath.Abs(opts.Dir)
		if err != nil {
			return nil, err
		}
		s.dir = abs
	}
	for _, d := range []string{"objects", "repos", "uploads", "tmp"} {
		if err := os.MkdirAll(filepath.Join(s.dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	// Leftovers of a previous run: temp files and parts whose sessions
	// lived in memory only.
	for _, d := range []string{"tmp", "uploads"} {
		ents, _ := os.ReadDir(filepath.Join(s.dir, d))
		for _, e := range ents {
			os.RemoveAll(filepath.Join(s.dir, d, e.Name()))
		}
	}
	if err := s.loadRepos(); err != nil {
		return nil, err
	}
	cas, err := NewXetCAS(filepath.Join(s.dir, "xet"), s.opts.BaseURL)
	if err != nil {
		return nil, err
	}
	s.cas = cas
	return s, nil
}

// SetFaults replaces the fault spec; the counts of requests seen restart.
func (s *Server) SetFaults(spec FaultSpec) { s.faults.Store(newFaulter(spec)) }

// Dir returns the directory holding the state.
func (s *Server) Dir() string { return s.dir }

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// Start listens on addr ("" = 127.0.0.1:0) and serves in a goroutine. It
// returns the base URL, e.g. http://127.0.0.1:8765.
func (s *Server) Start(addr string) (string, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	if s.srv != nil || s.closed {
		return "", errors.New("hubemu: server already started or closed")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	host := ln.Addr().(*net.TCPAddr)
	ip := host.IP
	if ip.IsUnspecified() {
		if ip.To4() != nil {
			ip = net.IPv4(127, 0, 0, 1)
		} else {
			ip = net.IPv6loopback
		}
	}
	s.url = "http://" + net.JoinHostPort(ip.String(), fmt.Sprint(host.Port))
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 30 * time.Second}
	s.serveErr = make(chan error, 1)
	go func() { s.serveErr <- s.srv.Serve(ln) }()
	return s.url, nil
}

// URL returns the base URL once started.
func (s *Server) URL() string {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	return s.url
}

// Close stops the server, waits for its handlers, and removes a temp dir.
func (s *Server) Close() error {
	s.srvMu.Lock()
	if s.closed {
		s.srvMu.Unlock()
		return nil
	}
	s.closed = true
	srv := s.srv
	s.srvMu.Unlock()
	var err error
	if srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if e := srv.Shutdown(ctx); e != nil {
			srv.Close() // requests still running: cut them
		}
		cancel()
		if e := <-s.serveErr; e != nil && !errors.Is(e, http.ErrServerClosed) {
			err = e
		}
	}
	s.inflight.Wait()
	if s.removeDir {
		if e := os.RemoveAll(s.dir); e != nil && err == nil {
			err = e
		}
	}
	return err
}

// Requests returns a copy of the recorded requests, oldest first.
func (s *Server) Requests() []Request {
	s.recMu.Lock()
	defer s.recMu.Unlock()
	out := make([]Request, len(s.reqs))
	for i, r := range s.reqs {
		out[i] = *r
		out[i].Header = r.Header.Clone()
		out[i].Commit = append([]CommitOp(nil), r.Commit...)
	}
	return out
}

// ResetRequests forgets the recorded requests.
func (s *Server) ResetRequests() {
	s.recMu.Lock()
	s.reqs = nil
	s.recMu.Unlock()
}

func (s *Server) logf(format string, a ...any) {
	if s.opts.Logf != nil {
		s.opts.Logf(format, a...)
	}
}

// --- request plumbing ------------------------------------------------------

// call is the state of one request as handlers see it.
type call struct {
	w      http.ResponseWriter
	r      *http.Request
	s      *Server
	rec    *Request // the recorded request, nil unless Options.Record
	user   string   // authenticated user, "" for anonymous
	read   bool     // the token's role is "read"
	origin string   // scheme://host for returned URLs
}

// statusWriter records the status it passes on.
type statusWriter struct {
	http.ResponseWriter
	rec    *Request
	s      *Server
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
		w.s.setStatus(w.rec, code)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(p)
}

// discardWriter swallows a response whose connection will be dropped.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}

// countingBody counts the request body bytes read.
type countingBody struct {
	io.ReadCloser
	n int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n += int64(n)
	return n, err
}

// recordCommit keeps a commit's operations on its recorded request.
func (s *Server) recordCommit(rec *Request, ops []commitOp) {
	if rec == nil {
		return
	}
	out := make([]CommitOp, len(ops))
	for i, op := range ops {
		out[i] = CommitOp{Kind: op.kind, Path: op.path}
		if op.kind == "file" || op.kind == "lfsFile" {
			out[i].Size = op.entry.Size
		}
	}
	s.recMu.Lock()
	rec.Commit = out
	s.recMu.Unlock()
}

func (s *Server) setStatus(rec *Request, code int) {
	if rec == nil {
		return
	}
	s.recMu.Lock()
	rec.Status = code
	s.recMu.Unlock()
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.inflight.Add(1)
	defer s.inflight.Done()
	start := time.Now()
	rt := s.route(r)

	var rec *Request
	if s.opts.Record {
		h := r.Header.Clone()
		h.Del("Authorization")
		h.Del("Cookie")
		rec = &Request{Time: start, Class: rt.class, Method: r.Method, Path: r.URL.EscapedPath(),
			Query: r.URL.RawQuery, Header: h, Auth: r.Header.Get("Authorization") != ""}
		s.recMu.Lock()
		s.reqs = append(s.reqs, rec)
		s.recMu.Unlock()
	}
	body := &countingBody{ReadCloser: r.Body}
	r.Body = body
	sw := &statusWriter{ResponseWriter: w, rec: rec, s: s}
	w.Header().Set("X-Request-Id", "Root="+randomHex(12))

	faults := s.faults.Load()
	fault := faults.pick(rt.class, r.Method, r.URL.Path)
	if rec != nil && fault != "" {
		s.recMu.Lock()
		rec.Fault = fault
		s.recMu.Unlock()
	}
	defer func() {
		if rec != nil {
			s.recMu.Lock()
			rec.BodySize = body.n
			s.recMu.Unlock()
		}
		s.logf("%s %s %d %s%s", r.Method, r.URL.Path, sw.status, time.Since(start).Round(time.Millisecond), faultNote(fault))
	}()

	switch fault {
	case Fault500:
		writeError(sw, http.StatusInternalServerError, "", "Internal Error - We're working hard to fix this as soon as possible!")
		return
	case Fault503:
		writeError(sw, http.StatusServiceUnavailable, "", "Service Unavailable, please retry later")
		return
	case Fault429:
		sw.Header().Set("Retry-After", "1")
		writeError(sw, http.StatusTooManyRequests, "", "You have exceeded our hourly quotas for action: api. Retry later.")
		return
	case FaultDrop:
		dropConnection(w)
		return
	case FaultSlow:
		t := time.NewTimer(faults.spec.SlowDelay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	case FaultLost:
		// Serve completely, then lose the answer.
		c := s.newCall(&discardWriter{h: http.Header{}}, r)
		if c != nil {
			c.rec = rec
			rt.handle(c)
		}
		dropConnection(w)
		return
	}
	if c := s.newCall(sw, r); c != nil {
		c.rec = rec
		rt.handle(c)
	}
}

func faultNote(f FaultKind) string {
	if f == "" {
		return ""
	}
	return " fault=" + string(f)
}

// dropConnection closes the client connection without an answer.
func dropConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// newCall authenticates the request. A token that is not known gets 401,
// on every endpoint, as on the Hub.
func (s *Server) newCall(w http.ResponseWriter, r *http.Request) *call {
	c := &call{w: w, r: r, s: s, origin: s.origin(r)}
	auth := r.Header.Get("Authorization")
	if auth == "" || isUploadPath(r.URL.Path) || isCASPath(r.URL.Path) {
		return c // the upload handlers refuse Authorization themselves; the CAS checks its own tokens
	}
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok {
		tok, ok = strings.CutPrefix(auth, "bearer ")
	}
	tok = strings.TrimSpace(tok)
	user := ""
	if ok {
		if s.opts.Tokens == nil {
			if strings.HasPrefix(tok, "hf_") && len(tok) > 3 {
				user = "user"
			}
		} else {
			user = s.opts.Tokens[tok]
		}
	}
	if user == "" {
		writeError(w, http.StatusUnauthorized, "", "Invalid credentials in Authorization header")
		return nil
	}
	c.user = user
	c.read = s.opts.ReadTokens[tok]
	return c
}

func (s *Server) origin(r *http.Request) string {
	if s.opts.BaseURL != "" {
		return s.opts.BaseURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// canWrite reports whether the caller may write to namespace ns: its own,
// or an org where its role is not "read"; never with a read token.
func (c *call) canWrite(ns string) bool {
	if c.user == "" || c.read {
		return false
	}
	if c.s.opts.Tokens == nil || strings.EqualFold(c.user, ns) {
		return true
	}
	for org, members := range c.s.opts.Orgs {
		if strings.EqualFold(org, ns) {
			role, ok := members[c.user]
			return ok && role != "read"
		}
	}
	return false
}

// canRead reports whether the caller may download the files of a repo:
// public and not gated, or one it may write to. Callers hold the repo's mu.
func (c *call) canRead(meta *repoMeta) bool {
	return !meta.Private && meta.Gated == "" || c.canWrite(meta.NS)
}

// orgsOf lists the orgs user belongs to, as whoami-v2 does, sorted by name.
func (s *Server) orgsOf(user string) []map[string]any {
	orgs := []map[string]any{}
	for org, members := range s.opts.Orgs {
		if role, ok := members[user]; ok {
			orgs = append(orgs, map[string]any{"type": "org", "id": stableID("org/" + org), "name": org,
				"fullname": org, "email": nil, "canPay": false, "avatarUrl": "/avatars/" + org + ".svg",
				"periodEnd": nil, "roleInOrg": role})
		}
	}
	sort.Slice(orgs, func(i, j int) bool { return orgs[i]["name"].(string) < orgs[j]["name"].(string) })
	return orgs
}

// --- responses -------------------------------------------------------------

// writeError answers with the Hub's error envelope: X-Error-Code (when
// code is set), X-Error-Message and a JSON {"error": msg} body.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	h := w.Header()
	if code != "" {
		h.Set("X-Error-Code", code)
	}
	h.Set("X-Error-Message", headerSafe(msg))
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Del("Content-Length")
	h.Del("ETag")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

func headerSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (c *call) fail(status int, code, format string, a ...any) {
	writeError(c.w, status, code, fmt.Sprintf(format, a...))
}

func (c *call) json(status int, v any) { writeJSON(c.w, status, v) }

// readJSON decodes a JSON body of at most limit bytes; on failure it has
// answered 400.
func (c *call) readJSON(v any, limit int64) bool {
	dec := json.NewDecoder(http.MaxBytesReader(c.w, c.r.Body, limit))
	if err := dec.Decode(v); err != nil {
		c.fail(http.StatusBadRequest, "", "Invalid JSON body: %v", err)
		return false
	}
	return true
}

// repoURL is the web URL of a repo on this server.
func (c *call) repoURL(rp *repo) string {
	return c.origin + "/" + urlPrefix(rp.meta.Type) + rp.fullID()
}

// --- routing ---------------------------------------------------------------

// route is what a request path maps to.
type route struct {
	class  string
	handle func(*call)
}

func isUploadPath(p string) bool { return strings.HasPrefix(p, "/_emu/lfs/") }

// repoRef is the repo part of a URL.
type repoRef struct{ typ, ns, name string }

func unesc(seg string) string {
	if u, err := url.PathUnescape(seg); err == nil {
		return u
	}
	return seg
}

// route maps a request to its handler. Paths are split on the escaped
// form so that an encoded "%2F" inside a revision stays in its segment.
func (s *Server) route(r *http.Request) route {
	segs := strings.Split(strings.TrimPrefix(r.URL.EscapedPath(), "/"), "/")
	m := r.Method
	notFound := route{ClassOther, func(c *call) { c.fail(http.StatusNotFound, "", "Not Found: %s", r.URL.Path) }}
	methodNA := route{ClassOther, func(c *call) {
		c.fail(http.StatusMethodNotAllowed, "", "Method %s not allowed on %s", m, r.URL.Path)
	}}
	is := func(rt route, methods ...string) route {
		for _, x := range methods {
			if x == m {
				return rt
			}
		}
		return methodNA
	}
	switch {
	case len(segs) >= 1 && segs[0] == "api":
		switch {
		case len(segs) == 2 && segs[1] == "whoami-v2":
			return is(route{ClassWhoami, (*call).whoami}, "GET")
		case len(segs) == 3 && segs[1] == "repos" && segs[2] == "create":
			return is(route{ClassCreate, (*call).createRepo}, "POST")
		case len(segs) == 3 && segs[1] == "repos" && segs[2] == "delete":
			return is(route{ClassDelete, (*call).deleteRepo}, "DELETE")
		case len(segs) == 2 && segs[1] == "validate-yaml":
			return is(route{ClassValidate, (*call).validateYAML}, "POST")
		case len(segs) >= 4 && repoKinds[segs[1]] != "":
			ref := repoRef{repoKinds[segs[1]], unesc(segs[2]), unesc(segs[3])}
			rest := segs[4:]
			with := func(class string, h func(*call, repoRef, []string)) route {
				return route{class, func(c *call) { h(c, ref, rest) }}
			}
			if len(rest) == 0 {
				return is(with(ClassInfo, (*call).repoInfo), "GET")
			}
			switch rest[0] {
			case "revision":
				return is(with(ClassInfo, (*call).repoInfo), "GET")
			case "preupload":
				return is(with(ClassPreupload, (*call).preupload), "POST")
			case "commit":
				return is(with(ClassCommit, (*call).commit), "POST")
			case "paths-info":
				return is(with(ClassTree, (*call).pathsInfo), "POST")
			case "tree":
				return is(with(ClassTree, (*call).tree), "GET")
			case "branch":
				return is(with(ClassBranch, (*call).branch), "POST", "DELETE")
			case "refs":
				return is(with(ClassBranch, (*call).refs), "GET")
			case "commits":
				return is(with(ClassBranch, (*call).commits), "GET")
			case "settings":
				return is(with(ClassBranch, (*call).settings), "PUT")
			case "xet-write-token", "xet-read-token":
				write := rest[0] == "xet-write-token"
				return is(with(ClassXetToken, func(c *call, ref repoRef, rest []string) { c.xetToken(ref, rest, write) }), "GET")
			}
		}
		return notFound
	case isCASPath(r.URL.Path):
		return route{ClassXet, (*call).serveCAS}
	case len(segs) >= 3 && segs[0] == "_emu" && segs[1] == "lfs":
		switch {
		case segs[2] == "upload" && len(segs) == 4:
			return is(route{ClassLFSUpload, func(c *call) { c.basicUpload(segs[3]) }}, "PUT")
		case segs[2] == "part" && len(segs) == 5:
			return is(route{ClassLFSUpload, func(c *call) { c.partUpload(segs[3], segs[4]) }}, "PUT")
		case segs[2] == "complete" && len(segs) == 4:
			return is(route{ClassLFSComplete, func(c *call) { c.completeUpload(segs[3]) }}, "POST")
		}
		return notFound
	}
	typ := "model"
	if len(segs) >= 4 && (segs[0] == "datasets" || segs[0] == "spaces") {
		typ = repoKinds[segs[0]]
		segs = segs[1:]
	}
	if len(segs) < 3 || segs[2] != "resolve" && segs[2] != "raw" && !strings.HasSuffix(segs[1], ".git") {
		if pref, rest, ok := repoPageRoute("model", strings.Split(strings.TrimPrefix(r.URL.EscapedPath(), "/"), "/")); ok {
			return is(route{ClassOther, func(c *call) { c.repoPage(pref, rest) }}, "GET")
		}
		return notFound
	}
	ref := repoRef{typ, unesc(segs[0]), unesc(segs[1])}
	rest := segs[2:]
	if name, ok := strings.CutSuffix(ref.name, ".git"); ok && len(rest) == 4 &&
		rest[0] == "info" && rest[1] == "lfs" && rest[2] == "objects" {
		ref.name = name
		switch rest[3] {
		case "batch":
			return is(route{ClassLFSBatch, func(c *call) { c.lfsBatch(ref) }}, "POST")
		case "verify":
			return is(route{ClassLFSVerify, func(c *call) { c.lfsVerify(ref) }}, "POST")
		}
		return notFound
	}
	switch rest[0] {
	case "resolve", "raw":
		raw := rest[0] == "raw"
		return is(route{ClassResolve, func(c *call) { c.resolve(ref, rest[1:], raw) }}, "GET", "HEAD")
	}
	return notFound
}

// routeRepoPage maps the web URLs the API hands out — the repo URL, its
// commit/{id}, discussions/{n} and tree/{rev} — to a plain-text page.
func repoPageRoute(typ string, segs []string) (repoRef, []string, bool) {
	if len(segs) >= 3 && (segs[0] == "datasets" || segs[0] == "spaces") {
		typ = repoKinds[segs[0]]
		segs = segs[1:]
	}
	if len(segs) < 2 || segs[0] == "" || segs[1] == "" || segs[0] == "api" || segs[0] == "_emu" {
		return repoRef{}, nil, false
	}
	return repoRef{typ, unesc(segs[0]), unesc(segs[1])}, segs[2:], true
}
