package web

import (
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"portal/internal/apperr"
	"portal/internal/staff"
	"portal/web/templates"
)

func (s *Server) twoFactorShow(c echo.Context) error {
	u := s.pendingUser(c)
	if u == nil || !u.TOTPEnabled {
		return c.Redirect(http.StatusSeeOther, "/login")
	}
	return s.render(c, http.StatusOK, templates.TwoFactor(s.page(c, "Two-factor code", ""), templates.TwoFactorView{Email: u.Email}))
}

func (s *Server) twoFactorSubmit(c echo.Context) error {
	u := s.pendingUser(c)
	if u == nil || !u.TOTPEnabled {
		return c.Redirect(http.StatusSeeOther, "/login")
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
	return s.render(c, http.StatusBadRequest, templates.TwoFactor(s.page(c, "Two-factor code", ""),
		templates.TwoFactorView{Email: u.Email, Error: apperr.FieldsOf(err)["code"]}))
}

// enrolUser is who is enrolling: a signed-in person without two-factor, or
// one whose sign-in waits on a required enrolment.
func (s *Server) enrolUser(c echo.Context) (u *userState, ok bool) {
	if cu := currentUser(c); cu != nil {
		// A single sign-on account's factors live at its provider.
		return &userState{user: *cu, signedIn: true}, !cu.TOTPEnabled && !cu.SingleSignOn
	}
	if pu := s.pendingUser(c); pu != nil && !pu.TOTPEnabled {
		return &userState{user: *pu}, true
	}
	return nil, false
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
	e, err := s.deps.Staff.BeginEnrolment(st.user)
	if err != nil {
		return err
	}
	s.sessions.Put(c.Request().Context(), sessEnrol, e.Secret)
	return s.render(c, http.StatusOK, templates.Enrol(s.page(c, "Set up two-factor", "account"), templates.EnrolView{
		Email: st.user.Email, Secret: e.Secret, QRPNG: e.QRPNG, Required: !st.signedIn,
	}))
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
	if secret == "" {
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
		view := templates.EnrolView{Email: st.user.Email, Secret: e.Secret, QRPNG: e.QRPNG, Required: !st.signedIn, Error: apperr.FieldsOf(err)["code"]}
		return s.render(c, http.StatusBadRequest, templates.Enrol(s.page(c, "Set up two-factor", "account"), view))
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
