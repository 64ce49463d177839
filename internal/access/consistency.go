package access

import (
	"context"
	"fmt"
	"strings"
	"sync"
)

// Finding is one place where a person's portal roles, their grants and
// IAM disagree.
type Finding struct {
	UserID      int64
	UserEmail   string
	Environment string
	Role        string
	GrantID     int64
	Problem     string
}

// Consistency lists every disagreement: access held by disabled accounts,
// AWS roles a person's portal roles do not call for, assignments Identity
// Center has not caught up with, and account assignments no active grant
// explains (read live from Identity Center).
func (s *Service) Consistency(ctx context.Context) ([]Finding, error) {
	users, err := s.staff.List(ctx)
	if err != nil {
		return nil, err
	}
	byID := map[int64]int{}
	byPrincipal := map[string]int{}
	for i, u := range users {
		byID[u.ID] = i
		byPrincipal[UserName(u)] = i
	}
	active, err := s.List(ctx, Filter{States: []string{Active}, Limit: 100000})
	if err != nil {
		return nil, err
	}
	var out []Finding
	held := map[string]bool{} // principal|env|role
	for _, g := range active {
		u := users[byID[g.UserID]]
		t, _ := s.templates.Get(g.Role)
		held[UserName(u)+"|"+g.Environment+"|"+g.Role] = true
		f := Finding{UserID: u.ID, UserEmail: u.Email, Environment: g.Environment, Role: g.Role, GrantID: g.ID}
		switch {
		case u.Disabled:
			f.Problem = "the staff account is disabled but the grant is active"
		case !t.FitsPortalRoles(u.Roles):
			f.Problem = fmt.Sprintf("%s is for %s; the person holds %s in the portal", g.Role, strings.Join(t.PortalRoles, " or "), rolesText(u.Roles))
		default:
			continue
		}
		out = append(out, f)
	}
	pending, err := s.PendingSyncs(ctx)
	if err != nil {
		return nil, err
	}
	for _, p := range pending {
		f := Finding{UserID: p.UserID, Environment: p.Environment, Role: p.Role, Problem: "Identity Center does not reflect the grants yet"}
		if i, ok := byID[p.UserID]; ok {
			f.UserEmail = users[i].Email
		}
		if p.LastError != "" {
			f.Problem += ": " + p.LastError
		}
		out = append(out, f)
	}
	// Every permission set of every account at once: the page waits for
	// the slowest read, not for fifteen of them in a row.
	type read struct {
		env     string
		t       Template
		members []string
		err     error
	}
	var reads []*read
	for _, env := range Environments {
		if s.accounts[env] == "" || s.management == "" {
			continue
		}
		for _, t := range s.templates.All() {
			reads = append(reads, &read{env: env, t: t})
		}
	}
	var wg sync.WaitGroup
	for _, r := range reads {
		wg.Go(func() { r.members, r.err = s.Members(ctx, r.env, r.t.Name) })
	}
	wg.Wait()
	failed := map[string]bool{}
	for _, r := range reads {
		if failed[r.env] {
			continue
		}
		if r.err != nil {
			// One finding per account: its other permission sets fail the same way.
			failed[r.env] = true
			out = append(out, Finding{Environment: r.env, Role: r.t.Name, Problem: "could not read the assignments: " + r.err.Error()})
			continue
		}
		for _, m := range r.members {
			if held[m+"|"+r.env+"|"+r.t.Name] {
				continue
			}
			f := Finding{Environment: r.env, Role: r.t.Name, UserEmail: m,
				Problem: fmt.Sprintf("%s is assigned permission set %s in Identity Center but holds no active grant of it", m, r.t.PermissionSetName(r.env))}
			if i, ok := byPrincipal[m]; ok {
				f.UserID, f.UserEmail = users[i].ID, users[i].Email
			}
			out = append(out, f)
		}
	}
	return out, nil
}
