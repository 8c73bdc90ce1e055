package hubemu

import (
	"net/http"
	"strings"
)

// validateYAML checks a README.md's metadata (POST /api/validate-yaml, body
// {"content", "repoType"} as JSON, or form-encoded as older huggingface_hub
// sends it): 200 {"errors": [], "warnings": [{"message"}]} when the Hub
// would accept it, else 400 with the errors as {"message"} objects, the
// shape huggingface_hub's create_commit reads.
func (c *call) validateYAML() {
	var req struct {
		Content  *string `json:"content"`
		RepoType string  `json:"repoType"`
	}
	if strings.HasPrefix(c.r.Header.Get("Content-Type"), "application/json") {
		if !c.readJSON(&req, 16<<20) {
			return
		}
	} else {
		c.r.Body = http.MaxBytesReader(c.w, c.r.Body, 16<<20)
		if err := c.r.ParseForm(); err != nil {
			c.fail(http.StatusBadRequest, "", "Invalid form body: %v", err)
			return
		}
		if v, ok := c.r.PostForm["content"]; ok && len(v) > 0 {
			req.Content = &v[0]
		}
		req.RepoType = c.r.PostForm.Get("repoType")
	}
	if req.Content == nil {
		c.fail(http.StatusBadRequest, "", "content is required")
		return
	}
	typ := req.RepoType
	if typ == "" {
		typ = "model"
	}
	if typ != "model" && typ != "dataset" && typ != "space" {
		c.fail(http.StatusBadRequest, "", "Invalid repoType %q: use model, dataset or space", typ)
		return
	}
	p := checkCard(*req.Content, typ)
	messages := func(ss []string) []map[string]string {
		out := make([]map[string]string, 0, len(ss))
		for _, s := range ss {
			out = append(out, map[string]string{"message": s})
		}
		return out
	}
	status := http.StatusOK
	if len(p.errors) > 0 {
		status = http.StatusBadRequest
	}
	c.json(status, map[string]any{"errors": messages(p.errors), "warnings": messages(p.warnings)})
}
