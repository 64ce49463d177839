package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"

	"github.com/labstack/echo/v4"
)

// CSRF protection, bound to the session.
//
// Each browser holds a random value in the portal_csrf cookie (HttpOnly,
// SameSite=Lax, __Host- over https). The token a form or htmx request
// carries is HMAC-SHA256(key, cookie value, session token), so it is good
// only in this browser and only for its current session: a token copied
// from another session, or kept from before signing in or out (the session
// token changes then), is refused. An anonymous browser's token is bound to
// its cookie alone, which is enough for the sign-in form. Nothing is stored
// for it on the server.

const (
	csrfCookie    = "portal_csrf"
	ctxCSRFSeed   = "portal.csrf_seed"
	csrfSeedBytes = 32
)

// csrf checks the token of every request that can change something
// (anything but GET, HEAD, OPTIONS and TRACE) on browser routes, and sets
// the browser's cookie when it has none.
func (s *Server) csrf(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if skipBrowserState(c) {
			return next(c)
		}
		seed := s.csrfSeed(c)
		c.Set(ctxCSRFSeed, seed)
		switch c.Request().Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
			return next(c)
		}
		sent := c.Request().Header.Get("X-CSRF-Token")
		if sent == "" {
			sent = c.FormValue("_csrf")
		}
		if sent == "" || !hmac.Equal([]byte(sent), []byte(s.csrfToken(c))) {
			return &echo.HTTPError{Code: http.StatusForbidden, Message: "the form expired or did not come from the portal; reload the page and try again"}
		}
		return next(c)
	}
}

// csrfSeed returns the browser's CSRF cookie value, setting a new one when
// it has none (or one not made by the portal).
func (s *Server) csrfSeed(c echo.Context) string {
	name := s.cookieName(csrfCookie)
	if ck, err := c.Cookie(name); err == nil {
		if b, err := base64.RawURLEncoding.DecodeString(ck.Value); err == nil && len(b) == csrfSeedBytes {
			return ck.Value
		}
	}
	b := make([]byte, csrfSeedBytes)
	_, _ = rand.Read(b)
	seed := base64.RawURLEncoding.EncodeToString(b)
	c.SetCookie(&http.Cookie{Name: name, Value: seed, Path: "/", HttpOnly: true, Secure: s.secureCookies(), SameSite: http.SameSiteLaxMode})
	// Later reads in this request (a form rendered now) see it too.
	c.Request().AddCookie(&http.Cookie{Name: name, Value: seed})
	return seed
}

// csrfToken is the token forms on this page must carry: bound to the
// browser's cookie and to the session as it is now (after any sign-in or
// token renewal this request made). "" outside browser routes.
func (s *Server) csrfToken(c echo.Context) string {
	seed, ok := c.Get(ctxCSRFSeed).(string)
	if !ok {
		return ""
	}
	session := ""
	if c.Get(ctxSession) != nil {
		session = s.sessions.Token(c.Request().Context())
	}
	mac := hmac.New(sha256.New, s.csrfKey)
	mac.Write([]byte("portal csrf v1\x00"))
	mac.Write([]byte(seed))
	mac.Write([]byte{0})
	mac.Write([]byte(session))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}
