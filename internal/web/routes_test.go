package web_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"portal/internal/audit"
	"portal/internal/staff"
	"portal/internal/web"
)

// access is who the product brief says may use a route. It is written out
// here, not read from the routes, so that a wrongly declared route fails.
type access struct {
	public bool
	any    bool
	roles  []staff.Role
}

var (
	public         = access{public: true}
	anyStaff       = access{any: true}
	adminOnly      = access{roles: []staff.Role{staff.Admin}}
	auditors       = access{roles: []staff.Role{staff.Compliance, staff.Admin}}
	estate         = access{roles: []staff.Role{staff.Ops, staff.Compliance, staff.Admin}}
	money          = access{roles: []staff.Role{staff.Finance, staff.Admin}}
	deployers      = access{roles: []staff.Role{staff.Ops, staff.Admin}}
	complianceOnly = access{roles: []staff.Role{staff.Compliance}}
)

func (a access) allows(roles []staff.Role) bool {
	switch {
	case a.public:
		return true
	case roles == nil:
		return false
	case a.any:
		return true
	}
	for _, r := range roles {
		if slices.Contains(a.roles, r) {
			return true
		}
	}
	return false
}

// wantAccess lists every route the portal must have and who may use it.
var wantAccess = map[string]access{
	"GET /healthz":    public,
	"GET /readyz":     public,
	"GET /metrics":    public,
	"GET /static/*":   public,
	"GET /login":      public,
	"POST /login":     public,
	"GET /login/2fa":  public,
	"POST /login/2fa": public,
	// Single sign-on: leaving for the provider and coming back.
	"GET /login/sso":          public,
	"GET /login/sso/callback": public,
	// Enrolment is reached half-way through a sign-in (password accepted,
	// two-factor owed), so it cannot require a session.
	"GET /account/2fa":  public,
	"POST /account/2fa": public,
	"POST /logout":      public,
	// Confirming the password again must be reachable by someone who owes
	// a factor; the handlers refuse anyone not signed in.
	"GET /account/confirm":  public,
	"POST /account/confirm": public,
	// Passkey ceremonies run half-way through a sign-in too; the handlers
	// answer 401 without a pending sign-in or session.
	"POST /account/passkeys/options": public,
	"POST /account/passkeys":         public,
	"POST /login/passkey/options":    public,
	"POST /login/passkey":            public,

	"GET /account":                      anyStaff,
	"GET /account/password":             anyStaff,
	"POST /account/password":            anyStaff,
	"POST /account/passkeys/:id/remove": anyStaff,

	"GET /":           anyStaff,
	"GET /blueprints": estate,
	"GET /runs":       estate,

	"POST /runs/plan":        deployers,
	"GET /plans/:id":         estate,
	"POST /plans/:id/apply":  deployers,
	"GET /runs/:id":          estate,
	"GET /runs/:id/progress": estate,
	"POST /runs/:id/cancel":  deployers,
	"POST /runs/:id/resume":  deployers,
	"GET /inventory":         estate,
	"GET /activity":          estate,
	"GET /billing":           money,

	"GET /activity/sensitive":     estate,
	"GET /activity/events/:id":    estate,
	"GET /activity/export.csv":    estate,
	"GET /activity/export.jsonl":  estate,
	"POST /activity/ingest":       estate,
	"GET /activity/integrity":     estate,
	"POST /activity/integrity":    estate,
	"GET /activity/integrity/:id": estate,
	"GET /activity/alarms":        estate,
	"GET /activity/metrics":       estate,
	"GET /activity/evidence":      estate,
	"POST /activity/evidence":     estate,
	// Saved searches: the handlers check the page's own access and the
	// owner.
	"POST /saved-searches":            anyStaff,
	"POST /saved-searches/:id/delete": anyStaff,
	"GET /activity/evidence/:id":      estate,
	"GET /activity/evidence/:id/pdf":  estate,

	"GET /access":                           anyStaff,
	"POST /access/tokens":                   anyStaff,
	"POST /access/tokens/:id/revoke":        anyStaff,
	"POST /access/tokens/:id/renew":         anyStaff,
	"GET /access/staff/new":                 adminOnly,
	"POST /access/staff":                    adminOnly,
	"GET /access/staff/:id":                 adminOnly,
	"POST /access/staff/:id/roles":          adminOnly,
	"POST /access/staff/:id/disable":        adminOnly,
	"POST /access/staff/:id/enable":         adminOnly,
	"POST /access/staff/:id/reset-2fa":      adminOnly,
	"POST /access/staff/:id/reset-password": adminOnly,
	"GET /audit":                            auditors,
	"GET /audit/verify":                     auditors,
	"GET /audit/export.csv":                 auditors,
	"GET /api/v1/openapi.json":              public,
	"GET /api/v1/me":                        anyStaff,
	"GET /api/v1/staff":                     adminOnly,
	"POST /api/v1/staff":                    adminOnly,
	"GET /api/v1/audit":                     auditors,
	"POST /api/v1/plans":                    deployers,
	"GET /api/v1/plans/:id":                 estate,
	"POST /api/v1/plans/:id/apply":          deployers,
	"GET /api/v1/runs":                      estate,
	"GET /api/v1/plans/:id/approval":        estate,
	"POST /api/v1/plans/:id/decide":         estate,
	"GET /api/v1/promotions":                estate,
	"POST /api/v1/promotions":               deployers,
	"GET /api/v1/promotions/:id":            estate,
	"GET /api/v1/approvals":                 estate,
	"GET /api/v1/emergencies":               estate,
	"GET /api/v1/drift":                     estate,
	"POST /api/v1/drift/check":              deployers,
	"GET /api/v1/drift/:id":                 estate,
	"POST /api/v1/drift/:id/reconcile":      deployers,
	"GET /api/v1/runs/:id":                  estate,
	"POST /api/v1/runs/:id/cancel":          deployers,
	"POST /api/v1/runs/:id/resume":          deployers,
	"GET /api/v1/audit/verify":              auditors,

	// Stacks, blueprint versions and guardrails: ops and admins change
	// them, compliance reads, finance sees nothing.
	"GET /stacks":                              estate,
	"GET /blueprints/new":                      deployers,
	"POST /blueprints/preview":                 deployers,
	"POST /blueprints/versions":                deployers,
	"GET /blueprints/versions/:id":             estate,
	"GET /blueprints/versions/:id/files/:name": estate,
	"GET /blueprints/diff":                     estate,
	"GET /blueprints/exceptions":               estate,
	"POST /blueprints/exceptions":              deployers,
	"POST /blueprints/exceptions/:id/revoke":   deployers,
	// A compliance officer other than its author approves an exception
	// to a residency or encryption rule in prod.
	"POST /blueprints/exceptions/:id/approve":                  complianceOnly,
	"GET /blueprints/guardrails/stacks/:stack":                 estate,
	"GET /blueprints/guardrails/jurisdictions/:jurisdiction":   estate,
	"POST /blueprints/guardrails/organization/plan":            adminOnly,
	"POST /blueprints/guardrails/organization/plans/:id/apply": adminOnly,
	"GET /api/v1/stacks":                                       estate,
	"GET /api/v1/blueprints/versions":                          estate,
	"POST /api/v1/blueprints/versions":                         deployers,
	"GET /api/v1/blueprints/versions/:id":                      estate,
	"GET /api/v1/blueprints/versions/:id/guardrails":           estate,
	"GET /api/v1/blueprints/exceptions":                        estate,
	"POST /api/v1/blueprints/exceptions":                       deployers,
	"POST /api/v1/blueprints/exceptions/:id/revoke":            deployers,
	"POST /api/v1/blueprints/exceptions/:id/approve":           complianceOnly,
	// Finance: revenue, payouts and reconciliation for finance and
	// admins; Stripe's webhook deliveries are public (signed).
	"GET /billing/revenue.csv":        money,
	"GET /billing/transactions":       money,
	"GET /billing/transactions.csv":   money,
	"GET /billing/transactions/:id":   money,
	"GET /billing/charges/:id":        money,
	"GET /billing/customers/:id":      money,
	"GET /billing/payouts":            money,
	"GET /billing/payouts.csv":        money,
	"GET /billing/payouts/:id":        money,
	"POST /billing/payouts/:id/notes": money,
	"GET /billing/reconciliation":     money,
	"GET /billing/reconciliation.csv": money,
	"GET /billing/settings":           money,
	"GET /billing/sync/status":        money,
	"POST /billing/sync":              money,
	"POST /webhooks/stripe":           public,

	// Promotion, approvals, drift and verification: ops and admins act,
	// compliance reads; compliance also decides on plans, since an
	// emergency change needs one admin and one compliance officer (the
	// approval policy says who fills which slot).
	"GET /promotions":              estate,
	"POST /promotions":             deployers,
	"GET /promotions/:id":          estate,
	"GET /promotions/:id/progress": estate,
	"GET /routing":                 estate,
	"GET /rollouts":                estate,
	"POST /rollouts":               deployers,
	"GET /rollouts/:id":            estate,
	"GET /rollouts/:id/progress":   estate,
	"GET /approvals":               estate,
	"POST /plans/:id/decide":       estate,
	"GET /drift":                   estate,
	"POST /drift/check":            deployers,
	"GET /drift/:id":               estate,
	"POST /drift/:id/reconcile":    deployers,
	"GET /notifications":           estate,
	"GET /stacks/:stack/history":   estate,
	"POST /stacks/:stack/verify":   deployers,
	"GET /verifications/:id":       estate,
	"GET /sandbox/inbox":           estate,

	// Inventory: everyone of the estate reads; ops and admins start a
	// discovery.
	"GET /inventory/progress":               estate,
	"POST /inventory/discover":              deployers,
	"GET /inventory/resource":               estate,
	"GET /inventory/changes":                estate,
	"GET /inventory/export.csv":             estate,
	"GET /api/v1/inventory":                 estate,
	"GET /api/v1/inventory/export.csv":      estate,
	"GET /api/v1/inventory/changes":         estate,
	"POST /api/v1/inventory/discover":       deployers,
	"GET /api/v1/inventory/discoveries/:id": estate,

	// Activity through the API: compliance and admins.
	"GET /api/v1/activity/events":       auditors,
	"GET /api/v1/activity/events/:id":   auditors,
	"GET /api/v1/activity/validations":  auditors,
	"POST /api/v1/activity/validations": auditors,
	"GET /api/v1/activity/evidence":     auditors,

	// AWS access: admins grant, approve, plan staff roles and review;
	// compliance reads; anyone asks for elevation for themselves.
	"GET /access/aws":                          auditors,
	"POST /access/aws/grants":                  adminOnly,
	"POST /access/aws/grants/:id/approve":      adminOnly,
	"POST /access/aws/grants/:id/reject":       adminOnly,
	"POST /access/aws/grants/:id/revoke":       adminOnly,
	"GET /access/aws/elevate":                  anyStaff,
	"POST /access/aws/elevate":                 anyStaff,
	"GET /access/aws/roles":                    auditors,
	"POST /access/aws/roles/:env/plan":         adminOnly,
	"POST /access/aws/roles/plans/:id/approve": adminOnly,
	"POST /access/aws/roles/plans/:id/apply":   adminOnly,
	"GET /access/aws/reviews":                  auditors,
	"POST /access/aws/reviews":                 adminOnly,
	"GET /access/aws/reviews/:id":              auditors,
	"POST /access/aws/reviews/:id/items/:item": adminOnly,
	"POST /access/aws/reviews/:id/close":       adminOnly,
	"GET /access/aws/reviews/:id/export.csv":   auditors,
	"GET /access/aws/consistency":              auditors,
}

// TestRoutesAreAllListed fails when a route exists that wantAccess does not
// list (so nobody decided who may use it), when wantAccess lists a route
// that no longer exists, and when echo serves a route that did not go
// through the access declarations.
func TestRoutesAreAllListed(t *testing.T) {
	h := newHarness(t)
	declared := map[string]bool{}
	for _, r := range h.app.Web.Routes() {
		key := r.Method + " " + r.Path
		declared[key] = true
		if _, ok := wantAccess[key]; !ok {
			t.Errorf("route %s (declared %s) is not in wantAccess: decide who may use it and add it", key, r.Access)
		}
	}
	for key := range wantAccess {
		if !declared[key] {
			t.Errorf("wantAccess lists %s, which is not a route", key)
		}
	}
	for _, r := range h.app.Web.EchoRoutes() {
		// echo's own catch-all routes for 404 and 405 answers.
		if strings.HasPrefix(r.Method, "echo_route_") {
			continue
		}
		if !declared[r.Method+" "+r.Path] {
			t.Errorf("echo serves %s %s, which bypassed the access declarations", r.Method, r.Path)
		}
	}
}

type persona struct {
	name  string
	roles []staff.Role // nil for anonymous
}

var personas = []persona{
	{"anonymous", nil},
	{"admin", []staff.Role{staff.Admin}},
	{"ops", []staff.Role{staff.Ops}},
	{"compliance", []staff.Role{staff.Compliance}},
	{"finance", []staff.Role{staff.Finance}},
}

// TestAuthorizationMatrix calls every route as every persona and checks the
// answer against wantAccess.
func TestAuthorizationMatrix(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()

	// The :id every route gets: a staff account and a token of its own,
	// which the personas act on.
	target := h.newUser(t, staff.Compliance)
	_, tok, err := h.app.Staff.CreateToken(ctx, audit.Entry{Actor: "test"}, target.ID, staff.NewToken{Name: "target token", Scopes: []string{staff.ScopeAll}})
	if err != nil {
		t.Fatal(err)
	}

	type actor struct {
		persona
		c     *client
		csrf  string
		token string
	}
	var actors []actor
	for _, p := range personas {
		a := actor{persona: p}
		if p.roles == nil {
			a.c = h.client()
			a.csrf = a.c.csrf(t, "/login")
		} else {
			var u user
			a.c, u = h.signedIn(t, p.roles...)
			a.csrf = a.c.csrf(t, "/account")
			a.token = h.apiToken(t, u.User)
		}
		actors = append(actors, a)
	}

	routes := h.app.Web.Routes()
	// Signing out ends the personas' sessions, so it goes last.
	slices.SortStableFunc(routes, func(a, b web.Route) int {
		return boolInt(a.Path == "/logout") - boolInt(b.Path == "/logout")
	})
	for _, r := range routes {
		want, listed := wantAccess[r.Method+" "+r.Path]
		if !listed {
			continue // TestRoutesAreAllListed reports it
		}
		path := strings.ReplaceAll(r.Path, ":id", itoa(target.ID))
		if strings.HasPrefix(r.Path, "/access/tokens/:id") {
			path = strings.ReplaceAll(r.Path, ":id", itoa(tok.ID))
		}
		path = strings.ReplaceAll(path, "*", "app.css")
		for _, a := range actors {
			t.Run(r.Method+" "+r.Path+"/"+a.name, func(t *testing.T) {
				var res *response
				switch {
				case r.IsAPI():
					body, ct := "", ""
					if r.Method == http.MethodPost {
						body, ct = "{}", "application/json"
					}
					res = h.api(t, r.Method, path, a.token, ct, body)
				case r.Method == http.MethodPost:
					res = a.c.post(t, path, url.Values{"_csrf": {a.csrf}})
				default:
					res = a.c.get(t, path)
				}
				got := res.StatusCode
				switch {
				case want.public:
					if got == http.StatusUnauthorized || got == http.StatusForbidden || strings.HasPrefix(res.Location(), "/login?next=") {
						t.Errorf("public route: got %d (to %q), want neither 401/403 nor a sign-in redirect", got, res.Location())
					}
				case a.roles == nil && r.IsAPI():
					var e apiError
					res.JSON(t, &e)
					if got != http.StatusUnauthorized || e.Error.Code != "unauthorized" {
						t.Errorf("anonymous: got %d %q, want 401 unauthorized", got, e.Error.Code)
					}
				case a.roles == nil && r.Method == http.MethodGet:
					wantLoc := "/login?next=" + url.QueryEscape(path)
					if got != http.StatusSeeOther || res.Location() != wantLoc {
						t.Errorf("anonymous: got %d to %q, want 303 to %q", got, res.Location(), wantLoc)
					}
				case a.roles == nil:
					// The form carried a valid CSRF token, so the answer is
					// about signing in, not about the form.
					if got != http.StatusUnauthorized {
						t.Errorf("anonymous: got %d, want 401", got)
					}
				case !want.allows(a.roles):
					if got != http.StatusForbidden {
						t.Errorf("%s: got %d (to %q), want 403", a.name, got, res.Location())
					}
					if r.IsAPI() {
						var e apiError
						res.JSON(t, &e)
						if e.Error.Code != "forbidden" {
							t.Errorf("%s: got error code %q, want forbidden", a.name, e.Error.Code)
						}
					}
				default:
					if got == http.StatusUnauthorized || got == http.StatusForbidden || strings.HasPrefix(res.Location(), "/login") {
						t.Errorf("%s may use this: got %d (to %q)\n%s", a.name, got, res.Location(), res.Body)
					}
				}
			})
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
