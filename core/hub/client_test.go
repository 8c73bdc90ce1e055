package hub

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewClientEndpoint(t *testing.T) {
	t.Setenv("HF_ENDPOINT", "http://127.0.0.1:9/")
	c, err := NewClient(Options{})
	require.NoError(t, err)
	assert.Equal(t, "http://127.0.0.1:9", c.Endpoint())
	c, err = NewClient(Options{Endpoint: "http://127.0.0.1:8/hub/"})
	require.NoError(t, err)
	assert.Equal(t, "http://127.0.0.1:8/hub", c.Endpoint())
	t.Setenv("HF_ENDPOINT", "")
	c, err = NewClient(Options{})
	require.NoError(t, err)
	assert.Equal(t, DefaultEndpoint, c.Endpoint())
	_, err = NewClient(Options{Endpoint: "ftp://127.0.0.1"})
	assert.Error(t, err)
}

func TestWhoAmI(t *testing.T) {
	f := newFakeHub(t)
	u, err := f.client(t).WhoAmI(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "alice", u.Name)
	assert.Equal(t, "write", u.Auth.AccessToken.Role)
	assert.Equal(t, "acme", u.Orgs[0].Name)
	assert.Equal(t, []string{"Bearer hf_testtoken"}, f.auth["whoami"])

	_, err = f.client(t, func(o *Options) { o.Token = "hf_wrong" }).WhoAmI(context.Background())
	assert.ErrorIs(t, err, ErrUnauthorized)
	assert.Contains(t, err.Error(), "the token is invalid or expired")
	assert.NotContains(t, err.Error(), "/settings/tokens", "core/advice says where to get a token")
}

// A redirect to another origin must not carry the token, nor must a
// Link to another origin.
func TestAuthOnlyToOrigin(t *testing.T) {
	var otherAuth atomic.Value
	otherAuth.Store("")
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		otherAuth.Store(r.Header.Get("Authorization") + r.Header.Get("Cookie"))
		writeJSON(w, "application/json", map[string]any{"id": "alice/m", "sha": "abc", "siblings": []any{}})
	}))
	defer other.Close()
	var hubAuth atomic.Value
	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hubAuth.Store(r.Header.Get("Authorization"))
		http.Redirect(w, r, other.URL+"/elsewhere", http.StatusFound)
	}))
	defer hub.Close()
	c, err := NewClient(Options{Endpoint: hub.URL, Token: "hf_secret_redirect"})
	require.NoError(t, err)
	info, err := c.RepoInfo(context.Background(), RepoID{Namespace: "alice", Name: "m"}, "")
	require.NoError(t, err)
	assert.Equal(t, "abc", info.SHA)
	assert.Equal(t, "Bearer hf_secret_redirect", hubAuth.Load())
	assert.Equal(t, "", otherAuth.Load(), "the other origin received the token")

	// A pagination link to another origin.
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("cursor") == "" {
			w.Header().Set("Link", `<`+other.URL+`/tree?cursor=2>; rel="next"`)
		}
		writeJSON(w, "application/json", []any{})
	}))
	defer page.Close()
	otherAuth.Store("unset")
	c, err = NewClient(Options{Endpoint: page.URL, Token: "hf_secret_redirect"})
	require.NoError(t, err)
	_, err = c.ListTree(context.Background(), RepoID{Namespace: "alice", Name: "m"}, "", "", true)
	require.Error(t, err) // the other server's answer is not a list
	assert.Equal(t, "", otherAuth.Load())
}

func TestCreateRepo(t *testing.T) {
	f := newFakeHub(t)
	c := f.client(t)
	ctx := context.Background()
	url, err := c.CreateRepo(ctx, RepoID{Namespace: "alice", Name: "m"}, CreateRepoOptions{Private: true})
	require.NoError(t, err)
	assert.Equal(t, f.hub.URL+"/alice/m", url)

	_, err = c.CreateRepo(ctx, RepoID{Namespace: "alice", Name: "m"}, CreateRepoOptions{})
	assert.ErrorIs(t, err, ErrConflict)
	var he *Error
	require.ErrorAs(t, err, &he)
	assert.Equal(t, http.StatusConflict, he.StatusCode)

	url, err = c.CreateRepo(ctx, RepoID{Namespace: "alice", Name: "m"}, CreateRepoOptions{ExistOK: true})
	require.NoError(t, err)
	assert.Equal(t, f.hub.URL+"/alice/m", url)

	url, err = c.CreateRepo(ctx, RepoID{Type: Dataset, Namespace: "acme", Name: "d"}, CreateRepoOptions{})
	require.NoError(t, err)
	assert.Equal(t, f.hub.URL+"/datasets/acme/d", url)
}

func TestCreateRepoBody(t *testing.T) {
	var got map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, "/api/repos/create", r.URL.Path)
		json.NewDecoder(r.Body).Decode(&got)
		writeJSON(w, "application/json", map[string]string{"url": "x", "name": "y", "id": "z"})
	}))
	defer srv.Close()
	c, _ := NewClient(Options{Endpoint: srv.URL, Token: "hf_x"})
	_, err := c.CreateRepo(context.Background(), RepoID{Name: "m"}, CreateRepoOptions{})
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"name": "m", "organization": nil, "visibility": "public", "type": "model"}, got)
	_, err = c.CreateRepo(context.Background(), RepoID{Type: Space, Namespace: "o", Name: "s"}, CreateRepoOptions{Private: true})
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"name": "s", "organization": "o", "visibility": "private", "type": "space", "sdk": "static"}, got)
}

func TestErrorMapping(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		code    string
		msg     string
		role    string // whoami role learned before
		path    string // "info" (repo API URL) or "whoami"
		kind    error
		hint    string
		retryIn time.Duration
		headers map[string]string
	}{
		{"repo not found", 404, "RepoNotFound", "Repository Not Found", "", "info", ErrRepoNotFound, "check the repo id", 0, nil},
		{"revision", 404, "RevisionNotFound", "Invalid rev id: x", "", "info", ErrRevisionNotFound, "create the branch", 0, nil},
		{"entry", 404, "EntryNotFound", "Entry not found", "", "info", ErrEntryNotFound, "check the path", 0, nil},
		{"gated", 403, "GatedRepo", "Access restricted", "", "info", ErrForbidden, "request access", 0, nil},
		{"disabled", 403, "", "Access to this resource is disabled.", "", "info", ErrForbidden, "disabled", 0, nil},
		{"bad token", 401, "", invalidCredentials, "", "info", ErrUnauthorized, "invalid or expired", 0, nil},
		{"401 on repo url", 401, "", "Unauthorized", "", "info", ErrRepoNotFound, "check the repo id", 0, nil},
		{"401 elsewhere", 401, "", "Unauthorized", "", "whoami", ErrUnauthorized, "invalid or expired", 0, nil},
		{"read-only token", 403, "", "You don't have the rights", "read", "info", ErrForbidden, "the token has read access only", 0, nil},
		{"forbidden", 403, "", "You don't have the rights", "write", "info", ErrForbidden, "may not write here", 0, nil},
		{"rate limited", 429, "", "Too many requests", "", "info", ErrRateLimited, "wait", 42 * time.Second, map[string]string{"Retry-After": "42"}},
		{"rate limit header", 429, "", "Too many requests", "", "info", ErrRateLimited, "wait", 56 * time.Second, map[string]string{"RateLimit": `"api";r=0;t=55`}},
		{"conflict", 409, "", "conflict", "", "info", ErrConflict, "", 0, nil},
		{"precondition", 412, "", "The branch was updated since you opened this page.", "", "info", ErrConflict, "run the upload again", 0, nil},
		{"too large", 413, "", "too large", "", "info", ErrTooLarge, "LFS", 0, nil},
		{"10 MiB", 400, "", "Your push was rejected because it contains files larger than 10 MiB", "", "info", ErrTooLarge, "LFS", 0, nil},
		{"bad request", 400, "", "nope", "", "info", ErrBadRequest, "", 0, nil},
		{"server", 500, "", "boom", "", "info", ErrServer, "later", 0, nil},
		{"gateway", 502, "", "", "", "info", ErrServer, "later", 0, nil},
		{"timeout", 408, "", "", "", "info", ErrServer, "later", 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.headers {
					w.Header().Set(k, v)
				}
				hubError(w, tt.status, tt.code, tt.msg)
			}))
			defer srv.Close()
			c, err := NewClient(Options{Endpoint: srv.URL, Token: "hf_x", Retry: RetryPolicy{MaxRetries: -1}})
			require.NoError(t, err)
			c.role = tt.role
			if tt.path == "whoami" {
				_, err = c.WhoAmI(context.Background())
			} else {
				_, err = c.RepoInfo(context.Background(), RepoID{Namespace: "a", Name: "b"}, "x")
			}
			require.ErrorIs(t, err, tt.kind)
			var he *Error
			require.ErrorAs(t, err, &he)
			assert.Equal(t, tt.status, he.StatusCode)
			assert.Equal(t, "req-123", he.RequestID)
			assert.Equal(t, tt.retryIn, he.RetryAfter)
			assert.Contains(t, err.Error(), tt.hint)
			assert.NotEmpty(t, he.Hint, "every error says what to do")
			if tt.msg != "" {
				assert.Contains(t, err.Error(), tt.msg)
			}
		})
	}
	t.Run("read-only via whoami", func(t *testing.T) {
		f := newFakeHub(t)
		f.role = "read"
		c := f.client(t)
		_, err := c.WhoAmI(context.Background())
		require.NoError(t, err)
		f.setFault("create", func(w http.ResponseWriter, r *http.Request, n int) bool {
			hubError(w, 403, "", "You don't have the rights to create a model under the namespace \"alice\"")
			return true
		})
		_, err = c.CreateRepo(context.Background(), RepoID{Namespace: "alice", Name: "m"}, CreateRepoOptions{})
		require.ErrorIs(t, err, ErrForbidden)
		assert.Contains(t, err.Error(), "the token has read access only")
		assert.NotContains(t, err.Error(), "/settings/tokens", "core/advice says where to get a token")
	})
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name      string
		fail      int // failing answers before success
		status    int
		headers   map[string]string
		drop      bool // close the connection instead of answering
		wantCalls int
		wantWaits []time.Duration // exact server waits; nil → backoff
		wantErr   error
	}{
		{"503 then ok", 2, 503, nil, false, 3, nil, nil},
		{"retry-after", 1, 503, map[string]string{"Retry-After": "3"}, false, 2, []time.Duration{3 * time.Second}, nil},
		{"429 ratelimit", 1, 429, map[string]string{"RateLimit": `"api";r=0;t=7`, "RateLimit-Policy": `"fixed window";"api";q=500;w=300`}, false, 2, []time.Duration{8 * time.Second}, nil},
		{"408", 1, 408, nil, false, 2, nil, nil},
		{"dropped connection", 2, 0, nil, true, 3, nil, nil},
		{"exhausted", 10, 500, nil, false, 6, nil, ErrServer},
		{"400 not retried", 10, 400, nil, false, 1, nil, ErrBadRequest},
		{"too long a wait", 10, 429, map[string]string{"Retry-After": "3600"}, false, 1, nil, ErrRateLimited},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeHub(t)
			f.addRepo("alice/m")
			f.setFault("info", func(w http.ResponseWriter, r *http.Request, n int) bool {
				if n > tt.fail {
					return false
				}
				if tt.drop {
					conn, _, _ := w.(http.Hijacker).Hijack()
					conn.Close()
					return true
				}
				for k, v := range tt.headers {
					w.Header().Set(k, v)
				}
				hubError(w, tt.status, "", "try later")
				return true
			})
			var waits []time.Duration
			c := f.client(t, func(o *Options) {
				o.Sleep = func(ctx context.Context, d time.Duration) error { waits = append(waits, d); return nil }
			})
			_, err := c.RepoInfo(context.Background(), RepoID{Namespace: "alice", Name: "m"}, "main")
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, tt.wantCalls, f.count("info"))
			assert.Len(t, waits, tt.wantCalls-1)
			if tt.wantWaits != nil {
				assert.Equal(t, tt.wantWaits, waits)
			}
		})
	}
}

func TestBackoffGrowsWithJitter(t *testing.T) {
	p := RetryPolicy{}.withDefaults()
	for i, want := range []time.Duration{1, 2, 4, 8, 8} {
		d := p.backoff(i)
		assert.GreaterOrEqual(t, d, want*time.Second/2, "retry %d", i)
		assert.LessOrEqual(t, d, want*time.Second, "retry %d", i)
	}
}

func TestListTreePagination(t *testing.T) {
	f := newFakeHub(t)
	repo := f.addRepo("alice/m")
	for _, p := range []string{"a.txt", "b.txt", "dir/c.txt", "dir/d.bin", "dir/e.txt"} {
		repo.files[p] = fakeFile{content: []byte(p), size: int64(len(p))}
	}
	repo.files["dir/d.bin"] = fakeFile{lfsOID: strings.Repeat("ab", 32), size: 1000}
	f.treePage = 2
	c := f.client(t)
	entries, err := c.ListTree(context.Background(), RepoID{Namespace: "alice", Name: "m"}, "main", "", true)
	require.NoError(t, err)
	require.Len(t, entries, 5)
	assert.Equal(t, 3, f.count("tree"))
	assert.Equal(t, "dir/d.bin", entries[3].Path)
	require.NotNil(t, entries[3].LFS)
	assert.Equal(t, int64(1000), entries[3].Size)
	assert.Equal(t, int64(129), entries[3].LFS.PointerSize)

	entries, err = c.ListTree(context.Background(), RepoID{Namespace: "alice", Name: "m"}, "main", "dir", false)
	require.NoError(t, err)
	assert.Len(t, entries, 3)

	_, err = c.ListTree(context.Background(), RepoID{Namespace: "alice", Name: "m"}, "nope", "", false)
	assert.ErrorIs(t, err, ErrRevisionNotFound)
}

func TestCreateBranch(t *testing.T) {
	f := newFakeHub(t)
	f.addRepo("alice/m")
	c := f.client(t)
	require.NoError(t, c.CreateBranch(context.Background(), RepoID{Namespace: "alice", Name: "m"}, "dev", ""))
	assert.ErrorIs(t, c.CreateBranch(context.Background(), RepoID{Namespace: "alice", Name: "m"}, "main", ""), ErrConflict)
}

func TestPreuploadBatches(t *testing.T) {
	f := newFakeHub(t)
	f.addRepo("alice/m")
	files := make([]PreuploadFile, 600)
	for i := range files {
		files[i] = PreuploadFile{Path: "f" + strings.Repeat("x", i%5) + "/" + string(rune('a'+i%26)) + "-" + time.Duration(i).String(), Size: 3, Sample: []byte("abc")}
	}
	files[0].Size, files[0].Sample = 0, nil
	res, head, err := f.client(t).Preupload(context.Background(), RepoID{Namespace: "alice", Name: "m"}, "main", files, PreuploadOptions{})
	require.NoError(t, err)
	assert.Len(t, res, 600)
	assert.Equal(t, []int{256, 256, 88}, f.preBatches)
	assert.NotEmpty(t, head)
	for i := range res {
		assert.Equal(t, files[i].Path, res[i].Path)
	}
}

func TestValidation(t *testing.T) {
	ids := []struct {
		in   string
		ok   bool
		want RepoID
	}{
		{"alice/model", true, RepoID{Namespace: "alice", Name: "model"}},
		{"model-only", true, RepoID{Name: "model-only"}},
		{"datasets/acme/data.v2", true, RepoID{Type: Dataset, Namespace: "acme", Name: "data.v2"}},
		{"spaces/acme/app_1", true, RepoID{Type: Space, Namespace: "acme", Name: "app_1"}},
		{"dataset/acme/data", false, RepoID{}},
		{"a/b/c", false, RepoID{}},
		{"alice/my--model", false, RepoID{}},
		{"alice/my..model", false, RepoID{}},
		{"alice/model.git", false, RepoID{}},
		{"alice/-model", false, RepoID{}},
		{"alice/model.", false, RepoID{}},
		{"alice/mo del", false, RepoID{}},
		{"alice/", false, RepoID{}},
		{"", false, RepoID{}},
		{"alice/" + strings.Repeat("a", 96), true, RepoID{Namespace: "alice", Name: strings.Repeat("a", 96)}},
		{"alice/" + strings.Repeat("a", 97), false, RepoID{}},
		{"al ice/model", false, RepoID{}},
	}
	for _, tt := range ids {
		t.Run("id "+tt.in, func(t *testing.T) {
			got, err := ParseRepoID(tt.in)
			if !tt.ok {
				assert.ErrorIs(t, err, ErrInvalidRepoID)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.in, got.String())
		})
	}
	paths := []struct{ in, want string }{
		{"a/b.txt", "a/b.txt"},
		{"/a.txt", "a.txt"},
		{"./a.txt", "a.txt"},
		{".", ""},
		{"..", ""},
		{"../a", ""},
		{".git/config", ""},
		{"sub/.git/x", ""},
		{".cache/huggingface/x", ""},
		{"a/.cache", ""},
		{".gitattributes", ".gitattributes"},
		{"a..b/c", "a..b/c"},
		{"", ""},
		{"a\\b", ""},
	}
	for _, tt := range paths {
		t.Run("path "+tt.in, func(t *testing.T) {
			got, err := CleanPath(tt.in)
			if tt.want == "" {
				assert.ErrorIs(t, err, ErrInvalidPath)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
	t.Run("no request before validation", func(t *testing.T) {
		f := newFakeHub(t)
		c := f.client(t)
		_, err := c.UploadFolder(context.Background(), RepoID{Namespace: "alice", Name: "bad--name"}, t.TempDir(), UploadOptions{})
		assert.ErrorIs(t, err, ErrInvalidRepoID)
		_, err = c.Commit(context.Background(), RepoID{Namespace: "alice", Name: "m"}, "main", CommitOptions{}, []Operation{AddBytes("../x", nil)})
		assert.ErrorIs(t, err, ErrInvalidPath)
		f.mu.Lock()
		assert.Empty(t, f.calls)
		f.mu.Unlock()
	})
}

func TestCommitPR(t *testing.T) {
	f := newFakeHub(t)
	f.addRepo("alice/m")
	c := f.client(t)
	ci, err := c.Commit(context.Background(), RepoID{Namespace: "alice", Name: "m"}, "main",
		CommitOptions{Summary: "add x", CreatePR: true}, []Operation{AddBytes("x.txt", []byte("hello"))})
	require.NoError(t, err)
	assert.Equal(t, "refs/pr/1", ci.PRRevision)
	assert.Equal(t, 1, ci.PRNumber)
	assert.Equal(t, f.hub.URL+"/alice/m/discussions/1", ci.PullRequestURL)
	assert.True(t, strings.HasPrefix(ci.URL, f.hub.URL+"/alice/m/commit/"))
}

func TestCommitParentConflict(t *testing.T) {
	f := newFakeHub(t)
	f.addRepo("alice/m")
	_, err := f.client(t).Commit(context.Background(), RepoID{Namespace: "alice", Name: "m"}, "main",
		CommitOptions{ParentCommit: strings.Repeat("0", 40)}, []Operation{AddBytes("x.txt", []byte("hello")), DeleteFile{Path: "y.txt"}})
	assert.ErrorIs(t, err, ErrConflict)
	assert.Equal(t, 1, f.count("commit"))
}
