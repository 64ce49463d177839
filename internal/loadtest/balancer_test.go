package loadtest

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
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
