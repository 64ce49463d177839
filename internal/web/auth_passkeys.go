package web

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"

	"portal/internal/apperr"
)

// Passkeys as a second factor. The pages start and finish each ceremony
// with a small script (web/static/passkeys.js): it asks for the options,
// calls navigator.credentials, and posts the answer back as JSON; the
// server keeps the ceremony's state in the session, for one use.

const (
	sessPasskeyReg   = "passkey_registration"
	sessPasskeyLogin = "passkey_sign_in"
)

// passkeyAnswer is what the script posts back.
type passkeyAnswer struct {
	Name       string          `json:"name"`
	Credential json.RawMessage `json:"credential"`
}

// passkeyError answers the script with a message it shows, and where to go
// when the ceremony cannot go on.
func passkeyError(c echo.Context, status int, msg, redirect string) error {
	body := map[string]any{"error": map[string]string{"message": msg}}
	if redirect != "" {
		body["redirect"] = redirect
	}
	return c.JSON(status, body)
}

// readAnswer reads the script's JSON answer, bounded.
func readAnswer(c echo.Context) (passkeyAnswer, error) {
	var a passkeyAnswer
	b, err := io.ReadAll(io.LimitReader(c.Request().Body, 128<<10))
	if err != nil || json.Unmarshal(b, &a) != nil || len(a.Credential) == 0 {
		return a, apperr.New(apperr.Invalid, "the browser's answer could not be read")
	}
	return a, nil
}

// passkeyRegisterOptions starts adding a passkey, for the person setting up
// two-factor (signed in with a recent password, or half-way through a sign-in).
func (s *Server) passkeyRegisterOptions(c echo.Context) error {
	st, ok := s.enrolUser(c)
	if !ok {
		return passkeyError(c, http.StatusConflict, "Your sign-in has expired. Sign in again.", "/login")
	}
	if st.signedIn && !s.recentlyAuthenticated(c) {
		return passkeyError(c, http.StatusConflict, "Confirm your password first.", "/account/confirm?next=%2Faccount%2F2fa")
	}
	cer, err := s.deps.Staff.BeginPasskeyRegistration(c.Request().Context(), st.user)
	if err != nil {
		if k := apperr.KindOf(err); k == apperr.Conflict || k == apperr.Invalid {
			return passkeyError(c, statusOf[k], apperr.MessageOf(err), "")
		}
		return err
	}
	s.sessions.Put(c.Request().Context(), sessPasskeyReg, cer.State)
	return c.JSONBlob(http.StatusOK, cer.Options)
}

// passkeyRegister finishes adding a passkey.
func (s *Server) passkeyRegister(c echo.Context) error {
	st, ok := s.enrolUser(c)
	if !ok {
		return passkeyError(c, http.StatusConflict, "Your sign-in has expired. Sign in again.", "/login")
	}
	if st.signedIn && !s.recentlyAuthenticated(c) {
		return passkeyError(c, http.StatusConflict, "Confirm your password first.", "/account/confirm?next=%2Faccount%2F2fa")
	}
	ctx := c.Request().Context()
	a, err := readAnswer(c)
	if err != nil {
		return passkeyError(c, http.StatusBadRequest, apperr.MessageOf(err), "")
	}
	state := s.sessions.PopString(ctx, sessPasskeyReg)
	by := who(c)
	if !st.signedIn {
		by.Actor = st.user.Label()
	}
	pk, err := s.deps.Staff.FinishPasskeyRegistration(ctx, by, st.user, state, a.Name, a.Credential)
	if err != nil {
		if k := apperr.KindOf(err); k == apperr.Invalid || k == apperr.Conflict {
			msg := apperr.MessageOf(err)
			if f := apperr.FieldsOf(err); f["name"] != "" {
				msg = "Name " + f["name"]
			}
			return passkeyError(c, statusOf[k], msg, "")
		}
		return err
	}
	if st.signedIn {
		// Other sessions ended and API tokens were revoked; this one stays.
		if err := s.keepSession(c, st.user.ID); err != nil {
			return err
		}
		s.flash(c, fmt.Sprintf("Passkey “%s” added. You were signed out everywhere else, and your API tokens were revoked.", pk.Name))
		return c.JSON(http.StatusOK, map[string]string{"redirect": "/account"})
	}
	u, err := s.deps.Staff.Get(ctx, st.user.ID)
	if err != nil {
		return err
	}
	to, err := s.signInSession(c, u, "password+passkey-enrolment")
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"redirect": to})
}

// passkeySignInOptions starts the second factor with a passkey.
func (s *Server) passkeySignInOptions(c echo.Context) error {
	u := s.pendingUser(c)
	if u == nil || u.Passkeys == 0 {
		return passkeyError(c, http.StatusConflict, "Your sign-in has expired. Sign in again.", "/login")
	}
	cer, err := s.deps.Staff.BeginPasskeySignIn(c.Request().Context(), *u)
	if err != nil {
		if k := apperr.KindOf(err); k == apperr.Conflict || k == apperr.Invalid {
			return passkeyError(c, statusOf[k], apperr.MessageOf(err), "")
		}
		return err
	}
	s.sessions.Put(c.Request().Context(), sessPasskeyLogin, cer.State)
	return c.JSONBlob(http.StatusOK, cer.Options)
}

// passkeySignIn finishes the second factor with a passkey. A passkey that
// does not verify counts like a wrong code, against the account and this
// sign-in.
func (s *Server) passkeySignIn(c echo.Context) error {
	u := s.pendingUser(c)
	if u == nil || u.Passkeys == 0 {
		return passkeyError(c, http.StatusConflict, "Your sign-in has expired. Sign in again.", "/login")
	}
	ctx := c.Request().Context()
	a, err := readAnswer(c)
	if err != nil {
		return passkeyError(c, http.StatusBadRequest, apperr.MessageOf(err), "")
	}
	err = s.deps.Staff.VerifyPasskey(ctx, who(c), *u, s.sessions.PopString(ctx, sessPasskeyLogin), a.Credential)
	if err == nil {
		to, err := s.signInSession(c, *u, "password+passkey")
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, map[string]string{"redirect": to})
	}
	switch apperr.KindOf(err) {
	case apperr.TooMany:
		s.clearPending(ctx)
		if err := s.deps.Staff.RecordAbandonedSignIn(ctx, who(c), *u, "account has too many wrong codes"); err != nil {
			return err
		}
		return passkeyError(c, http.StatusTooManyRequests, apperr.MessageOf(err), "/login")
	case apperr.Invalid:
	default:
		return err
	}
	if err := s.deps.Staff.RecordFailedCode(ctx, who(c), *u); err != nil {
		return err
	}
	fails := s.sessions.GetInt(ctx, sessPendingFails) + 1
	if fails >= s.deps.Staff.Config().MaxCodesPerSignIn {
		s.clearPending(ctx)
		if err := s.deps.Staff.RecordAbandonedSignIn(ctx, who(c), *u, "too many wrong codes"); err != nil {
			return err
		}
		return passkeyError(c, http.StatusTooManyRequests, fmt.Sprintf("%d failed attempts: this sign-in has ended. Sign in again with your password.", fails), "/login")
	}
	s.sessions.Put(ctx, sessPendingFails, fails)
	msg := "The passkey could not be verified. Try again"
	if u.TOTPEnabled {
		msg += ", or enter a code from your authenticator app"
	}
	return passkeyError(c, http.StatusBadRequest, msg+".", "")
}

// passkeyRemove removes one of the signed-in person's passkeys (after they
// confirm their password).
func (s *Server) passkeyRemove(c echo.Context) error {
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	if ok, err := s.requireRecentAuth(c, "/account"); !ok {
		return err
	}
	u := currentUser(c)
	if err := s.deps.Staff.RemovePasskey(c.Request().Context(), who(c), u.ID, id); err != nil {
		return err
	}
	if err := s.keepSession(c, u.ID); err != nil {
		return err
	}
	s.flash(c, "Passkey removed. You were signed out everywhere else, and your API tokens were revoked.")
	return c.Redirect(http.StatusSeeOther, "/account")
}
