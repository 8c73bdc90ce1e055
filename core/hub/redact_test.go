package hub

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://huggingface.co", "https://huggingface.co"},
		{"http://user:hf_SECRET@127.0.0.1:8765/hub", "http://127.0.0.1:8765/hub"},
		{"http://hf_SECRET@127.0.0.1:8765", "http://127.0.0.1:8765"},
		{"https://s3.example/obj?X-Amz-Signature=abc&token=hf_SECRET#frag", "https://s3.example/obj"},
		{"http://u:hf_SECRET@127.0.0.1/\x7fbad?x=1", "http://127.0.0.1/\x7fbad"}, // does not parse: redacted as text
		{"", ""},
	}
	for _, tt := range tests {
		got := RedactURL(tt.in)
		assert.Equal(t, tt.want, got, tt.in)
		assert.NotContains(t, got, "hf_SECRET")
	}
	assert.Equal(t, `Get "http://127.0.0.1:1/api": refused; see https://h/x`,
		RedactText(`Get "http://u:hf_SECRET@127.0.0.1:1/api": refused; see https://a@h/x`))

	// A parse error quotes the URL in its own text too.
	_, err := url.Parse("http://u:hf_SECRET@127.0.0.1/\x7f")
	require.Error(t, err)
	red := redactURL(err)
	assert.NotContains(t, red.Error(), "hf_SECRET")
	var ue *url.Error
	assert.True(t, errors.As(red, &ue), "still a *url.Error")
}

// TestEndpointCredentialsNeverSent: user info in the endpoint is neither
// sent (no Basic header beside or instead of the Bearer token) nor shown.
func TestEndpointCredentialsNeverSent(t *testing.T) {
	var mu sync.Mutex
	var auths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auths = append(auths, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("X-Error-Message", "echo "+r.Header.Get("Authorization"))
		hubError(w, http.StatusNotFound, "RepoNotFound", "echo "+r.Header.Get("Authorization"))
	}))
	defer srv.Close()
	ep := strings.Replace(srv.URL, "http://", "http://user:hf_SECRET@", 1)
	for _, tok := range []string{"", "hf_realtoken"} {
		var logs strings.Builder
		c, err := NewClient(Options{Endpoint: ep, Token: tok, Logf: func(f string, a ...any) { logs.WriteString(f) }})
		require.NoError(t, err)
		assert.Equal(t, srv.URL, c.Endpoint())
		_, err = c.RepoInfo(context.Background(), RepoID{Namespace: "a", Name: "b"}, "")
		require.ErrorIs(t, err, ErrRepoNotFound)
		assert.NotContains(t, err.Error(), "hf_SECRET")
		assert.NotContains(t, err.Error(), "user:")
		c.http.CloseIdleConnections()
	}
	assert.Equal(t, []string{"", "Bearer hf_realtoken"}, auths)
}
