package web_test

import (
	"net/http"
	"strings"
	"testing"

	"portal/internal/peers/peertest"
	"portal/internal/staff"
)

// TestAPIAgreesWithItsDocument pins the disagreements the contract fuzzer
// (internal/contract) found between the OpenAPI document and the server:
// a request the document forbids is refused with 400, and one it allows
// but the server refuses for its meaning is a 422 the document declares.
func TestAPIAgreesWithItsDocument(t *testing.T) {
	moto := peertest.MotoForTest(t)
	peertest.SetAWSEnv(t, moto)
	h := newHarness(t, "-dev-account-id", peertest.AccountForTest(t), "-test-account-id", peertest.AccountForTest(t), "-prod-account-id", peertest.AccountForTest(t))
	_, u := h.signedIn(t, staff.Admin, staff.Ops, staff.Compliance)
	token := h.apiToken(t, u.User)
	for _, c := range []struct {
		name, method, path, body string
		status                   int
		field                    string
	}{
		// Forbidden by the document: 400.
		{"null for a string", http.MethodPost, "/api/v1/blueprints/exceptions",
			`{"rule_id": "s3-versioning", "stack": "dev-eu", "owner": null, "reason": "x", "expires": "2030-01-01T00:00:00Z"}`, http.StatusBadRequest, "owner"},
		{"null in a list", http.MethodPost, "/api/v1/blueprints/versions", `{"message": "m", "files": [null]}`, http.StatusBadRequest, "files[0]"},
		{"an empty date-time", http.MethodGet, "/api/v1/audit?until=", "", http.StatusBadRequest, "until"},
		{"an empty integer", http.MethodGet, "/api/v1/runs?before=", "", http.StatusBadRequest, "before"},
		{"an unknown run state", http.MethodGet, "/api/v1/runs?state=done", "", http.StatusBadRequest, "state"},
		{"violations=true", http.MethodGet, "/api/v1/inventory?violations=true", "", http.StatusBadRequest, "violations"},
		{"an owner of spaces", http.MethodPost, "/api/v1/blueprints/exceptions",
			`{"rule_id": "s3-versioning", "stack": "dev-eu", "owner": "  ", "reason": "why", "expires": "2030-01-01T00:00:00Z"}`, http.StatusBadRequest, "owner"},
		// Allowed by the document, refused for what it means: 422.
		{"until before since", http.MethodGet, "/api/v1/audit?since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z", "", http.StatusUnprocessableEntity, "until"},
		{"an expiry in the past", http.MethodPost, "/api/v1/blueprints/exceptions",
			`{"rule_id": "s3-versioning", "stack": "dev-eu", "owner": "Olga", "reason": "why", "expires": "2001-01-01T00:00:00Z"}`, http.StatusUnprocessableEntity, "expires"},
		{"an emergency destroy", http.MethodPost, "/api/v1/plans",
			`{"stack": "dev-eu", "kind": "destroy", "emergency_reason": "the database is on fire and must go now"}`, http.StatusUnprocessableEntity, "emergency_reason"},
		{"a file given twice", http.MethodPost, "/api/v1/blueprints/versions",
			`{"message": "m", "files": [{"path": "layer.yaml", "content": "a"}, {"path": "layer.yaml", "content": "b"}]}`, http.StatusUnprocessableEntity, "files"},
	} {
		ct := ""
		if c.body != "" {
			ct = "application/json"
		}
		r := h.api(t, c.method, c.path, token, ct, c.body)
		var ae apiError
		r.JSON(t, &ae)
		if r.StatusCode != c.status || ae.Error.Fields[c.field] == "" {
			t.Errorf("%s: got %d %s, want %d naming %s", c.name, r.StatusCode, strings.TrimSpace(r.Body), c.status, c.field)
		}
	}
	if r := h.api(t, http.MethodGet, "/api/v1/approvals?mine=yes", token, "", ""); r.StatusCode != http.StatusBadRequest {
		t.Errorf("approvals mine=yes: got %d, want 400", r.StatusCode)
	}
	// A path of its own is not an id of the route beside it.
	if r := h.api(t, http.MethodGet, "/api/v1/drift/check", token, "", ""); r.StatusCode != http.StatusMethodNotAllowed || r.Header.Get("Allow") != "POST" {
		t.Errorf("GET /api/v1/drift/check: got %d, Allow %q; want 405, POST", r.StatusCode, r.Header.Get("Allow"))
	}
	// The same time for since and until is an empty range, not an error.
	if r := h.api(t, http.MethodGet, "/api/v1/audit?since=2026-01-01T00:00:00Z&until=2026-01-01T00:00:00Z", token, "", ""); r.StatusCode != http.StatusOK {
		t.Errorf("until equal to since: got %d, want 200\n%s", r.StatusCode, r.Body)
	}
}
