package web_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"portal/internal/staff"
)

func TestAPIMe(t *testing.T) {
	h := newHarness(t)
	c, u := h.signedIn(t, staff.Compliance)

	// A token made on the Access page is shown once and works.
	r := c.submit(t, "/access", "/access/tokens", url.Values{"name": {"ci"}})
	token, ok := r.TestID(t, "new-token")
	if r.StatusCode != http.StatusOK || !ok || !strings.HasPrefix(token, "ptl_") {
		t.Fatalf("create token: got %d, token %q; want 200 and a ptl_ token", r.StatusCode, token)
	}
	if again := c.get(t, "/access"); strings.Contains(again.Body, token) {
		t.Error("the token is shown again on the Access page")
	}

	r = h.api(t, http.MethodGet, "/api/v1/me", token, "", "")
	var me struct {
		ID    int64    `json:"id"`
		Email string   `json:"email"`
		Roles []string `json:"roles"`
	}
	r.JSON(t, &me)
	if r.StatusCode != http.StatusOK || me.ID != u.ID || me.Email != u.Email || !slices.Equal(me.Roles, []string{"compliance"}) {
		t.Errorf("GET /api/v1/me: got %d %+v, want 200 for %s with role compliance", r.StatusCode, me, u.Email)
	}

	// Revoked through the page, it no longer works.
	toks, err := h.app.Staff.ListTokens(t.Context(), u.ID)
	if err != nil || len(toks) != 1 {
		t.Fatalf("got tokens %v (%v), want 1", toks, err)
	}
	if r := c.submit(t, "/access", "/access/tokens/"+itoa(toks[0].ID)+"/revoke", nil); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke: got %d, want 303", r.StatusCode)
	}
	tests := []struct{ name, header string }{
		{"revoked token", "Bearer " + token},
		{"no token", ""},
		{"unknown token", "Bearer ptl_nope"},
		{"not a bearer token", "Basic " + token},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl := h.client()
			hdr := http.Header{}
			if tt.header != "" {
				hdr.Set("Authorization", tt.header)
			}
			r := cl.do(t, http.MethodGet, "/api/v1/me", nil, hdr)
			var e apiError
			r.JSON(t, &e)
			if r.StatusCode != http.StatusUnauthorized || e.Error.Code != "unauthorized" || e.Error.Message == "" {
				t.Errorf("got %d %+v, want 401 with code unauthorized and a message", r.StatusCode, e.Error)
			}
			if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("got Content-Type %q, want JSON", ct)
			}
		})
	}
}

func TestAPIStaffCreate(t *testing.T) {
	h := newHarness(t)
	admin := h.newUser(t, staff.Admin)
	token := h.apiToken(t, admin.User)
	tests := []struct {
		name        string
		contentType string
		body        string
		wantField   string // a key of error.fields, "" for none
		wantMessage string // substring of error.message
	}{
		{"truncated JSON", "application/json", `{"email": "a@example.com",`, "", "not valid JSON"},
		{"malformed JSON", "application/json", `{"email" "a@example.com"}`, "", "not valid JSON at byte"},
		{"empty body", "application/json", ``, "", "empty"},
		{"unknown field", "application/json", `{"email":"a@example.com","roles":["ops"],"colour":"red"}`, "colour", "colour"},
		{"wrong type", "application/json", `{"email":"a@example.com","roles":"ops"}`, "roles", "roles"},
		{"missing Content-Type", "", `{"email":"a@example.com","roles":["ops"]}`, "", "Content-Type"},
		{"form Content-Type", "application/x-www-form-urlencoded", `email=a@example.com`, "", "Content-Type"},
		{"two values", "application/json", `{"email":"a@example.com","roles":["ops"]} {}`, "", "more than one"},
		{"invalid values", "application/json", `{"email":"nope","roles":["root"]}`, "email", ""},
		{"no roles", "application/json", `{"email":"a@example.com","roles":[]}`, "roles", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.api(t, http.MethodPost, "/api/v1/staff", token, tt.contentType, tt.body)
			var e apiError
			r.JSON(t, &e)
			if r.StatusCode != http.StatusBadRequest || e.Error.Code != "invalid" {
				t.Fatalf("got %d %q, want 400 invalid\n%s", r.StatusCode, e.Error.Code, r.Body)
			}
			if tt.wantField != "" && e.Error.Fields[tt.wantField] == "" {
				t.Errorf("got fields %v, want a message for %q", e.Error.Fields, tt.wantField)
			}
			if !strings.Contains(e.Error.Message, tt.wantMessage) {
				t.Errorf("got message %q, want it to contain %q", e.Error.Message, tt.wantMessage)
			}
			if e.Error.RequestID == "" || e.Error.RequestID != r.Header.Get("X-Request-Id") {
				t.Errorf("got request ID %q, want the X-Request-Id header %q", e.Error.RequestID, r.Header.Get("X-Request-Id"))
			}
		})
	}

	r := h.api(t, http.MethodPost, "/api/v1/staff", token, "application/json", `{"email":"bot@example.com","name":"Bot","roles":["finance","compliance"]}`)
	var created struct {
		User            APIUserJSON `json:"user"`
		OneTimePassword string      `json:"one_time_password"`
	}
	r.JSON(t, &created)
	if r.StatusCode != http.StatusCreated || created.User.Email != "bot@example.com" || created.OneTimePassword == "" {
		t.Fatalf("create: got %d %+v, want 201 with the account and a one-time password", r.StatusCode, created)
	}
	if want := []string{"compliance", "finance"}; !slices.Equal(created.User.Roles, want) {
		t.Errorf("got roles %v, want %v", created.User.Roles, want)
	}
	r = h.api(t, http.MethodPost, "/api/v1/staff", token, "application/json", `{"email":"bot@example.com","roles":["ops"]}`)
	var e apiError
	r.JSON(t, &e)
	if r.StatusCode != http.StatusConflict || e.Error.Fields["email"] == "" {
		t.Errorf("duplicate: got %d %+v, want 409 naming email", r.StatusCode, e.Error)
	}

	r = h.api(t, http.MethodGet, "/api/v1/staff", token, "", "")
	var list struct {
		Items []APIUserJSON `json:"items"`
	}
	r.JSON(t, &list)
	if !slices.ContainsFunc(list.Items, func(u APIUserJSON) bool { return u.Email == "bot@example.com" && u.ID == created.User.ID }) {
		t.Errorf("GET /api/v1/staff: got %+v, want it to list bot@example.com", list.Items)
	}
	recs := h.records(t, auditFilterAction("staff.create"))
	if len(recs) == 0 || !strings.Contains(recs[0].Actor, "via api-token:") {
		t.Errorf("got %+v, want the newest staff.create made via an API token", recs)
	}
}

// APIUserJSON is a staff account as the API returns it.
type APIUserJSON struct {
	ID    int64    `json:"id"`
	Email string   `json:"email"`
	Roles []string `json:"roles"`
}

// TestOpenAPIDocumentCoversRoutes keeps the OpenAPI document true: it
// parses, and every API route has its path and method in it.
func TestOpenAPIDocumentCoversRoutes(t *testing.T) {
	h := newHarness(t)
	r := h.api(t, http.MethodGet, "/api/v1/openapi.json", "", "", "")
	if r.StatusCode != http.StatusOK {
		t.Fatalf("got %d, want 200", r.StatusCode)
	}
	var doc struct {
		Servers []struct {
			URL string `json:"url"`
		} `json:"servers"`
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal([]byte(r.Body), &doc); err != nil {
		t.Fatalf("the document is not JSON: %v", err)
	}
	base := ""
	if len(doc.Servers) > 0 {
		base = strings.TrimSuffix(doc.Servers[0].URL, "/")
	}
	documented := map[string]bool{}
	for p, ops := range doc.Paths {
		for m := range ops {
			documented[strings.ToUpper(m)+" "+base+p] = true
		}
	}
	n := 0
	for _, rt := range h.app.Web.Routes() {
		if !strings.HasPrefix(rt.Path, "/api/v1/") {
			continue
		}
		n++
		key := rt.Method + " " + openAPIPath(rt.Path)
		if !documented[key] {
			t.Errorf("route %s is not in the OpenAPI document (documented: %v)", key, keys(documented))
		}
	}
	if n == 0 {
		t.Fatal("no /api/v1 routes")
	}
}

// openAPIPath turns echo's :name parameters into OpenAPI's {name}.
func openAPIPath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		if name, ok := strings.CutPrefix(s, ":"); ok {
			parts[i] = "{" + name + "}"
		}
	}
	return strings.Join(parts, "/")
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
