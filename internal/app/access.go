package app

import (
	"context"
	"fmt"
	"time"

	staffroles "portal/blueprints/staff-roles"
	"portal/internal/access"
)

// AccessExpiryInterval is how often elevations are ended, disabled
// accounts' access revoked and failed IAM changes retried.
const AccessExpiryInterval = time.Minute

// buildAccess wires staff AWS access to the estate: the staff-roles stacks
// go through e's engine, disabling an account revokes its access, and the
// expiry job runs under the lease scheduler.
func (a *App) buildAccess(e *Estate, opts Options) (*access.Service, error) {
	ts, err := access.LoadTemplates(staffroles.FS)
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	accounts := map[string]string{}
	for _, env := range e.Catalogue.Environments() {
		accounts[env.Name] = env.AccountID
	}
	o := access.Options{DB: a.DB, Audit: a.Audit, Staff: a.Staff, Engine: e.Engine, Templates: ts,
		Configs: e.Accounts.Config, Accounts: accounts, Logger: a.log, Now: opts.Now}
	if m, ok := e.Accounts.ManagementAccount(); ok {
		o.ManagementAccount, o.IdentityCenterRegion = m.AccountID, m.IdentityCenterRegion
	}
	svc := access.New(o)
	a.Staff.OnDisabled = svc.OnStaffDisabled
	a.Jobs.Every("access.expire", AccessExpiryInterval, func(ctx context.Context) error {
		_, err := svc.ExpireDue(ctx)
		return err
	})
	return svc, nil
}
