package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"portal/internal/apperr"
	"portal/web/templates"
)

func (s *Server) accountShow(c echo.Context) error {
	u := currentUser(c)
	v := templates.AccountView{Email: u.Email, Name: u.Name, Roles: userView(u).Roles, TOTPEnabled: u.TOTPEnabled, Requires2FA: s.deps.Staff.Requires2FA(*u)}
	pks, err := s.deps.Staff.ListPasskeys(c.Request().Context(), u.ID)
	if err != nil {
		return err
	}
	for _, p := range pks {
		v.Passkeys = append(v.Passkeys, templates.PasskeyRow{ID: p.ID, Name: p.Name, CreatedAt: p.CreatedAt, LastUsedAt: p.LastUsedAt})
	}
	if u.SingleSignOn && s.deps.SSO != nil {
		v.SSO = s.deps.SSO.Name()
	}
	return s.render(c, http.StatusOK, templates.Account(s.page(c, "Your account", "account"), v))
}

func (s *Server) passwordShow(c echo.Context) error {
	u := currentUser(c)
	return s.render(c, http.StatusOK, templates.Password(s.page(c, "Change password", "account"), templates.PasswordView{Forced: u.MustChangePassword}))
}

func (s *Server) passwordSubmit(c echo.Context) error {
	u := currentUser(c)
	ctx := c.Request().Context()
	err := s.deps.Staff.ChangePassword(ctx, who(c), u.ID, c.FormValue("current"), c.FormValue("new"), c.FormValue("confirm"))
	if apperr.KindOf(err) == apperr.Invalid {
		return s.render(c, http.StatusBadRequest, templates.Password(s.page(c, "Change password", "account"),
			templates.PasswordView{Forced: u.MustChangePassword, Errors: apperr.FieldsOf(err)}))
	} else if err != nil {
		return err
	}
	// Every other session ended and the API tokens were revoked; this one
	// stays.
	if err := s.keepSession(c, u.ID); err != nil {
		return err
	}
	s.sessions.Put(ctx, sessAuthAt, s.deps.Now().Unix())
	s.flash(c, "Your password has been changed. You were signed out everywhere else, and your API tokens were revoked.")
	if !u.HasSecondFactor() && s.deps.Staff.Requires2FA(*u) {
		return c.Redirect(http.StatusSeeOther, "/account/2fa")
	}
	return c.Redirect(http.StatusSeeOther, "/")
}
