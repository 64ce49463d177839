package web

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"portal/internal/staff"
	"portal/web/templates"
)

// actors turns actor labels, as runs, validations and reports record them
// ("user:2 olga.ops@example.com", "… via api-token:5", "system"), into
// what a person reads: the staff member's name and email, linked to their
// staff page when the viewer may open it. Each person is looked up once.
type actors struct {
	ctx      context.Context
	staff    *staff.Service
	linkable bool
	people   map[int64]*staff.User // nil: no such account any more
}

// actors returns the request's resolver: one per request, so each person
// is looked up once however many rows name them.
func (s *Server) actors(c echo.Context) *actors {
	if a, ok := c.Get("actors").(*actors); ok {
		return a
	}
	a := &actors{ctx: c.Request().Context(), staff: s.deps.Staff, people: map[int64]*staff.User{}}
	if u := currentUser(c); u != nil {
		a.linkable = s.allowed(u, http.MethodGet, "/access/staff/:id")
	}
	c.Set("actors", a)
	return a
}

// view resolves label. Labels that do not name a staff member (system,
// cli) are shown as they are. A nil *actors looks nobody up: the label's
// email is shown.
func (a *actors) view(label string) templates.ActorView {
	id, email, via, ok := parseActor(label)
	if !ok {
		return templates.ActorView{Name: label}
	}
	v := templates.ActorView{Name: email, Via: via}
	if a == nil {
		return v
	}
	u, seen := a.people[id]
	if !seen && a.staff != nil {
		// A failed look-up only costs the name: the label's email stays.
		if got, err := a.staff.Get(a.ctx, id); err == nil {
			u = &got
		}
		a.people[id] = u
	}
	if u == nil {
		return v
	}
	v.Name = u.DisplayName()
	if v.Name != u.Email {
		v.Email = u.Email
	}
	if a.linkable {
		v.Href = "/access/staff/" + itoa(u.ID)
	}
	return v
}

// parseActor reads "user:ID EMAIL" with an optional " via api-token:N".
func parseActor(label string) (id int64, email, via string, ok bool) {
	rest, found := strings.CutPrefix(label, "user:")
	if !found {
		return 0, "", "", false
	}
	rest, tok, hasTok := strings.Cut(rest, " via api-token:")
	idText, email, _ := strings.Cut(rest, " ")
	id, err := strconv.ParseInt(idText, 10, 64)
	if err != nil || id <= 0 {
		return 0, "", "", false
	}
	if hasTok {
		via = "API token #" + tok
	}
	return id, email, via, true
}
