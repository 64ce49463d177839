package web

import (
	"context"
	"reflect"
	"time"

	"github.com/alexedwards/scs/v2"

	"portal/internal/store"
)

// quietSessions wraps the session store so that a request which changed
// nothing in its session does not write it back. With an idle timeout,
// scs writes every session back on every request, only to move its
// expiry a few seconds on: a database write (and, on PostgreSQL, a
// commit waiting for the write-ahead log) per page view. Here a session
// whose values are as they were loaded is written again only once its
// last write is idleBump old, so its idle expiry in the database trails
// the last request by at most idleBump: a session idle for the idle
// timeout always ends, and one may end up to idleBump sooner, never
// later. Nothing is kept between requests: each one reads its session
// from the database, and a session ended (signed out, revoked) is gone
// at once. Values that changed are written at once, as before.
type quietSessions struct {
	store.SessionStore
	codec scs.Codec
	now   func() time.Time
}

// idleBump is how stale a session's idle expiry may grow before a
// request that changed nothing writes it again.
const idleBump = time.Minute

// sessWrittenAt is the session value holding when the session was last
// written (Unix seconds), kept by quietSessions.
const sessWrittenAt = "portal.written_at"

// sessionLoad is what quietSessions remembers of the session a request
// loaded, carried in the request's context (see withSessionLoad).
type sessionLoad struct {
	token  string
	values map[string]any // as loaded, without sessWrittenAt
	at     int64          // sessWrittenAt as loaded
}

type sessionLoadKey struct{}

// withSessionLoad gives the request's context a place for the session it
// loads, so the store can tell at commit whether anything changed.
func withSessionLoad(ctx context.Context) context.Context {
	return context.WithValue(ctx, sessionLoadKey{}, &sessionLoad{})
}

func (q *quietSessions) FindCtx(ctx context.Context, token string) ([]byte, bool, error) {
	b, found, err := q.SessionStore.Find(token)
	if err != nil || !found {
		return b, found, err
	}
	if l, ok := ctx.Value(sessionLoadKey{}).(*sessionLoad); ok {
		if _, values, err := q.codec.Decode(b); err == nil {
			l.token, l.values, l.at = token, values, takeWrittenAt(values)
		}
	}
	return b, found, nil
}

func (q *quietSessions) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	deadline, values, err := q.codec.Decode(b)
	if err != nil {
		return err
	}
	takeWrittenAt(values)
	now := q.now()
	if l, ok := ctx.Value(sessionLoadKey{}).(*sessionLoad); ok && l.token == token && l.values != nil &&
		now.Sub(time.Unix(l.at, 0)) < idleBump && reflect.DeepEqual(values, l.values) {
		return nil
	}
	values[sessWrittenAt] = now.Unix()
	if b, err = q.codec.Encode(deadline, values); err != nil {
		return err
	}
	return q.SessionStore.Commit(token, b, expiry)
}

func (q *quietSessions) DeleteCtx(_ context.Context, token string) error {
	return q.SessionStore.Delete(token)
}

// takeWrittenAt removes sessWrittenAt from values and returns it (0 when
// absent).
func takeWrittenAt(values map[string]any) int64 {
	at, _ := values[sessWrittenAt].(int64)
	delete(values, sessWrittenAt)
	return at
}
