package billing

import (
	"strings"

	"portal/internal/regions"
)

// Unattributed is the jurisdiction bucket of money whose payment and
// customer carry no recognisable region metadata.
const Unattributed = "unattributed"

// Jurisdiction maps a region metadata value to a jurisdiction id (us, eu,
// apac): the id itself in any case, or an AWS region the jurisdiction
// allows. Anything else is "".
func Jurisdiction(meta string) string {
	v := strings.ToLower(strings.TrimSpace(meta))
	if v == "" {
		return ""
	}
	for _, j := range regions.Jurisdictions() {
		if v == j.ID || j.Allows(v) {
			return j.ID
		}
	}
	return ""
}

// JurisdictionIDs lists the buckets in display order.
func JurisdictionIDs() []string {
	var out []string
	for _, j := range regions.Jurisdictions() {
		out = append(out, j.ID)
	}
	return append(out, Unattributed)
}

// JurisdictionShort is a bucket's name in tables: US, EU, APAC or
// Unattributed.
func JurisdictionShort(id string) string {
	if _, ok := regions.JurisdictionByID(id); ok {
		return strings.ToUpper(id)
	}
	return "Unattributed"
}

// JurisdictionLabel is a bucket's display name.
func JurisdictionLabel(id string) string {
	if j, ok := regions.JurisdictionByID(id); ok {
		return strings.ToUpper(j.ID) + " (" + j.Name + ")"
	}
	return "Unattributed"
}
