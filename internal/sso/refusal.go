package sso

import (
	"fmt"
	"net/http"
)

// Reason says why a single sign-on was refused or why access ended.
type Reason string

// The reasons, each with its own page.
const (
	// The provider could not be reached (discovery, token or key endpoint).
	ProviderUnavailable Reason = "provider_unavailable"
	// The callback's state matches no sign-in this browser started, or the
	// sign-in is older than PendingLife.
	StateMismatch Reason = "state_mismatch"
	// The provider answered the callback with an error (access_denied...).
	ProviderError Reason = "provider_error"
	// The provider's answer did not verify: the code was refused, the ID
	// token's signature, issuer, audience, expiry or nonce was wrong.
	InvalidResponse Reason = "invalid_response"
	// The person's groups map to no portal role.
	NoMappedRole Reason = "no_mapped_role"
	// The account is disabled in the portal.
	AccountDisabled Reason = "account_disabled"
	// The provider gave no email, or said it is not verified.
	EmailUnverified Reason = "email_unverified"
	// A local account, or another provider's account, already has the email.
	EmailTaken Reason = "email_taken"
	// The provider no longer vouches for the person (refresh refused).
	ProviderRefused Reason = "provider_refused"
	// The provider has not confirmed the person for StaleAfter.
	Unconfirmed Reason = "unconfirmed"
	// The single sign-on session is older than SessionMax.
	SessionExpired Reason = "session_expired"
	// The account belongs to another provider than the one configured, or
	// single sign-on is off.
	OtherProvider Reason = "other_provider"
)

// Refusal is a sign-in through the provider that did not succeed, or an
// access that ended, with what to tell the person.
type Refusal struct {
	Reason Reason
	// Status is the HTTP status of the page.
	Status int
	// Title and Message are for the person; Detail (possibly empty) is
	// the provider's own words or the technical cause, shown below.
	Title, Message, Detail string
	// Err is the underlying error, logged, never shown.
	Err error
}

func (r *Refusal) Error() string {
	if r.Err != nil {
		return fmt.Sprintf("sso: %s: %s: %v", r.Reason, r.Message, r.Err)
	}
	return fmt.Sprintf("sso: %s: %s", r.Reason, r.Message)
}

func (r *Refusal) Unwrap() error { return r.Err }

func refusal(reason Reason, status int, title, msg string) *Refusal {
	return &Refusal{Reason: reason, Status: status, Title: title, Message: msg}
}

func unavailable(name string, err error) *Refusal {
	return &Refusal{Reason: ProviderUnavailable, Status: http.StatusBadGateway, Err: err,
		Title:   name + " could not be reached",
		Message: fmt.Sprintf("The portal could not reach %s to sign you in. Try again in a minute; if it stays down, an administrator can sign in with a break-glass local account.", name),
	}
}
