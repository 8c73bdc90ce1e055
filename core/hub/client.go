package hub

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"
)

// DefaultEndpoint is the Hub used when neither Options.Endpoint nor
// HF_ENDPOINT is set.
const DefaultEndpoint = "https://huggingface.co"

// maxResponse caps how much of an API response the client reads; Hub JSON
// answers are small (a tree page of ~1000 entries is ~300 KB).
const maxResponse = 32 << 20

// Options configures a Client. The zero value talks to HF_ENDPOINT (else
// huggingface.co) anonymously with the default retry policy.
type Options struct {
	Endpoint   string                                     // Hub base URL; "" → $HF_ENDPOINT → https://huggingface.co
	Token      string                                     // Hub access token ("hf_…"); sent only to Endpoint's origin
	Version    string                                     // modelpub's version, for the User-Agent; "" → "dev"
	UserAgent  string                                     // replaces the whole User-Agent when set
	HTTPClient *http.Client                               // base client; nil → a pooled transport. Its redirect policy is wrapped.
	Retry      RetryPolicy                                // backoff for idempotent calls and uploads
	Logf       func(string, ...any)                       // retry and skip notices, one call at a time; nil → silent. Never receives the token.
	Sleep      func(context.Context, time.Duration) error // test hook; nil → a timer that honours ctx
	Transfer   Transfer                                   // how large files are sent; "" → TransferAuto
}

// Client talks to one Hub endpoint with one token. It is safe for
// concurrent use.
type Client struct {
	endpoint  string   // scheme://host[:port][/prefix], no trailing slash, no user info
	secrets   []string // user info that came with the endpoint, scrubbed from text like the token
	origin    string   // scheme://host[:port], lowercased
	token     string
	userAgent string
	http      *http.Client
	retry     RetryPolicy
	logf      func(string, ...any)
	sleep     func(context.Context, time.Duration) error
	transfer  Transfer

	roleMu sync.Mutex
	role   string // token role learned from whoami ("read", "write", …)
}

// NewClient validates opts and returns a Client.
func NewClient(opts Options) (*Client, error) {
	ep := opts.Endpoint
	if ep == "" {
		ep = os.Getenv("HF_ENDPOINT")
	}
	if ep == "" {
		ep = DefaultEndpoint
	}
	ep = strings.TrimRight(ep, "/")
	u, err := url.Parse(ep)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("hub: endpoint %q is not an http(s) URL like https://huggingface.co", RedactURL(ep))
	}
	if strings.ContainsAny(opts.Token, " \t\r\n") {
		return nil, errors.New("hub: the token contains whitespace; paste it again from the Hub's token page")
	}
	// Credentials in the endpoint ("https://user:token@host") are never
	// sent: net/http would turn them into a Basic Authorization header,
	// beside or instead of the Bearer token, to every URL built from the
	// endpoint. They are kept only to be scrubbed from any text.
	var secrets []string
	if u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			secrets = append(secrets, pw)
		}
		if name := u.User.Username(); name != "" {
			secrets = append(secrets, name)
		}
		u.User = nil
		ep = u.String()
	}
	transfer, err := ParseTransfer(string(opts.Transfer))
	if err != nil {
		return nil, err
	}
	c := &Client{
		transfer: transfer,
		secrets:  secrets,
		endpoint: ep,
		origin:   strings.ToLower(u.Scheme + "://" + u.Host),
		token:    opts.Token,
		retry:    opts.Retry.withDefaults(),
		logf:     opts.Logf,
		sleep:    opts.Sleep,
	}
	if c.sleep == nil {
		c.sleep = sleepCtx
	}
	if c.logf == nil {
		c.logf = func(string, ...any) {}
	} else {
		// Uploads log from many goroutines; calls are serialized so a
		// caller's logger need not be safe for concurrent use.
		// Every line is scrubbed here, whatever its arguments, so no
		// caller can leak the token or a URL's user info through it.
		var mu sync.Mutex
		logf := c.logf
		c.logf = func(format string, a ...any) {
			line := c.scrub(fmt.Sprintf(format, a...))
			mu.Lock()
			defer mu.Unlock()
			logf("%s", line)
		}
	}
	c.userAgent = opts.UserAgent
	if c.userAgent == "" {
		v := opts.Version
		if v == "" {
			v = "dev"
		}
		c.userAgent = fmt.Sprintf("modelpub/%s (%s; %s/%s)", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	}
	base := opts.HTTPClient
	if base == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 64
		t.ResponseHeaderTimeout = 5 * time.Minute
		base = &http.Client{Transport: t}
	}
	hc := *base
	inner := base.CheckRedirect
	hc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		// The token goes to the endpoint's origin only: a redirect to a CDN
		// or any other host must not carry it (Go strips it only across
		// domains, not to subdomains or other ports).
		if !c.sameOrigin(req.URL) {
			req.Header.Del("Authorization")
		}
		if inner != nil {
			return inner(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	c.http = &hc
	return c, nil
}

// Endpoint returns the Hub base URL the client uses.
func (c *Client) Endpoint() string { return c.endpoint }

func (c *Client) sameOrigin(u *url.URL) bool {
	return strings.ToLower(u.Scheme+"://"+u.Host) == c.origin
}

func (c *Client) tokenRole() string {
	c.roleMu.Lock()
	defer c.roleMu.Unlock()
	return c.role
}

// request describes one logical call; body is rebuilt for every attempt so
// a retry re-reads only what that request sends.
type request struct {
	op      string                               // for errors and logs
	method  string                               //
	url     string                               // absolute
	header  http.Header                          // extra headers
	body    func() (io.ReadCloser, int64, error) // nil → no body; size -1 → unknown
	auth    bool                                 // send the token (still only to the endpoint's origin)
	retry   bool                                 // retry on 408/429/5xx and network errors
	onRetry func()                               // called before a retry (progress rollback)
}

// response is a fully read response.
type response struct {
	status int
	header http.Header
	body   []byte
}

// call sends r, retrying per the policy when r.retry, and returns a 2xx
// response or a typed *Error. ctx errors come back wrapped as they are.
func (c *Client) call(ctx context.Context, r *request) (*response, error) {
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		resp, err := c.once(ctx, r)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var be bodyError
		if errors.As(err, &be) {
			return nil, be.err // a local file problem: retrying would not help
		}
		var herr *Error
		switch {
		case err != nil:
			herr = &Error{Kind: ErrNetwork, Op: r.op, Err: redactURL(err),
				Hint: "check the network connection and the endpoint " + c.endpoint + ", then run again"}
		case resp.status >= 200 && resp.status < 300:
			return resp, nil
		default:
			u, _ := url.Parse(r.url)
			herr = c.classify(r.op, u.Path, resp.status, resp.header, resp.body)
		}
		if !r.retry || !retryable(herr) || attempt >= c.retry.MaxRetries {
			return nil, herr
		}
		wait := c.retry.backoff(attempt)
		if resp != nil {
			if w, ok := serverWait(resp.status, resp.header); ok {
				if w > c.retry.MaxServerWait {
					return nil, herr
				}
				wait = w
			}
		}
		c.logf("hub: %s: %s; retry %d/%d in %s", r.op, c.scrub(shortReason(herr)), attempt+1, c.retry.MaxRetries, wait.Round(time.Millisecond))
		if r.onRetry != nil {
			r.onRetry()
		}
		if err := c.sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// once sends r one time and reads the whole (bounded) response body.
func (c *Client) once(ctx context.Context, r *request) (*response, error) {
	var body io.ReadCloser
	size := int64(0)
	if r.body != nil {
		b, n, err := r.body()
		if err != nil {
			return nil, bodyError{err}
		}
		body, size = b, n
	}
	req, err := http.NewRequestWithContext(ctx, r.method, r.url, body)
	if err != nil {
		if body != nil {
			body.Close()
		}
		return nil, redactURL(err)
	}
	// A URL with user info (an href the server sent) gets no Basic
	// Authorization from it either.
	req.URL.User = nil
	if body != nil {
		req.ContentLength = size
		if size == 0 {
			req.Body = http.NoBody
			body.Close()
		}
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", c.userAgent)
	if r.auth && c.token != "" && c.sameOrigin(req.URL) {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, redactURL(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return nil, redactURL(err)
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: data}, nil
}

// bodyError is a failure to build a request body (a local file).
type bodyError struct{ err error }

func (e bodyError) Error() string { return e.err.Error() }

func shortReason(e *Error) string {
	if e.StatusCode != 0 {
		return fmt.Sprintf("HTTP %d", e.StatusCode)
	}
	if e.Err != nil {
		var ne net.Error
		if errors.As(e.Err, &ne) && ne.Timeout() {
			return "timeout"
		}
		return e.Err.Error()
	}
	return e.Kind.Error()
}

// apiURL joins the endpoint and an already escaped path.
func (c *Client) apiURL(escapedPath string) string { return c.endpoint + escapedPath }

// bytesBody returns a body factory for a fixed byte slice.
func bytesBody(b []byte) func() (io.ReadCloser, int64, error) {
	return func() (io.ReadCloser, int64, error) {
		return io.NopCloser(bytes.NewReader(b)), int64(len(b)), nil
	}
}
