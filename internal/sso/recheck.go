package sso

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"portal/internal/apperr"
	"portal/internal/audit"
	"portal/internal/staff"
	"portal/internal/store"
)

func auditEntry(action, target string, details map[string]any) audit.Entry {
	return audit.Entry{Actor: Actor, Action: action, Target: target, Details: details}
}

// Gate says whether account u may go on (nil) or must stop (a *Refusal
// saying why): a single sign-on account whose link is suspended, belongs
// to another provider, or has not been confirmed by the provider within
// StaleAfter. Local accounts always pass. The web layer calls it on every
// request of a signed-in person and for every API token.
func (s *Service) Gate(ctx context.Context, u staff.User) error {
	if !u.SingleSignOn {
		return nil
	}
	l, err := s.LinkOf(ctx, u.ID)
	if err != nil {
		return err
	}
	name := s.cfg.Name
	switch {
	case l.Issuer != s.cfg.Issuer:
		return refusal(OtherProvider, http.StatusUnauthorized, "Sign in again", "Your account was made through another identity provider than the one the portal now uses ("+name+"). Ask a portal administrator.")
	case l.State == Suspended && l.ReasonCode == NoMappedRole:
		r := refusal(NoMappedRole, http.StatusUnauthorized, "Your access to the portal ended", "Your groups at "+name+" no longer give you a role in the portal.")
		r.Detail = l.Reason
		return r
	case l.State == Suspended:
		r := refusal(ProviderRefused, http.StatusUnauthorized, "Your access to the portal ended",
			name+" no longer vouches for your account: it was disabled or removed there, or your sign-in there ended. Sign in again through "+name+" if you still should have access.")
		r.Detail = l.Reason
		return r
	case s.o.Now().Sub(l.VerifiedAt) > s.cfg.StaleAfter():
		r := refusal(Unconfirmed, http.StatusUnauthorized, "Sign in again",
			fmt.Sprintf("The portal could not confirm your access with %s for more than %s. Sign in again through %s.", name, s.cfg.StaleAfter(), name))
		r.Detail = l.CheckError
		return r
	}
	return nil
}

// RecheckBatch bounds how many accounts one Recheck run asks about.
const RecheckBatch = 500

// due is an account whose provider must be asked again.
type due struct {
	userID                   int64
	subject, email           string
	refresh, access, expires string
}

// Recheck asks the provider about every account not checked within
// Config.Recheck (at most RecheckBatch, the longest-waiting first) and
// returns how many it asked about. A refusal suspends the account; an
// answer brings its roles in line with its groups (groups that map to no
// role suspend it); no answer (the provider is down) leaves it as it is,
// until StaleAfter ends its access.
func (s *Service) Recheck(ctx context.Context) (int, error) {
	cutoff := store.Time(s.o.Now().Add(-s.cfg.Recheck))
	rows, err := s.o.DB.QueryContext(ctx, `SELECT i.user_id, i.subject, i.email, i.refresh_token, i.access_token, COALESCE(i.access_expires_at, '')
		FROM sso_identities i JOIN users u ON u.id = i.user_id
		WHERE i.issuer = ? AND i.state = 'active' AND u.disabled = 0 AND i.checked_at <= ?
		ORDER BY i.checked_at LIMIT ?`, s.cfg.Issuer, cutoff, RecheckBatch)
	if err != nil {
		return 0, fmt.Errorf("sso: recheck: %w", err)
	}
	var list []due
	for rows.Next() {
		var d due
		if err := rows.Scan(&d.userID, &d.subject, &d.email, &d.refresh, &d.access, &d.expires); err != nil {
			rows.Close()
			return 0, fmt.Errorf("sso: recheck: %w", err)
		}
		list = append(list, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("sso: recheck: %w", err)
	}
	var errs []error
	for _, d := range list {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if err := s.recheckOne(ctx, d); err != nil {
			errs = append(errs, err)
		}
	}
	return len(list), errors.Join(errs...)
}

// recheckOne asks the provider about one account.
func (s *Service) recheckOne(ctx context.Context, d due) error {
	uid := strconv.FormatInt(d.userID, 10)
	disc, err := s.discover(ctx)
	if err != nil {
		return s.unanswered(ctx, d.userID, "could not reach "+s.cfg.Name+": "+err.Error())
	}
	var id identity
	switch {
	case d.refresh != "":
		rt, err := s.o.Sealer.Open(d.refresh, "sso-refresh:"+uid)
		if err != nil {
			return s.unanswered(ctx, d.userID, "the stored refresh token does not open with the portal's secret key; the person must sign in again")
		}
		tok, err := disc.oauth.TokenSource(s.ctx(ctx), &oauth2.Token{RefreshToken: rt}).Token()
		var re *oauth2.RetrieveError
		switch {
		case errors.As(err, &re) && re.ErrorCode == "invalid_grant":
			return s.suspend(ctx, d.userID, ProviderRefused, s.cfg.Name+" refused the refresh token ("+clip(strings.TrimSpace(re.ErrorCode+" "+re.ErrorDescription), 200)+")")
		case errors.As(err, &re):
			s.o.Logger.Error("single sign-on: the provider refused the portal's client", slog.String("error", re.ErrorCode), slog.String("description", re.ErrorDescription))
			return s.unanswered(ctx, d.userID, s.cfg.Name+" refused the portal's token request: "+clip(strings.TrimSpace(re.ErrorCode+" "+re.ErrorDescription), 200))
		case err != nil:
			return s.unanswered(ctx, d.userID, "could not reach "+s.cfg.Name+": "+err.Error())
		}
		if id, err = s.identify(ctx, disc, tok, "", d.subject); err != nil {
			return s.recheckFailed(ctx, d.userID, err)
		}
	case d.access != "":
		exp, _ := store.ParseTime(d.expires)
		if d.expires == "" || !s.o.Now().Before(exp) {
			return s.unanswered(ctx, d.userID, s.cfg.Name+" gave no refresh token and the access token has expired: the person must sign in again")
		}
		at, err := s.o.Sealer.Open(d.access, "sso-access:"+uid)
		if err != nil {
			return s.unanswered(ctx, d.userID, "the stored access token does not open with the portal's secret key; the person must sign in again")
		}
		id = identity{subject: d.subject, claims: claims{}, token: &oauth2.Token{AccessToken: at, TokenType: "Bearer", Expiry: exp}}
		if err := s.fillFromUserinfo(ctx, disc, &id); err != nil {
			return s.recheckFailed(ctx, d.userID, err)
		}
		id.email, id.name = id.claims.str("email"), id.claims.str("name")
		id.groups, _ = id.claims.groups(s.cfg.GroupsClaim)
		// Keep the access token: it is what the next check uses.
	default:
		return s.unanswered(ctx, d.userID, s.cfg.Name+" gave neither a refresh token nor an access token: the person must sign in again")
	}

	roles := s.cfg.RoleMap.Roles(id.groups)
	if len(roles) == 0 {
		return s.suspend(ctx, d.userID, NoMappedRole, "groups at "+s.cfg.Name+" give no portal role: "+orNone(id.groups))
	}
	u, err := s.o.Staff.Get(ctx, d.userID)
	if err != nil {
		return err
	}
	name := id.name
	if name == "" {
		name = u.Name
	}
	// Roles follow the groups; the email changes only at a sign-in, where a
	// clash can be shown to the person.
	if _, _, err := s.o.Staff.SyncFederated(ctx, audit.Entry{Actor: Actor}, d.userID, u.Email, name, roles); err != nil {
		if apperr.KindOf(err) != apperr.Conflict {
			return err
		}
		s.o.Logger.Warn("single sign-on: roles not synced", slog.String("user", u.Email), slog.String("why", apperr.MessageOf(err)))
	}
	if id.email == "" {
		id.email = d.email
	}
	return s.recordSignIn(ctx, d.userID, id, true)
}

// recheckFailed sorts an error from reading the provider's answer: a
// refusal suspends, anything else is no answer.
func (s *Service) recheckFailed(ctx context.Context, userID int64, err error) error {
	var r *Refusal
	switch {
	case errors.Is(err, errRefused):
		return s.suspend(ctx, userID, ProviderRefused, s.cfg.Name+" refused the portal's access token")
	case errors.As(err, &r) && r.Reason == ProviderUnavailable:
		return s.unanswered(ctx, userID, "could not reach "+s.cfg.Name+": "+fmt.Sprint(r.Err))
	case errors.As(err, &r):
		return s.unanswered(ctx, userID, r.Message+" "+r.Detail)
	}
	return s.unanswered(ctx, userID, err.Error())
}

func (s *Service) suspend(ctx context.Context, userID int64, code Reason, why string) error {
	return s.o.DB.Tx(ctx, func(tx *sql.Tx) error { return s.suspendTx(ctx, tx, userID, code, why) })
}

// unanswered records a check that got no answer; the account keeps its
// state until StaleAfter ends its access.
func (s *Service) unanswered(ctx context.Context, userID int64, why string) error {
	s.o.Logger.Warn("single sign-on: provider did not answer a re-check", slog.Int64("user_id", userID), slog.String("why", why))
	_, err := s.o.DB.ExecContext(ctx, `UPDATE sso_identities SET checked_at = ?, check_error = ? WHERE user_id = ?`,
		store.Time(s.o.Now()), clip(why, 500), userID)
	if err != nil {
		return fmt.Errorf("sso: record re-check: %w", err)
	}
	return nil
}

// JobInterval is how often the re-check job should run for cfg: often
// enough that an account is asked about within a quarter of Recheck after
// it falls due, at most every 30 seconds, at least every second.
func JobInterval(cfg Config) time.Duration {
	return min(max(cfg.Recheck/4, time.Second), 30*time.Second)
}
