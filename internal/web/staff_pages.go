package web

import (
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"portal/internal/apperr"
	"portal/internal/staff"
	"portal/web/templates"
)

// staffForm is the add-staff form.
type staffForm struct {
	Email string   `form:"email"`
	Name  string   `form:"name"`
	Roles []string `form:"roles"`
}

func roleOptions(checked []string) []templates.RoleOption {
	out := make([]templates.RoleOption, len(staff.AllRoles))
	for i, r := range staff.AllRoles {
		label := string(r)
		out[i] = templates.RoleOption{Value: string(r), Label: strings.ToUpper(label[:1]) + label[1:], Description: r.Describe(), Checked: slices.Contains(checked, string(r))}
	}
	return out
}

func (s *Server) staffNew(c echo.Context) error {
	return s.render(c, http.StatusOK, templates.StaffNew(s.page(c, "Add staff member", "access"), templates.StaffFormView{AllRoles: roleOptions(nil)}))
}

func (s *Server) staffCreate(c echo.Context) error {
	var f staffForm
	if err := c.Bind(&f); err != nil {
		return apperr.New(apperr.Invalid, "the form could not be read")
	}
	var v apperr.Validation
	roles, rerr := staff.ParseRoles(f.Roles)
	if rerr != nil {
		v.Add("roles", rerr.Error())
	}
	n := staff.NewUser{Email: f.Email, Name: f.Name, Roles: roles}
	if err := n.Validate(); err != nil {
		for k, m := range apperr.FieldsOf(err) {
			v.Add(k, m)
		}
	}
	var u staff.User
	var otp string
	err := v.Err()
	if err == nil {
		u, otp, err = s.deps.Staff.Create(c.Request().Context(), who(c), n)
	}
	if k := apperr.KindOf(err); k == apperr.Invalid || k == apperr.Conflict {
		view := templates.StaffFormView{Email: f.Email, Name: f.Name, Roles: f.Roles, AllRoles: roleOptions(f.Roles), Errors: apperr.FieldsOf(err)}
		return s.render(c, statusOf[k], templates.StaffNew(s.page(c, "Add staff member", "access"), view))
	} else if err != nil {
		return err
	}
	// The one-time password is rendered once, never stored in clear.
	return s.renderStaff(c, http.StatusCreated, u, otp, nil)
}

func (s *Server) renderStaff(c echo.Context, status int, u staff.User, oneTime string, errs map[string]string) error {
	row := s.withSSOLink(c.Request().Context(), staffRow(u))
	v := templates.StaffDetailView{Row: row, RoleOpts: roleOptions(row.Roles), IsSelf: currentUser(c).ID == u.ID,
		OneTime: oneTime, Errors: errs, Requires2FA: s.deps.Staff.Requires2FA(u)}
	return s.render(c, status, templates.StaffDetail(s.page(c, u.Email, "access"), v))
}

func (s *Server) staffShow(c echo.Context) error {
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	u, err := s.deps.Staff.Get(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return s.renderStaff(c, http.StatusOK, u, "", nil)
}

func (s *Server) staffSetRoles(c echo.Context) error {
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	form, err := c.FormParams()
	if err != nil {
		return apperr.New(apperr.Invalid, "the form could not be read")
	}
	roles, rerr := staff.ParseRoles(form["roles"])
	if rerr != nil {
		u, err := s.deps.Staff.Get(ctx, id)
		if err != nil {
			return err
		}
		return s.renderStaff(c, http.StatusBadRequest, u, "", map[string]string{"roles": rerr.Error()})
	}
	u, err := s.deps.Staff.SetRoles(ctx, who(c), id, roles)
	if err != nil {
		return err
	}
	if id == currentUser(c).ID {
		if err := s.keepSession(c, id); err != nil {
			return err
		}
	}
	s.flash(c, "Roles of "+u.Email+" saved.")
	return c.Redirect(http.StatusSeeOther, "/access/staff/"+itoa(id))
}

func (s *Server) staffAction(c echo.Context, msg string, fn func(id int64) (staff.User, error)) error {
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	u, err := fn(id)
	if err != nil {
		return err
	}
	s.flash(c, msg+" "+u.Email+".")
	return c.Redirect(http.StatusSeeOther, "/access/staff/"+itoa(id))
}

func (s *Server) staffDisable(c echo.Context) error {
	if id, _ := paramID(c, "id"); id == currentUser(c).ID {
		return apperr.New(apperr.Conflict, "you cannot disable your own account")
	}
	return s.staffAction(c, "Disabled", func(id int64) (staff.User, error) {
		return s.deps.Staff.SetDisabled(c.Request().Context(), who(c), id, true)
	})
}

func (s *Server) staffEnable(c echo.Context) error {
	return s.staffAction(c, "Re-enabled", func(id int64) (staff.User, error) {
		return s.deps.Staff.SetDisabled(c.Request().Context(), who(c), id, false)
	})
}

func (s *Server) staffResetTwoFactor(c echo.Context) error {
	return s.staffAction(c, "Two-factor reset for", func(id int64) (staff.User, error) {
		u, err := s.deps.Staff.ResetTwoFactor(c.Request().Context(), who(c), id)
		if err == nil && id == currentUser(c).ID {
			err = s.keepSession(c, id)
		}
		return u, err
	})
}

func (s *Server) staffResetPassword(c echo.Context) error {
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	if id == currentUser(c).ID {
		return apperr.New(apperr.Conflict, "change your own password from your account page")
	}
	u, otp, err := s.deps.Staff.ResetPassword(c.Request().Context(), who(c), id)
	if err != nil {
		return err
	}
	return s.renderStaff(c, http.StatusOK, u, otp, nil)
}
