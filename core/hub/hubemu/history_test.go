package hubemu

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type commitJSON struct {
	ID      string `json:"id"`
	Title   string `json:"title"`
	Message string `json:"message"`
	Authors []struct {
		User   string `json:"user"`
		Avatar string `json:"avatar"`
	} `json:"authors"`
	Date string `json:"date"`
}

func TestCommitsPagination(t *testing.T) {
	h := newHub(t, Options{})
	h.createRepo("alice", "m", false)
	for i := 1; i <= 4; i++ {
		h.push("alice/m", "main", []upFile{{fmt.Sprintf("f%d.txt", i), []byte{byte(i)}}})
	}
	var all []commitJSON
	next := "/api/models/alice/m/commits/main?limit=2"
	for pages := 0; next != ""; pages++ {
		require.Less(t, pages, 5)
		r := h.do("GET", next, aliceTok, nil, nil)
		require.Equal(t, 200, r.status, "%s", r.body)
		var page []commitJSON
		r.json(t, &page)
		assert.LessOrEqual(t, len(page), 2)
		all = append(all, page...)
		next = ""
		if l := r.header.Get("Link"); l != "" {
			// JS's parser needs an absolute URL and a space after ';'.
			require.Regexp(t, `^<https?://[^>]+>; rel="next"$`, l)
			next = strings.TrimSuffix(strings.TrimPrefix(l, "<"), `>; rel="next"`)
		}
	}
	require.Len(t, all, 5) // four pushes and the initial commit
	assert.Equal(t, h.head("alice/m", "main"), all[0].ID)
	assert.Equal(t, "Add 1 files", all[0].Title)
	assert.Equal(t, "initial commit", all[4].Title)
	require.Len(t, all[0].Authors, 1)
	assert.Equal(t, "alice", all[0].Authors[0].User)
	_, err := time.Parse(time.RFC3339, all[0].Date)
	assert.NoError(t, err)
	assert.Equal(t, 400, h.do("GET", "/api/models/alice/m/commits/main?limit=0", aliceTok, nil, nil).status)
	r := h.do("GET", "/api/models/alice/m/commits/nope", aliceTok, nil, nil)
	assert.Equal(t, 404, r.status)
	assert.Equal(t, "RevisionNotFound", r.header.Get("X-Error-Code"))
}

// TestTreeExpandLastCommit: with expand=true each entry names the commit
// that last changed it, as the Hub's lastCommit {id, title, date}.
func TestTreeExpandLastCommit(t *testing.T) {
	h := newHub(t, Options{})
	h.createRepo("alice", "m", false)
	h.push("alice/m", "main", []upFile{{"a/x.txt", []byte("1")}, {"b.txt", []byte("1")}})
	first := h.head("alice/m", "main")
	h.push("alice/m", "main", []upFile{{"b.txt", []byte("2")}})
	second := h.head("alice/m", "main")

	r := h.do("GET", "/api/models/alice/m/tree/main?recursive=true&expand=true", aliceTok, nil, nil)
	require.Equal(t, 200, r.status, "%s", r.body)
	var entries []treeEntry
	r.json(t, &entries)
	got := map[string]string{}
	for _, e := range entries {
		require.NotNil(t, e.LastCommit, e.Path)
		got[e.Path] = e.LastCommit.ID
	}
	assert.Equal(t, map[string]string{".gitattributes": got[".gitattributes"], "a": first, "a/x.txt": first, "b.txt": second}, got)
	assert.NotEqual(t, first, got[".gitattributes"])

	// Without expand, no lastCommit; the cached listing was not changed.
	r = h.do("GET", "/api/models/alice/m/tree/main?recursive=true", aliceTok, nil, nil)
	assert.NotContains(t, string(r.body), "lastCommit")

	b, _ := json.Marshal(map[string]any{"paths": []string{"b.txt"}, "expand": true})
	r = h.do("POST", "/api/models/alice/m/paths-info/main", aliceTok, map[string]string{"Content-Type": "application/json"}, b)
	r.json(t, &entries)
	require.Len(t, entries, 1)
	assert.Equal(t, second, entries[0].LastCommit.ID)
	assert.Equal(t, "Add 1 files", entries[0].LastCommit.Title)
}
