package access

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"portal/internal/apperr"
	"portal/internal/audit"
	"portal/internal/engine"
	"portal/internal/staff"
	"portal/internal/store"
)

// Service manages staff AWS access. Build it with New.
type Service struct {
	db        *store.DB
	audit     *audit.Log
	staff     *staff.Service
	engine    *engine.Engine
	templates *Templates
	configs   engine.ConfigSource
	accounts  map[string]string
	log       *slog.Logger
	now       func() time.Time

	// management is the organization's management account, where IAM
	// Identity Center lives; ssoRegion is the instance's home region.
	management, ssoRegion string

	mu       sync.Mutex
	instance Instance
}

// Options are what a Service needs.
type Options struct {
	DB        *store.DB
	Audit     *audit.Log
	Staff     *staff.Service
	Engine    *engine.Engine
	Templates *Templates
	// Configs reaches each environment's account (accounts.Accounts.Config).
	Configs engine.ConfigSource
	// Accounts maps each environment to its AWS account id.
	Accounts map[string]string
	// ManagementAccount is the organization's management account, reached
	// through Configs(accounts.Management, region); IdentityCenterRegion is
	// the home region of its IAM Identity Center instance.
	ManagementAccount    string
	IdentityCenterRegion string
	Logger               *slog.Logger
	Now                  func() time.Time
}

// New returns a Service.
func New(o Options) *Service {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Service{db: o.DB, audit: o.Audit, staff: o.Staff, engine: o.Engine, templates: o.Templates,
		configs: o.Configs, accounts: o.Accounts, log: o.Logger, now: o.Now, management: o.ManagementAccount, ssoRegion: o.IdentityCenterRegion}
}

// ManagementAccount is the account of the organization's Identity Center
// ("" when none is configured); IdentityCenterRegion its home region.
func (s *Service) ManagementAccount() string    { return s.management }
func (s *Service) IdentityCenterRegion() string { return s.ssoRegion }

// Templates returns the staff roles.
func (s *Service) Templates() *Templates { return s.templates }

// Account is the AWS account of environment env ("" when unknown).
func (s *Service) Account(env string) string { return s.accounts[env] }

// Actor is who acts: the signed-in person and the audit entry of the
// request (actor label, source IP, request id).
type Actor struct {
	User  staff.User
	Entry audit.Entry
}

// System is the actor of scheduled work.
var System = Actor{Entry: audit.Entry{Actor: "system"}}

// key is one person, environment and role: one group membership.
type key struct {
	UserID      int64
	Environment string
	Role        string
}

// markSync records, inside tx, that k's membership must be synced.
func markSync(ctx context.Context, tx *sql.Tx, k key, now time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO access_sync (user_id, environment, role, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (user_id, environment, role) DO UPDATE SET updated_at = excluded.updated_at`,
		k.UserID, k.Environment, k.Role, store.Time(now))
	if err != nil {
		return fmt.Errorf("access: mark sync: %w", err)
	}
	return nil
}

// wanted reports whether k should be a member now: some grant is active
// and (standing or) not yet expired.
func (s *Service) wanted(ctx context.Context, k key) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM access_grants g JOIN users u ON u.id = g.user_id
		WHERE g.user_id = ? AND g.environment = ? AND g.role = ? AND g.state = 'active' AND u.disabled = 0
		AND (g.expires_at = '' OR g.expires_at > ?)`, k.UserID, k.Environment, k.Role, store.Time(s.now())).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("access: membership of %v: %w", k, err)
	}
	return n > 0, nil
}

// sync makes k's IAM group membership match its grants, and forgets the
// pending sync on success (recording the error otherwise).
func (s *Service) sync(ctx context.Context, k key) error {
	err := s.syncAWS(ctx, k)
	msg := ""
	if err != nil {
		msg = engine.Explain(err)
		s.log.Warn("access: sync failed", "user", k.UserID, "environment", k.Environment, "role", k.Role, "err", err)
	}
	_ = s.db.Tx(ctx, func(tx *sql.Tx) error {
		if err == nil {
			_, e := tx.ExecContext(ctx, `DELETE FROM access_sync WHERE user_id = ? AND environment = ? AND role = ?`, k.UserID, k.Environment, k.Role)
			return e
		}
		_, e := tx.ExecContext(ctx, `UPDATE access_sync SET attempts = attempts + 1, last_error = ?, updated_at = ?
			WHERE user_id = ? AND environment = ? AND role = ?`, msg, store.Time(s.now()), k.UserID, k.Environment, k.Role)
		return e
	})
	if err != nil {
		// A conflict with AWS, in words: callers say it after "granted, but
		// Identity Center has not been changed yet".
		return apperr.Wrap(apperr.Conflict, err, "%s in %s: %s", k.Role, k.Environment, msg)
	}
	return nil
}

func (s *Service) syncAWS(ctx context.Context, k key) error {
	t, ok := s.templates.Get(k.Role)
	if !ok {
		return fmt.Errorf("unknown staff role %q", k.Role)
	}
	u, err := s.staff.Get(ctx, k.UserID)
	if err != nil {
		return err
	}
	want, err := s.wanted(ctx, k)
	if err != nil {
		return err
	}
	account := s.accounts[k.Environment]
	if account == "" {
		return fmt.Errorf("no AWS account is configured for %s", k.Environment)
	}
	c, err := s.sso(ctx)
	if err != nil {
		return err
	}
	ps, err := c.permissionSet(ctx, t.PermissionSetName(k.Environment))
	if errors.Is(err, engine.ErrNotFound) {
		if !want {
			return nil
		}
		return fmt.Errorf("permission set %s does not exist yet: apply the %s stack first", t.PermissionSetName(k.Environment), StackID(k.Environment))
	} else if err != nil {
		return err
	}
	principal, err := c.userID(ctx, u, want)
	if err != nil {
		return err
	}
	if principal == "" {
		return nil // no Identity Center user, so nothing to remove
	}
	return c.assign(ctx, want, account, ps, principal)
}

// PendingSync is a membership IAM does not reflect yet.
type PendingSync struct {
	UserID            int64
	Environment, Role string
	Attempts          int
	LastError         string
	UpdatedAt         time.Time
}

// PendingSyncs lists memberships not yet carried out in IAM.
func (s *Service) PendingSyncs(ctx context.Context) ([]PendingSync, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT user_id, environment, role, attempts, last_error, updated_at FROM access_sync ORDER BY updated_at`)
	if err != nil {
		return nil, fmt.Errorf("access: pending syncs: %w", err)
	}
	defer rows.Close()
	var out []PendingSync
	for rows.Next() {
		var p PendingSync
		var at string
		if err := rows.Scan(&p.UserID, &p.Environment, &p.Role, &p.Attempts, &p.LastError, &at); err != nil {
			return nil, err
		}
		p.UpdatedAt, _ = store.ParseTime(at)
		out = append(out, p)
	}
	return out, rows.Err()
}

// SyncPending retries every pending sync; it returns how many remain.
func (s *Service) SyncPending(ctx context.Context) (int, error) {
	ps, err := s.PendingSyncs(ctx)
	if err != nil {
		return 0, err
	}
	left := 0
	for _, p := range ps {
		if err := s.sync(ctx, key{p.UserID, p.Environment, p.Role}); err != nil {
			left++
		}
	}
	return left, nil
}

// Members lists the Identity Center user names assigned role's permission
// set in env's account, as Identity Center reports them.
func (s *Service) Members(ctx context.Context, env, role string) ([]string, error) {
	t, ok := s.templates.Get(role)
	if !ok {
		return nil, fmt.Errorf("access: unknown staff role %q", role)
	}
	c, err := s.sso(ctx)
	if err != nil {
		return nil, err
	}
	ps, err := c.permissionSet(ctx, t.PermissionSetName(env))
	if errors.Is(err, engine.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("access: %s", engine.Explain(err))
	}
	as, err := c.assignments(ctx, s.accounts[env], ps)
	if err != nil {
		return nil, fmt.Errorf("access: %s", engine.Explain(err))
	}
	var names []string
	for _, a := range as {
		if a.PrincipalType != "USER" {
			continue
		}
		n, err := c.userName(ctx, a.PrincipalID)
		if err != nil {
			return nil, fmt.Errorf("access: %s", engine.Explain(err))
		}
		if n == "" {
			n = a.PrincipalID
		}
		names = append(names, n)
	}
	return names, nil
}
