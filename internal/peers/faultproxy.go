package peers

import (
	"math/rand"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// FaultProxy is a loopback reverse proxy in front of an AWS endpoint (moto)
// that answers a share of calls itself with a throttling error or a 5xx,
// the way AWS does under load, so tests can show that retries work.
type FaultProxy struct {
	srv      *http.Server
	url      string
	share    float64
	mu       sync.Mutex
	rng      *rand.Rand
	total    atomic.Int64
	injected atomic.Int64
	// Latency is added to every forwarded call, to stand for the network
	// round trip to a real AWS endpoint (moto answers in microseconds).
	Latency time.Duration
}

// StartFaultProxy forwards to target and fails share (0..1) of requests,
// chosen by a generator seeded with seed so runs are repeatable.
func StartFaultProxy(tb testing.TB, target string, share float64, seed int64) *FaultProxy {
	tb.Helper()
	u, err := url.Parse(target)
	if err != nil {
		tb.Fatalf("peers: fault proxy target: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("peers: fault proxy: %v", err)
	}
	p := &FaultProxy{url: "http://" + ln.Addr().String(), share: share, rng: rand.New(rand.NewSource(seed))}
	rp := httputil.NewSingleHostReverseProxy(u)
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.total.Add(1)
		p.mu.Lock()
		fail, kind := p.rng.Float64() < p.share, p.rng.Intn(2)
		p.mu.Unlock()
		if !fail {
			if p.Latency > 0 {
				time.Sleep(p.Latency)
			}
			rp.ServeHTTP(w, r)
			return
		}
		p.injected.Add(1)
		if kind == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		throttle(w, r)
	})}
	go p.srv.Serve(ln)
	tb.Cleanup(func() { p.srv.Close() })
	return p
}

// throttle answers with a throttling error shaped for the request's
// protocol: JSON services read the error type from a header, query and
// REST-XML services from an XML body.
func throttle(w http.ResponseWriter, r *http.Request) {
	ct := r.Header.Get("Content-Type")
	if strings.Contains(ct, "json") || strings.Contains(ct, "cbor") {
		w.Header().Set("X-Amzn-ErrorType", "ThrottlingException")
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"__type":"ThrottlingException","message":"Rate exceeded"}`))
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(http.StatusBadRequest)
	_, _ = w.Write([]byte(`<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>fault-proxy</RequestId></ErrorResponse>`))
}

// URL is the proxy's address, to use as the AWS endpoint.
func (p *FaultProxy) URL() string { return p.url }

// Counts returns how many requests the proxy saw and how many it failed.
func (p *FaultProxy) Counts() (total, injected int64) { return p.total.Load(), p.injected.Load() }
