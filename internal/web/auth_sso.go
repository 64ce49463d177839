package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"portal/internal/apperr"
	"portal/internal/sso"
	"portal/internal/staff"
	"portal/web/templates"
)

// Single sign-on through the organization's OpenID provider (package sso).
// Signing in leaves for the provider from /login/sso and comes back to
// sso.CallbackPath; the pending sign-ins (state, nonce, PKCE verifier) wait
// in the browser's session meanwhile. A signed-in single sign-on account is
// checked on every request (ssoAllowsSession) and for every API token
// (ssoAllowsToken).

const (
	// sessSSOPending holds the sign-ins that left for the provider, as
	// JSON, so that several tabs may sign in at once.
	sessSSOPending = "sso_pending"
	// sessSSOAt (unix seconds) is when this session signed in through the
	// provider; sso.Config.SessionMax bounds it.
	sessSSOAt = "sso_at"
	// maxPendingSSO bounds the sign-ins a session keeps waiting.
	maxPendingSSO = 4
)

// withSSO adds the provider's button to a sign-in page view.
func (s *Server) withSSO(v templates.LoginView) templates.LoginView {
	if s.deps.SSO != nil {
		v.SSO = s.deps.SSO.Name()
	}
	return v
}

func (s *Server) pendingSSO(ctx context.Context) []sso.Pending {
	var out []sso.Pending
	if raw := s.sessions.GetString(ctx, sessSSOPending); raw != "" {
		_ = json.Unmarshal([]byte(raw), &out)
	}
	return out
}

func (s *Server) putPendingSSO(ctx context.Context, list []sso.Pending) {
	now := s.deps.Now()
	var keep []sso.Pending
	for _, p := range list {
		if now.Sub(p.Started) <= sso.PendingLife {
			keep = append(keep, p)
		}
	}
	if len(keep) > maxPendingSSO {
		keep = keep[len(keep)-maxPendingSSO:]
	}
	if len(keep) == 0 {
		s.sessions.Remove(ctx, sessSSOPending)
		return
	}
	b, _ := json.Marshal(keep)
	s.sessions.Put(ctx, sessSSOPending, string(b))
}

// ssoStart sends the browser to the provider.
func (s *Server) ssoStart(c echo.Context) error {
	if s.deps.SSO == nil {
		return apperr.New(apperr.NotFound, "Single sign-on is not configured on this portal; sign in with your email and password.")
	}
	next := safeNext(c.QueryParam("next"))
	if currentUser(c) != nil {
		return c.Redirect(http.StatusSeeOther, next)
	}
	ctx := c.Request().Context()
	p, url, err := s.deps.SSO.Begin(ctx, next)
	if err != nil {
		return s.ssoRefused(c, err)
	}
	s.putPendingSSO(ctx, append(s.pendingSSO(ctx), p))
	return c.Redirect(http.StatusSeeOther, url)
}

// ssoCallback is where the provider sends the browser back.
func (s *Server) ssoCallback(c echo.Context) error {
	if s.deps.SSO == nil {
		return apperr.New(apperr.NotFound, "Single sign-on is not configured on this portal.")
	}
	ctx := c.Request().Context()
	q := c.QueryParams()
	pending := s.pendingSSO(ctx)
	p, found := sso.Match(pending, q.Get("state"))
	if found {
		// Each sign-in is answered once.
		var rest []sso.Pending
		for _, x := range pending {
			if x.State != p.State {
				rest = append(rest, x)
			}
		}
		s.putPendingSSO(ctx, rest)
	}
	u, err := s.deps.SSO.Complete(ctx, who(c), p, found, sso.Callback{State: q.Get("state"), Code: q.Get("code"),
		Error: q.Get("error"), ErrorDescription: q.Get("error_description")})
	if err != nil {
		return s.ssoRefused(c, err)
	}
	s.sessions.Put(ctx, "next", safeNext(p.Next))
	s.sessions.Put(ctx, sessSSOAt, s.deps.Now().Unix())
	return s.completeSignIn(c, u, "sso")
}

// ssoRefused shows a refused sign-in's page; other errors go to the error
// handler.
func (s *Server) ssoRefused(c echo.Context, err error) error {
	var r *sso.Refusal
	if !errors.As(err, &r) {
		return err
	}
	v := templates.SSOErrorView{Provider: s.deps.SSO.Name(), Reason: string(r.Reason), Title: r.Title, Message: r.Message, Detail: r.Detail,
		RequestID: c.Response().Header().Get(echo.HeaderXRequestID)}
	switch r.Reason {
	case sso.ProviderUnavailable, sso.StateMismatch, sso.ProviderError, sso.InvalidResponse, sso.ProviderRefused, sso.Unconfirmed, sso.SessionExpired:
		v.Retry = true
	}
	return s.render(c, r.Status, templates.SSOError(s.page(c, r.Title, ""), v))
}

// ssoAllowsSession checks a signed-in single sign-on account on every
// request. When its access has ended (see sso.Service.Gate, and
// sso.Config.SessionMax for the session itself) the session ends, the
// ending is audited, and the sign-in page says why. Local accounts pass.
func (s *Server) ssoAllowsSession(c echo.Context, u *staff.User) (bool, error) {
	if !u.SingleSignOn {
		return true, nil
	}
	ctx := c.Request().Context()
	var gate error
	switch {
	case s.deps.SSO == nil:
		gate = &sso.Refusal{Reason: sso.OtherProvider, Message: "Single sign-on is off on this portal, so accounts that sign in through an identity provider cannot be used."}
	default:
		max := s.deps.SSO.Config().SessionMax
		at := s.sessions.GetInt64(ctx, sessSSOAt)
		if at == 0 || s.deps.Now().Sub(time.Unix(at, 0)) > max {
			gate = &sso.Refusal{Reason: sso.SessionExpired, Message: "Single sign-on sessions last at most " + max.String() + ". Sign in again through " + s.deps.SSO.Name() + "."}
		} else {
			gate = s.deps.SSO.Gate(ctx, *u)
		}
	}
	var r *sso.Refusal
	switch {
	case gate == nil:
		return true, nil
	case !errors.As(gate, &r):
		return false, gate
	}
	e := who(c)
	e.Actor, e.Action, e.Target = u.Label(), "auth.sso_session_ended", u.Label()
	e.Details = map[string]any{"reason": string(r.Reason)}
	if _, err := s.deps.Audit.Record(ctx, e); err != nil {
		return false, err
	}
	if err := s.sessions.Destroy(ctx); err != nil {
		return false, err
	}
	s.flashError(c, r.Message)
	return false, nil
}

// withSSOLink adds what the provider last said about a single sign-on
// account to its row on the staff pages.
func (s *Server) withSSOLink(ctx context.Context, r templates.StaffRow) templates.StaffRow {
	if !r.SSO || s.deps.SSO == nil {
		return r
	}
	l, err := s.deps.SSO.LinkOf(ctx, r.ID)
	if err != nil {
		return r
	}
	r.Link = &templates.SSOLinkView{Provider: s.deps.SSO.Name(), Suspended: l.State == sso.Suspended, Reason: l.Reason, Groups: l.Groups,
		LastSignIn: l.LastSignInAt, Confirmed: l.VerifiedAt, CheckError: l.CheckError}
	return r
}

// ssoAllowsToken checks the owner of an API token: a single sign-on
// account's tokens work only while its access lasts.
func (s *Server) ssoAllowsToken(ctx context.Context, u staff.User) error {
	if !u.SingleSignOn {
		return nil
	}
	if s.deps.SSO == nil {
		return apperr.New(apperr.Unauthorized, "this token's owner signs in through single sign-on, which is off on this portal")
	}
	err := s.deps.SSO.Gate(ctx, u)
	var r *sso.Refusal
	if errors.As(err, &r) {
		return apperr.New(apperr.Unauthorized, "this token's owner has no access now: %s", r.Message)
	}
	return err
}
