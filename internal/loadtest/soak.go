package loadtest

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"portal/internal/accounts"
	"portal/internal/peers"
	"portal/internal/staff"
)

// sandboxWebhookSecret is the signing secret `portal-dev sandbox` gives the
// portal (internal/sandbox); deliveries signed with it are genuine there.
const sandboxWebhookSecret = "whsec_sandbox_not_a_real_secret"

// soakTarget is where the sandbox portal is, as it moves across restarts.
type soakTarget struct {
	mu  sync.RWMutex
	url string
}

func (t *soakTarget) get() string        { t.mu.RLock(); defer t.mu.RUnlock(); return t.url }
func (t *soakTarget) set(u string)       { t.mu.Lock(); t.url = u; t.mu.Unlock() }
func (t *soakTarget) clear()             { t.set("") }
func (t *soakTarget) up() (string, bool) { u := t.get(); return u, u != "" }

// soakCounts are what the load did, for the end-of-run checks.
type soakCounts struct {
	served, failed, down, refused atomic.Int64 // refused: malformed requests answered 4xx, as they should be
	signIns                       atomic.Int64 // sign-ins the portal answered with a session
	resumed                       atomic.Int64 // interrupted runs resumed after the SIGKILL

	mu       sync.Mutex
	webhooks map[string]int // event id -> deliveries answered 200
	sent     map[string]int // event id -> deliveries attempted
	plans    map[int64]bool // plan ids answered 201
	runs     map[int64]bool // run ids answered 202
	failures map[string]int // distinct failure -> count
}

func (c *soakCounts) fail(what string) {
	c.failed.Add(1)
	c.mu.Lock()
	if len(c.failures) < 50 || c.failures[what] > 0 {
		c.failures[what]++
	}
	c.mu.Unlock()
}

// SoakCommand implements `portal-dev soak`: mixed load from many clients on a
// sandbox portal while the portal is killed with SIGKILL and restarted,
// moto is restarted on its own, a share of AWS calls is answered with
// throttling and 5xx by a fault proxy, webhooks come duplicated and out of
// order and malformed requests arrive; then the end-of-run checks. Exit 1
// when a check fails.
func SoakCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("portal-dev soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o soakOptions
	fs.DurationVar(&o.duration, "duration", 10*time.Minute, "how long the load lasts")
	fs.IntVar(&o.clients, "clients", 100, "concurrent clients")
	fs.IntVar(&o.kills, "kills", 1, "times the portal is killed with SIGKILL and restarted during the load")
	fs.IntVar(&o.motoRestarts, "moto-restarts", 1, "times moto (AWS) is stopped and started afresh during the load, the portal running on")
	fs.Float64Var(&o.faults, "aws-faults", 0.1, "share (0 to 1) of AWS calls the fault proxy answers with throttling or a 5xx")
	fs.StringVar(&o.exe, "portal", "", "portal binary to run as the sandbox (default this one)")
	fs.StringVar(&o.dir, "dir", "", "sandbox folder to use and keep (default a temporary one, removed)")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if o.faults < 0 || o.faults > 1 {
		fmt.Fprintf(stderr, "portal-dev soak: -aws-faults %v is not a share between 0 and 1\n", o.faults)
		return 2
	}
	if err := soak(ctx, o, stdout); err != nil {
		fmt.Fprintf(stderr, "portal-dev soak: %v\n", err)
		return 1
	}
	return 0
}

type soakOptions struct {
	duration            time.Duration
	clients             int
	kills, motoRestarts int
	faults              float64
	exe, dir            string
}

// chaos is one disruption during the load.
type chaos struct {
	at   time.Duration
	kind string // "kill" or "moto"
}

// chaosPlan spreads the disruptions evenly over the run: in each slot
// moto is restarted first (while there are restarts left), then the
// portal is killed (while there are kills left). A kill waits for a run
// to be applying, so it lands in the applies that rebuild what the moto
// restart lost.
func chaosPlan(d time.Duration, kills, motoRestarts int) []chaos {
	slots := max(kills, motoRestarts)
	var out []chaos
	for i := 1; i <= slots; i++ {
		at := d * time.Duration(i) / time.Duration(slots+1)
		if i <= motoRestarts {
			out = append(out, chaos{at, "moto"})
		}
		if i <= kills {
			out = append(out, chaos{at, "kill"})
		}
	}
	return out
}

// awaitApplying waits up to limit for a run to be applying, then a few
// seconds more so the kill lands part-way; it returns the run's id, or 0
// when none started in time.
func awaitApplying(ctx context.Context, base, token string, limit time.Duration) int64 {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/runs?state=running", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			var out struct {
				Items []struct {
					ID int64 `json:"id"`
				} `json:"items"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			if len(out.Items) > 0 {
				sleep(ctx, 3*time.Second)
				return out.Items[0].ID
			}
		}
		sleep(ctx, 250*time.Millisecond)
	}
	return 0
}

func soak(ctx context.Context, o soakOptions, stdout io.Writer) error {
	var err error
	exe, dir := o.exe, o.dir
	if exe == "" {
		if exe, err = os.Executable(); err != nil {
			return err
		}
	}
	if dir == "" {
		if dir, err = os.MkdirTemp("", "portal-soak-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	// One account per client (only the browsing ones use theirs).
	browsers, err := PrepareAccounts(ctx, dir, "browse", o.clients, staff.Compliance, staff.Finance)
	if err != nil {
		return err
	}
	token, err := PrepareToken(ctx, dir, "deployer@portal.local")
	if err != nil {
		return err
	}
	logPath := filepath.Join(dir, "soak-sandbox.log")
	log, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer log.Close()

	// moto runs here, not in the sandbox, so that killing the portal
	// leaves AWS as it was (as a crash would) and moto can be restarted
	// on its own; the portal reaches it through the fault proxy.
	motoLog, err := os.Create(filepath.Join(dir, "soak-moto.log"))
	if err != nil {
		return err
	}
	defer motoLog.Close()
	// One CA for every moto of the soak, so the proxy trusts a restarted
	// one too; moto's SNS deliveries go to an alert inbox.
	ca, err := peers.NewCA()
	if err != nil {
		return err
	}
	inbox, err := peers.StartAlertInbox(ca)
	if err != nil {
		return err
	}
	defer inbox.Close()
	motoOpts := peers.MotoOptions{Log: motoLog, CA: ca, Outbound: inbox.ProxyURL()}
	moto, err := peers.StartMoto(ctx, motoOpts)
	if err != nil {
		return err
	}
	defer func() { moto.Stop() }()
	proxy, err := peers.NewFaultProxy(moto.URL(), ca.Pool(), o.faults, time.Now().UnixNano())
	if err != nil {
		return err
	}
	defer proxy.Close()
	proxy.SetErrorLog(motoLog)

	sb, err := StartSandbox(ctx, exe, dir, log, "-aws-endpoint", proxy.URL())
	if err != nil {
		return fmt.Errorf("%w (log in %s)", err, logPath)
	}
	target := &soakTarget{url: sb.URL}
	plan := chaosPlan(o.duration, o.kills, o.motoRestarts)
	fmt.Fprintf(stdout, "soak: %d clients for %s against %s (data in %s); %d SIGKILL restart(s) of the portal, %d restart(s) of moto, %.0f%% of AWS calls faulted\n",
		o.clients, o.duration, sb.URL, dir, o.kills, o.motoRestarts, o.faults*100)
	counts := &soakCounts{webhooks: map[string]int{}, sent: map[string]int{}, plans: map[int64]bool{}, runs: map[int64]bool{}, failures: map[string]int{}}
	lctx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	start := time.Now()

	var wg sync.WaitGroup
	for i := range o.clients {
		wg.Go(func() { soakClient(lctx, i, target, browsers[i], token, counts) })
	}
	var peak float64
	for _, c := range plan {
		select {
		case <-lctx.Done():
		case <-time.After(time.Until(start.Add(c.at))):
		}
		if lctx.Err() != nil {
			break
		}
		at := time.Since(start).Round(time.Second)
		switch c.kind {
		case "kill":
			if rss, err := sb.PeakRSS(); err == nil {
				peak = max(peak, rss)
			}
			run := awaitApplying(lctx, sb.URL, token, 90*time.Second)
			if lctx.Err() != nil {
				break
			}
			at = time.Since(start).Round(time.Second)
			if run != 0 {
				fmt.Fprintf(stdout, "soak: %s: SIGKILL the portal (pid %d) while run #%d applies\n", at, sb.PID(), run)
			} else {
				fmt.Fprintf(stdout, "soak: %s: SIGKILL the portal (pid %d); no run was applying\n", at, sb.PID())
			}
			target.clear()
			sb.Kill()
			if sb, err = StartSandbox(ctx, exe, dir, log, "-aws-endpoint", proxy.URL()); err != nil {
				cancel()
				wg.Wait()
				return fmt.Errorf("restart after SIGKILL: %w (log in %s)", err, logPath)
			}
			target.set(sb.URL)
			fmt.Fprintf(stdout, "soak: %s: the portal restarted at %s (pid %d)\n", time.Since(start).Round(time.Second), sb.URL, sb.PID())
		case "moto":
			// A new moto starts empty: what the portal made is gone, as
			// after losing a region; calls in flight fail or are retried
			// and later plans create again. The proxy keeps the portal's
			// role sessions valid across it, as AWS would.
			fmt.Fprintf(stdout, "soak: %s: restart moto\n", at)
			fresh, err := peers.StartMoto(ctx, motoOpts)
			if err != nil {
				cancel()
				wg.Wait()
				return fmt.Errorf("restart moto: %w", err)
			}
			old := moto
			moto = fresh
			if err := proxy.SetTarget(fresh.URL()); err != nil {
				return err
			}
			_ = old.Stop()
			fmt.Fprintf(stdout, "soak: %s: moto restarted at %s (empty)\n", time.Since(start).Round(time.Second), fresh.URL())
		}
	}
	wg.Wait()
	if rss, err := sb.PeakRSS(); err == nil {
		peak = max(peak, rss)
	}
	// Let queued runs settle before stopping, then stop cleanly.
	waitRuns(ctx, sb.URL, token, counts, 3*time.Minute)
	if err := sb.Stop(); err != nil {
		fmt.Fprintf(stdout, "soak: the sandbox stopped with %v\n", err)
	}
	total, injected := proxy.Counts()
	fmt.Fprintf(stdout, "soak: the fault proxy passed %d AWS calls and answered %d itself with throttling or a 5xx\n", total-injected, injected)
	check := moto.AWSConfig("us-east-1")
	check.RetryMaxAttempts = accounts.MaxAttempts
	dups, err := FindDuplicates(ctx, check)
	if err != nil {
		return fmt.Errorf("duplicate check: %w", err)
	}
	return soakChecks(ctx, dir, counts, time.Since(start), peak, dups, stdout)
}
