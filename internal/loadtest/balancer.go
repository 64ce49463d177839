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
// any HTTP load balancer in front of them would: a replica that refuses
// the connection (stopped, killed, starting) is passed over and the
// request goes to the next one, since nothing of it reached the first; a
// replica that fails after taking a request is not retried (the request
// may have had an effect) and the client gets 502. It serves the soak
// with several replicas and trying replicas on one machine.
type Balancer struct {
	backends []*url.URL
	next     atomic.Uint64
	proxy    *httputil.ReverseProxy

	mu   sync.Mutex
	down map[int]time.Time // backend index -> until when it is passed over
}

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
		u, err := url.Parse(strings.TrimSpace(s))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("balancer: replica %q: want a URL such as http://127.0.0.1:8081", s)
		}
		b.backends = append(b.backends, u)
	}
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
			http.Error(w, "no replica answered: "+err.Error(), http.StatusBadGateway)
		},
	}
	return b, nil
}

// ServeHTTP forwards r to a replica.
func (b *Balancer) ServeHTTP(w http.ResponseWriter, r *http.Request) { b.proxy.ServeHTTP(w, r) }

// pick returns the order in which to try the replicas for one request:
// the next in turn first, replicas passed over last.
func (b *Balancer) pick() []int {
	n := len(b.backends)
	start := int(b.next.Add(1)-1) % n
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
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

func (b *Balancer) setDown(i int, down bool) {
	b.mu.Lock()
	if down {
		b.down[i] = time.Now().Add(balancerRetryAfter)
	} else {
		delete(b.down, i)
	}
	b.mu.Unlock()
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
	for _, i := range t.b.pick() {
		if last != nil && !retry {
			break
		}
		u := t.b.backends[i]
		out := r.Clone(r.Context())
		out.URL.Scheme, out.URL.Host = u.Scheme, u.Host
		if body != nil {
			out.Body = io.NopCloser(bytes.NewReader(body))
		}
		resp, err := t.rt.RoundTrip(out)
		if err == nil {
			t.b.setDown(i, false)
			return resp, nil
		}
		last = err
		var op *net.OpError
		if !errors.As(err, &op) || op.Op != "dial" {
			return nil, err // the replica had the request: never send it twice
		}
		t.b.setDown(i, true)
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
