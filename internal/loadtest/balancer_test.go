package loadtest

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestBalancerSpreadsAndPassesOverAStoppedReplica: requests alternate
// between two replicas; once one stops (its port refuses connections),
// every request, a form post included, is answered by the other, and the
// replicas see the client's Host and address.
func TestBalancerSpreadsAndPassesOverAStoppedReplica(t *testing.T) {
	replica := func(name string) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			io.WriteString(w, name+" "+r.Host+" "+r.Header.Get("X-Forwarded-For")+" "+string(body))
		}))
	}
	a, b := replica("a"), replica("b")
	// The replicas close each connection after answering, so a stopped
	// replica is one whose port refuses connections. With keep-alive, a
	// POST sent on a pooled connection in the instant the replica closes
	// it gets 502 (as behind nginx); that case, a replica dropping a
	// request it took, is TestBalancerResendsOnlySafeRequestsAReplicaDropped.
	a.Config.SetKeepAlivesEnabled(false)
	b.Config.SetKeepAlivesEnabled(false)
	defer a.Close()
	lb, err := NewBalancer([]string{a.URL, b.URL})
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(lb)
	defer front.Close()
	get := func(method, body string) string {
		t.Helper()
		req, _ := http.NewRequest(method, front.URL+"/x", strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", method, resp.StatusCode, out)
		}
		return string(out)
	}
	seen := map[string]int{}
	for range 4 {
		seen[strings.Fields(get("GET", ""))[0]]++
	}
	if seen["a"] != 2 || seen["b"] != 2 {
		t.Fatalf("want two requests each, got %v", seen)
	}
	host, _, _ := net.SplitHostPort(strings.TrimPrefix(front.URL, "http://"))
	if got := get("GET", ""); !strings.Contains(got, strings.TrimPrefix(front.URL, "http://")) || !strings.Contains(got, host) {
		t.Fatalf("the replica should see the front's Host and the client's address: %q", got)
	}
	b.Close()
	for range 4 {
		if got := get("POST", "name=x"); !strings.HasPrefix(got, "a ") || !strings.HasSuffix(got, " name=x") {
			t.Fatalf("with b stopped, want a with the body: %q", got)
		}
	}
	a.Close()
	resp, err := http.Get(front.URL + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("with no replica up: %d, want 502", resp.StatusCode)
	}
}

func TestBalancerRefusesABadReplicaURL(t *testing.T) {
	for _, in := range [][]string{nil, {"127.0.0.1:8081"}, {"ftp://x"}} {
		if _, err := NewBalancer(in); err == nil {
			t.Errorf("%q: want an error", in)
		}
	}
}

// TestBalancerResendsOnlySafeRequestsAReplicaDropped: a replica that takes
// a request and drops the connection without answering (as one SIGKILLed
// mid-request does) is marked down; a GET is sent again to the other
// replica and answered, a POST is not sent twice and gets 502; the
// balancer counts both as cut, the GET as retried.
func TestBalancerResendsOnlySafeRequestsAReplicaDropped(t *testing.T) {
	var posts atomic.Int64
	dropping := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			posts.Add(1)
		}
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	defer dropping.Close()
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			posts.Add(1)
		}
		io.WriteString(w, "ok")
	}))
	defer ok.Close()
	lb, err := NewBalancer([]string{dropping.URL, ok.URL})
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(lb)
	defer front.Close()

	// The first request goes to the dropping replica (round robin starts
	// there).
	resp, err := http.Get(front.URL + "/page")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "ok" {
		t.Fatalf("GET after the first replica dropped it: %d %q, want 200 from the other", resp.StatusCode, body)
	}
	// The dropping replica is now passed over: the next requests, POSTs
	// included, go to the other one.
	for range 2 {
		resp, err := http.Post(front.URL+"/form", "text/plain", strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST while the dropping replica is down: %d, want 200", resp.StatusCode)
		}
	}
	// Once its time down is over it is tried again: the POST it drops is
	// not sent twice.
	time.Sleep(balancerRetryAfter + 100*time.Millisecond)
	posts.Store(0)
	var bad int
	for range 2 {
		resp, err := http.Post(front.URL+"/form", "text/plain", strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusBadGateway {
			bad++
		}
	}
	if bad != 1 || posts.Load() != 2 {
		t.Fatalf("two POSTs with the dropping replica back in turn: %d answered 502, %d reached a replica; want 1 and 2 (each sent once)", bad, posts.Load())
	}
	st := lb.Stats()
	if st[0].Cut != 2 || st[0].Retried != 1 || st[1].Cut != 0 || st[0].Answered != 0 {
		t.Fatalf("stats %+v, want replica 0 to have cut 2 (1 retried) and answered none, replica 1 none cut", st)
	}
	cuts := lb.Cuts()
	if len(cuts) != 2 || cuts[0].Method != http.MethodGet || !cuts[0].Retried || cuts[1].Method != http.MethodPost || cuts[1].Retried {
		t.Fatalf("cuts %+v, want the GET (retried) then the POST (not)", cuts)
	}
}

// TestBalancerSetReplica: a replica restarted on another port is reached
// at its new address.
func TestBalancerSetReplica(t *testing.T) {
	a := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "a") }))
	defer a.Close()
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	lb, err := NewBalancer([]string{gone.URL})
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(lb)
	defer front.Close()
	if resp, err := http.Get(front.URL); err != nil || resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("with the replica gone: %v %v, want 502", resp, err)
	}
	if err := lb.SetReplica(0, a.URL); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(front.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "a" {
		t.Fatalf("after SetReplica: %q, want a", body)
	}
	if lb.SetReplica(1, a.URL) == nil || lb.SetReplica(0, "nope") == nil {
		t.Fatal("SetReplica should refuse a replica that does not exist and a bad URL")
	}
}
