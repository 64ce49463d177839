package web

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"portal/internal/apperr"
	"portal/internal/staff"
	"portal/web/templates"
)

// twoFactorView is the second-factor page for u: a passkey button, a code
// form, or both.
func (s *Server) twoFactorView(u *staff.User, codeErr string) templates.TwoFactorView {
	return templates.TwoFactorView{Email: u.Email, Error: codeErr, TOTP: u.TOTPEnabled, Passkeys: u.Passkeys > 0}
}

func (s *Server) twoFactorShow(c echo.Context) error {
	u := s.pendingUser(c)
	if u == nil || !u.HasSecondFactor() {
		return c.Redirect(http.StatusSeeOther, "/login")
	}
	return s.render(c, http.StatusOK, templates.TwoFactor(s.page(c, "Second factor", ""), s.twoFactorView(u, "")))
}

func (s *Server) twoFactorSubmit(c echo.Context) error {
	u := s.pendingUser(c)
	if u == nil || !u.HasSecondFactor() {
		return c.Redirect(http.StatusSeeOther, "/login")
	}
	if !u.TOTPEnabled {
		return s.render(c, http.StatusBadRequest, templates.TwoFactor(s.page(c, "Second factor", ""),
			s.twoFactorView(u, "this account has no authenticator app; use your passkey")))
	}
	ctx := c.Request().Context()
	err := s.deps.Staff.VerifyCode(ctx, who(c), u.ID, c.FormValue("code"))
	if err == nil {
		return s.completeSignIn(c, *u, "password+totp")
	}
	switch apperr.KindOf(err) {
	case apperr.TooMany:
		// The account has had too many wrong codes: this sign-in is over too.
		s.clearPending(ctx)
		if err := s.deps.Staff.RecordAbandonedSignIn(ctx, who(c), *u, "account has too many wrong codes"); err != nil {
			return err
		}
		return s.render(c, http.StatusTooManyRequests, templates.Login(s.page(c, "Sign in", ""), s.withSSO(templates.LoginView{Email: u.Email, Error: apperr.MessageOf(err)})))
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
		return s.render(c, http.StatusTooManyRequests, templates.Login(s.page(c, "Sign in", ""), s.withSSO(templates.LoginView{Email: u.Email,
			Error: fmt.Sprintf("%d wrong two-factor codes: this sign-in has ended. Sign in again with your password.", fails)})))
	}
	s.sessions.Put(ctx, sessPendingFails, fails)
	return s.render(c, http.StatusBadRequest, templates.TwoFactor(s.page(c, "Second factor", ""), s.twoFactorView(u, apperr.FieldsOf(err)["code"])))
}

// enrolUser is who is adding a factor: a signed-in person (a passkey any
// time, an authenticator app when they have none), or one whose sign-in
// waits on a required enrolment.
func (s *Server) enrolUser(c echo.Context) (u *userState, ok bool) {
	if cu := currentUser(c); cu != nil {
		// A single sign-on account's factors live at its provider.
		return &userState{user: *cu, signedIn: true}, !cu.SingleSignOn
	}
	if pu := s.pendingUser(c); pu != nil && !pu.HasSecondFactor() {
		return &userState{user: *pu}, true
	}
	return nil, false
}

// enrolView is the enrolment page for st: the passkey part (or why
// passkeys cannot be used here), and the authenticator app part with the
// secret e unless the person has an app already.
func (s *Server) enrolView(c echo.Context, st *userState, e *staff.Enrolment, codeErr string) templates.EnrolView {
	v := templates.EnrolView{Email: st.user.Email, Required: !st.signedIn, Error: codeErr}
	if e != nil {
		v.TOTP, v.Secret, v.QRPNG = true, e.Secret, e.QRPNG
	}
	if rp, err := s.deps.Staff.Passkeys(); err != nil {
		v.PasskeyProblem = err.Error()
	} else if host := c.Request().Host; !strings.EqualFold(rp.Origin, c.Scheme()+"://"+host) && !strings.EqualFold(rp.Origin, "https://"+host) {
		v.PasskeyProblem = "Passkeys work at the portal's own address: open " + rp.Origin + "/account/2fa to add one."
	}
	return v
}

func (s *Server) enrolShow(c echo.Context) error {
	st, ok := s.enrolUser(c)
	if !ok {
		if st != nil {
			return c.Redirect(http.StatusSeeOther, "/account")
		}
		return c.Redirect(http.StatusSeeOther, "/login")
	}
	if st.signedIn {
		if ok, err := s.requireRecentAuth(c, "/account/2fa"); !ok {
			return err
		}
	}
	var e *staff.Enrolment
	if !st.user.TOTPEnabled {
		en, err := s.deps.Staff.BeginEnrolment(st.user)
		if err != nil {
			return err
		}
		s.sessions.Put(c.Request().Context(), sessEnrol, en.Secret)
		e = &en
	}
	return s.render(c, http.StatusOK, templates.Enrol(s.page(c, "Set up two-factor", "account"), s.enrolView(c, st, e, "")))
}

func (s *Server) enrolSubmit(c echo.Context) error {
	st, ok := s.enrolUser(c)
	if !ok {
		return c.Redirect(http.StatusSeeOther, "/login")
	}
	if st.signedIn {
		if ok, err := s.requireRecentAuth(c, "/account/2fa"); !ok {
			return err
		}
	}
	ctx := c.Request().Context()
	secret := s.sessions.GetString(ctx, sessEnrol)
	if secret == "" || st.user.TOTPEnabled {
		return c.Redirect(http.StatusSeeOther, "/account/2fa")
	}
	by := who(c)
	if !st.signedIn {
		by.Actor = st.user.Label()
	}
	if err := s.deps.Staff.ConfirmEnrolment(ctx, by, st.user.ID, secret, c.FormValue("code")); err != nil {
		if apperr.KindOf(err) != apperr.Invalid {
			return err
		}
		// Show the same secret again so the person can retry without rescanning.
		e, eerr := s.deps.Staff.EnrolmentFor(st.user, secret)
		if eerr != nil {
			return eerr
		}
		return s.render(c, http.StatusBadRequest, templates.Enrol(s.page(c, "Set up two-factor", "account"), s.enrolView(c, st, &e, apperr.FieldsOf(err)["code"])))
	}
	s.sessions.Remove(ctx, sessEnrol)
	if st.signedIn {
		// Other sessions ended and API tokens were revoked; this one stays.
		if err := s.keepSession(c, st.user.ID); err != nil {
			return err
		}
		s.flash(c, "Two-factor authentication is on. You were signed out everywhere else, and your API tokens were revoked.")
		return c.Redirect(http.StatusSeeOther, "/account")
	}
	u, err := s.deps.Staff.Get(ctx, st.user.ID)
	if err != nil {
		return err
	}
	return s.completeSignIn(c, u, "password+totp-enrolment")
}

type userState struct {
	user     staff.User
	signedIn bool
}
