package orgguard

import (
	"path"
	"strings"
)

// Request is what an SCP is judged against: the action and the request
// context keys the portal's policies use.
type Request struct {
	// Action is service:Operation, e.g. s3:PutObject.
	Action string
	// Context holds request context keys (aws:RequestedRegion,
	// aws:PrincipalTag/KEY, aws:ResourceAccount); a key left out is absent
	// from the request, as a principal without a tag is.
	Context map[string]string
}

// Denied reports whether policy p explicitly denies r, and by which
// statement. It is a small evaluator of what the portal's SCPs use, after
// the IAM policy evaluation logic: Deny statements with Action or
// NotAction (wildcards, case-insensitive), Resource "*", and the
// condition operators StringEquals, StringNotEquals, StringLike and
// StringNotLike, where the values of one key are ORed, keys and operators
// are ANDed, a key absent from the request fails a positive operator and
// satisfies a negated one. Allow statements are not judged: an SCP's Allow
// only bounds what identity policies grant, and these policies sit beside
// AWS's FullAWSAccess.
func Denied(p Policy, r Request) (bool, string) {
	for _, st := range p.Statement {
		if st.Effect != "Deny" || st.Resource != "*" {
			continue
		}
		if len(st.Action) > 0 && !matchesAny(st.Action, r.Action) {
			continue
		}
		if len(st.NotAction) > 0 && matchesAny(st.NotAction, r.Action) {
			continue
		}
		if conditionsHold(st.Condition, r.Context) {
			return true, st.Sid
		}
	}
	return false, ""
}

func matchesAny(patterns []string, action string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(strings.ToLower(p), strings.ToLower(action)); ok {
			return true
		}
	}
	return false
}

func conditionsHold(c map[string]map[string][]string, ctx map[string]string) bool {
	for op, keys := range c {
		for key, values := range keys {
			got, present := ctx[key]
			var hold bool
			switch op {
			case "StringEquals":
				hold = present && anyValue(values, func(v string) bool { return got == v })
			case "StringNotEquals":
				hold = !present || !anyValue(values, func(v string) bool { return got == v })
			case "StringLike":
				hold = present && anyValue(values, func(v string) bool { ok, _ := path.Match(v, got); return ok })
			case "StringNotLike":
				hold = !present || !anyValue(values, func(v string) bool { ok, _ := path.Match(v, got); return ok })
			default:
				// An operator this evaluator does not know: say nothing is
				// denied by the statement rather than guess.
				return false
			}
			if !hold {
				return false
			}
		}
	}
	return true
}

func anyValue(values []string, f func(string) bool) bool {
	for _, v := range values {
		if f(v) {
			return true
		}
	}
	return false
}
