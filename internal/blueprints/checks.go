package blueprints

import (
	"net/netip"
	"regexp"
	"strings"
)

func asInt(v *val) (int64, bool) {
	if v == nil {
		return 0, false
	}
	i, ok := v.v.(int64)
	return i, ok
}

// checkCapacity enforces min <= desired <= max.
func checkCapacity(minV, desiredV, maxV *val) []Diagnostic {
	lo, ok1 := asInt(minV)
	mid, ok2 := asInt(desiredV)
	hi, ok3 := asInt(maxV)
	var ds []Diagnostic
	if ok1 && ok2 && lo > mid {
		ds = append(ds, diag(minV.pos, minV.path, "must be <= desired (%d > %d)", lo, mid))
	}
	if ok2 && ok3 && mid > hi {
		ds = append(ds, diag(desiredV.pos, desiredV.path, "must be <= max (%d > %d)", mid, hi))
	}
	if ok1 && ok3 && lo > hi && !(ok2 && lo > mid) && !(ok2 && mid > hi) {
		ds = append(ds, diag(minV.pos, minV.path, "must be <= max (%d > %d)", lo, hi))
	}
	return ds
}

// checkNetwork checks the VPC CIDR and its subnets: valid, inside the VPC,
// pairwise disjoint, names unique, AZs in region and at least two of them.
func checkNetwork(cidrV, subnetsV *val, region string) []Diagnostic {
	var ds []Diagnostic
	var vpc netip.Prefix
	vpcOK := false
	if s := cidrV.str(); s != "" && !strings.Contains(s, "${") {
		p, err := netip.ParsePrefix(s)
		switch {
		case err != nil || !p.Addr().Is4():
			ds = append(ds, diag(cidrV.pos, cidrV.path, "%q is not an IPv4 CIDR block", s))
		case p.Masked() != p:
			ds = append(ds, diag(cidrV.pos, cidrV.path, "%s has host bits set (network is %s)", s, p.Masked()))
		case p.Bits() < 16 || p.Bits() > 28:
			ds = append(ds, diag(cidrV.pos, cidrV.path, "VPC CIDR %s must be between /16 and /28", s))
		default:
			vpc, vpcOK = p, true
		}
	}
	list := subnetsV.list()
	if list == nil {
		return ds
	}
	type sn struct {
		p    netip.Prefix
		name string
	}
	var seen []sn
	names := map[string]bool{}
	azs := map[string]bool{}
	for _, s := range list {
		m := s.mapping()
		if m == nil {
			continue
		}
		name := m.get("name").str()
		if names[name] {
			ds = append(ds, diag(s.pos, s.path, "duplicate subnet name %q", name))
		}
		names[name] = true
		if az := m.get("az"); az != nil {
			azs[az.str()] = true
			if region != "" && !strings.HasPrefix(az.str(), region) {
				ds = append(ds, diag(az.pos, az.path, "availability zone %s is not in region %s", az.str(), region))
			}
		}
		cv := m.get("cidr")
		if cv == nil {
			continue
		}
		p, err := netip.ParsePrefix(cv.str())
		if err != nil || !p.Addr().Is4() {
			ds = append(ds, diag(cv.pos, cv.path, "%q is not an IPv4 CIDR block", cv.str()))
			continue
		}
		if p.Masked() != p {
			ds = append(ds, diag(cv.pos, cv.path, "%s has host bits set (network is %s)", cv.str(), p.Masked()))
			continue
		}
		if vpcOK && (p.Bits() < vpc.Bits() || !vpc.Contains(p.Addr())) {
			ds = append(ds, diag(cv.pos, cv.path, "subnet %s is outside the VPC %s", p, vpc))
		}
		for _, o := range seen {
			if o.p.Overlaps(p) {
				ds = append(ds, diag(cv.pos, cv.path, "subnet %s overlaps subnet %q (%s)", p, o.name, o.p))
			}
		}
		seen = append(seen, sn{p, name})
	}
	if len(list) > 0 && len(azs) < 2 {
		ds = append(ds, diag(subnetsV.pos, subnetsV.path, "subnets must span at least 2 availability zones, got %d", len(azs)))
	}
	return ds
}

// checkAMI enforces that an image is given by id or by name filter, exactly one.
func checkAMI(v *val) []Diagnostic {
	m := v.mapping()
	if m == nil {
		return nil
	}
	id, filter := m.get("id"), m.get("name_filter")
	if from := m.get("promoted_from"); from != nil {
		if id != nil || filter != nil || m.get("owners") != nil {
			return []Diagnostic{diag(v.pos, v.path, "promoted_from takes the image another environment resolved: give no id, name_filter or owners with it")}
		}
		return nil
	}
	switch {
	case id != nil && filter != nil:
		return []Diagnostic{diag(v.pos, v.path, "give the AMI by id or by name_filter, not both")}
	case id == nil && filter == nil:
		return []Diagnostic{diag(v.pos, v.path, "give the AMI by id (ami-...), by name_filter, or as promoted_from an earlier environment")}
	case id != nil && m.get("owners") != nil:
		return []Diagnostic{diag(m.get("owners").pos, m.get("owners").path, "owners only applies to name_filter")}
	case filter != nil && m.get("owners") == nil:
		return []Diagnostic{diag(v.pos, v.path, "a name_filter needs owners (e.g. [amazon]) so nobody else's image can match")}
	}
	return nil
}

// nameRule is the AWS naming limit of one resource type.
type nameRule struct {
	field    string
	min, max int
	re       *regexp.Regexp
	hint     string
}

func nameRules() map[string]nameRule {
	return map[string]nameRule{
		"s3_bucket": {"name", 3, 63, regexp.MustCompile(`^[a-z0-9][a-z0-9.-]*[a-z0-9]$`),
			"lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit"},
		"dynamodb_table":    {"name", 3, 255, regexp.MustCompile(`^[A-Za-z0-9_.-]+$`), "letters, digits, _ . -"},
		"rds_instance":      {"identifier", 1, 63, regexp.MustCompile(`^[a-z](?:[a-z0-9]|-(?:[a-z0-9]))*$`), "lowercase letter first, then letters, digits and single hyphens, not ending in a hyphen"},
		"rds_read_replica":  {"identifier", 1, 60, regexp.MustCompile(`^[a-z](?:[a-z0-9]|-(?:[a-z0-9]))*$`), "lowercase letter first, then letters, digits and single hyphens (a -N suffix is added)"},
		"db_subnet_group":   {"name", 1, 255, regexp.MustCompile(`^[a-z0-9 ._-]+$`), "lowercase letters, digits, spaces, . _ -"},
		"sns_topic":         {"name", 1, 256, regexp.MustCompile(`^[A-Za-z0-9_-]+$`), "letters, digits, _ -"},
		"log_group":         {"name", 1, 512, regexp.MustCompile(`^[A-Za-z0-9_./#-]+$`), "letters, digits, _ . / # -"},
		"metric_alarm":      {"name", 1, 255, regexp.MustCompile(`^[ -~]+$`), "printable ASCII"},
		"cloudtrail":        {"name", 3, 128, regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9]$`), "letters, digits, . _ -, starting and ending with a letter or digit"},
		"vpc":               {"name", 1, 255, regexp.MustCompile(`^.+$`), "any"},
		"security_group":    {"name", 1, 255, regexp.MustCompile(`^[A-Za-z0-9 ._\-:/()#,@\[\]+=&;{}!$*]+$`), "letters, digits and . _ - : / ( ) # , @ [ ] + = & ; { } ! $ *"},
		"launch_template":   {"name", 3, 128, regexp.MustCompile(`^[A-Za-z0-9()./_-]+$`), "letters, digits, ( ) . / _ -"},
		"alb":               {"name", 1, 32, regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$`), "letters, digits and hyphens, not starting or ending with a hyphen"},
		"target_group":      {"name", 1, 32, regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$`), "letters, digits and hyphens, not starting or ending with a hyphen"},
		"autoscaling_group": {"name", 1, 255, regexp.MustCompile(`^[ -~]+$`), "printable ASCII"},
		"iam_role":          {"name", 1, 64, regexp.MustCompile(`^[A-Za-z0-9+=,.@_-]+$`), "letters, digits, + = , . @ _ -"},
		"instance_profile":  {"name", 1, 128, regexp.MustCompile(`^[A-Za-z0-9+=,.@_-]+$`), "letters, digits, + = , . @ _ -"},
		"iam_policy":        {"name", 1, 128, regexp.MustCompile(`^[A-Za-z0-9+=,.@_-]+$`), "letters, digits, + = , . @ _ -"},
		"kms_key":           {"alias", 7, 256, regexp.MustCompile(`^alias/[A-Za-z0-9/_-]+$`), "alias/ followed by letters, digits, / _ -"},
	}
}

// checkName checks one resolved name against its type's AWS limits.
func checkName(r nameRule, v *val) []Diagnostic {
	s, ok := v.v.(string)
	if !ok || strings.Contains(s, "${") {
		return nil
	}
	var ds []Diagnostic
	if n := len(s); n < r.min || n > r.max {
		ds = append(ds, diag(v.pos, v.path, "%s %q is %d characters, must be %d-%d", r.field, s, n, r.min, r.max))
	}
	if !r.re.MatchString(s) {
		ds = append(ds, diag(v.pos, v.path, "%s %q: allowed are %s", r.field, s, r.hint))
	} else if strings.Contains(s, "..") || (r.field == "name" && strings.HasPrefix(s, "xn--")) {
		ds = append(ds, diag(v.pos, v.path, "%s %q is not allowed by AWS", r.field, s))
	}
	if r.min == 3 && r.max == 63 { // S3: not an IP address
		if _, err := netip.ParseAddr(s); err == nil {
			ds = append(ds, diag(v.pos, v.path, "bucket name %q must not look like an IP address", s))
		}
	}
	return ds
}
