// Package loadtest is the portal's performance harness: `portal-dev bench`
// runs the Go benchmarks and an HTTP load against a sandbox portal and
// writes a report beside the previous one.
package loadtest

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// Page is one page the load generator requests.
type Page struct {
	Name string // shown in the report: Overview, Runs, ...
	Path string
}

// LoadConfig says who loads what, and for how long.
type LoadConfig struct {
	BaseURL string
	// Accounts are the clients' accounts, one each (see PrepareAccounts).
	Accounts []*Account
	Clients  int           // concurrent signed-in clients
	Duration time.Duration // how long they keep requesting
	Pages    []Page
	// Think is the mean pause of a client between a response and its next
	// request (uniform between half and one and a half times it), as
	// people read a page before opening the next. Zero is a closed loop
	// with no pause: a saturation test, whose latency is about clients
	// divided by the portal's throughput.
	Think time.Duration
}

// PageStats are one page's figures under load.
type PageStats struct {
	Name     string  `json:"name"`
	Requests int     `json:"requests"`
	Failed   int     `json:"failed"`
	RPS      float64 `json:"rps"`
	P50ms    float64 `json:"p50_ms"`
	P95ms    float64 `json:"p95_ms"`
	P99ms    float64 `json:"p99_ms"`
}

// LoadResult is what a load run measured.
type LoadResult struct {
	Clients  int     `json:"clients"`
	Duration float64 `json:"duration_s"`
	// ThinkMs is the clients' mean pause between pages (0: none).
	ThinkMs float64 `json:"think_ms,omitempty"`
	// Uptime is the machine's load average (1, 5 and 15 minutes, as
	// uptime prints it) as the load started and as it ended: the portal
	// shares the machine with the load generator and whatever else runs.
	UptimeStart string      `json:"uptime_start,omitempty"`
	UptimeEnd   string      `json:"uptime_end,omitempty"`
	Total       PageStats   `json:"total"`
	Pages       []PageStats `json:"pages"`
	Errors      []string    `json:"errors,omitempty"` // a few distinct failures, for the report
}

// Load signs in cfg.Clients clients, each with its own session, then has
// each request the pages round-robin (starting at a different page) as
// fast as the portal answers, or pausing cfg.Think on average between
// pages, until cfg.Duration has passed. A request
// fails on a transport error or any status other than 200.
func Load(ctx context.Context, cfg LoadConfig) (LoadResult, error) {
	if len(cfg.Accounts) < cfg.Clients {
		return LoadResult{}, fmt.Errorf("loadtest: %d clients but %d accounts", cfg.Clients, len(cfg.Accounts))
	}
	clients := make([]*http.Client, cfg.Clients)
	for i := range clients {
		c, err := SignIn(ctx, cfg.BaseURL, cfg.Accounts[i])
		if err != nil {
			return LoadResult{}, fmt.Errorf("loadtest: client %d: %w", i+1, err)
		}
		clients[i] = c
	}
	type sample struct {
		page int
		took time.Duration
		err  string
	}
	results := make([][]sample, len(clients))
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	uptimeStart := Uptime()
	start := time.Now()
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), uint64(start.UnixNano())))
			for n := i; ctx.Err() == nil; n++ {
				if cfg.Think > 0 {
					pause := cfg.Think/2 + time.Duration(rng.Int64N(int64(cfg.Think)+1))
					if n == i {
						// People do not all open a page in the same
						// instant: each client's first page comes at a
						// random point of a first pause, so the load is
						// steady from the start instead of every client
						// at once, then in waves.
						pause = time.Duration(rng.Int64N(int64(cfg.Think) + 1))
					}
					sleep(ctx, pause)
					if ctx.Err() != nil {
						return
					}
				}
				p := n % len(cfg.Pages)
				t0 := time.Now()
				err := get(ctx, c, cfg.BaseURL+cfg.Pages[p].Path)
				if ctx.Err() != nil {
					return // cut off by the deadline: not a failure
				}
				s := sample{page: p, took: time.Since(t0)}
				if err != nil {
					s.err = err.Error()
				}
				results[i] = append(results[i], s)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	res := LoadResult{Clients: cfg.Clients, Duration: elapsed, ThinkMs: float64(cfg.Think.Milliseconds()),
		UptimeStart: uptimeStart, UptimeEnd: Uptime()}
	per := make([][]time.Duration, len(cfg.Pages))
	failed := make([]int, len(cfg.Pages))
	var all []time.Duration
	seen := map[string]bool{}
	for _, rs := range results {
		for _, s := range rs {
			if s.err != "" {
				failed[s.page]++
				if !seen[s.err] && len(res.Errors) < 5 {
					seen[s.err] = true
					res.Errors = append(res.Errors, s.err)
				}
				continue
			}
			per[s.page] = append(per[s.page], s.took)
			all = append(all, s.took)
		}
	}
	for i, p := range cfg.Pages {
		res.Pages = append(res.Pages, stats(p.Name, per[i], failed[i], elapsed))
	}
	res.Total = stats("all", all, sum(failed), elapsed)
	return res, nil
}

// Uptime is the machine's load average over 1, 5 and 15 minutes, as
// uptime prints it ("load average: 1.52, 0.98, 0.61"), or "load average
// unknown" where /proc/loadavg cannot be read.
func Uptime() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "load average unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "load average unknown"
	}
	return "load average: " + f[0] + ", " + f[1] + ", " + f[2]
}

func sum(xs []int) int {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n
}

func stats(name string, ds []time.Duration, failed int, elapsed float64) PageStats {
	slices.Sort(ds)
	return PageStats{Name: name, Requests: len(ds) + failed, Failed: failed, RPS: float64(len(ds)) / elapsed,
		P50ms: Percentile(ds, 50), P95ms: Percentile(ds, 95), P99ms: Percentile(ds, 99)}
}

// Percentile returns the p-th percentile of sorted durations in
// milliseconds (nearest rank), 0 for none.
func Percentile(sorted []time.Duration, p int) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p+99)/100 - 1
	i = max(0, min(i, len(sorted)-1))
	return float64(sorted[i].Microseconds()) / 1000
}

func get(ctx context.Context, c *http.Client, u string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d", req.URL.Path, resp.StatusCode)
	}
	return nil
}

var csrfInput = regexp.MustCompile(`name="_csrf"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="_csrf"`)

// SignIn returns a client with its own cookie jar, signed in through the
// sign-in and two-factor forms as acct. Redirects are not followed, so a
// page that sends the client elsewhere counts as a failure.
func SignIn(ctx context.Context, base string, acct *Account) (*http.Client, error) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: time.Minute, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	post := func(page, action string, form url.Values) (*http.Response, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+page, nil)
		resp, err := c.Do(req)
		if err != nil {
			return nil, fmt.Errorf("sign in: %w", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := csrfInput.FindSubmatch(body)
		if m == nil {
			return nil, fmt.Errorf("sign in: no _csrf input on %s (status %d)", page, resp.StatusCode)
		}
		form.Set("_csrf", string(m[1])+string(m[2]))
		req, _ = http.NewRequestWithContext(ctx, http.MethodPost, base+action, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err = c.Do(req)
		if err != nil {
			return nil, fmt.Errorf("sign in: %w", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp, nil
	}
	resp, err := post("/login", "/login", url.Values{"email": {acct.Email}, "password": {acct.Password}})
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login/2fa" {
		return nil, fmt.Errorf("sign in as %s: got %d to %q, want 303 to /login/2fa", acct.Email, resp.StatusCode, resp.Header.Get("Location"))
	}
	code, err := acct.code(ctx)
	if err != nil {
		return nil, err
	}
	if resp, err = post("/login/2fa", "/login/2fa", url.Values{"code": {code}}); err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		return nil, fmt.Errorf("sign in as %s: two-factor code: got %d to %q, want 303 to /", acct.Email, resp.StatusCode, resp.Header.Get("Location"))
	}
	return c, nil
}
