package web

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"portal/internal/apperr"
	"portal/internal/staff"
)

// Access declares who may use a route. The zero value declares nothing and
// is refused at registration: deny by default.
type Access struct {
	public bool
	any    bool
	roles  []staff.Role
}

var (
	// Public routes need no sign-in (sign-in pages, health, metrics, static files).
	Public = Access{public: true}
	// AnyStaff routes need a signed-in account, whatever its roles.
	AnyStaff = Access{any: true}
)

// Roles declares that holders of any of rs may use a route.
func Roles(rs ...staff.Role) Access { return Access{roles: rs} }

// Declared reports whether a declares anything at all.
func (a Access) Declared() bool { return a.public || a.any || len(a.roles) > 0 }

// IsPublic reports whether no sign-in is needed.
func (a Access) IsPublic() bool { return a.public }

// Allows reports whether u may use a route with this access. u is nil for
// anonymous requests.
func (a Access) Allows(u *staff.User) bool {
	switch {
	case a.public:
		return true
	case u == nil:
		return false
	case a.any:
		return true
	default:
		return u.Has(a.roles...)
	}
}

func (a Access) String() string {
	switch {
	case a.public:
		return "public"
	case a.any:
		return "any staff"
	}
	names := make([]string, len(a.roles))
	for i, r := range a.roles {
		names[i] = string(r)
	}
	return strings.Join(names, "|")
}

// Route is one registered route.
type Route struct {
	Method string
	Path   string
	Access Access
}

// IsAPI reports whether the route belongs to the JSON API.
func (r Route) IsAPI() bool { return strings.HasPrefix(r.Path, "/api/") }

// handle registers a route with its access declaration; every route goes
// through here.
func (s *Server) handle(method, path string, h echo.HandlerFunc, a Access) {
	if !a.Declared() {
		panic(fmt.Sprintf("web: route %s %s declares no access", method, path))
	}
	r := Route{Method: method, Path: path, Access: a}
	if slices.ContainsFunc(s.routes, func(x Route) bool { return x.Method == method && x.Path == path }) {
		panic(fmt.Sprintf("web: route %s %s registered twice", method, path))
	}
	s.routes = append(s.routes, r)
	if r.IsAPI() {
		h = refuseEmptyParams(method, path, h)
	}
	s.echo.Add(method, path, h, s.authorize(r))
}

// authorize enforces a route's access declaration.
func (s *Server) authorize(r Route) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if r.Access.IsPublic() {
				return next(c)
			}
			u := currentUser(c)
			if u == nil {
				if r.IsAPI() {
					return staff.ErrBadToken
				}
				if c.Request().Method == http.MethodGet {
					return c.Redirect(http.StatusSeeOther, "/login?next="+urlQueryEscape(c.Request().URL.RequestURI()))
				}
				return apperr.New(apperr.Unauthorized, "sign in first")
			}
			if !r.IsAPI() {
				// A signed-in person who still owes a password change or a
				// two-factor enrolment is sent there first.
				if u.MustChangePassword && r.Path != "/account/password" && r.Path != "/logout" {
					return c.Redirect(http.StatusSeeOther, "/account/password")
				}
				if !u.HasSecondFactor() && s.deps.Staff.Requires2FA(*u) {
					return c.Redirect(http.StatusSeeOther, "/account/2fa")
				}
			}
			if !r.Access.Allows(u) {
				return apperr.New(apperr.Forbidden, "your roles (%s) do not allow this; it needs %s", rolesText(u.Roles), r.Access)
			}
			if t, ok := c.Get(ctxToken).(*staff.Token); ok {
				area := apiArea(r.Path)
				if !t.Scopes.Allows(area, r.Method != http.MethodGet) {
					return apperr.New(apperr.Forbidden, "this token may do %s; %s %s needs the %s scope", t.Scopes, r.Method, r.Path, neededScope(area, r.Method))
				}
			}
			return next(c)
		}
	}
}

func rolesText(rs []staff.Role) string {
	if len(rs) == 0 {
		return "none"
	}
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = string(r)
	}
	return strings.Join(out, ", ")
}

// apiAreas maps the first path segment under /api/v1/ to the token scope
// area it belongs to (see staff.TokenAreas); "" is open to every token
// (who am I, the OpenAPI document).
var apiAreas = map[string]string{
	"me": "", "openapi.json": "",
	"staff":  "staff",
	"audit":  "audit",
	"stacks": "runs",
	"plans":  "runs",
	"runs":   "runs",
	// Promotion, approvals and drift are about stacks and their runs.
	"promotions":  "runs",
	"approvals":   "runs",
	"emergencies": "runs",
	"drift":       "runs",
	"blueprints":  "blueprints",
	"inventory":   "inventory",
	"activity":    "activity",
}

// apiArea is the scope area of an API route. An API route outside every
// area is "unmapped", which only the "all" scope (and "read", for reads)
// allows; a test keeps every route mapped.
func apiArea(path string) string {
	rest, ok := strings.CutPrefix(path, "/api/v1/")
	if !ok {
		return ""
	}
	first, _, _ := strings.Cut(rest, "/")
	if a, ok := apiAreas[first]; ok {
		return a
	}
	return "unmapped"
}

func neededScope(area, method string) string {
	if method == http.MethodGet {
		return area + ":read"
	}
	return area
}
