package web

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"portal/internal/apperr"
	"portal/internal/staff"
	"portal/web/templates"
)

// tokenExpiringSoon is how close to expiry a token is flagged.
const tokenExpiringSoon = 7 * 24 * time.Hour

func (s *Server) accessView(c echo.Context) (templates.AccessView, error) {
	u := currentUser(c)
	ctx := c.Request().Context()
	v := templates.AccessView{Lives: staff.TokenLives, Form: templates.TokenForm{Life: staff.DefaultTokenLife, Access: "read"}}
	for _, a := range staff.TokenAreas {
		v.Areas = append(v.Areas, templates.TokenAreaOption{Name: a.Name, Label: a.Label})
	}
	toks, err := s.deps.Staff.ListTokens(ctx, u.ID)
	if err != nil {
		return v, err
	}
	now := s.deps.Now()
	for _, t := range toks {
		row := templates.TokenRow{ID: t.ID, Name: t.Name, Prefix: t.Prefix, Access: t.Scopes.String(), CreatedAt: t.CreatedAt,
			ExpiresAt: t.ExpiresAt, LastUsedAt: t.LastUsedAt, RevokedAt: t.RevokedAt, RevokedReason: t.RevokedReason}
		switch {
		case !t.RevokedAt.IsZero():
			row.State = "revoked"
		case t.Expired(now):
			row.State = "expired"
		case t.ExpiresAt.Sub(now) < tokenExpiringSoon:
			row.State = "expiring"
		default:
			row.State = "active"
		}
		v.Tokens = append(v.Tokens, row)
	}
	if u.Has(staff.Admin) {
		v.IsAdmin = true
		users, err := s.deps.Staff.List(ctx)
		if err != nil {
			return v, err
		}
		for _, x := range users {
			v.Staff = append(v.Staff, s.withSSOLink(ctx, staffRow(x)))
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

// tokenForm reads the new-token form: its name, life and what it may do
// (read-only, everything, or chosen areas, optionally read-only there).
func tokenForm(c echo.Context) (templates.TokenForm, staff.NewToken) {
	f := templates.TokenForm{Name: c.FormValue("name"), Access: c.FormValue("access"), AreasRead: c.FormValue("areas_read") != ""}
	f.Life, _ = strconv.Atoi(c.FormValue("life"))
	if params, err := c.FormParams(); err == nil {
		f.Areas = params["areas"]
	}
	n := staff.NewToken{Name: f.Name, LifeDays: f.Life}
	switch f.Access {
	case "all":
		n.Scopes = []string{staff.ScopeAll}
	case "areas":
		for _, a := range f.Areas {
			if f.AreasRead {
				a += ":read"
			}
			n.Scopes = append(n.Scopes, a)
		}
	default:
		f.Access = "read"
		n.Scopes = []string{staff.ScopeRead}
	}
	if f.Life == 0 {
		f.Life = staff.DefaultTokenLife
	}
	return f, n
}

func (s *Server) tokenCreate(c echo.Context) error {
	u := currentUser(c)
	form, n := tokenForm(c)
	plain, tok, err := s.deps.Staff.CreateToken(c.Request().Context(), who(c), u.ID, n)
	status := http.StatusOK
	v, verr := s.accessView(c)
	if verr != nil {
		return verr
	}
	switch {
	case apperr.KindOf(err) == apperr.Invalid:
		status = http.StatusBadRequest
		v.Errors, v.Form = apperr.FieldsOf(err), form
	case err != nil:
		return err
	default:
		// Rendered directly rather than redirected: the secret is shown
		// once and never stored anywhere it could be shown again.
		v.NewToken, v.NewExpires = plain, tok.ExpiresAt
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

func (s *Server) tokenRenew(c echo.Context) error {
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	t, err := s.deps.Staff.RenewToken(c.Request().Context(), who(c), currentUser(c).ID, id)
	if err != nil {
		return err
	}
	s.flash(c, "Token “"+t.Name+"” renewed: it now expires "+t.ExpiresAt.UTC().Format("2006-01-02 15:04 UTC")+".")
	return c.Redirect(http.StatusSeeOther, "/access")
}

func staffRow(u staff.User) templates.StaffRow {
	r := templates.StaffRow{ID: u.ID, Email: u.Email, Name: u.Name, TwoFactor: u.HasSecondFactor(), Disabled: u.Disabled, MustChange: u.MustChangePassword, CreatedAt: u.CreatedAt, SSO: u.SingleSignOn}
	for _, x := range u.Roles {
		r.Roles = append(r.Roles, string(x))
	}
	return r
}
