package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// syncBuffer is a bytes.Buffer safe for a writer and a polling reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestLocalhubServesUntilCancelled(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- serveLocalhub(ctx, []string{"--addr", "127.0.0.1:0", "--dir", dir, "--token", "hf_test=alice",
			"--chunk-size", "1KiB", "--faults", "seed=1,rate=0"}, &stdout, &stderr)
	}()

	var url string
	require.Eventually(t, func() bool {
		first, _, ok := strings.Cut(stdout.String(), "\n")
		url = first
		return ok
	}, 10*time.Second, 10*time.Millisecond, "stderr: %s", stderr.String())
	require.True(t, strings.HasPrefix(url, "http://127.0.0.1:"), url)
	assert.Contains(t, stdout.String(), "HF_ENDPOINT="+url+"\n")

	get := func(tok string) int {
		req, _ := http.NewRequest("GET", url+"/api/whoami-v2", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode == 200 {
			var m map[string]any
			require.NoError(t, json.Unmarshal(body, &m))
			assert.Equal(t, "alice", m["name"])
		}
		return res.StatusCode
	}
	assert.Equal(t, 200, get("hf_test"))
	assert.Equal(t, 401, get("hf_other"))

	cancel()
	select {
	case code := <-done:
		assert.Equal(t, ExitOK, code)
	case <-time.After(10 * time.Second):
		t.Fatal("localhub did not stop")
	}
	log := stderr.String()
	assert.Contains(t, log, "users: alice")
	assert.Contains(t, log, "GET /api/whoami-v2 200")
	assert.Contains(t, log, "stopped")
	assert.NotContains(t, log, "hf_test", "tokens stay out of the log")
	_, err := http.Get(url + "/api/whoami-v2")
	assert.Error(t, err, "no longer listening")
	assert.DirExists(t, dir+"/repos")
}

func TestLocalhubUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		msg  string
	}{
		{"token without user", []string{"--token", "hf_secret"}, "hf_…"},
		{"token without hf_", []string{"--token", "abc=alice"}, "must start with hf_"},
		{"bad chunk size", []string{"--chunk-size", "lots"}, "--chunk-size"},
		{"bad faults", []string{"--faults", "rate=7"}, "--faults"},
		{"bad addr", []string{"--addr", "nowhere"}, "--addr"},
		{"positional argument", []string{"extra"}, "usage: modelpub localhub"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := serveLocalhub(context.Background(), tt.args, &out, &errb)
			assert.Equal(t, ExitUsage, code)
			assert.Contains(t, errb.String(), tt.msg)
			assert.NotContains(t, errb.String(), "hf_secret")
			assert.Empty(t, out.String())
		})
	}
	var out bytes.Buffer
	require.Equal(t, ExitOK, Run([]string{"help", "localhub"}, &out, io.Discard))
	assert.Contains(t, out.String(), "HF_ENDPOINT=")
	assert.Contains(t, out.String(), "127.0.0.1:8765")
}
