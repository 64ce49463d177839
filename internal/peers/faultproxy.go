package peers

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"math/rand"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// FaultProxy is a loopback reverse proxy in front of an AWS endpoint (moto)
// that answers a share of calls itself with a throttling error or a 5xx,
// the way AWS does under load, so tests and the soak can show that retries
// work. Its target can be swapped (a restarted moto) while it serves.
type FaultProxy struct {
	srv      *http.Server
	url      string
	share    float64
	mu       sync.Mutex
	rng      *rand.Rand
	target   atomic.Pointer[httputil.ReverseProxy]
	roots    *x509.CertPool
	errLog   atomic.Pointer[log.Logger]
	sessions sync.Map // access key id of an assumed-role session -> account id
	total    atomic.Int64
	injected atomic.Int64
	// Latency is added to every forwarded call, to stand for the network
	// round trip to a real AWS endpoint (moto answers in microseconds).
	Latency time.Duration
}

// NewFaultProxy listens on a free loopback port, forwards to target and
// fails share (0..1) of requests, chosen by a generator seeded with seed so
// runs are repeatable. An https target is trusted when roots (moto's CA,
// Moto.CA().Pool()) vouches for it. The proxy itself serves plain HTTP on
// loopback. Close stops it.
func NewFaultProxy(target string, roots *x509.CertPool, share float64, seed int64) (*FaultProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &FaultProxy{url: "http://" + ln.Addr().String(), share: share, rng: rand.New(rand.NewSource(seed)), roots: roots}
	p.SetErrorLog(io.Discard)
	if err := p.SetTarget(target); err != nil {
		ln.Close()
		return nil, err
	}
	p.srv = &http.Server{Handler: http.HandlerFunc(p.serve)}
	go p.srv.Serve(ln)
	return p, nil
}

// SetTarget points the proxy at another endpoint.
func (p *FaultProxy) SetTarget(target string) error {
	u, err := url.Parse(target)
	if err != nil {
		return err
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: p.roots}
	rp.Transport = tr
	rp.ModifyResponse = p.learnSessions
	rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		p.errLog.Load().Printf("%s %s: %v", r.Method, r.URL.Path, err)
		w.WriteHeader(http.StatusBadGateway)
	}
	p.target.Store(rp)
	return nil
}

// SetErrorLog sends the proxy's own errors (the target refusing
// connections while it restarts, answered 502) to w; by default they are
// dropped.
func (p *FaultProxy) SetErrorLog(w io.Writer) {
	p.errLog.Store(log.New(w, "fault proxy: ", log.LstdFlags))
}

// Close stops the proxy.
func (p *FaultProxy) Close() error { return p.srv.Close() }

func (p *FaultProxy) serve(w http.ResponseWriter, r *http.Request) {
	p.total.Add(1)
	p.mu.Lock()
	fail, kind := p.rng.Float64() < p.share, p.rng.Intn(2)
	p.mu.Unlock()
	if !fail {
		if p.Latency > 0 {
			time.Sleep(p.Latency)
		}
		if m := accessKey.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
			if acct, ok := p.sessions.Load(m[1]); ok {
				r.Header.Set("X-Moto-Account-Id", acct.(string))
			}
		}
		p.target.Load().ServeHTTP(w, r)
		return
	}
	p.injected.Add(1)
	if kind == 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	throttle(w, r)
}

// throttle answers with a throttling error shaped for the request's
// protocol: JSON services read the error type from a header, query and
// REST-XML services from an XML body, S3 and EC2 from their own XML
// shapes.
func throttle(w http.ResponseWriter, r *http.Request) {
	if strings.Contains(r.Header.Get("Authorization"), "/s3/aws4_request") {
		// S3 throttles with 503 SlowDown and an <Error> root (its
		// objects may have any Content-Type, JSON included).
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>fault-proxy</RequestId></Error>`))
		return
	}
	if strings.Contains(r.Header.Get("Authorization"), "/ec2/aws4_request") {
		// EC2's own query protocol wraps errors in <Response><Errors>.
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>fault-proxy</RequestID></Response>`))
		return
	}
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

var (
	accessKey    = regexp.MustCompile(`Credential=([A-Z0-9]{16,128})/`)
	stsKey       = regexp.MustCompile(`<AccessKeyId>([A-Z0-9]{16,128})</AccessKeyId>`)
	stsAccount   = regexp.MustCompile(`<Arn>arn:aws:sts::(\d{12}):assumed-role/`)
	stsScopeHint = "/sts/aws4_request"
)

// learnSessions remembers the account of every role session moto hands
// out (STS AssumeRole answers), and serve names that account on later
// calls signed with the session's key (moto's x-moto-account-id header).
// moto keeps sessions in memory only: a restarted moto would file the
// calls of sessions it no longer knows under its default account, where
// real AWS keeps a session valid until it expires. This stands in for
// that, and only for sessions moto itself issued.
func (p *FaultProxy) learnSessions(resp *http.Response) error {
	if !strings.Contains(resp.Request.Header.Get("Authorization"), stsScopeHint) || resp.StatusCode != http.StatusOK {
		return nil
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	k, a := stsKey.FindSubmatch(body), stsAccount.FindSubmatch(body)
	if k != nil && a != nil {
		p.sessions.Store(string(k[1]), string(a[1]))
	}
	return nil
}

// URL is the proxy's address, to use as the AWS endpoint.
func (p *FaultProxy) URL() string { return p.url }

// Counts returns how many requests the proxy saw and how many it failed.
func (p *FaultProxy) Counts() (total, injected int64) { return p.total.Load(), p.injected.Load() }
