package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"portal/internal/audit"
	"portal/internal/staff"
)

func TestStaffCreateForm(t *testing.T) {
	h := newHarness(t)
	admin, _ := h.signedIn(t, staff.Admin)

	r := admin.submit(t, "/access/staff/new", "/access/staff", url.Values{
		"email": {"new.ops@example.com"}, "name": {"New Ops"}, "roles": {"ops"},
	})
	if r.StatusCode != http.StatusCreated && r.StatusCode != http.StatusSeeOther {
		t.Fatalf("create: got %d, want 201 or 303\n%s", r.StatusCode, r.Body)
	}
	otp, ok := r.TestID(t, "one-time-password")
	if !ok || otp == "" {
		t.Fatal("create: the one-time password is not shown")
	}
	u, err := h.app.Staff.GetByEmail(context.Background(), "new.ops@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := u.Roles, []staff.Role{staff.Ops}; len(got) != 1 || got[0] != want[0] {
		t.Errorf("got roles %v, want %v", got, want)
	}
	// Shown once: the account's page does not show it again.
	page := admin.get(t, "/access/staff/"+itoa(u.ID))
	if _, shown := page.TestID(t, "one-time-password"); shown || strings.Contains(page.Body, otp) {
		t.Error("the one-time password is shown again on the account's page")
	}
	// And it works, once: the new person must then enrol two-factor.
	if r := h.client().login(t, u.Email, otp, ""); r.StatusCode != http.StatusSeeOther || r.Location() != "/account/2fa" {
		t.Errorf("sign in with the one-time password: got %d to %q, want 303 to /account/2fa", r.StatusCode, r.Location())
	}
	// The audit record names the roles but not the password.
	recs := h.records(t, audit.Filter{Action: "staff.create", Target: u.Label()})
	if len(recs) != 1 {
		t.Fatalf("got %d staff.create records, want 1", len(recs))
	}
	if strings.Contains(recs[0].Hash+recs[0].Actor+recs[0].Target, otp) || strings.Contains(jsonText(t, recs[0].Details), otp) {
		t.Error("the audit record holds the one-time password")
	}
}

func TestStaffCreateFormInvalid(t *testing.T) {
	h := newHarness(t)
	admin, existing := h.signedIn(t, staff.Admin)
	tests := []struct {
		name       string
		form       url.Values
		wantStatus int
		wantErrors map[string]string // data-testid -> substring of the message
	}{
		{"nothing", url.Values{}, http.StatusBadRequest,
			map[string]string{"error-email": "is required", "error-roles": "role"}},
		{"bad email, unknown role", url.Values{"email": {"not-an-email"}, "roles": {"root"}}, http.StatusBadRequest,
			map[string]string{"error-email": "not a valid email", "error-roles": `unknown role "root"`}},
		{"no roles", url.Values{"email": {"ok@example.com"}}, http.StatusBadRequest,
			map[string]string{"error-roles": "role"}},
		{"duplicate email", url.Values{"email": {existing.Email}, "roles": {"finance"}}, http.StatusConflict,
			map[string]string{"error-email": "already exists"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := admin.submit(t, "/access/staff/new", "/access/staff", tt.form)
			if r.StatusCode != tt.wantStatus {
				t.Fatalf("got %d, want %d", r.StatusCode, tt.wantStatus)
			}
			for id, want := range tt.wantErrors {
				got, ok := r.TestID(t, id)
				if !ok || !strings.Contains(got, want) {
					t.Errorf("%s: got %q (present %v), want a message containing %q", id, got, ok, want)
				}
			}
			// What was typed is kept.
			if got, _ := r.Doc(t).Find(`input[name="email"]`).Attr("value"); got != tt.form.Get("email") {
				t.Errorf("email input: got %q, want %q", got, tt.form.Get("email"))
			}
			if _, shown := r.TestID(t, "one-time-password"); shown {
				t.Error("a one-time password is shown for a refused form")
			}
		})
	}
	users, err := h.app.Staff.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// The first administrator and the signed-in admin; nothing half-written.
	if len(users) != 2 {
		t.Errorf("got %d accounts, want 2", len(users))
	}
}

// TestStaffActionsAudited performs each admin action through its form and
// checks the audit record it leaves.
func TestStaffActionsAudited(t *testing.T) {
	h := newHarness(t)
	admin, adminUser := h.signedIn(t, staff.Admin)
	target := h.newUser(t, staff.Ops)
	page := "/access/staff/" + itoa(target.ID)
	tests := []struct {
		action     string
		path       string
		form       url.Values
		wantStatus int
		check      func(t *testing.T, u staff.User)
	}{
		{"staff.set_roles", page + "/roles", url.Values{"roles": {"ops", "finance"}}, http.StatusSeeOther, func(t *testing.T, u staff.User) {
			if !u.Has(staff.Finance) || !u.Has(staff.Ops) || u.Has(staff.Admin) {
				t.Errorf("got roles %v, want ops and finance", u.Roles)
			}
		}},
		{"staff.disable", page + "/disable", nil, http.StatusSeeOther, func(t *testing.T, u staff.User) {
			if !u.Disabled {
				t.Error("the account is not disabled")
			}
		}},
		{"staff.enable", page + "/enable", nil, http.StatusSeeOther, func(t *testing.T, u staff.User) {
			if u.Disabled {
				t.Error("the account is still disabled")
			}
		}},
		{"staff.reset_2fa", page + "/reset-2fa", nil, http.StatusSeeOther, func(t *testing.T, u staff.User) {
			if u.TOTPEnabled {
				t.Error("two-factor is still on")
			}
		}},
		{"staff.reset_password", page + "/reset-password", nil, http.StatusOK, func(t *testing.T, u staff.User) {
			if !u.MustChangePassword {
				t.Error("the account need not change its password")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.action, func(t *testing.T) {
			r := admin.submit(t, page, tt.path, tt.form)
			if r.StatusCode != tt.wantStatus {
				t.Fatalf("got %d, want %d\n%s", r.StatusCode, tt.wantStatus, r.Body)
			}
			if tt.wantStatus == http.StatusSeeOther && r.Location() != page {
				t.Errorf("got redirect to %q, want %q", r.Location(), page)
			}
			u, err := h.app.Staff.Get(context.Background(), target.ID)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, u)
			recs := h.records(t, audit.Filter{Action: tt.action})
			if len(recs) != 1 {
				t.Fatalf("got %d %s records, want 1", len(recs), tt.action)
			}
			rec := recs[0]
			if want := adminUser.Label(); rec.Actor != want {
				t.Errorf("actor: got %q, want %q", rec.Actor, want)
			}
			if want := u.Label(); rec.Target != want {
				t.Errorf("target: got %q, want %q", rec.Target, want)
			}
			if want := r.Header.Get("X-Request-Id"); rec.RequestID == "" || rec.RequestID != want {
				t.Errorf("request ID: got %q, want %q", rec.RequestID, want)
			}
			if rec.SourceIP != "127.0.0.1" {
				t.Errorf("source IP: got %q, want 127.0.0.1", rec.SourceIP)
			}
		})
	}
	t.Run("new one-time password shown", func(t *testing.T) {
		r := admin.submit(t, page, page+"/reset-password", nil)
		otp, ok := r.TestID(t, "one-time-password")
		if !ok || otp == "" {
			t.Fatal("no one-time password shown")
		}
		if r := h.client().login(t, target.Email, otp, ""); r.StatusCode != http.StatusSeeOther {
			t.Errorf("sign in with it: got %d, want 303", r.StatusCode)
		}
	})
	t.Run("bad roles", func(t *testing.T) {
		r := admin.submit(t, page, page+"/roles", url.Values{"roles": {"root"}})
		if got, ok := r.TestID(t, "error-roles"); r.StatusCode != http.StatusBadRequest || !ok {
			t.Errorf("got %d with message %q, want 400 with a message at roles", r.StatusCode, got)
		}
	})
}

func TestLastAdmin(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	admin, me := h.signedIn(t, staff.Admin)
	// Disable the first administrator, so the signed-in admin is the last.
	first, err := h.app.Staff.GetByEmail(ctx, h.app.FirstAdmin.Email)
	if err != nil {
		t.Fatal(err)
	}
	firstPage := "/access/staff/" + itoa(first.ID)
	if r := admin.submit(t, firstPage, firstPage+"/disable", nil); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("disable the first administrator: got %d, want 303", r.StatusCode)
	}
	mine := "/access/staff/" + itoa(me.ID)
	tests := []struct {
		name string
		path string
		form url.Values
	}{
		{"lose the admin role", mine + "/roles", url.Values{"roles": {"ops"}}},
		{"disable", mine + "/disable", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := admin.submit(t, mine, tt.path, tt.form)
			if r.StatusCode != http.StatusConflict {
				t.Fatalf("got %d, want 409", r.StatusCode)
			}
			if got, _ := r.TestID(t, "error-page"); !strings.Contains(got, "admin") && !strings.Contains(got, "your own") {
				t.Errorf("got message %q, want it to say why", got)
			}
		})
	}
	// Whoever asks, the service refuses too.
	if _, err := h.app.Staff.SetDisabled(ctx, audit.Entry{Actor: "test"}, me.ID, true); err == nil {
		t.Error("service: disabling the last admin succeeded")
	}
	u, err := h.app.Staff.Get(ctx, me.ID)
	if err != nil {
		t.Fatal(err)
	}
	if u.Disabled || !u.Has(staff.Admin) {
		t.Errorf("got disabled %v, roles %v; want an enabled admin", u.Disabled, u.Roles)
	}
	// Once there is another admin, the role can go.
	other := h.newUser(t, staff.Admin)
	_ = other
	if r := admin.submit(t, mine, mine+"/roles", url.Values{"roles": {"ops"}}); r.StatusCode != http.StatusSeeOther {
		t.Errorf("drop the admin role with another admin present: got %d, want 303", r.StatusCode)
	}
}
