// Package regions is the catalogue of where the portal may run things: the
// three jurisdictions (each with its legal regime and the AWS regions allowed
// to hold its patient data), the three environments (each its own AWS
// account) and the nine stacks they combine into.
//
// The catalogue is immutable once built; every accessor returns copies.
package regions

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Jurisdiction is a legal area with its own rules for patient data.
type Jurisdiction struct {
	// ID is the short lowercase id used in stack ids and file names: "us", "eu", "apac".
	ID string
	// Name is the human name, e.g. "European Union".
	Name string
	// HomeRegion is the AWS region a stack of this jurisdiction runs in.
	HomeRegion string
	// AllowedRegions lists every AWS region allowed to hold this
	// jurisdiction's patient data (home region first). Replicas, backup
	// copies and global tables must stay inside this list.
	AllowedRegions []string
	// Regime names the law, e.g. "HIPAA Security Rule".
	Regime string
	// CitationPrefix prefixes every legal citation of the regime, e.g. "45 CFR" or "GDPR".
	CitationPrefix string
	// StandbyRegion is the allowed region the jurisdiction's stacks fail
	// over to: it gets its own network, a standby copy of the service (warm
	// in prod and test, a pilot light in dev) and the database's
	// cross-region replica. "" when the jurisdiction allows one region
	// only: a failure there shows patients a maintenance page, never
	// another jurisdiction's region.
	StandbyRegion string
	// Basis says, for each allowed region, why the regime lets it hold the
	// jurisdiction's patient data. Adding a region is a change here, with
	// its basis, reviewed like any other; the blueprints follow from it.
	Basis map[string]string
}

// HasStandby reports whether the jurisdiction has a standby region.
func (j Jurisdiction) HasStandby() bool { return j.StandbyRegion != "" }

// ActiveRegions returns the regions that serve patients while healthy:
// the home region today. Several active regions are routed by latency.
func (j Jurisdiction) ActiveRegions() []string { return []string{j.HomeRegion} }

// Allows reports whether region may hold this jurisdiction's patient data.
func (j Jurisdiction) Allows(region string) bool {
	return slices.Contains(j.AllowedRegions, region)
}

// Cite returns the full citation of a section of the regime, e.g. Cite("Art. 44") = "GDPR Art. 44".
func (j Jurisdiction) Cite(section string) string {
	return j.CitationPrefix + " " + section
}

// Jurisdictions returns the three jurisdictions in a stable order: us, eu, apac.
//
// Allowed regions, and why:
//   - US: HIPAA has no data-residency clause, but the company's BAA scope and
//     policy keep PHI in the United States; us-east-1 (home), us-east-2 and
//     us-west-2 are US regions covered by the AWS BAA and give a second
//     geography for disaster recovery.
//   - EU: GDPR Art. 44-49 restricts transfers outside the EEA; eu-central-1
//     (Frankfurt, home) and eu-west-1 (Ireland) are both inside the EU. Other
//     EU regions are left out until needed: the smallest list that works.
//   - APAC: PDPA s26 only lets data leave Singapore with comparable
//     protection guaranteed; ap-southeast-1 is the only AWS region in
//     Singapore, so patient data stays there.
//
// Standby regions, and why: us-east-2 (Ohio) for the US, a second
// geography close enough to us-east-1 for a database replica to keep up;
// eu-west-1 (Ireland) for the EU; none for Singapore, whose only AWS
// region is its home.
func Jurisdictions() []Jurisdiction {
	return []Jurisdiction{
		{ID: "us", Name: "United States", HomeRegion: "us-east-1",
			AllowedRegions: []string{"us-east-1", "us-east-2", "us-west-2"},
			Regime:         "HIPAA Security Rule", CitationPrefix: "45 CFR",
			StandbyRegion: "us-east-2",
			Basis: map[string]string{
				"us-east-1": "US region under the AWS BAA (45 CFR 164.308(b)(1)); company policy keeps PHI in the United States",
				"us-east-2": "US region under the AWS BAA (45 CFR 164.308(b)(1)); second geography for contingency planning (45 CFR 164.308(a)(7))",
				"us-west-2": "US region under the AWS BAA (45 CFR 164.308(b)(1)); third geography for document replicas",
			}},
		{ID: "eu", Name: "European Union", HomeRegion: "eu-central-1",
			AllowedRegions: []string{"eu-central-1", "eu-west-1"},
			Regime:         "GDPR", CitationPrefix: "GDPR",
			StandbyRegion: "eu-west-1",
			Basis: map[string]string{
				"eu-central-1": "Frankfurt, inside the EEA: no transfer under GDPR Art. 44",
				"eu-west-1":    "Ireland, inside the EEA: no transfer under GDPR Art. 44; second geography for availability (Art. 32(1)(b))",
			}},
		{ID: "apac", Name: "Singapore", HomeRegion: "ap-southeast-1",
			AllowedRegions: []string{"ap-southeast-1"},
			Regime:         "Singapore PDPA", CitationPrefix: "PDPA",
			Basis: map[string]string{
				"ap-southeast-1": "Singapore, the only AWS region in the country: no transfer under PDPA s26",
			}},
	}
}

// JurisdictionByID returns the jurisdiction with the given id ("us", "eu", "apac").
func JurisdictionByID(id string) (Jurisdiction, bool) {
	for _, j := range Jurisdictions() {
		if j.ID == id {
			return j, true
		}
	}
	return Jurisdiction{}, false
}

// EnvironmentNames returns the environments in promotion order: dev, test, prod.
func EnvironmentNames() []string {
	return []string{"dev", "test", "prod"}
}

// EnvironmentConfig is an environment as configured by the operator.
type EnvironmentConfig struct {
	Name            string
	AccountID       string
	DeployerRoleARN string
}

// Environment is a validated environment: one AWS account and the role the
// portal assumes in it.
type Environment struct {
	Name            string
	AccountID       string
	DeployerRoleARN string
}

// Stack is one environment in one jurisdiction.
type Stack struct {
	// ID is "<environment>-<jurisdiction>", e.g. "prod-eu"; blueprint
	// parameter files are named after it.
	ID           string
	Environment  Environment
	Jurisdiction Jurisdiction
}

// Region is the AWS region the stack runs in (its jurisdiction's home region).
func (s Stack) Region() string { return s.Jurisdiction.HomeRegion }

// StackID returns the id of the stack of env in jurisdiction, e.g. StackID("prod", "eu") = "prod-eu".
func StackID(env, jurisdiction string) string { return env + "-" + jurisdiction }

// Catalogue holds the environments and jurisdictions. It is safe for
// concurrent use: nothing mutates it after New.
type Catalogue struct {
	envs []Environment // promotion order
}

var (
	accountIDRE = regexp.MustCompile(`^[0-9]{12}$`)
	roleARNRE   = regexp.MustCompile(`^arn:aws:iam::([0-9]{12}):role/[\w+=,.@/-]{1,512}$`)
)

// New validates envs and builds a catalogue. Each of dev, test and prod must
// appear exactly once with a 12-digit account id and an IAM role ARN in that
// same account; account ids must differ. All problems are reported together.
func New(envs []EnvironmentConfig) (*Catalogue, error) {
	var errs []error
	byName := map[string]EnvironmentConfig{}
	accounts := map[string]string{}
	for i, e := range envs {
		if !slices.Contains(EnvironmentNames(), e.Name) {
			errs = append(errs, fmt.Errorf("environment %d: unknown name %q (want dev, test or prod)", i, e.Name))
			continue
		}
		if _, dup := byName[e.Name]; dup {
			errs = append(errs, fmt.Errorf("environment %s: listed twice", e.Name))
			continue
		}
		byName[e.Name] = e
		if !accountIDRE.MatchString(e.AccountID) {
			errs = append(errs, fmt.Errorf("environment %s: account id %q is not 12 digits", e.Name, e.AccountID))
		} else if other, dup := accounts[e.AccountID]; dup {
			errs = append(errs, fmt.Errorf("environment %s: account id %s already used by %s", e.Name, e.AccountID, other))
		} else {
			accounts[e.AccountID] = e.Name
		}
		m := roleARNRE.FindStringSubmatch(e.DeployerRoleARN)
		switch {
		case m == nil:
			errs = append(errs, fmt.Errorf("environment %s: deployer role %q is not an IAM role ARN", e.Name, e.DeployerRoleARN))
		case m[1] != e.AccountID:
			errs = append(errs, fmt.Errorf("environment %s: deployer role %q is in account %s, not %s", e.Name, e.DeployerRoleARN, m[1], e.AccountID))
		}
	}
	c := &Catalogue{}
	for _, name := range EnvironmentNames() {
		e, ok := byName[name]
		if !ok {
			errs = append(errs, fmt.Errorf("environment %s: missing", name))
			continue
		}
		c.envs = append(c.envs, Environment(e))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("regions: invalid environments: %w", errors.Join(errs...))
	}
	return c, nil
}

// SandboxEnvironments returns the configuration used by the local sandbox and
// tests: dev=111111111111, test=222222222222, prod=333333333333, each with
// the role PortalDeployer.
func SandboxEnvironments() []EnvironmentConfig {
	var out []EnvironmentConfig
	for i, name := range EnvironmentNames() {
		id := strings.Repeat(strconv.Itoa(i+1), 12)
		out = append(out, EnvironmentConfig{Name: name, AccountID: id,
			DeployerRoleARN: "arn:aws:iam::" + id + ":role/PortalDeployer"})
	}
	return out
}

// Environments returns the environments in promotion order.
func (c *Catalogue) Environments() []Environment { return slices.Clone(c.envs) }

// Environment returns the environment called name.
func (c *Catalogue) Environment(name string) (Environment, bool) {
	for _, e := range c.envs {
		if e.Name == name {
			return e, true
		}
	}
	return Environment{}, false
}

// Jurisdictions returns the jurisdictions (same as the package function).
func (c *Catalogue) Jurisdictions() []Jurisdiction { return Jurisdictions() }

// Next returns the environment a version is promoted to after env
// (dev -> test -> prod); ok is false for prod and unknown names.
func (c *Catalogue) Next(env string) (next string, ok bool) {
	names := EnvironmentNames()
	i := slices.Index(names, env)
	if i < 0 || i == len(names)-1 {
		return "", false
	}
	return names[i+1], true
}

// Previous returns the environment a version must have passed before env
// (prod -> test -> dev); ok is false for dev and unknown names.
func (c *Catalogue) Previous(env string) (prev string, ok bool) {
	names := EnvironmentNames()
	i := slices.Index(names, env)
	if i <= 0 {
		return "", false
	}
	return names[i-1], true
}

// Stacks returns the nine stacks, environment-major in promotion order, then
// jurisdictions in the order of Jurisdictions.
func (c *Catalogue) Stacks() []Stack {
	var out []Stack
	for _, e := range c.envs {
		for _, j := range Jurisdictions() {
			out = append(out, Stack{ID: StackID(e.Name, j.ID), Environment: e, Jurisdiction: j})
		}
	}
	return out
}

// Stack returns the stack with the given id, e.g. "prod-eu".
func (c *Catalogue) Stack(id string) (Stack, bool) {
	for _, s := range c.Stacks() {
		if s.ID == id {
			return s, true
		}
	}
	return Stack{}, false
}

// LayerSuffix ends the id of every environment layer: "prod-global".
const LayerSuffix = "global"

// LayerRegion is where an environment layer's global resources are managed
// (Route 53, CloudFront and its certificate live in us-east-1's APIs).
const LayerRegion = "us-east-1"

// Layer is an environment's layer: what its account holds once, above the
// three jurisdiction stacks: the patients' hostname and its routing, the
// CDN in front of them, the environment's DNS zone and the account's one
// multi-region CloudTrail trail. It is planned and applied like a stack;
// its resources read the jurisdiction stacks' outputs, and theirs read its.
type Layer struct {
	// ID is "<environment>-global", e.g. "prod-global".
	ID          string
	Environment Environment
}

// LayerID returns the id of env's layer, e.g. LayerID("prod") = "prod-global".
func LayerID(env string) string { return env + "-" + LayerSuffix }

// IsLayerID reports whether id names an environment layer.
func IsLayerID(id string) bool {
	env, suffix, ok := strings.Cut(id, "-")
	return ok && suffix == LayerSuffix && slices.Contains(EnvironmentNames(), env)
}

// Layers returns the three environment layers in promotion order.
func (c *Catalogue) Layers() []Layer {
	out := make([]Layer, 0, len(c.envs))
	for _, e := range c.envs {
		out = append(out, Layer{ID: LayerID(e.Name), Environment: e})
	}
	return out
}

// Layer returns the layer with the given id, e.g. "prod-global".
func (c *Catalogue) Layer(id string) (Layer, bool) {
	for _, l := range c.Layers() {
		if l.ID == id {
			return l, true
		}
	}
	return Layer{}, false
}

// StacksOf returns the jurisdiction stacks of environment env.
func (c *Catalogue) StacksOf(env string) []Stack {
	var out []Stack
	for _, s := range c.Stacks() {
		if s.Environment.Name == env {
			out = append(out, s)
		}
	}
	return out
}
