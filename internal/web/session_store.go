package web

import (
	"context"
	"time"

	"github.com/alexedwards/scs/v2"

	"portal/internal/store"
)

// Idle sessions, without a write per page view.
//
// scs's own idle timeout writes every session back on every request, only
// to move its expiry a few seconds on: a database write (and, on
// PostgreSQL, a commit waiting for the write-ahead log) per page view.
// Instead, the session manager has no idle timeout of its own (it writes
// a session only when a request changes it), idleSessions caps the expiry
// of every write at the idle timeout, and touchSession marks the session
// changed when its last write is idleBump old, so a busy session is
// written about once a minute. The database's expiry thus trails the
// last request by at most idleBump: a session idle for the idle timeout
// always ends, and may end up to idleBump sooner, never later. Nothing is
// kept between requests: each one reads its session from the database,
// and a session ended (signed out, revoked) is gone at once.

// idleBump is how stale a session's idle expiry may grow before a
// request writes it again.
const idleBump = time.Minute

// sessWrittenAt is the session value holding when a request last marked
// the session for writing (Unix seconds).
const sessWrittenAt = "portal.written_at"

// idleSessions caps the expiry of every session written at idle from
// now.
type idleSessions struct {
	store.SessionStore
	idle time.Duration
	now  func() time.Time
}

func (s *idleSessions) Commit(token string, b []byte, expiry time.Time) error {
	if ie := s.now().Add(s.idle).UTC(); ie.Before(expiry) {
		expiry = ie
	}
	return s.SessionStore.Commit(token, b, expiry)
}

// touchSession marks a stored session for writing when it was last
// marked idleBump ago or more, so its idle expiry moves on. A new
// session (no token yet) is left alone: a visitor who is not signed in
// stores nothing.
func touchSession(sm *scs.SessionManager, ctx context.Context, now time.Time) {
	if sm.Token(ctx) == "" {
		return
	}
	if at := sm.GetInt64(ctx, sessWrittenAt); now.Sub(time.Unix(at, 0)) >= idleBump {
		sm.Put(ctx, sessWrittenAt, now.Unix())
	}
}
