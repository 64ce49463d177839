package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"portal/internal/access"
	"portal/internal/accounts"
	"portal/internal/drivers"
	"portal/internal/engine"
	"portal/internal/inventory"
	"portal/internal/orgguard"
	"portal/internal/regions"
	"portal/internal/web"
	"portal/internal/workflows"
)

// Estate is the part of the portal that reaches AWS: the catalogue of
// environments, the provisioning engine and the stack workflows. It is nil
// when no environment accounts are configured.
type Estate struct {
	Catalogue *regions.Catalogue
	Accounts  *accounts.Accounts
	Engine    *engine.Engine
	Workflows *workflows.Service
	// Inventory discovers what exists in every environment account, on a
	// schedule and on demand.
	Inventory *inventory.Service
	// Access manages the IAM groups staff hold in each account.
	Access *access.Service
	// OrgGuard keeps the organization's service control policies.
	OrgGuard *orgguard.Service
}

// InventoryInterval is how often the estate is discovered.
const InventoryInterval = 6 * time.Hour

// buildEstate assembles the estate from the configured environments and
// the AWS SDK's default configuration (credentials chain, AWS_ENDPOINT_URL).
func (a *App) buildEstate(ctx context.Context, opts Options) (*Estate, error) {
	if len(a.cfg.Environments) == 0 {
		return nil, nil
	}
	cat, err := regions.New(a.cfg.Environments)
	if err != nil {
		return nil, fmt.Errorf("app: environments: %w", err)
	}
	base, err := accounts.LoadBase(ctx)
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	accts := accounts.New(base, cat)
	if a.cfg.Management != nil {
		accts.SetManagement(*a.cfg.Management)
	}
	reg, err := engine.NewRegistry(append(append(drivers.All(), access.Drivers()...), orgguard.Drivers()...)...)
	if err != nil {
		return nil, err
	}
	source := func(env, region string) (aws.Config, error) { return accts.Config(env, region) }
	eng := engine.New(reg, source, a.DB, a.Audit, a.log, opts.Now)
	// A jurisdiction's stack is deployed by a session tagged with it, so the
	// organization's residency policies hold the deployer to its regions.
	eng.StackConfigs = func(info engine.StackInfo, region string) (aws.Config, error) {
		if _, ok := regions.JurisdictionByID(info.Jurisdiction); ok && info.Environment != accounts.Management {
			return accts.StackConfig(info.Environment, info.Jurisdiction, region)
		}
		return accts.Config(info.Environment, region)
	}
	e := &Estate{Catalogue: cat, Accounts: accts, Engine: eng, Workflows: &workflows.Service{Engine: eng, Catalogue: cat}}
	if err := a.wirePromotion(e, opts.Now); err != nil {
		return nil, err
	}
	e.Inventory = inventory.New(a.DB, a.Audit, a.log, opts.Now, &inventory.Discoverer{Configs: accts.Config, Environments: cat.Environments()})
	e.Inventory.Schedule(a.Jobs, InventoryInterval)
	if e.Access, err = a.buildAccess(e, opts); err != nil {
		return nil, err
	}
	e.OrgGuard = &orgguard.Service{Engine: eng, Configs: source, Environments: map[string]string{}, Now: opts.Now}
	for _, env := range cat.Environments() {
		e.OrgGuard.Environments[env.Name] = env.AccountID
	}
	if m, ok := accts.ManagementAccount(); ok {
		e.OrgGuard.ManagementAccount = m.AccountID
	}
	return e, nil
}

// stackIDs lists the nine stacks in catalogue order.
func stackIDs() []string {
	var out []string
	for _, env := range regions.EnvironmentNames() {
		for _, j := range regions.Jurisdictions() {
			out = append(out, regions.StackID(env, j.ID))
		}
	}
	return out
}

// webDeps is what the HTTP layer gets.
func (a *App) webDeps(opts Options) web.Deps {
	d := web.Deps{DB: a.DB, Staff: a.Staff, Audit: a.Audit, Logger: a.log, Now: opts.Now, Stacks: stackIDs(), Sandbox: opts.Sandbox}
	d.Activity = a.Activity
	d.Inventory = inventory.New(a.DB, a.Audit, a.log, opts.Now, nil)
	if a.Estate != nil {
		d.Inventory = a.Estate.Inventory
		d.Workflows = a.Estate.Workflows
		d.StackRuns = web.StackRunsOf(a.Estate.Workflows)
		d.Access = a.Estate.Access
		d.OrgGuard = a.Estate.OrgGuard
	}
	return d
}

// runnerName names this process in run leases, unique per start.
func runnerName() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	host, _ := os.Hostname()
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}
