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
}

func (c *countingStore) Commit(token string, b []byte, expiry time.Time) error {
	c.commits.Add(1)
	return c.SessionStore.Commit(token, b, expiry)
}

// TestQuietSessionsWriteOnlyWhatChanged: with an idle timeout, a request
// that changes nothing in its session does not write it back until its
// last write is a minute old; a change is written at once, and a session
// ended is gone at once. On the database of PORTAL_TEST_STORE.
func TestQuietSessionsWriteOnlyWhatChanged(t *testing.T) {
	db := peertest.StoreForTest(t)
	inner := db.SessionStore(time.Hour)
	t.Cleanup(inner.StopCleanup)
	counted := &countingStore{SessionStore: inner}
	now := time.Now()
	sm := scs.New()
	sm.IdleTimeout = 2 * time.Hour
	sm.HashTokenInStore = true
	sm.Store = &quietSessions{SessionStore: counted, codec: sm.Codec, now: func() time.Time { return now }}
	mux := http.NewServeMux()
	mux.HandleFunc("/put", func(w http.ResponseWriter, r *http.Request) { sm.Put(r.Context(), "v", r.URL.Query().Get("v")) })
	mux.HandleFunc("/get", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(sm.GetString(r.Context(), "v"))) })
	mux.HandleFunc("/end", func(w http.ResponseWriter, r *http.Request) {
		if err := sm.Destroy(r.Context()); err != nil {
			t.Error(err)
		}
	})
	h := sm.LoadAndSave(mux)
	var cookie *http.Cookie
	do := func(path string) string {
		t.Helper()
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req = req.WithContext(withSessionLoad(req.Context()))
		if cookie != nil {
			req.AddCookie(cookie)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		for _, c := range rec.Result().Cookies() {
			if c.Name == sm.Cookie.Name && c.Value != "" {
				cookie = c
			}
		}
		return rec.Body.String()
	}
	writes := func(want int64, why string) {
		t.Helper()
		if got := counted.commits.Load(); got != want {
			t.Errorf("%s: %d writes of the session so far, want %d", why, got, want)
		}
	}

	do("/put?v=a")
	writes(1, "a new session")
	for i := range 5 {
		now = now.Add(10 * time.Second)
		if got := do("/get"); got != "a" {
			t.Fatalf("read %d: got %q, want a", i, got)
		}
	}
	writes(1, "five reads within the minute")
	do("/put?v=b")
	writes(2, "a change")
	if got := do("/get"); got != "b" {
		t.Errorf("after the change: got %q, want b", got)
	}
	writes(2, "a read after the change")
	now = now.Add(idleBump + time.Second)
	do("/get")
	writes(3, "a read a minute after the last write")
	do("/get")
	writes(3, "the read after it")

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
		req = req.WithContext(withSessionLoad(req.Context()))
		req.AddCookie(cookie)
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
