package staff

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"portal/internal/apperr"
	"portal/internal/audit"
	"portal/internal/store"
)

// Federated accounts are the ones an OpenID provider vouches for (package
// sso keeps which provider and subject in sso_identities). They are made
// on their first sign-in through the provider, take their roles from the
// provider's groups and have no usable portal password: the hash stored
// for them is of a random secret that is never kept, so a password sign-in
// fails for them exactly as a wrong password does. Admins cannot set their
// roles or passwords; they can disable them.

// ErrLastAdmin is the conflict of taking admin from the last enabled admin.
var ErrLastAdmin = errors.New("the last enabled admin")

func errFederated(u User, why string) error {
	return apperr.New(apperr.Conflict, "%s signs in through single sign-on: %s", u.Email, why)
}

// UnusablePasswordHash returns the hash of a random secret that is thrown
// away: no password matches it.
func (s *Service) UnusablePasswordHash() (string, error) {
	return HashPassword(OneTimePassword()+OneTimePassword(), s.cfg.Hash)
}

// CreateFederatedTx adds an account for a person an identity provider
// vouches for, inside the caller's transaction (which also records the
// provider link), with passwordHash from UnusablePasswordHash. It is
// audited as staff.create with the source.
func (s *Service) CreateFederatedTx(ctx context.Context, tx *sql.Tx, by audit.Entry, n NewUser, passwordHash, source string) (User, error) {
	if err := n.Validate(); err != nil {
		return User{}, err
	}
	sortRoles(n.Roles)
	now := store.Time(s.now())
	var id int64
	err := tx.QueryRowContext(ctx, `INSERT INTO users (email, name, password_hash, must_change_password, created_at, updated_at)
		VALUES (?, ?, ?, 0, ?, ?) ON CONFLICT (email) DO NOTHING RETURNING id`, n.Email, n.Name, passwordHash, now, now).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, apperr.New(apperr.Conflict, "an account with the email %s already exists", n.Email)
	} else if err != nil {
		return User{}, fmt.Errorf("staff: create %s: %w", n.Email, err)
	}
	if err := setRoles(ctx, tx, id, n.Roles); err != nil {
		return User{}, err
	}
	u, err := getUser(ctx, tx, "u.id = ?", id)
	if err != nil {
		return User{}, err
	}
	return u, s.appendAudit(ctx, tx, by, "staff.create", u, map[string]any{"roles": u.Roles, "name": u.Name, "source": source})
}

// GetTx is Get inside the caller's transaction.
func (s *Service) GetTx(ctx context.Context, tx *sql.Tx, id int64) (User, error) {
	return getUser(ctx, tx, "u.id = ?", id)
}

// SyncFederated brings a single sign-on account in line with what its
// provider says now: its roles (from its groups), and its email and name
// when they changed and the email is free. Nothing is written, or audited,
// when nothing changed. The last enabled admin keeps admin whatever the
// groups say (the portal is never left without one); changed reports
// whether anything was written.
func (s *Service) SyncFederated(ctx context.Context, by audit.Entry, id int64, email, name string, roles []Role) (User, bool, error) {
	u, changed, err := s.syncFederated(ctx, by, id, email, name, roles)
	if errors.Is(err, ErrLastAdmin) && !slices.Contains(roles, Admin) {
		return s.syncFederated(ctx, by, id, email, name, append(slices.Clone(roles), Admin))
	}
	return u, changed, err
}

func (s *Service) syncFederated(ctx context.Context, by audit.Entry, id int64, email, name string, roles []Role) (User, bool, error) {
	sortRoles(roles)
	u, err := s.Get(ctx, id)
	if err != nil {
		return User{}, false, err
	}
	n := NewUser{Email: email, Name: name, Roles: roles}
	if err := n.Validate(); err != nil {
		return User{}, false, err
	}
	if !u.SingleSignOn {
		return User{}, false, apperr.New(apperr.Conflict, "%s is a local account", u.Email)
	}
	if slices.Equal(u.Roles, n.Roles) && u.Email == n.Email && u.Name == n.Name {
		return u, false, nil
	}
	out, err := s.update(ctx, by, id, "staff.sync_from_provider", func(tx *sql.Tx, u User) (map[string]any, error) {
		details := map[string]any{}
		if u.Email != n.Email {
			var taken int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE email = ? AND id != ?`, n.Email, id).Scan(&taken); err != nil {
				return nil, fmt.Errorf("staff: sync %s: %w", u.Email, err)
			}
			if taken > 0 {
				return nil, apperr.New(apperr.Conflict, "the provider now gives %s the email %s, which another account has", u.Email, n.Email)
			}
			if _, err := tx.ExecContext(ctx, `UPDATE users SET email = ? WHERE id = ?`, n.Email, id); err != nil {
				return nil, fmt.Errorf("staff: sync %s: %w", u.Email, err)
			}
			details["email"] = map[string]string{"before": u.Email, "after": n.Email}
		}
		if u.Name != n.Name {
			if _, err := tx.ExecContext(ctx, `UPDATE users SET name = ? WHERE id = ?`, n.Name, id); err != nil {
				return nil, fmt.Errorf("staff: sync %s: %w", u.Email, err)
			}
			details["name"] = map[string]string{"before": u.Name, "after": n.Name}
		}
		if !slices.Equal(u.Roles, n.Roles) {
			d, err := s.setRolesTx(ctx, tx, u, n.Roles)
			if err != nil {
				return nil, err
			}
			details["roles"] = d
		}
		return details, nil
	})
	return out, err == nil, err
}
