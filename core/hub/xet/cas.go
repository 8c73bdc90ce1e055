package xet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The CAS error kinds. Every error a CASClient or FetchToken returns for a
// response or a failed connection is a *CASError wrapping exactly one.
var (
	// ErrUnauthorized: the token was refused (401), also after a fresh one.
	ErrUnauthorized = errors.New("xet: unauthorized")
	// ErrForbidden: the token's scope does not allow this (403), e.g. a read token for an upload.
	ErrForbidden = errors.New("xet: forbidden")
	// ErrNotFound: no such file, chunk or repository (404).
	ErrNotFound = errors.New("xet: not found")
	// ErrRefused: the CAS refused the request (400 and other 4xx): a xorb
	// whose hash does not match, a shard naming a xorb it does not hold or
	// failing verification.
	ErrRefused = errors.New("xet: refused")
	// ErrRateLimited: 429 with a wait longer than the policy accepts, or retries exhausted.
	ErrRateLimited = errors.New("xet: rate limited")
	// ErrServer: 5xx or 408 and retries did not help.
	ErrServer = errors.New("xet: server error")
	// ErrNetwork: the CAS could not be reached, or the connection broke, and retries did not help.
	ErrNetwork = errors.New("xet: network error")
)

// CASError is a failed CAS or token call.
type CASError struct {
	Kind       error         // one of the kinds above
	Op         string        // "upload xorb 0123…", "upload shard", "xet write token", …
	StatusCode int           // 0 for network errors
	Message    string        // the server's message, without any token
	RequestID  string        // X-Request-Id, for bug reports
	RetryAfter time.Duration // for ErrRateLimited
	Err        error         // the network cause, if any
}

func (e *CASError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "xet: %s: %s", e.Op, strings.TrimPrefix(e.Kind.Error(), "xet: "))
	var d []string
	if e.StatusCode != 0 {
		d = append(d, "HTTP "+strconv.Itoa(e.StatusCode))
	}
	if e.Message != "" {
		d = append(d, strconv.Quote(e.Message))
	}
	if e.Err != nil {
		d = append(d, e.Err.Error())
	}
	if e.RetryAfter > 0 {
		d = append(d, "retry after "+e.RetryAfter.Round(time.Second).String())
	}
	if e.RequestID != "" {
		d = append(d, "request id "+e.RequestID)
	}
	if len(d) > 0 {
		b.WriteString(" (" + strings.Join(d, "; ") + ")")
	}
	return b.String()
}

// Unwrap returns the kind and the cause.
func (e *CASError) Unwrap() []error {
	if e.Err != nil {
		return []error{e.Kind, e.Err}
	}
	return []error{e.Kind}
}

// Retry is the backoff of CAS calls, with core/hub's RetryPolicy defaults
// (huggingface_hub's http_backoff): 5 retries, waits of 1, 2, 4, 8, 8 s
// with equal jitter, a server-requested wait honoured up to 5 minutes.
// Every CAS call is idempotent (xorbs and shards are content-addressed),
// so every one is retried.
type Retry struct {
	MaxRetries    int           // 0 → 5, negative → none
	BaseWait      time.Duration // 0 → 1s
	MaxWait       time.Duration // 0 → 8s
	MaxServerWait time.Duration // 0 → 5m
}

func (p Retry) withDefaults() Retry {
	switch {
	case p.MaxRetries == 0:
		p.MaxRetries = 5
	case p.MaxRetries < 0:
		p.MaxRetries = 0
	}
	if p.BaseWait <= 0 {
		p.BaseWait = time.Second
	}
	if p.MaxWait <= 0 {
		p.MaxWait = 8 * time.Second
	}
	p.MaxWait = max(p.MaxWait, p.BaseWait)
	if p.MaxServerWait <= 0 {
		p.MaxServerWait = 5 * time.Minute
	}
	return p
}

func (p Retry) backoff(attempt int) time.Duration {
	d := p.BaseWait
	for i := 0; i < attempt && d < p.MaxWait; i++ {
		d *= 2
	}
	d = min(d, p.MaxWait)
	half := d / 2
	return half + rand.N(half+1)
}

// retryStatus: the statuses worth another try (docs/xet/api.md's retryable
// errors, plus 408 and 502 as core/hub retries them).
var retryStatus = map[int]bool{
	http.StatusRequestTimeout:      true,
	http.StatusTooManyRequests:     true,
	http.StatusInternalServerError: true,
	http.StatusBadGateway:          true,
	http.StatusServiceUnavailable:  true,
	http.StatusGatewayTimeout:      true,
}

// Token is a CAS access token and where to use it. It never prints its
// secret: String, GoString and %v show the CAS URL and expiry only.
type Token struct {
	AccessToken string
	CASURL      string
	Expires     time.Time
}

func (t Token) String() string {
	return fmt.Sprintf("xet token for %s (expires %s)", t.CASURL, t.Expires.UTC().Format(time.RFC3339))
}

// GoString keeps %#v from printing the secret.
func (t Token) GoString() string { return t.String() }

// tokenJSON is the Hub's xet-read-token / xet-write-token answer.
type tokenJSON struct {
	AccessToken string `json:"accessToken"`
	Exp         int64  `json:"exp"` // unix seconds
	CASURL      string `json:"casUrl"`
}

// WriteTokenURL is the Hub's xet-write-token endpoint for a repository
// (repoType "model", "dataset" or "space") and revision; the revision is
// one path segment, escaped ("refs/pr/1" → "refs%2Fpr%2F1").
func WriteTokenURL(endpoint, repoType, repoID, revision string) string {
	return fmt.Sprintf("%s/api/%ss/%s/xet-write-token/%s",
		strings.TrimRight(endpoint, "/"), repoType, repoID, url.PathEscape(revision))
}

// caller runs HTTP requests with retries; shared by the token fetch and
// the CAS client.
type caller struct {
	http    *http.Client
	header  http.Header // sent with every request (User-Agent, X-Xet-Session-Id)
	retry   Retry
	sleep   func(context.Context, time.Duration) error
	logf    func(string, ...any)
	secrets func() []string // scrubbed from messages
}

// attempt is one request's outcome.
type attempt struct {
	status int
	header http.Header
	body   []byte
}

// do sends method target() with body (nil: none) and the bearer token
// from auth, both asked again on each try so a refreshed token and its URL
// are used, retrying per the policy. A 401 calls onUnauthorized once and
// retries when it returns true. Any 2xx answer is returned.
func (c *caller) do(ctx context.Context, op, method string, target func() string, body []byte,
	auth func(context.Context) (string, error), onUnauthorized func() bool) (*attempt, error) {
	p := c.retry.withDefaults()
	refreshed := false
	for try := 0; ; try++ {
		token, err := auth(ctx)
		if err != nil {
			return nil, err
		}
		a, err := c.once(ctx, method, target(), body, token)
		var e *CASError
		switch {
		case err != nil && ctx.Err() != nil:
			return nil, ctx.Err()
		case err != nil:
			e = &CASError{Kind: ErrNetwork, Op: op, Err: err}
		case a.status >= 200 && a.status < 300:
			return a, nil
		default:
			e = c.classify(op, a)
			if a.status == http.StatusUnauthorized && !refreshed && onUnauthorized != nil && onUnauthorized() {
				refreshed = true
				c.log("%s: HTTP 401, retrying with a fresh token", op)
				continue
			}
		}
		retryable := e.Kind == ErrNetwork || retryStatus[e.StatusCode]
		if !retryable || try >= p.MaxRetries {
			return nil, e
		}
		wait := p.backoff(try)
		if a != nil {
			if w, ok := serverWait(a.header); ok {
				if w > p.MaxServerWait {
					e.Kind, e.RetryAfter = ErrRateLimited, w
					return nil, e
				}
				wait = max(wait, w)
			}
		}
		c.log("%s: %v; retry %d of %d in %s", op, e, try+1, p.MaxRetries, wait.Round(time.Millisecond))
		if err := c.sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

func (c *caller) log(format string, args ...any) {
	if c.logf != nil {
		c.logf(format, args...)
	}
}

// maxAnswer caps how much of a CAS answer is read: JSON answers are small,
// a global-dedup shard is at most a shard.
const maxAnswer = MaxShardSize + 1<<20

func (c *caller) once(ctx context.Context, method, rawURL string, body []byte, token string) (*attempt, error) {
	var fb *fencedBody
	var rd io.Reader
	if body != nil {
		fb = &fencedBody{r: bytes.NewReader(body)}
		// The transport may still be reading a request body after the
		// answer came (an early error answer): the fence stops it before
		// the caller reuses the bytes.
		defer fb.Close()
		rd = fb
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.ContentLength = int64(len(body))
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	for k, v := range c.header {
		req.Header[k] = v
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.scrubErr(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, c.scrubErr(err)
	}
	return &attempt{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// fencedBody is a request body that reads nothing once closed.
type fencedBody struct {
	mu   sync.Mutex
	r    *bytes.Reader
	done bool
}

func (f *fencedBody) Read(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done {
		return 0, errors.New("xet: the request is over")
	}
	return f.r.Read(p)
}

func (f *fencedBody) Close() error {
	f.mu.Lock()
	f.done = true
	f.mu.Unlock()
	return nil
}

func (c *caller) scrub(s string) string {
	for _, sec := range c.secrets() {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "***")
		}
	}
	return s
}

func (c *caller) scrubErr(err error) error {
	if msg := err.Error(); c.scrub(msg) != msg {
		return errors.New(c.scrub(msg))
	}
	return err
}

func (c *caller) classify(op string, a *attempt) *CASError {
	e := &CASError{Op: op, StatusCode: a.status, RequestID: a.header.Get("X-Request-Id")}
	msg := a.header.Get("X-Error-Message")
	if msg == "" {
		var j struct {
			Error   string `json:"error"`
			Message string `json:"message"`
		}
		if json.Unmarshal(a.body, &j) == nil {
			msg = j.Error
			if msg == "" {
				msg = j.Message
			}
		} else if len(a.body) < 512 && !bytes.Contains(a.body, []byte("<")) {
			msg = strings.TrimSpace(string(a.body))
		}
	}
	e.Message = c.scrub(msg)
	switch {
	case a.status == http.StatusUnauthorized:
		e.Kind = ErrUnauthorized
	case a.status == http.StatusForbidden:
		e.Kind = ErrForbidden
	case a.status == http.StatusNotFound:
		e.Kind = ErrNotFound
	case a.status == http.StatusTooManyRequests:
		e.Kind = ErrRateLimited
		if w, ok := serverWait(a.header); ok {
			e.RetryAfter = w
		}
	case a.status >= 500 || a.status == http.StatusRequestTimeout:
		e.Kind = ErrServer
	default:
		e.Kind = ErrRefused
	}
	return e
}

// serverWait is the Retry-After the server sent, in seconds or as a date.
func serverWait(h http.Header) (time.Duration, bool) {
	ra := h.Get("Retry-After")
	if ra == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(ra); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(ra); err == nil {
		return max(time.Until(t), 0), true
	}
	return 0, false
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// TokenFetcher gets a fresh CAS token, e.g. with FetchToken or from the
// answer of an LFS batch request that chose the xet transfer.
type TokenFetcher func(context.Context) (Token, error)

// FetchToken asks the Hub for a CAS token at tokenURL (WriteTokenURL), with
// the Hub token as bearer, retrying as Retry says. hc nil: http.DefaultClient.
func FetchToken(ctx context.Context, hc *http.Client, retry Retry, tokenURL, hubToken string) (Token, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	c := &caller{http: hc, retry: retry, sleep: sleepCtx, secrets: func() []string { return []string{hubToken} }}
	a, err := c.do(ctx, "xet write token", http.MethodGet, func() string { return tokenURL }, nil,
		func(context.Context) (string, error) { return hubToken, nil }, nil)
	if err != nil {
		return Token{}, err
	}
	t, err := ParseToken(a.body)
	if err != nil {
		err.(*CASError).StatusCode = a.status
		return Token{}, err
	}
	return t, nil
}

// ParseToken reads the Hub's xet-write-token (or xet-read-token) answer,
// {accessToken, exp, casUrl} (docs/xet/auth.md); an answer without them,
// or whose casUrl is not an http(s) URL without credentials, is a
// *CASError of kind ErrRefused.
func ParseToken(body []byte) (Token, error) {
	var j tokenJSON
	if err := json.Unmarshal(body, &j); err != nil || j.AccessToken == "" || j.CASURL == "" || j.Exp <= 0 {
		return Token{}, &CASError{Kind: ErrRefused, Op: "xet write token", Message: "the answer is not {accessToken, exp, casUrl}"}
	}
	u, err := url.Parse(j.CASURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return Token{}, &CASError{Kind: ErrRefused, Op: "xet write token", Message: "casUrl is not an http(s) URL without credentials"}
	}
	return Token{AccessToken: j.AccessToken, CASURL: strings.TrimRight(j.CASURL, "/"), Expires: time.Unix(j.Exp, 0)}, nil
}

// RefreshMargin is how long before its expiry a token is replaced: the
// spec's 30 seconds (docs/xet/auth.md) plus a margin for a long upload's
// request to start and be checked (@huggingface/hub uses 60 s).
const RefreshMargin = 60 * time.Second

// TokenSource hands out a CAS token, fetching a new one when none is held,
// when the held one expires within RefreshMargin, or after the CAS refused
// it. Concurrent callers share one fetch.
type TokenSource struct {
	fetch TokenFetcher
	now   func() time.Time

	mu  sync.Mutex
	cur Token
}

// NewTokenSource returns a TokenSource over fetch; now nil: time.Now.
func NewTokenSource(fetch TokenFetcher, now func() time.Time) *TokenSource {
	if now == nil {
		now = time.Now
	}
	return &TokenSource{fetch: fetch, now: now}
}

// Token returns a token valid for at least RefreshMargin.
func (s *TokenSource) Token(ctx context.Context) (Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur.AccessToken != "" && s.now().Add(RefreshMargin).Before(s.cur.Expires) {
		return s.cur, nil
	}
	t, err := s.fetch(ctx)
	if err != nil {
		return Token{}, err
	}
	s.cur = t
	return t, nil
}

// invalidate drops token t, if it is still the held one.
func (s *TokenSource) invalidate(t Token) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur.AccessToken == t.AccessToken {
		s.cur = Token{}
	}
}

// secret is the held token's secret, for scrubbing.
func (s *TokenSource) secret() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur.AccessToken
}

// CASClient calls a Xet CAS with tokens from a TokenSource; the token goes
// only to the token's own CAS URL. Safe for concurrent use.
type CASClient struct {
	tokens *TokenSource
	c      caller
}

// CASOptions configures a CASClient.
type CASOptions struct {
	HTTPClient *http.Client                               // nil: http.DefaultClient
	Retry      Retry                                      // backoff
	Logf       func(string, ...any)                       // retry notices; never receives a token
	Sleep      func(context.Context, time.Duration) error // test hook; nil: a timer honouring ctx
	// SessionID is sent as X-Xet-Session-Id with every CAS request, as
	// xet-core and @huggingface/hub do (the Hub hands one out in the LFS
	// batch's xet action); "" sends none.
	SessionID string
	UserAgent string // "" → Go's default
}

// NewCASClient returns a client using tokens.
func NewCASClient(tokens *TokenSource, opts CASOptions) *CASClient {
	hc := opts.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	sleep := opts.Sleep
	if sleep == nil {
		sleep = sleepCtx
	}
	cc := &CASClient{tokens: tokens}
	cc.c = caller{http: hc, retry: opts.Retry, sleep: sleep, logf: opts.Logf, header: http.Header{},
		secrets: func() []string { return []string{tokens.secret()} }}
	if opts.SessionID != "" {
		cc.c.header.Set(HeaderSessionID, opts.SessionID)
	}
	if opts.UserAgent != "" {
		cc.c.header.Set("User-Agent", opts.UserAgent)
	}
	return cc
}

// call sends a request to path under the current token's CAS URL: a
// refreshed token may name another CAS, so the URL is taken from the token
// used for each try.
func (cc *CASClient) call(ctx context.Context, op, method, path string, body []byte) (*attempt, error) {
	var used Token
	auth := func(ctx context.Context) (string, error) {
		t, err := cc.tokens.Token(ctx)
		used = t
		return t.AccessToken, err
	}
	target := func() string { return used.CASURL + path }
	return cc.c.do(ctx, op, method, target, body, auth, func() bool { cc.tokens.invalidate(used); return true })
}

// UploadXorb posts a serialized xorb under its hash. inserted is false when
// the CAS already held it, which is not an error.
func (cc *CASClient) UploadXorb(ctx context.Context, h Hash, xorb []byte) (inserted bool, err error) {
	a, err := cc.call(ctx, "upload xorb "+h.String(), http.MethodPost, "/v1/xorbs/default/"+h.String(), xorb)
	if err != nil {
		return false, err
	}
	var j struct {
		WasInserted bool `json:"was_inserted"`
	}
	_ = json.Unmarshal(a.body, &j)
	return j.WasInserted, nil
}

// UploadShard posts a shard (its upload form, without footer); once it is
// accepted, the files it lists are uploaded.
func (cc *CASClient) UploadShard(ctx context.Context, shard []byte) error {
	_, err := cc.call(ctx, "upload shard", http.MethodPost, "/v1/shards", shard)
	return err
}

// QueryChunk asks the global deduplication API about a chunk: a shard
// whose CAS info lists xorbs holding it (chunk hashes keyed with the
// shard's HMACKey), or found false when the CAS does not know it.
func (cc *CASClient) QueryChunk(ctx context.Context, h Hash) (s *Shard, found bool, err error) {
	a, err := cc.call(ctx, "query chunk "+h.String(), http.MethodGet, "/v1/chunks/default-merkledb/"+h.String(), nil)
	if errors.Is(err, ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	s, err = ParseShard(a.body)
	if err != nil {
		return nil, false, fmt.Errorf("query chunk %s: the answer: %w", h, err)
	}
	return s, true, nil
}

// The headers of an LFS batch answer's upload action when the Hub chose
// the "xet" transfer (top-level "transfer": "xet"); the action's href is
// the URL to fetch a fresh token from (as @huggingface/hub 2.x reads them).
const (
	HeaderCASURL          = "X-Xet-Cas-Url"
	HeaderAccessToken     = "X-Xet-Access-Token"
	HeaderTokenExpiration = "X-Xet-Token-Expiration" // unix seconds
	HeaderSessionID       = "X-Xet-Session-Id"
)

// TokenFromBatchAction reads the CAS token an LFS batch answer hands out
// with the xet transfer. The first token then needs no request of its own;
// NewTokenSource's fetcher (FetchToken on the action's href) replaces it.
func TokenFromBatchAction(header map[string]string) (Token, error) {
	get := func(k string) string {
		for hk, v := range header {
			if strings.EqualFold(hk, k) {
				return v
			}
		}
		return ""
	}
	exp, err := strconv.ParseInt(get(HeaderTokenExpiration), 10, 64)
	t := Token{AccessToken: get(HeaderAccessToken), CASURL: strings.TrimRight(get(HeaderCASURL), "/"), Expires: time.Unix(exp, 0)}
	u, uerr := url.Parse(t.CASURL)
	if err != nil || exp <= 0 || t.AccessToken == "" || uerr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return Token{}, &CASError{Kind: ErrRefused, Op: "lfs batch xet action",
			Message: "the upload action lacks a valid " + HeaderCASURL + ", " + HeaderAccessToken + " or " + HeaderTokenExpiration}
	}
	return t, nil
}

// Seed makes t the held token, e.g. one from TokenFromBatchAction.
func (s *TokenSource) Seed(t Token) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cur = t
}

// SessionFromBatchAction is the X-Xet-Session-Id an LFS batch answer's xet
// action carries ("" when none): @huggingface/hub sends it back with every
// CAS request and token refresh of the upload.
func SessionFromBatchAction(header map[string]string) string {
	for k, v := range header {
		if strings.EqualFold(k, HeaderSessionID) {
			return v
		}
	}
	return ""
}
