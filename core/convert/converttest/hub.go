package converttest

import (
	"context"
	"io/fs"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"modelpub/core/hub"
	"modelpub/core/hub/hubemu"
)

// HubOptions are what ServeRepos serves beside the repositories.
type HubOptions struct {
	// Gated are repository ids made gated ("auto"): only their owner reads
	// them.
	Gated []string
	// Tokens are more accounts (token → user name), for readers who are
	// not the owner.
	Tokens map[string]string
}

// ServeRepos serves each repository (id → files) from the Hub emulator on
// loopback, uploaded by an owner account of its namespace, and returns the
// emulator's URL. It stops with the test.
func ServeRepos(t testing.TB, repos map[string]fs.FS, opts HubOptions) string {
	t.Helper()
	const ownerPrefix = "hf_referenceOwnerToken0000000000"
	tokens := map[string]string{}
	for tok, user := range opts.Tokens {
		tokens[tok] = user
	}
	for repo := range repos {
		ns, _, _ := strings.Cut(repo, "/")
		tokens[ownerPrefix+ns] = ns
	}
	srv, err := hubemu.New(hubemu.Options{Dir: t.TempDir(), Tokens: tokens})
	require.NoError(t, err)
	_, err = srv.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	ctx := context.Background()
	for repo, files := range repos {
		id, err := hub.ParseRepoID(repo)
		require.NoError(t, err)
		tok := ownerPrefix + id.Namespace
		owner, err := hub.NewClient(hub.Options{Endpoint: srv.URL(), Token: tok})
		require.NoError(t, err)
		dir := t.TempDir()
		require.NoError(t, os.CopyFS(dir, files))
		_, err = owner.CreateRepo(ctx, id, hub.CreateRepoOptions{})
		require.NoError(t, err)
		_, err = owner.UploadFolder(ctx, id, dir, hub.UploadOptions{})
		require.NoError(t, err)
		for _, g := range opts.Gated {
			if g != repo {
				continue
			}
			req, err := http.NewRequest(http.MethodPut, srv.URL()+"/api/models/"+repo+"/settings", strings.NewReader(`{"gated": "auto"}`))
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
		}
	}
	return srv.URL()
}
