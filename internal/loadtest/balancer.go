package loadtest

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Balancer spreads requests over several portal replicas, round robin, as
// an HTTP load balancer in front of them does (it behaves as nginx's
// upstream does by default):
//
//   - a replica that refuses the connection (stopped, killed, starting) is
//     passed over and the request goes to the next one, since nothing of
//     it reached the first;
//   - a replica that fails after taking a request (killed while it
//     answers) is marked down like one that refused, and the request is
//     sent once more, to another replica, when its method is safe (GET,
//     HEAD, OPTIONS: nginx's proxy_next_upstream "error"); any other
//     request may have had its effect, so it is not sent twice and the
//     client gets 502 naming the replica;
//   - a replica marked down is tried last for balancerRetryAfter, then in
//     turn again (nginx's max_fails=1 fail_timeout); a request that finds
//     it still down passes over it again. There is no health check
//     between requests.
//
// It counts what it did (Stats, Cuts), for the soak's checks. It serves
// the soak with several replicas and trying replicas on one machine.
type Balancer struct {
	next  atomic.Uint64
	proxy *httputil.ReverseProxy

	mu       sync.Mutex
	backends []*url.URL
	down     map[int]time.Time // backend index -> until when it is passed over
	stats    []BalancerStats
	cuts     []BalancerCut
}

// BalancerStats are one replica's counts.
type BalancerStats struct {
	Answered   int64 // requests it answered (any status)
	PassedOver int64 // requests it refused the connection for, sent to another
	Cut        int64 // requests it took and failed to answer (e.g. killed meanwhile)
	Retried    int64 // of those, safe ones sent again to another replica
}

// BalancerCut is a request a replica took and did not answer.
type BalancerCut struct {
	Replica      int
	At           time.Time
	Method, Path string
	Retried      bool // sent again to another replica (safe method)
	Err          string
}

// balancerCutMessage begins the balancer's 502 answers.
const balancerCutMessage = "no replica answered: "

// balancerRetryAfter is how long a replica that refused a connection is
// passed over before it is tried again.
const balancerRetryAfter = time.Second

// NewBalancer returns a balancer over the replicas at backends (base URLs).
func NewBalancer(backends []string) (*Balancer, error) {
	if len(backends) == 0 {
		return nil, errors.New("balancer: no replicas")
	}
	b := &Balancer{down: map[int]time.Time{}}
	for _, s := range backends {
		u, err := replicaURL(s)
		if err != nil {
			return nil, err
		}
		b.backends = append(b.backends, u)
	}
	b.stats = make([]BalancerStats, len(b.backends))
	b.proxy = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetXForwarded()
			r.Out.Host = r.In.Host // the replicas see the address people use
		},
		Transport: balancerTransport{b: b, rt: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     90 * time.Second,
		}},
		FlushInterval: -1, // server-sent events pass through as they come
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			http.Error(w, balancerCutMessage+err.Error(), http.StatusBadGateway)
		},
	}
	return b, nil
}

func replicaURL(s string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("balancer: replica %q: want a URL such as http://127.0.0.1:8081", s)
	}
	return u, nil
}

// SetReplica points backend i at a new address (a replica restarted on
// another port) and stops passing over it.
func (b *Balancer) SetReplica(i int, addr string) error {
	u, err := replicaURL(addr)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if i < 0 || i >= len(b.backends) {
		return fmt.Errorf("balancer: no replica %d", i)
	}
	b.backends[i] = u
	delete(b.down, i)
	return nil
}

// Stats returns each replica's counts so far.
func (b *Balancer) Stats() []BalancerStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]BalancerStats(nil), b.stats...)
}

// Cuts returns the requests replicas took and did not answer, oldest
// first.
func (b *Balancer) Cuts() []BalancerCut {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]BalancerCut(nil), b.cuts...)
}

// ServeHTTP forwards r to a replica.
func (b *Balancer) ServeHTTP(w http.ResponseWriter, r *http.Request) { b.proxy.ServeHTTP(w, r) }

// pick returns the order in which to try the replicas for one request:
// the next in turn first, replicas passed over last.
func (b *Balancer) pick() []int {
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(b.backends)
	start := int(b.next.Add(1)-1) % n
	var up, down []int
	for k := range n {
		i := (start + k) % n
		if until, ok := b.down[i]; ok && now.Before(until) {
			down = append(down, i)
		} else {
			up = append(up, i)
		}
	}
	return append(up, down...)
}

// backend is replica i's address.
func (b *Balancer) backend(i int) *url.URL {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.backends[i]
}

// answered records that replica i answered a request.
func (b *Balancer) answered(i int) {
	b.mu.Lock()
	delete(b.down, i)
	b.stats[i].Answered++
	b.mu.Unlock()
}

// failed records that replica i refused the connection (passed over) or
// took the request and failed (a cut), and marks it down.
func (b *Balancer) failed(i int, r *http.Request, err error, dial, retried bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.down[i] = time.Now().Add(balancerRetryAfter)
	if dial {
		b.stats[i].PassedOver++
		return
	}
	b.stats[i].Cut++
	if retried {
		b.stats[i].Retried++
	}
	b.cuts = append(b.cuts, BalancerCut{Replica: i, At: time.Now(), Method: r.Method, Path: r.URL.Path, Retried: retried, Err: err.Error()})
}

// safeMethod reports whether a request may be sent again after a replica
// took it: it asks for something and changes nothing (RFC 9110 4.2.1).
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

type balancerTransport struct {
	b  *Balancer
	rt http.RoundTripper
}

// balancerBodyMax is the largest request body kept to send again to the
// next replica when the first refuses the connection; a larger one goes
// to one replica only.
const balancerBodyMax = 8 << 20

func (t balancerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	retry := true
	if r.Body != nil && r.Body != http.NoBody {
		b, err := io.ReadAll(io.LimitReader(r.Body, balancerBodyMax+1))
		if err != nil {
			r.Body.Close()
			return nil, err
		}
		if len(b) > balancerBodyMax {
			r.Body = struct {
				io.Reader
				io.Closer
			}{io.MultiReader(bytes.NewReader(b), r.Body), r.Body}
			retry = false
		} else {
			r.Body.Close()
			body = b
		}
	}
	var last error
	resent := false
	for _, i := range t.b.pick() {
		if last != nil && !retry {
			break
		}
		u := t.b.backend(i)
		out := r.Clone(r.Context())
		out.URL.Scheme, out.URL.Host = u.Scheme, u.Host
		if body != nil {
			out.Body = io.NopCloser(bytes.NewReader(body))
			// Lets the transport send it again on a fresh connection
			// when a kept-alive one turns out dead before anything was
			// written (the replica behind it was killed).
			out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		}
		resp, err := t.rt.RoundTrip(out)
		if err == nil {
			t.b.answered(i)
			return resp, nil
		}
		last = err
		if r.Context().Err() != nil {
			return nil, err // the client went away: not the replica's failure
		}
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			t.b.failed(i, r, err, true, false)
			continue
		}
		// The replica had the request: send it again only when it is
		// safe, and only once.
		again := safeMethod(r.Method) && !resent
		t.b.failed(i, r, err, false, again)
		if !again {
			return nil, fmt.Errorf("replica %s took the request and failed: %w", u.Host, err)
		}
		resent = true
	}
	return nil, last
}

// BalancerCommand implements `portal-dev lb`: a round-robin load balancer
// on one address in front of several `portal serve` replicas.
func BalancerCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("lb", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: portal-dev lb [-addr 127.0.0.1:8080] http://127.0.0.1:8081 http://127.0.0.1:8082 ...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	b, err := NewBalancer(fs.Args())
	if err != nil {
		fmt.Fprintf(stderr, "portal-dev lb: %v\n", err)
		return 2
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(stderr, "portal-dev lb: %v\n", err)
		return 1
	}
	srv := &http.Server{Handler: b, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	fmt.Fprintf(stdout, "load balancer on http://%s -> %s\n", ln.Addr(), strings.Join(fs.Args(), ", "))
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(stderr, "portal-dev lb: %v\n", err)
		return 1
	}
	return 0
}
