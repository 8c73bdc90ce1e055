package hubemu

import "net/http"

func (c *call) whoami() {
	if c.user == "" {
		c.fail(http.StatusUnauthorized, "", "Invalid credentials in Authorization header")
		return
	}
	role := "write"
	if c.read {
		role = "read"
	}
	c.json(http.StatusOK, map[string]any{
		"type": "user", "id": stableID("user/" + c.user), "name": c.user, "fullname": c.user,
		"email": nil, "emailVerified": false, "canPay": false, "isPro": false, "periodEnd": nil,
		"avatarUrl": "/avatars/" + c.user + ".svg", "billingMode": "postpaid", "orgs": c.s.orgsOf(c.user),
		"auth": map[string]any{"type": "access_token", "accessToken": map[string]any{
			"displayName": "localhub", "role": role, "createdAt": "2024-01-01T00:00:00.000Z"}},
	})
}

// stableID is a 24-hex id derived from s.
func stableID(s string) string { return gitBlobSHA1([]byte(s))[:24] }
