package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"portal/internal/apperr"
	"portal/internal/staff"
	"portal/web/templates"
)

// Adding a second factor while signed in needs the password proved within
// reauthWindow, so a session left open (or taken) cannot add a factor of
// its own: requireRecentAuth sends the person to confirm it first.

// confirmPurposes says what a confirmation is for, by where it leads.
var confirmPurposes = map[string]string{
	"/account/2fa": "set up two-factor authentication",
}

// requireRecentAuth redirects to the password confirmation unless the
// password was proved recently in this session; ok is true when the caller
// may go on.
func (s *Server) requireRecentAuth(c echo.Context, next string) (ok bool, err error) {
	if s.recentlyAuthenticated(c) {
		return true, nil
	}
	return false, c.Redirect(http.StatusSeeOther, "/account/confirm?next="+urlQueryEscape(next))
}

func confirmView(next string) templates.ConfirmView {
	next = safeNext(next)
	purpose, ok := confirmPurposes[next]
	if !ok {
		purpose = "continue"
	}
	return templates.ConfirmView{Purpose: purpose, Next: next}
}

func (s *Server) confirmShow(c echo.Context) error {
	if currentUser(c) == nil {
		return c.Redirect(http.StatusSeeOther, "/login")
	}
	return s.render(c, http.StatusOK, templates.Confirm(s.page(c, "Confirm your password", "account"), confirmView(c.QueryParam("next"))))
}

// confirmSubmit checks the password under the same limits as signing in
// (failures count against the account and source).
func (s *Server) confirmSubmit(c echo.Context) error {
	u := currentUser(c)
	if u == nil {
		return c.Redirect(http.StatusSeeOther, "/login")
	}
	ctx := c.Request().Context()
	view := confirmView(c.FormValue("next"))
	got, err := s.deps.Staff.Authenticate(ctx, who(c), staff.PasswordSignIn{Email: u.Email, Password: c.FormValue("password"), Device: s.deviceToken(c)})
	if err == nil && got.ID != u.ID {
		err = staff.ErrBadCredentials
	}
	if err != nil {
		kind := apperr.KindOf(err)
		if kind != apperr.Unauthorized && kind != apperr.TooMany {
			return err
		}
		// A wrong password here is a form error (the person is signed in).
		status, msg := http.StatusBadRequest, "That is not your password."
		if kind == apperr.TooMany {
			status, msg = http.StatusTooManyRequests, apperr.MessageOf(err)
		}
		view.Error = msg
		return s.render(c, status, templates.Confirm(s.page(c, "Confirm your password", "account"), view))
	}
	s.sessions.Put(ctx, sessAuthAt, s.deps.Now().Unix())
	return c.Redirect(http.StatusSeeOther, view.Next)
}
