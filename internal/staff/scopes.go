package staff

import (
	"fmt"
	"slices"
	"strings"
)

// An API token carries scopes that limit it further than its owner's
// roles, which it always reads afresh: a token can never do more than its
// owner can do now.
//
//   - "all": everything the owner's roles allow;
//   - "read": every read (GET) the owner's roles allow, nothing else;
//   - an area ("runs"): everything the owner's roles allow in that area;
//   - an area and ":read" ("runs:read"): reads in that area.
const (
	ScopeAll  = "all"
	ScopeRead = "read"
)

// TokenArea is a part of the API a token can be limited to.
type TokenArea struct {
	Name  string
	Label string
}

// TokenAreas are the API's areas, in display order.
var TokenAreas = []TokenArea{
	{"blueprints", "Blueprint versions and guardrail exceptions"},
	{"runs", "Stacks, plans and runs"},
	{"inventory", "Inventory and discovery"},
	{"activity", "CloudTrail activity, log validation and evidence"},
	{"audit", "The audit trail"},
	{"staff", "Staff accounts"},
}

func isArea(name string) bool {
	return slices.ContainsFunc(TokenAreas, func(a TokenArea) bool { return a.Name == name })
}

// Scopes are a token's scopes, sorted and without repeats.
type Scopes []string

// ParseScopes checks scope names (comma-separated or one per element) and
// returns them in canonical order. An area listed both whole and ":read"
// keeps the whole; "all" and "read" stand alone.
func ParseScopes(names []string) (Scopes, error) {
	var out Scopes
	for _, n := range names {
		for _, part := range strings.Split(n, ",") {
			part = strings.ToLower(strings.TrimSpace(part))
			if part == "" {
				continue
			}
			area, _ := strings.CutSuffix(part, ":read")
			if part != ScopeAll && part != ScopeRead && !isArea(area) {
				return nil, fmt.Errorf("unknown scope %q (want all, read, or an area: %s, optionally followed by :read)", part, areaNames())
			}
			if !slices.Contains(out, part) {
				out = append(out, part)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("choose what the token may do")
	}
	switch {
	case slices.Contains(out, ScopeAll):
		return Scopes{ScopeAll}, nil
	case slices.Contains(out, ScopeRead) && len(out) > 1:
		// Reading everything plus writing some areas: keep the areas that
		// add writes.
		keep := Scopes{ScopeRead}
		for _, s := range out {
			if isArea(s) {
				keep = append(keep, s)
			}
		}
		out = keep
	}
	out = slices.DeleteFunc(out, func(s string) bool {
		a, read := strings.CutSuffix(s, ":read")
		return read && slices.Contains(out, a)
	})
	slices.SortFunc(out, func(a, b string) int { return scopeRank(a) - scopeRank(b) })
	return out, nil
}

func scopeRank(s string) int {
	switch s {
	case ScopeAll:
		return -2
	case ScopeRead:
		return -1
	}
	a, read := strings.CutSuffix(s, ":read")
	i := slices.IndexFunc(TokenAreas, func(x TokenArea) bool { return x.Name == a })
	if read {
		return 2*i + 1
	}
	return 2 * i
}

func areaNames() string {
	names := make([]string, len(TokenAreas))
	for i, a := range TokenAreas {
		names[i] = a.Name
	}
	return strings.Join(names, ", ")
}

// Allows reports whether the scopes allow a request in area ("" for what
// every token may do, such as asking who it belongs to), writing or only
// reading. Roles are checked separately.
func (sc Scopes) Allows(area string, write bool) bool {
	if area == "" {
		return true
	}
	for _, s := range sc {
		switch {
		case s == ScopeAll, s == area:
			return true
		case !write && (s == ScopeRead || s == area+":read"):
			return true
		}
	}
	return false
}

// String says what the scopes allow in a few words, for lists.
func (sc Scopes) String() string {
	var parts []string
	for _, s := range sc {
		switch s {
		case ScopeAll:
			parts = append(parts, "everything your roles allow")
		case ScopeRead:
			parts = append(parts, "read-only")
		default:
			if a, read := strings.CutSuffix(s, ":read"); read {
				parts = append(parts, a+" (read)")
			} else {
				parts = append(parts, s)
			}
		}
	}
	return strings.Join(parts, ", ")
}

// Text is the stored form: comma-separated.
func (sc Scopes) Text() string { return strings.Join(sc, ",") }
