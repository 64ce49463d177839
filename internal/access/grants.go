package access

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"portal/internal/apperr"
	"portal/internal/audit"
	"portal/internal/staff"
	"portal/internal/store"
)

// Grant kinds.
const (
	Standing  = "standing"
	Elevation = "elevation"
)

// Grant states.
const (
	Pending  = "pending"
	Active   = "active"
	Rejected = "rejected"
	Revoked  = "revoked"
	Expired  = "expired"
)

// Grant is one person holding (or asking for) one staff role in one
// environment.
type Grant struct {
	ID                  int64
	UserID              int64
	UserEmail           string
	Environment, Role   string
	Kind, State, Reason string
	Minutes             int
	RequestedByID       int64
	RequestedBy         string
	RequestedAt         time.Time
	DecidedByID         int64
	DecidedBy           string
	DecidedAt           time.Time
	DecisionNote        string
	ActiveFrom          time.Time
	// ExpiresAt is zero for standing grants.
	ExpiresAt          time.Time
	EndedAt            time.Time
	EndedBy, EndReason string
}

// Duration is the elevation asked for.
func (g Grant) Duration() time.Duration { return time.Duration(g.Minutes) * time.Minute }

// Request asks for a grant: a standing grant (admins, for someone) or an
// elevation (anyone, for themselves).
type Request struct {
	UserID      int64
	Environment string
	Role        string
	Kind        string
	// Minutes is the elevation's duration.
	Minutes int
	Reason  string
}

// RequestGrant records r. Standing grants in dev and test are active at
// once; a standing grant in prod and every elevation wait for another
// admin's approval.
func (s *Service) RequestGrant(ctx context.Context, by Actor, r Request) (Grant, error) {
	var v apperr.Validation
	r.Reason = strings.TrimSpace(r.Reason)
	t, ok := s.templates.Get(r.Role)
	if !ok {
		v.Add("role", "choose one of the staff roles")
	}
	envOK := false
	for _, e := range Environments {
		envOK = envOK || e == r.Environment
	}
	if !envOK {
		v.Add("environment", "choose dev, test or prod")
	}
	u, err := s.staff.Get(ctx, r.UserID)
	if err != nil {
		v.Add("user", "choose a staff account")
	} else if u.Disabled {
		v.Add("user", u.Email+" is disabled")
	}
	switch r.Kind {
	case Standing:
		if !by.User.Has(staff.Admin) {
			return Grant{}, apperr.New(apperr.Forbidden, "only admins grant standing access")
		}
		if ok && envOK && !t.StandingIn(r.Environment) {
			v.Add("role", fmt.Sprintf("%s is held in %s through elevation only", r.Role, r.Environment))
		}
		r.Minutes = 0
	case Elevation:
		if r.UserID != by.User.ID {
			return Grant{}, apperr.New(apperr.Forbidden, "people request elevation for themselves")
		}
		if ok && envOK {
			if max := t.MaxHours(r.Environment) * 60; r.Minutes < 15 || r.Minutes > max {
				v.Add("minutes", fmt.Sprintf("choose between 15 minutes and %d hours for %s in %s", max/60, r.Role, r.Environment))
			}
		}
	default:
		v.Add("kind", "choose standing or elevation")
	}
	if len(r.Reason) < 10 {
		v.Add("reason", "say why, in at least 10 characters")
	} else if len(r.Reason) > 500 {
		v.Add("reason", "is longer than 500 characters")
	}
	if err == nil && ok && !t.FitsPortalRoles(u.Roles) {
		v.Add("role", fmt.Sprintf("%s is for %s; %s holds %s", r.Role, strings.Join(t.PortalRoles, " or "), u.Email, rolesText(u.Roles)))
	}
	if err := v.Err(); err != nil {
		return Grant{}, err
	}
	now := s.now()
	immediate := r.Kind == Standing && r.Environment != "prod"
	var id int64
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		state, from, decidedBy, decidedAt := Pending, "", "", ""
		var decidedByID int64
		if immediate {
			state, from, decidedBy, decidedAt, decidedByID = Active, store.Time(now), by.Entry.Actor, store.Time(now), by.User.ID
		}
		err := tx.QueryRowContext(ctx, `INSERT INTO access_grants (user_id, environment, role, kind, state, reason, minutes,
			requested_by_id, requested_by, requested_at, decided_by_id, decided_by, decided_at, active_from)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			r.UserID, r.Environment, r.Role, r.Kind, state, r.Reason, r.Minutes, by.User.ID, by.Entry.Actor, store.Time(now),
			decidedByID, decidedBy, decidedAt, from).Scan(&id)
		if err != nil {
			if store.IsUniqueViolation(err) {
				return &apperr.Error{Kind: apperr.Conflict, Message: fmt.Sprintf("%s already holds or awaits %s in %s", u.Email, r.Role, r.Environment),
					Fields: map[string]string{"role": "already granted or awaiting approval"}}
			}
			return fmt.Errorf("access: request grant: %w", err)
		}
		action := "access.grant.request"
		if r.Kind == Elevation {
			action = "access.elevation.request"
		}
		if immediate {
			action = "access.grant"
			if err := markSync(ctx, tx, key{r.UserID, r.Environment, r.Role}, now); err != nil {
				return err
			}
		}
		return s.appendAudit(ctx, tx, by, action, grantTarget(id, u), map[string]any{
			"environment": r.Environment, "role": r.Role, "kind": r.Kind, "minutes": r.Minutes, "reason": r.Reason})
	})
	if err != nil {
		return Grant{}, err
	}
	if immediate {
		if err := s.sync(ctx, key{r.UserID, r.Environment, r.Role}); err != nil {
			g, _ := s.Get(ctx, id)
			return g, apperr.Wrap(apperr.Conflict, err, "granted, but Identity Center has not been changed yet (retried every minute): %s", apperr.MessageOf(err))
		}
	}
	return s.Get(ctx, id)
}

func rolesText(rs []staff.Role) string {
	var out []string
	for _, r := range rs {
		out = append(out, string(r))
	}
	if len(out) == 0 {
		return "no role"
	}
	return strings.Join(out, ", ")
}

func grantTarget(id int64, u staff.User) string {
	return fmt.Sprintf("access-grant:%d %s", id, u.Email)
}

// Decide approves or rejects pending grant id. The decider is an admin who
// neither asked for it nor would hold it. An approved elevation runs from
// now for the minutes asked.
func (s *Service) Decide(ctx context.Context, by Actor, id int64, approve bool, note string) (Grant, error) {
	g, err := s.Get(ctx, id)
	if err != nil {
		return Grant{}, err
	}
	switch {
	case !by.User.Has(staff.Admin):
		return Grant{}, apperr.New(apperr.Forbidden, "only admins approve AWS access")
	case by.User.ID == g.RequestedByID:
		return Grant{}, apperr.New(apperr.Forbidden, "you asked for this: another admin must decide")
	case by.User.ID == g.UserID:
		return Grant{}, apperr.New(apperr.Forbidden, "nobody approves their own access")
	case g.State != Pending:
		return Grant{}, apperr.New(apperr.Conflict, "request %d is %s already", id, g.State)
	}
	u, err := s.staff.Get(ctx, g.UserID)
	if err != nil {
		return Grant{}, err
	}
	if approve && u.Disabled {
		return Grant{}, apperr.New(apperr.Conflict, "%s is disabled", u.Email)
	}
	now := s.now()
	k := key{g.UserID, g.Environment, g.Role}
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		var res sql.Result
		var err error
		if approve {
			expires := ""
			if g.Kind == Elevation {
				expires = store.Time(now.Add(g.Duration()))
			}
			res, err = tx.ExecContext(ctx, `UPDATE access_grants SET state = 'active', decided_by_id = ?, decided_by = ?, decided_at = ?,
				decision_note = ?, active_from = ?, expires_at = ? WHERE id = ? AND state = 'pending'`,
				by.User.ID, by.Entry.Actor, store.Time(now), note, store.Time(now), expires, id)
		} else {
			res, err = tx.ExecContext(ctx, `UPDATE access_grants SET state = 'rejected', decided_by_id = ?, decided_by = ?, decided_at = ?,
				decision_note = ? WHERE id = ? AND state = 'pending'`, by.User.ID, by.Entry.Actor, store.Time(now), note, id)
		}
		if err != nil {
			return fmt.Errorf("access: decide %d: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return apperr.New(apperr.Conflict, "request %d was decided meanwhile", id)
		}
		action := "access.reject"
		if approve {
			action = "access.approve"
			if err := markSync(ctx, tx, k, now); err != nil {
				return err
			}
		}
		return s.appendAudit(ctx, tx, by, action, grantTarget(id, u), map[string]any{
			"environment": g.Environment, "role": g.Role, "kind": g.Kind, "minutes": g.Minutes, "note": note})
	})
	if err != nil {
		return Grant{}, err
	}
	if approve {
		if err := s.sync(ctx, k); err != nil {
			g, _ := s.Get(ctx, id)
			return g, apperr.Wrap(apperr.Conflict, err, "approved, but Identity Center has not been changed yet (retried every minute): %s", apperr.MessageOf(err))
		}
	}
	return s.Get(ctx, id)
}

// Revoke ends active grant id now (and withdraws a pending one). The IAM
// membership goes unless another active grant holds it.
func (s *Service) Revoke(ctx context.Context, by Actor, id int64, reason string) (Grant, error) {
	g, err := s.Get(ctx, id)
	if err != nil {
		return Grant{}, err
	}
	if g.State != Active && g.State != Pending {
		return Grant{}, apperr.New(apperr.Conflict, "grant %d is %s already", id, g.State)
	}
	if err := s.end(ctx, by, []Grant{g}, Revoked, strings.TrimSpace(reason)); err != nil {
		return Grant{}, err
	}
	return s.Get(ctx, id)
}

// end moves grants to state (revoked or expired) in one transaction,
// audits each, then syncs the memberships they held.
func (s *Service) end(ctx context.Context, by Actor, gs []Grant, state, reason string) error {
	if len(gs) == 0 {
		return nil
	}
	now := s.now()
	keys := map[key]bool{}
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		for _, g := range gs {
			res, err := tx.ExecContext(ctx, `UPDATE access_grants SET state = ?, ended_at = ?, ended_by = ?, end_reason = ?
				WHERE id = ? AND state IN ('active', 'pending')`, state, store.Time(now), by.Entry.Actor, reason, g.ID)
			if err != nil {
				return fmt.Errorf("access: end grant %d: %w", g.ID, err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				continue
			}
			k := key{g.UserID, g.Environment, g.Role}
			keys[k] = true
			if err := markSync(ctx, tx, k, now); err != nil {
				return err
			}
			action := "access.revoke"
			if state == Expired {
				action = "access.expire"
			}
			if err := s.appendAudit(ctx, tx, by, action, fmt.Sprintf("access-grant:%d %s", g.ID, g.UserEmail), map[string]any{
				"environment": g.Environment, "role": g.Role, "kind": g.Kind, "reason": reason, "was": g.State}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	var failed []string
	for k := range keys {
		if err := s.sync(ctx, k); err != nil {
			failed = append(failed, apperr.MessageOf(err))
		}
	}
	if len(failed) > 0 {
		return apperr.New(apperr.Conflict, "recorded, but Identity Center still has the access (retried every minute): %s", strings.Join(failed, "; "))
	}
	return nil
}

// RevokeAll ends every grant userID holds or awaits, at once.
func (s *Service) RevokeAll(ctx context.Context, by Actor, userID int64, reason string) error {
	gs, err := s.List(ctx, Filter{UserID: userID, States: []string{Active, Pending}, Limit: 10000})
	if err != nil {
		return err
	}
	return s.end(ctx, by, gs, Revoked, reason)
}

// OnStaffDisabled is the hook the staff service calls after disabling an
// account (staff.Service.OnDisabled): it revokes all the account's AWS
// access at once. What IAM could not carry out is retried by the job.
func (s *Service) OnStaffDisabled(ctx context.Context, by audit.Entry, u staff.User) {
	if err := s.RevokeAll(ctx, Actor{Entry: by}, u.ID, "staff account disabled"); err != nil {
		s.log.Warn("access: revoke on disable", "user", u.ID, "err", err)
	}
}

// ExpireDue ends elevations whose time is up, revokes access held by
// disabled accounts, and retries pending IAM syncs. It is the body of the
// "access.expire" job; it returns how many grants it ended.
func (s *Service) ExpireDue(ctx context.Context) (int, error) {
	now := store.Time(s.now())
	due, err := s.List(ctx, Filter{States: []string{Active}, ExpiredBy: now, Limit: 10000})
	if err != nil {
		return 0, err
	}
	if err := s.end(ctx, System, due, Expired, "elevation ended"); err != nil {
		s.log.Warn("access: expire", "err", err)
	}
	disabled, err := s.List(ctx, Filter{States: []string{Active, Pending}, DisabledOnly: true, Limit: 10000})
	if err != nil {
		return 0, err
	}
	if err := s.end(ctx, System, disabled, Revoked, "staff account disabled"); err != nil {
		s.log.Warn("access: revoke disabled", "err", err)
	}
	if _, err := s.SyncPending(ctx); err != nil {
		return 0, err
	}
	return len(due) + len(disabled), nil
}

// Filter selects grants.
type Filter struct {
	UserID      int64
	Environment string
	Role        string
	Kind        string
	States      []string
	// ExpiredBy selects grants with an expiry at or before this store.Time.
	ExpiredBy    string
	DisabledOnly bool
	// BeforeID pages: grants with a smaller id.
	BeforeID int64
	Limit    int
}

const grantColumns = `g.id, g.user_id, u.email, g.environment, g.role, g.kind, g.state, g.reason, g.minutes, g.requested_by_id, g.requested_by,
	g.requested_at, g.decided_by_id, g.decided_by, g.decided_at, g.decision_note, g.active_from, g.expires_at, g.ended_at, g.ended_by, g.end_reason`

func scanGrant(sc interface{ Scan(...any) error }) (Grant, error) {
	var g Grant
	var req, dec, from, exp, ended string
	err := sc.Scan(&g.ID, &g.UserID, &g.UserEmail, &g.Environment, &g.Role, &g.Kind, &g.State, &g.Reason, &g.Minutes, &g.RequestedByID, &g.RequestedBy,
		&req, &g.DecidedByID, &g.DecidedBy, &dec, &g.DecisionNote, &from, &exp, &ended, &g.EndedBy, &g.EndReason)
	g.RequestedAt, _ = store.ParseTime(req)
	g.DecidedAt, _ = store.ParseTime(dec)
	g.ActiveFrom, _ = store.ParseTime(from)
	g.ExpiresAt, _ = store.ParseTime(exp)
	g.EndedAt, _ = store.ParseTime(ended)
	return g, err
}

// Get returns grant id.
func (s *Service) Get(ctx context.Context, id int64) (Grant, error) {
	g, err := scanGrant(s.db.QueryRowContext(ctx, `SELECT `+grantColumns+` FROM access_grants g JOIN users u ON u.id = g.user_id WHERE g.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Grant{}, apperr.Wrap(apperr.NotFound, store.ErrNotFound, "no access grant %d", id)
	}
	return g, err
}

// List returns grants newest first.
func (s *Service) List(ctx context.Context, f Filter) ([]Grant, error) {
	var where []string
	var args []any
	if f.UserID != 0 {
		where, args = append(where, "g.user_id = ?"), append(args, f.UserID)
	}
	if f.Environment != "" {
		where, args = append(where, "g.environment = ?"), append(args, f.Environment)
	}
	if f.Role != "" {
		where, args = append(where, "g.role = ?"), append(args, f.Role)
	}
	if f.Kind != "" {
		where, args = append(where, "g.kind = ?"), append(args, f.Kind)
	}
	if len(f.States) > 0 {
		where = append(where, "g.state IN (?"+strings.Repeat(", ?", len(f.States)-1)+")")
		for _, st := range f.States {
			args = append(args, st)
		}
	}
	if f.ExpiredBy != "" {
		where, args = append(where, "g.expires_at != '' AND g.expires_at <= ?"), append(args, f.ExpiredBy)
	}
	if f.DisabledOnly {
		where = append(where, "u.disabled = 1")
	}
	if f.BeforeID > 0 {
		where, args = append(where, "g.id < ?"), append(args, f.BeforeID)
	}
	if f.Limit <= 0 {
		f.Limit = 50
	}
	q := `SELECT ` + grantColumns + ` FROM access_grants g JOIN users u ON u.id = g.user_id`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	rows, err := s.db.QueryContext(ctx, q+" ORDER BY g.id DESC LIMIT ?", append(args, f.Limit)...)
	if err != nil {
		return nil, fmt.Errorf("access: list grants: %w", err)
	}
	defer rows.Close()
	var out []Grant
	for rows.Next() {
		g, err := scanGrant(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, rows.Err()
}
