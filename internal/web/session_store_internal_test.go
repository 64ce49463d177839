package web

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"

	"portal/internal/peers/peertest"
	"portal/internal/store"
)

// countingStore counts the writes reaching the real session store.
type countingStore struct {
	store.SessionStore
	commits atomic.Int64
	expiry  atomic.Int64 // of the last write, Unix seconds
}

func (c *countingStore) Commit(token string, b []byte, expiry time.Time) error {
	c.commits.Add(1)
	c.expiry.Store(expiry.Unix())
	return c.SessionStore.Commit(token, b, expiry)
}

// TestIdleSessionsWriteOnlyWhatChanged: a request that changes nothing in
// its session does not write it back until its last write is a minute
// old; a change is written at once, every write expires at the idle
// timeout, and a session ended is gone at once. On the database of
// PORTAL_TEST_STORE.
func TestIdleSessionsWriteOnlyWhatChanged(t *testing.T) {
	db := peertest.StoreForTest(t)
	inner := db.SessionStore(time.Hour)
	t.Cleanup(inner.StopCleanup)
	counted := &countingStore{SessionStore: inner}
	now := time.Now()
	sm := scs.New()
	sm.HashTokenInStore = true
	sm.Store = &idleSessions{SessionStore: counted, idle: 2 * time.Hour, now: func() time.Time { return now }}
	mux := http.NewServeMux()
	mux.HandleFunc("/put", func(w http.ResponseWriter, r *http.Request) { sm.Put(r.Context(), "v", r.URL.Query().Get("v")) })
	mux.HandleFunc("/get", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(sm.GetString(r.Context(), "v"))) })
	mux.HandleFunc("/end", func(w http.ResponseWriter, r *http.Request) {
		if err := sm.Destroy(r.Context()); err != nil {
			t.Error(err)
		}
	})
	h := sm.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		touchSession(sm, r.Context(), now)
		mux.ServeHTTP(w, r)
	}))
	b := &browser{sm: sm, h: h}
	do := b.do
	writes := func(want int64, why string) {
		t.Helper()
		if got := counted.commits.Load(); got != want {
			t.Errorf("%s: %d writes of the session so far, want %d", why, got, want)
		}
	}

	do("/put?v=a")
	writes(1, "a new session")
	if got, want := time.Unix(counted.expiry.Load(), 0), now.Add(2*time.Hour); got.After(want) {
		t.Errorf("a new session expires at %s, want at most the idle timeout from now, %s", got, want)
	}
	// The first request after it marks when it was written.
	do("/get")
	writes(2, "the first read")
	for i := range 5 {
		now = now.Add(10 * time.Second)
		if got := do("/get"); got != "a" {
			t.Fatalf("read %d: got %q, want a", i, got)
		}
	}
	writes(2, "five reads within the minute")
	do("/put?v=b")
	writes(3, "a change")
	if got := do("/get"); got != "b" {
		t.Errorf("after the change: got %q, want b", got)
	}
	writes(3, "a read after the change")
	now = now.Add(idleBump + time.Second)
	do("/get")
	writes(4, "a read a minute after the last write")
	if got, want := counted.expiry.Load(), now.Add(2*time.Hour).Unix(); got != want {
		t.Errorf("the session's idle expiry moved to %s, want %s", time.Unix(got, 0), time.Unix(want, 0))
	}
	do("/get")
	writes(4, "the read after it")

	// A request that only reads does not write back what it loaded over
	// a change another request (on another replica) made meanwhile.
	loaded, release := make(chan struct{}), make(chan struct{})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(sm.GetString(r.Context(), "v")))
		close(loaded)
		<-release
	})
	done := make(chan string)
	go func() {
		req := httptest.NewRequest(http.MethodGet, "/slow", nil)
		req.AddCookie(b.cookie)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		done <- rec.Body.String()
	}()
	<-loaded
	do("/put?v=c")
	close(release)
	if got := <-done; got != "b" {
		t.Errorf("the slow read: got %q, want b", got)
	}
	if got := do("/get"); got != "c" {
		t.Errorf("after a change made while a read was under way: got %q, want c", got)
	}

	do("/end")
	if got := do("/get"); got != "" {
		t.Errorf("after the session ended: got %q, want nothing", got)
	}
}

// TestIdleSessionEnds: a session nobody uses for the idle timeout is gone
// from the database, although scs itself keeps no idle timeout.
func TestIdleSessionEnds(t *testing.T) {
	db := peertest.StoreForTest(t)
	inner := db.SessionStore(time.Hour)
	t.Cleanup(inner.StopCleanup)
	sm := scs.New()
	sm.HashTokenInStore = true
	sm.Store = &idleSessions{SessionStore: inner, idle: 2 * time.Second, now: time.Now}
	h := sm.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		touchSession(sm, r.Context(), time.Now())
		if v := r.URL.Query().Get("v"); v != "" {
			sm.Put(r.Context(), "v", v)
		}
		w.Write([]byte(sm.GetString(r.Context(), "v")))
	}))
	b := &browser{sm: sm, h: h}
	do := b.do
	do("/?v=a")
	if got := do("/"); got != "a" {
		t.Fatalf("at once: got %q, want a", got)
	}
	time.Sleep(3 * time.Second)
	if got := do("/"); got != "" {
		t.Errorf("after the idle timeout: got %q, want the session gone", got)
	}
}

// browser is a client of h keeping sm's session cookie, as a browser does.
type browser struct {
	sm     *scs.SessionManager
	h      http.Handler
	cookie *http.Cookie
}

// do requests path and answers the page's body.
func (b *browser) do(path string) string {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if b.cookie != nil {
		req.AddCookie(b.cookie)
	}
	rec := httptest.NewRecorder()
	b.h.ServeHTTP(rec, req)
	for _, c := range rec.Result().Cookies() {
		if c.Name == b.sm.Cookie.Name && c.Value != "" {
			b.cookie = c
		}
	}
	return rec.Body.String()
}
