package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"portal/internal/apperr"
	"portal/internal/staff"
	"portal/web/templates"
)

func (s *Server) accessView(c echo.Context) (templates.AccessView, error) {
	u := currentUser(c)
	ctx := c.Request().Context()
	var v templates.AccessView
	toks, err := s.deps.Staff.ListTokens(ctx, u.ID)
	if err != nil {
		return v, err
	}
	for _, t := range toks {
		v.Tokens = append(v.Tokens, templates.TokenRow{ID: t.ID, Name: t.Name, Prefix: t.Prefix, CreatedAt: t.CreatedAt, LastUsedAt: t.LastUsedAt, RevokedAt: t.RevokedAt})
	}
	if u.Has(staff.Admin) {
		v.IsAdmin = true
		users, err := s.deps.Staff.List(ctx)
		if err != nil {
			return v, err
		}
		for _, x := range users {
			v.Staff = append(v.Staff, staffRow(x))
		}
	}
	return v, nil
}

func (s *Server) accessShow(c echo.Context) error {
	v, err := s.accessView(c)
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, templates.Access(s.page(c, "Access", "access"), v))
}

func (s *Server) tokenCreate(c echo.Context) error {
	u := currentUser(c)
	name := c.FormValue("name")
	plain, _, err := s.deps.Staff.CreateToken(c.Request().Context(), who(c), u.ID, name)
	status := http.StatusOK
	v, verr := s.accessView(c)
	if verr != nil {
		return verr
	}
	switch {
	case apperr.KindOf(err) == apperr.Invalid:
		status = http.StatusBadRequest
		v.Errors, v.TokenName = apperr.FieldsOf(err), name
	case err != nil:
		return err
	default:
		// Rendered directly rather than redirected: the secret is shown
		// once and never stored anywhere it could be shown again.
		v.NewToken = plain
	}
	return s.render(c, status, templates.Access(s.page(c, "Access", "access"), v))
}

func (s *Server) tokenRevoke(c echo.Context) error {
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	if err := s.deps.Staff.RevokeToken(c.Request().Context(), who(c), currentUser(c).ID, id); err != nil {
		return err
	}
	s.flash(c, "Token revoked.")
	return c.Redirect(http.StatusSeeOther, "/access")
}

func staffRow(u staff.User) templates.StaffRow {
	r := templates.StaffRow{ID: u.ID, Email: u.Email, Name: u.Name, TOTPEnabled: u.TOTPEnabled, Disabled: u.Disabled, MustChange: u.MustChangePassword, CreatedAt: u.CreatedAt}
	for _, x := range u.Roles {
		r.Roles = append(r.Roles, string(x))
	}
	return r
}
