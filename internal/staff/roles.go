package staff

import (
	"fmt"
	"slices"
	"strings"
)

// Role is a portal role. A person may hold several.
type Role string

// The portal's roles.
const (
	Admin      Role = "admin"
	Ops        Role = "ops"
	Compliance Role = "compliance"
	Finance    Role = "finance"
)

// AllRoles lists every role in display order.
var AllRoles = []Role{Admin, Ops, Compliance, Finance}

// Describe says in a few words what a role is for.
func (r Role) Describe() string {
	switch r {
	case Admin:
		return "manages staff, roles and AWS access"
	case Ops:
		return "writes, plans, applies and promotes blueprints"
	case Compliance:
		return "reads activity and the audit trail; read-only"
	case Finance:
		return "reads revenue, payouts and reconciliation; read-only"
	}
	return ""
}

// ParseRole parses a role name.
func ParseRole(s string) (Role, error) {
	r := Role(strings.ToLower(strings.TrimSpace(s)))
	if slices.Contains(AllRoles, r) {
		return r, nil
	}
	return "", fmt.Errorf("unknown role %q (want one of admin, ops, compliance, finance)", s)
}

// ParseRoles parses role names, rejecting unknown and empty sets.
func ParseRoles(names []string) ([]Role, error) {
	var out []Role
	for _, n := range names {
		for _, part := range strings.Split(n, ",") {
			if strings.TrimSpace(part) == "" {
				continue
			}
			r, err := ParseRole(part)
			if err != nil {
				return nil, err
			}
			if !slices.Contains(out, r) {
				out = append(out, r)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("at least one role is required")
	}
	sortRoles(out)
	return out, nil
}

func sortRoles(rs []Role) {
	slices.SortFunc(rs, func(a, b Role) int {
		return slices.Index(AllRoles, a) - slices.Index(AllRoles, b)
	})
}
