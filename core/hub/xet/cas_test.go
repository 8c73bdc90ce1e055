package xet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const hubToken = "hf_secretHubToken0123456789"

// fakeCAS is a Hub token endpoint plus a CAS, with scripted failures.
type fakeCAS struct {
	t        *testing.T
	srv      *httptest.Server
	mu       sync.Mutex
	tokens   int               // tokens issued
	valid    map[string]bool   // CAS tokens accepted
	xorbs    map[Hash][]byte   // stored xorbs
	failures map[string][]int  // path prefix → statuses to answer first, in order
	headers  map[string]string // extra headers on scripted failures
	requests []string          // "METHOD path auth" of every request
	exp      time.Duration     // lifetime of issued tokens
}

func newFakeCAS(t *testing.T) *fakeCAS {
	f := &fakeCAS{t: t, valid: map[string]bool{}, xorbs: map[Hash][]byte{},
		failures: map[string][]int{}, headers: map[string]string{}, exp: time.Hour}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeCAS) fail(prefix string, statuses ...int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures[prefix] = append(f.failures[prefix], statuses...)
}

func (f *fakeCAS) serve(w http.ResponseWriter, r *http.Request) {
	// Read the body first: answering before it is read makes net/http
	// linger 500 ms on the connection.
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	auth := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.requests = append(f.requests, r.Method+" "+r.URL.EscapedPath()+" "+auth)
	for prefix, st := range f.failures {
		if strings.HasPrefix(r.URL.EscapedPath(), prefix) && len(st) > 0 {
			f.failures[prefix] = st[1:]
			for k, v := range f.headers {
				w.Header().Set(k, v)
			}
			f.mu.Unlock()
			if st[0] == -1 { // break the connection
				conn, _, err := w.(http.Hijacker).Hijack()
				require.NoError(f.t, err)
				conn.Close()
				return
			}
			// An error body quoting the credentials it got: the client
			// must not repeat them.
			http.Error(w, `{"error": "refused `+auth+`"}`, st[0])
			return
		}
	}
	f.mu.Unlock()
	switch {
	case strings.HasPrefix(r.URL.Path, "/api/models/alice/repo/xet-write-token/"):
		if auth != hubToken {
			http.Error(w, `{"error": "Invalid credentials"}`, http.StatusUnauthorized)
			return
		}
		f.mu.Lock()
		f.tokens++
		tok := fmt.Sprintf("xet_token_%d", f.tokens)
		f.valid[tok] = true
		f.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{
			"accessToken": tok, "casUrl": f.srv.URL, "exp": time.Now().Add(f.exp).Unix(),
		})
		return
	}
	f.mu.Lock()
	ok := f.valid[auth]
	f.mu.Unlock()
	if !ok {
		http.Error(w, "expired", http.StatusUnauthorized)
		return
	}
	switch {
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/v1/xorbs/default/"):
		h, err := ParseHash(strings.TrimPrefix(r.URL.Path, "/v1/xorbs/default/"))
		if err == nil {
			_, err = ReadXorb(body, h)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		_, had := f.xorbs[h]
		f.xorbs[h] = body
		f.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]bool{"was_inserted": !had})
	case r.Method == http.MethodPost && r.URL.Path == "/v1/shards":
		if _, err := ParseShard(body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		_, _ = w.Write([]byte(`{"result": 1}`))
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/chunks/default-merkledb/"):
		http.Error(w, "not found", http.StatusNotFound)
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeCAS) count(sub string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, r := range f.requests {
		if strings.Contains(r, sub) {
			n++
		}
	}
	return n
}

var fastRetry = Retry{MaxRetries: 3, BaseWait: time.Millisecond, MaxWait: 2 * time.Millisecond}

func newTestClient(f *fakeCAS, now func() time.Time) (*CASClient, *TokenSource) {
	ts := NewTokenSource(func(ctx context.Context) (Token, error) {
		return FetchToken(ctx, f.srv.Client(), fastRetry, WriteTokenURL(f.srv.URL, "model", "alice/repo", "main"), hubToken)
	}, now)
	return NewCASClient(ts, CASOptions{HTTPClient: f.srv.Client(), Retry: fastRetry}), ts
}

func testXorb(t *testing.T) (Hash, []byte) {
	t.Helper()
	x := NewXorbWriter(PolicyAuto)
	data := weights("BF16", 300<<10, 5)
	for _, c := range Chunks(data) {
		require.True(t, x.Add(c, data[:c.Size]))
		data = data[c.Size:]
	}
	return x.Hash(), append([]byte(nil), x.Bytes()...)
}

func TestWriteTokenURL(t *testing.T) {
	assert.Equal(t, "https://hf.co/api/models/a/b/xet-write-token/main", WriteTokenURL("https://hf.co/", "model", "a/b", "main"))
	assert.Equal(t, "https://hf.co/api/datasets/a/b/xet-write-token/refs%2Fpr%2F3", WriteTokenURL("https://hf.co", "dataset", "a/b", "refs/pr/3"))
}

func TestFetchToken(t *testing.T) {
	f := newFakeCAS(t)
	u := WriteTokenURL(f.srv.URL, "model", "alice/repo", "main")
	tok, err := FetchToken(context.Background(), f.srv.Client(), fastRetry, u, hubToken)
	require.NoError(t, err)
	assert.Equal(t, f.srv.URL, tok.CASURL)
	assert.NotContains(t, fmt.Sprintf("%v %+v %#v %s", tok, tok, tok, tok), tok.AccessToken, "a token never prints its secret")

	_, err = FetchToken(context.Background(), f.srv.Client(), fastRetry, u, "hf_wrong")
	var ce *CASError
	require.ErrorAs(t, err, &ce)
	require.ErrorIs(t, err, ErrUnauthorized)
	assert.Equal(t, 1, f.count("hf_wrong"), "a 401 is not retried")

	f.fail("/api/", 503, 500)
	_, err = FetchToken(context.Background(), f.srv.Client(), fastRetry, u, hubToken)
	require.NoError(t, err, "5xx are retried")

	for _, body := range []string{`{}`, `{"accessToken":"x","exp":1,"casUrl":"ftp://x"}`, `{"accessToken":"x","exp":1,"casUrl":"http://u:p@h"}`, `not json`} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(body)) }))
		_, err := FetchToken(context.Background(), srv.Client(), fastRetry, srv.URL, hubToken)
		require.ErrorIs(t, err, ErrRefused, body)
		srv.Close()
	}
}

func TestTokenSourceRefreshes(t *testing.T) {
	f := newFakeCAS(t)
	f.exp = 10 * time.Minute
	now := time.Now()
	clock := func() time.Time { return now }
	_, ts := newTestClient(f, clock)
	ctx := context.Background()
	a, err := ts.Token(ctx)
	require.NoError(t, err)
	b, err := ts.Token(ctx)
	require.NoError(t, err)
	assert.Equal(t, a, b, "held while valid")
	now = now.Add(10*time.Minute - RefreshMargin + time.Second)
	c, err := ts.Token(ctx)
	require.NoError(t, err)
	assert.NotEqual(t, a.AccessToken, c.AccessToken, "replaced within RefreshMargin of its expiry")
}

func TestCASUploads(t *testing.T) {
	f := newFakeCAS(t)
	cc, _ := newTestClient(f, nil)
	ctx := context.Background()
	h, xorb := testXorb(t)

	inserted, err := cc.UploadXorb(ctx, h, xorb)
	require.NoError(t, err)
	assert.True(t, inserted)
	inserted, err = cc.UploadXorb(ctx, h, xorb)
	require.NoError(t, err)
	assert.False(t, inserted, "already there")

	shard, err := (&Shard{}).Marshal(false)
	require.NoError(t, err)
	require.NoError(t, cc.UploadShard(ctx, shard))

	_, found, err := cc.QueryChunk(ctx, ChunkHash([]byte("x")))
	require.NoError(t, err)
	assert.False(t, found)

	assert.Equal(t, 1, f.tokens, "one token for all calls")
	for _, r := range f.requests {
		if strings.Contains(r, "/v1/") {
			assert.NotContains(t, r, hubToken, "the Hub token never goes to the CAS")
		}
	}
}

func TestCASRetriesAndErrors(t *testing.T) {
	h, xorb := testXorb(t)
	path := "/v1/xorbs/default/" + h.String()
	ctx := context.Background()

	t.Run("5xx and broken connections are retried", func(t *testing.T) {
		f := newFakeCAS(t)
		cc, _ := newTestClient(f, nil)
		f.fail(path, 500, -1, 503)
		_, err := cc.UploadXorb(ctx, h, xorb)
		require.NoError(t, err)
		assert.Equal(t, 4, f.count("POST "+path))
	})
	t.Run("retries exhausted", func(t *testing.T) {
		f := newFakeCAS(t)
		cc, _ := newTestClient(f, nil)
		f.fail(path, 502, 502, 502, 502, 502)
		_, err := cc.UploadXorb(ctx, h, xorb)
		require.ErrorIs(t, err, ErrServer)
		f2 := newFakeCAS(t)
		cc2, _ := newTestClient(f2, nil)
		f2.fail(path, -1, -1, -1, -1)
		_, err = cc2.UploadXorb(ctx, h, xorb)
		require.ErrorIs(t, err, ErrNetwork)
	})
	t.Run("a refused xorb is not retried", func(t *testing.T) {
		f := newFakeCAS(t)
		cc, _ := newTestClient(f, nil)
		bad := append([]byte(nil), xorb...)
		bad[len(bad)-1] ^= 1
		_, err := cc.UploadXorb(ctx, h, bad)
		require.ErrorIs(t, err, ErrRefused)
		assert.Equal(t, 1, f.count("POST "+path))
	})
	t.Run("an expired token is replaced once", func(t *testing.T) {
		f := newFakeCAS(t)
		cc, ts := newTestClient(f, nil)
		tok, err := ts.Token(ctx)
		require.NoError(t, err)
		f.mu.Lock()
		delete(f.valid, tok.AccessToken) // the CAS expires it early
		f.mu.Unlock()
		_, err = cc.UploadXorb(ctx, h, xorb)
		require.NoError(t, err)
		assert.Equal(t, 2, f.tokens)

		f.fail(path, 401, 401, 401)
		_, err = cc.UploadXorb(ctx, h, xorb)
		require.ErrorIs(t, err, ErrUnauthorized, "a second 401 in a row is final")
	})
	t.Run("403 is final", func(t *testing.T) {
		f := newFakeCAS(t)
		cc, _ := newTestClient(f, nil)
		f.fail(path, 403)
		_, err := cc.UploadXorb(ctx, h, xorb)
		require.ErrorIs(t, err, ErrForbidden)
	})
	t.Run("a long Retry-After fails as rate limited", func(t *testing.T) {
		f := newFakeCAS(t)
		cc, _ := newTestClient(f, nil)
		f.headers["Retry-After"] = "3600"
		f.fail(path, 429)
		_, err := cc.UploadXorb(ctx, h, xorb)
		var ce *CASError
		require.ErrorAs(t, err, &ce)
		require.ErrorIs(t, err, ErrRateLimited)
		assert.Equal(t, time.Hour, ce.RetryAfter)
	})
	t.Run("the CAS token never appears in an error", func(t *testing.T) {
		f := newFakeCAS(t)
		cc, ts := newTestClient(f, nil)
		f.fail(path, 400)
		_, err := cc.UploadXorb(ctx, h, xorb)
		require.Error(t, err)
		tok, _ := ts.Token(ctx)
		assert.NotContains(t, err.Error(), tok.AccessToken)
		assert.Contains(t, err.Error(), "***", "the server's echo is scrubbed")
	})
	t.Run("cancel stops the waits", func(t *testing.T) {
		f := newFakeCAS(t)
		ts := NewTokenSource(func(ctx context.Context) (Token, error) {
			return FetchToken(ctx, f.srv.Client(), fastRetry, WriteTokenURL(f.srv.URL, "model", "alice/repo", "main"), hubToken)
		}, nil)
		cctx, cancel := context.WithCancel(ctx)
		cc := NewCASClient(ts, CASOptions{HTTPClient: f.srv.Client(), Retry: Retry{MaxRetries: 5, BaseWait: time.Hour},
			Sleep: func(ctx context.Context, d time.Duration) error { cancel(); return sleepCtx(ctx, d) }})
		f.fail(path, 500)
		_, err := cc.UploadXorb(cctx, h, xorb)
		require.ErrorIs(t, err, context.Canceled)
		assert.False(t, errors.Is(err, ErrServer))
	})
}

func TestTokenFromBatchAction(t *testing.T) {
	tok, err := TokenFromBatchAction(map[string]string{
		"x-xet-cas-url": "https://cas.example/", "X-Xet-Access-Token": "xet_abc", "X-Xet-Token-Expiration": "1848535668",
	})
	require.NoError(t, err)
	assert.Equal(t, Token{AccessToken: "xet_abc", CASURL: "https://cas.example", Expires: time.Unix(1848535668, 0)}, tok)
	for _, h := range []map[string]string{
		{},
		{"X-Xet-Cas-Url": "https://cas.example", "X-Xet-Access-Token": "x"},
		{"X-Xet-Cas-Url": "ftp://cas", "X-Xet-Access-Token": "x", "X-Xet-Token-Expiration": "9"},
		{"X-Xet-Cas-Url": "https://u:p@cas", "X-Xet-Access-Token": "x", "X-Xet-Token-Expiration": "9"},
	} {
		_, err := TokenFromBatchAction(h)
		require.ErrorIs(t, err, ErrRefused, "%v", h)
	}

	// A seeded token is used until it nears its expiry.
	f := newFakeCAS(t)
	cc, ts := newTestClient(f, nil)
	seed, _ := cas0Token(f)
	ts.Seed(seed)
	h, x := testXorb(t)
	_, err = cc.UploadXorb(context.Background(), h, x)
	require.NoError(t, err)
	assert.Equal(t, 0, f.count("xet-write-token"), "the seeded token served")
}

// cas0Token issues a token from the fake as a batch answer would carry it.
func cas0Token(f *fakeCAS) (Token, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.valid["xet_seeded"] = true
	return Token{AccessToken: "xet_seeded", CASURL: f.srv.URL, Expires: time.Now().Add(time.Hour)}, nil
}
