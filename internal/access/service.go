package access

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"

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
	Logger   *slog.Logger
	Now      func() time.Time
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
		configs: o.Configs, accounts: o.Accounts, log: o.Logger, now: o.Now}
}

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

var iamNameRe = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)

// PrincipalName is the IAM user of staff account u in every environment
// account: their email when IAM accepts it as a user name, else staff-ID.
func PrincipalName(u staff.User) string {
	if iamNameRe.MatchString(u.Email) {
		return u.Email
	}
	return "staff-" + strconv.FormatInt(u.ID, 10)
}

// userPath is the IAM path of the users the portal makes for staff.
const userPath = "/portal/staff/"

func (s *Service) iamClient(env string) (*iam.Client, error) {
	cfg, err := s.configs(env, globalRegion)
	if err != nil {
		return nil, fmt.Errorf("access: AWS configuration of %s: %w", env, err)
	}
	return iam.NewFromConfig(cfg), nil
}

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
		return fmt.Errorf("access: %s in %s: %s", k.Role, k.Environment, msg)
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
	c, err := s.iamClient(k.Environment)
	if err != nil {
		return err
	}
	name := PrincipalName(u)
	if !want {
		_, err := c.RemoveUserFromGroup(ctx, &iam.RemoveUserFromGroupInput{GroupName: aws.String(t.GroupName()), UserName: aws.String(name)})
		if err != nil && !isNoSuchEntity(err) {
			return fmt.Errorf("remove %s from %s: %w", name, t.GroupName(), err)
		}
		return nil
	}
	if _, err := c.GetGroup(ctx, &iam.GetGroupInput{GroupName: aws.String(t.GroupName())}); isNoSuchEntity(err) {
		return fmt.Errorf("group %s does not exist in %s yet: apply the %s stack first", t.GroupName(), k.Environment, StackID(k.Environment))
	} else if err != nil {
		return fmt.Errorf("get group %s: %w", t.GroupName(), err)
	}
	if _, err := c.GetUser(ctx, &iam.GetUserInput{UserName: aws.String(name)}); isNoSuchEntity(err) {
		_, err := c.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(name), Path: aws.String(userPath), Tags: []types.Tag{
			{Key: aws.String("portal:staff-id"), Value: aws.String(strconv.FormatInt(u.ID, 10))},
			{Key: aws.String("portal:staff-email"), Value: aws.String(u.Email)},
			{Key: aws.String(engine.TagManaged), Value: aws.String("portal")},
		}})
		if err != nil && !engine.IsCode(err, "EntityAlreadyExists") {
			return fmt.Errorf("create user %s: %w", name, err)
		}
	} else if err != nil {
		return fmt.Errorf("get user %s: %w", name, err)
	}
	if _, err := c.AddUserToGroup(ctx, &iam.AddUserToGroupInput{GroupName: aws.String(t.GroupName()), UserName: aws.String(name)}); err != nil {
		return fmt.Errorf("add %s to %s: %w", name, t.GroupName(), err)
	}
	return nil
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

// Members lists the IAM users in role's group in env, as IAM reports them.
func (s *Service) Members(ctx context.Context, env, role string) ([]string, error) {
	t, ok := s.templates.Get(role)
	if !ok {
		return nil, fmt.Errorf("access: unknown staff role %q", role)
	}
	c, err := s.iamClient(env)
	if err != nil {
		return nil, err
	}
	out, err := c.GetGroup(ctx, &iam.GetGroupInput{GroupName: aws.String(t.GroupName())})
	if isNoSuchEntity(err) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("access: members of %s in %s: %s", t.GroupName(), env, engine.Explain(err))
	}
	var names []string
	for _, u := range out.Users {
		names = append(names, aws.ToString(u.UserName))
	}
	return names, nil
}
