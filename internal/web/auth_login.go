package web

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"portal/internal/apperr"
	"portal/internal/staff"
	"portal/web/templates"
)

type loginForm struct {
	Email    string `form:"email"`
	Password string `form:"password"`
	Next     string `form:"next"`
}

func (f *loginForm) Validate() error {
	var v apperr.Validation
	f.Email = strings.TrimSpace(f.Email)
	if f.Email == "" {
		v.Add("email", "is required")
	}
	if f.Password == "" {
		v.Add("password", "is required")
	}
	return v.Err()
}

func (s *Server) loginShow(c echo.Context) error {
	if currentUser(c) != nil {
		return c.Redirect(http.StatusSeeOther, safeNext(c.QueryParam("next")))
	}
	return s.render(c, http.StatusOK, templates.Login(s.page(c, "Sign in", ""), s.withSSO(templates.LoginView{Next: c.QueryParam("next")})))
}

func (s *Server) loginSubmit(c echo.Context) error {
	var f loginForm
	if err := c.Bind(&f); err != nil {
		return apperr.New(apperr.Invalid, "the sign-in form could not be read")
	}
	view := s.withSSO(templates.LoginView{Email: f.Email, Next: safeNext(f.Next)})
	if _, ok := staff.NormalizeEmail(f.Email); !ok {
		view.Email = "" // not an address: do not echo it back
	}
	if err := f.Validate(); err != nil {
		view.Error = "Enter your email and password."
		return s.render(c, http.StatusBadRequest, templates.Login(s.page(c, "Sign in", ""), view))
	}
	ctx := c.Request().Context()
	u, err := s.deps.Staff.Authenticate(ctx, who(c), staff.PasswordSignIn{Email: f.Email, Password: f.Password, Device: s.deviceToken(c)})
	if err != nil {
		kind := apperr.KindOf(err)
		if kind != apperr.Unauthorized && kind != apperr.TooMany {
			return err
		}
		view.Error = apperr.MessageOf(err)
		return s.render(c, statusOf[kind], templates.Login(s.page(c, "Sign in", ""), view))
	}
	// A new session token on every privilege change prevents fixation.
	if err := s.sessions.RenewToken(ctx); err != nil {
		return err
	}
	s.sessions.Put(ctx, sessPendingID, u.ID)
	s.sessions.Put(ctx, sessPendingAt, s.deps.Now().Unix())
	s.sessions.Put(ctx, sessPendingVersion, u.CredentialsVersion)
	s.sessions.Put(ctx, sessAuthAt, s.deps.Now().Unix())
	s.sessions.Remove(ctx, sessPendingFails)
	s.sessions.Put(ctx, "next", safeNext(f.Next))
	switch {
	case u.HasSecondFactor():
		return c.Redirect(http.StatusSeeOther, "/login/2fa")
	case s.deps.Staff.Requires2FA(u):
		return c.Redirect(http.StatusSeeOther, "/account/2fa")
	}
	return s.completeSignIn(c, u, "password")
}

// completeSignIn turns a pending sign-in into a session and redirects to
// where the person was going.
func (s *Server) completeSignIn(c echo.Context, u staff.User, method string) error {
	to, err := s.signInSession(c, u, method)
	if err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, to)
}

// signInSession turns a pending sign-in into a session and returns where
// to go next (for sign-ins finished by a script, which redirects itself).
func (s *Server) signInSession(c echo.Context, u staff.User, method string) (string, error) {
	ctx := c.Request().Context()
	if err := s.sessions.RenewToken(ctx); err != nil {
		return "", err
	}
	next := s.sessions.PopString(ctx, "next")
	s.clearPending(ctx)
	s.sessions.Remove(ctx, sessEnrol)
	s.sessions.Put(ctx, sessUserID, u.ID)
	s.sessions.Put(ctx, sessVersion, u.CredentialsVersion)
	c.Set(ctxUser, &u)
	if err := s.deps.Staff.RecordSignIn(ctx, who(c), u, method); err != nil {
		return "", err
	}
	if err := s.rememberDevice(c, u); err != nil {
		return "", err
	}
	if u.MustChangePassword {
		return "/account/password", nil
	}
	return safeNext(next), nil
}

// pendingUser returns the account whose password was accepted but whose
// sign-in awaits two-factor, or nil. A pending sign-in lives
// staff.Config.PendingSignInLife; after that it is void.
func (s *Server) pendingUser(c echo.Context) *staff.User {
	ctx := c.Request().Context()
	id := s.sessions.GetInt64(ctx, sessPendingID)
	if id == 0 {
		return nil
	}
	at := time.Unix(s.sessions.GetInt64(ctx, sessPendingAt), 0)
	if s.deps.Now().Sub(at) > s.deps.Staff.Config().PendingSignInLife {
		s.clearPending(ctx)
		return nil
	}
	u, err := s.deps.Staff.Get(ctx, id)
	if err != nil || u.Disabled || s.sessions.GetInt64(ctx, sessPendingVersion) != u.CredentialsVersion {
		return nil
	}
	return &u
}

// keepSession keeps this session signed in after it changed its own
// account's credentials or roles, which ends every other session: it takes
// the account's new credentials version and a new session token.
func (s *Server) keepSession(c echo.Context, id int64) error {
	ctx := c.Request().Context()
	u, err := s.deps.Staff.Get(ctx, id)
	if err != nil {
		return err
	}
	if err := s.sessions.RenewToken(ctx); err != nil {
		return err
	}
	s.sessions.Put(ctx, sessVersion, u.CredentialsVersion)
	c.Set(ctxUser, &u)
	return nil
}

// reauthWindow is how recently a signed-in person must have proved their
// password to add a second factor.
const reauthWindow = 5 * time.Minute

// recentlyAuthenticated reports whether the password was proved in this
// session within reauthWindow.
func (s *Server) recentlyAuthenticated(c echo.Context) bool {
	at := s.sessions.GetInt64(c.Request().Context(), sessAuthAt)
	return at != 0 && s.deps.Now().Sub(time.Unix(at, 0)) <= reauthWindow
}

// clearPending ends a pending sign-in.
func (s *Server) clearPending(ctx context.Context) {
	s.sessions.Remove(ctx, sessPendingID)
	s.sessions.Remove(ctx, sessPendingAt)
	s.sessions.Remove(ctx, sessPendingVersion)
	s.sessions.Remove(ctx, sessPendingFails)
	s.sessions.Remove(ctx, sessEnrol)
}

func (s *Server) logout(c echo.Context) error {
	ctx := c.Request().Context()
	if u := currentUser(c); u != nil {
		if err := s.deps.Staff.RecordSignOut(ctx, who(c), *u); err != nil {
			return err
		}
	}
	if err := s.sessions.Destroy(ctx); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/login")
}

// deviceCookie holds the known-device token (see staff.RememberDevice): it
// lets the account's owner sign in from this browser while strangers'
// failures hold the account-wide sign-in limit.
const deviceCookie = "portal_device"

// deviceToken is the known-device token the browser sent, or "".
func (s *Server) deviceToken(c echo.Context) string {
	ck, err := c.Cookie(s.cookieName(deviceCookie))
	if err != nil {
		return ""
	}
	return ck.Value
}

// rememberDevice marks this browser as a known device of u.
func (s *Server) rememberDevice(c echo.Context, u staff.User) error {
	tok, err := s.deps.Staff.RememberDevice(c.Request().Context(), u.ID, s.deviceToken(c))
	if err != nil {
		return err
	}
	c.SetCookie(&http.Cookie{
		Name: s.cookieName(deviceCookie), Value: tok, Path: "/", MaxAge: int(s.deps.Staff.Config().DeviceLife / time.Second),
		HttpOnly: true, Secure: s.secureCookies(), SameSite: http.SameSiteLaxMode,
	})
	return nil
}
