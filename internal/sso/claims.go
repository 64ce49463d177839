package sso

import (
	"encoding/json"
	"strings"
)

// claims are the claims of an ID token or a userinfo answer.
type claims map[string]any

func (c claims) str(name string) string {
	s, _ := c[name].(string)
	return strings.TrimSpace(s)
}

// emailVerified is false only when the provider says so; providers that
// send no email_verified claim (Entra ID) vouch for the address by sending
// it.
func (c claims) emailVerified() bool {
	switch v := c["email_verified"].(type) {
	case bool:
		return v
	case string: // some providers send "true"/"false"
		return !strings.EqualFold(v, "false")
	}
	return true
}

// lookup follows a dotted path ("realm_access.roles").
func (c claims) lookup(path string) (any, bool) {
	var cur any = map[string]any(c)
	for _, part := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// groups reads the groups claim at path: a list of strings, or one string.
// present is false when the claim is absent.
func (c claims) groups(path string) (groups []string, present bool) {
	v, ok := c.lookup(path)
	if !ok {
		return nil, false
	}
	switch v := v.(type) {
	case []any:
		for _, g := range v {
			if s, ok := g.(string); ok && strings.TrimSpace(s) != "" {
				groups = append(groups, strings.TrimSpace(s))
			}
		}
	case string:
		if s := strings.TrimSpace(v); s != "" {
			groups = []string{s}
		}
	}
	return groups, true
}

// groupsOverage reports Entra ID's "too many groups" answer: instead of the
// groups claim it names a Graph API source in _claim_names.
func (c claims) groupsOverage(path string) bool {
	names, ok := c["_claim_names"].(map[string]any)
	if !ok {
		return false
	}
	_, ok = names[path]
	return ok
}

func groupsJSON(groups []string) string {
	if groups == nil {
		groups = []string{}
	}
	b, _ := json.Marshal(groups)
	return string(b)
}
