package accounts

import (
	"fmt"
	"regexp"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// Management is the name Config takes for the organization's management
// account, where AWS Organizations and IAM Identity Center live: staff
// permission sets and their account assignments, and the service control
// policies that back up data residency.
const Management = "management"

// ManagementConfig is the organization's management account and the role
// the portal assumes there.
type ManagementConfig struct {
	AccountID string
	RoleARN   string
	// IdentityCenterRegion is the home region of the organization's IAM
	// Identity Center instance.
	IdentityCenterRegion string
}

var (
	mgmtAccountRE = regexp.MustCompile(`^\d{12}$`)
	mgmtRoleRE    = regexp.MustCompile(`^arn:aws[\w-]*:iam::(\d{12}):role/[\w+=,.@/-]{1,512}$`)
)

// Validate names what is wrong with m.
func (m ManagementConfig) Validate() error {
	if !mgmtAccountRE.MatchString(m.AccountID) {
		return fmt.Errorf("management account id %q is not 12 digits", m.AccountID)
	}
	g := mgmtRoleRE.FindStringSubmatch(m.RoleARN)
	switch {
	case g == nil:
		return fmt.Errorf("management role %q is not an IAM role ARN", m.RoleARN)
	case g[1] != m.AccountID:
		return fmt.Errorf("management role %q is in account %s, not %s", m.RoleARN, g[1], m.AccountID)
	case m.IdentityCenterRegion == "":
		return fmt.Errorf("the Identity Center region is required")
	}
	return nil
}

// SetManagement makes Config(Management, region) reach the management
// account by assuming m.RoleARN.
func (a *Accounts) SetManagement(m ManagementConfig) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.mgmt = &m
	delete(a.creds, Management)
}

// ManagementAccount returns the management account's configuration and
// whether one is set.
func (a *Accounts) ManagementAccount() (ManagementConfig, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.mgmt == nil {
		return ManagementConfig{}, false
	}
	return *a.mgmt, true
}

// managementConfig is Config for the management account.
func (a *Accounts) managementConfig(region string) (aws.Config, error) {
	a.mu.Lock()
	m := a.mgmt
	if m == nil {
		a.mu.Unlock()
		return aws.Config{}, fmt.Errorf("accounts: no management account is configured (-management-account-id)")
	}
	p, ok := a.creds[Management]
	if !ok {
		p = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(a.base), m.RoleARN, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = SessionName
		}))
		a.creds[Management] = p
	}
	a.mu.Unlock()
	cfg := a.base.Copy()
	cfg.Region = region
	cfg.Credentials = p
	return cfg, nil
}
