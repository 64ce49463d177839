package web_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"portal/internal/staff"
)

// TestAPIActors: every "who" field of the API comes with its structured
// twin: a person by account id and email, with the API token used; the
// portal's own work as kind portal.
func TestAPIActors(t *testing.T) {
	h := newHarness(t)
	_, u := h.signedIn(t, staff.Compliance, staff.Ops)
	token := h.apiToken(t, u.User)
	type actor struct {
		Kind    string `json:"kind"`
		UserID  int64  `json:"user_id"`
		Email   string `json:"email"`
		TokenID int64  `json:"token_id"`
		Label   string `json:"label"`
	}
	var page struct {
		Items []struct {
			Actor  string `json:"actor"`
			Action string `json:"action"`
			Who    *actor `json:"who"`
		} `json:"items"`
	}
	// The token's own creation was made in a browser session; reading the
	// trail through the token is not audited, so ask for the session's.
	r := h.api(t, http.MethodGet, "/api/v1/audit?limit=500", token, "", "")
	r.JSON(t, &page)
	if r.StatusCode != http.StatusOK || len(page.Items) == 0 {
		t.Fatalf("audit: got %d with %d records", r.StatusCode, len(page.Items))
	}
	var person, portal bool
	for _, it := range page.Items {
		if it.Who == nil || it.Who.Label != it.Actor {
			t.Errorf("%s by %q: who %+v, want the label repeated", it.Action, it.Actor, it.Who)
			continue
		}
		switch {
		case strings.HasPrefix(it.Actor, "user:"+strconv.FormatInt(u.ID, 10)+" "):
			person = true
			if it.Who.Kind != "user" || it.Who.UserID != u.ID || it.Who.Email != u.Email {
				t.Errorf("%s: who %+v, want user %d %s", it.Action, it.Who, u.ID, u.Email)
			}
			if strings.Contains(it.Actor, " via api-token:") != (it.Who.TokenID != 0) {
				t.Errorf("%s: who %+v, want the token id exactly when a token was used", it.Action, it.Who)
			}
		case it.Actor == "system":
			portal = true
			if it.Who.Kind != "portal" {
				t.Errorf("%s by system: kind %q, want portal", it.Action, it.Who.Kind)
			}
		}
	}
	if !person {
		t.Errorf("no record by %s", u.Email)
	}
	if !portal {
		t.Error("no record by the portal itself (system)")
	}

	// A record made through the token names it.
	r = h.api(t, http.MethodPost, "/api/v1/blueprints/exceptions", token, "application/json",
		`{"rule_id": "s3-versioning", "stack": "dev-eu", "owner": "Olga Ops", "reason": "a test bucket", "expires": "`+h.clock.Now().Add(48*time.Hour).UTC().Format(time.RFC3339)+`"}`)
	var e struct {
		CreatedBy      string `json:"created_by"`
		CreatedByActor *actor `json:"created_by_actor"`
		RevokedByActor *actor `json:"revoked_by_actor"`
	}
	r.JSON(t, &e)
	if r.StatusCode != http.StatusCreated || e.CreatedByActor == nil || e.CreatedByActor.Kind != "user" || e.CreatedByActor.UserID != u.ID || e.CreatedByActor.TokenID == 0 {
		t.Errorf("exception created by %q: actor %+v, want user %d with the token's id\n%s", e.CreatedBy, e.CreatedByActor, u.ID, r.Body)
	}
	if e.RevokedByActor != nil {
		t.Errorf("not revoked, yet revoked_by_actor %+v", e.RevokedByActor)
	}
}
