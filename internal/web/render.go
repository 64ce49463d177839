package web

import (
	"net/http"
	"strconv"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"portal/internal/staff"
	"portal/web/templates"
)

// render writes a templ component with status.
func (s *Server) render(c echo.Context, status int, comp templ.Component) error {
	c.Response().Header().Set(echo.HeaderContentType, echo.MIMETextHTMLCharsetUTF8)
	c.Response().Header().Set("Cache-Control", "no-store")
	c.Response().WriteHeader(status)
	return comp.Render(c.Request().Context(), c.Response())
}

// navAreas are the main areas in navigation order; each is shown to those
// whose roles allow its GET route.
var navAreas = []templates.NavItem{
	{Key: "overview", Label: "Overview", Href: "/"},
	{Key: "stacks", Label: "Stacks", Href: "/stacks"},
	{Key: "blueprints", Label: "Blueprints", Href: "/blueprints"},
	{Key: "runs", Label: "Runs", Href: "/runs"},
	{Key: "promotions", Label: "Promotions", Href: "/promotions"},
	{Key: "routing", Label: "Routing", Href: "/routing"},
	{Key: "approvals", Label: "Approvals", Href: "/approvals"},
	{Key: "inventory", Label: "Inventory", Href: "/inventory"},
	{Key: "activity", Label: "Activity", Href: "/activity"},
	{Key: "billing", Label: "Billing", Href: "/billing"},
	{Key: "access", Label: "Access", Href: "/access"},
	{Key: "audit", Label: "Audit", Href: "/audit"},
}

// page builds the layout's view model for the current request.
func (s *Server) page(c echo.Context, title, active string) templates.Page {
	p := templates.Page{Title: title, Active: active, Sandbox: s.cfg.SandboxNotice}
	p.CSRF = s.csrfToken(c)
	if u := currentUser(c); u != nil {
		p.User = userView(u)
		p.Nav = s.navFor(u)
		for i := range p.Nav {
			if p.Nav[i].Key == "approvals" {
				p.Nav[i].Count = s.waitingCount(c.Request().Context(), u)
			}
		}
	}
	if sb := s.deps.Sandbox; sb != nil && p.Sandbox != "" {
		if sb.Inbox != nil {
			p.SandboxLinks = append(p.SandboxLinks, templates.NavItem{Key: "inbox", Label: "Sandbox inbox (alerts)", Href: "/sandbox/inbox"})
		}
		if sb.MailURL != "" {
			p.SandboxLinks = append(p.SandboxLinks, templates.NavItem{Key: "mail", Label: "Mail inbox (mailpit)", Href: sb.MailURL})
		}
	}
	if c.Get(ctxSession) != nil {
		ctx := c.Request().Context()
		kind := templates.FlashKind(s.sessions.PopString(ctx, sessFlashKind))
		if f := s.sessions.PopString(ctx, sessFlash); f != "" {
			if kind == "" {
				kind = templates.FlashSuccess
			}
			p.Flash = templates.Flash{Kind: kind, Text: f}
		}
	}
	return p
}

// navFor lists the areas u may open.
func (s *Server) navFor(u *staff.User) []templates.NavItem {
	var out []templates.NavItem
	for _, n := range navAreas {
		if s.allowed(u, http.MethodGet, n.Href) {
			out = append(out, n)
		}
	}
	return out
}

// allowed reports whether u may use the route registered for method and path.
func (s *Server) allowed(u *staff.User, method, path string) bool {
	for _, r := range s.routes {
		if r.Method == method && r.Path == path {
			return r.Access.Allows(u)
		}
	}
	return false
}

func userView(u *staff.User) *templates.UserView {
	v := &templates.UserView{ID: u.ID, Name: u.Name, Email: u.Email}
	for _, r := range u.Roles {
		v.Roles = append(v.Roles, string(r))
	}
	return v
}

// flash stores a one-time message shown on the next page: the action did
// what was asked.
func (s *Server) flash(c echo.Context, msg string) { s.flashAs(c, templates.FlashSuccess, msg) }

// flashWarning stores a one-time message saying the action was done but
// something about it needs a look (e.g. recorded, IAM not changed yet).
func (s *Server) flashWarning(c echo.Context, msg string) { s.flashAs(c, templates.FlashWarning, msg) }

// flashError stores a one-time message saying the action failed; it is
// shown as an alert.
func (s *Server) flashError(c echo.Context, msg string) { s.flashAs(c, templates.FlashError, msg) }

func (s *Server) flashAs(c echo.Context, kind templates.FlashKind, msg string) {
	ctx := c.Request().Context()
	s.sessions.Put(ctx, sessFlash, msg)
	s.sessions.Put(ctx, sessFlashKind, string(kind))
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func paramID(c echo.Context, name string) (int64, error) {
	id, err := strconv.ParseInt(c.Param(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, echo.NewHTTPError(http.StatusNotFound)
	}
	return id, nil
}
