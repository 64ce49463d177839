package web

import (
	"strconv"
	"strings"
)

// APIActor is who did something, for automation to read without parsing
// the audit label beside it: a person (by account id and the email they
// had), through an API token or a browser session; or the portal itself
// (its scheduled jobs, its start-up).
type APIActor struct {
	// Kind is "user" for a person, "portal" for the portal's own work
	// and "other" for a label of neither form (a command-line tool).
	Kind    string `json:"kind"`
	UserID  int64  `json:"user_id,omitempty"`
	Email   string `json:"email,omitempty"`
	TokenID int64  `json:"token_id,omitempty"` // the API token used, if any
	// Label is the audit trail's label, as the plain field beside it.
	Label string `json:"label"`
}

// apiActor reads an audit label ("user:3 alice@example.com via
// api-token:7", "system"); nil for "" (nobody yet).
func apiActor(label string) *APIActor {
	if label == "" {
		return nil
	}
	a := &APIActor{Kind: "other", Label: label}
	if label == "system" {
		a.Kind = "portal"
		return a
	}
	if id, email, _, ok := parseActor(label); ok {
		a.Kind, a.UserID, a.Email = "user", id, email
		if _, tok, found := strings.Cut(label, " via api-token:"); found {
			if n, err := strconv.ParseInt(tok, 10, 64); err == nil {
				a.TokenID = n
			}
		}
	}
	return a
}
