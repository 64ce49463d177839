package loadtest

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"portal/internal/peers"
	"portal/internal/staff"
)

// sandboxWebhookSecret is the signing secret `portal sandbox` gives the
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

// SoakCommand implements `portal soak`: mixed load from many clients on a
// sandbox portal while the portal is killed with SIGKILL and restarted,
// moto is restarted on its own, a share of AWS calls is answered with
// throttling and 5xx by a fault proxy, webhooks come duplicated and out of
// order and malformed requests arrive; then the end-of-run checks. Exit 1
// when a check fails.
func SoakCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("portal soak", flag.ContinueOnError)
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
		fmt.Fprintf(stderr, "portal soak: -aws-faults %v is not a share between 0 and 1\n", o.faults)
		return 2
	}
	if err := soak(ctx, o, stdout); err != nil {
		fmt.Fprintf(stderr, "portal soak: %v\n", err)
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

// chaosPlan spreads the portal kills evenly over the run and the moto
// restarts between them (one restart before the first kill), so each
// disruption meets the load alone and a kill can land in the applies that
// rebuild what the restart lost.
func chaosPlan(d time.Duration, kills, motoRestarts int) []chaos {
	var out []chaos
	for k := 1; k <= kills; k++ {
		out = append(out, chaos{d * time.Duration(k) / time.Duration(kills+1), "kill"})
	}
	for m := 1; m <= motoRestarts; m++ {
		out = append(out, chaos{d * time.Duration(2*m-1) / time.Duration(2*(motoRestarts+1)), "moto"})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].at < out[j].at })
	return out
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
	browser, err := PrepareAccount(ctx, dir, "browse@portal.local", staff.Compliance, staff.Finance)
	if err != nil {
		return err
	}
	token, err := prepareToken(ctx, dir, "deployer@portal.local")
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
	moto, err := peers.StartMoto(ctx, peers.MotoOptions{Log: motoLog})
	if err != nil {
		return err
	}
	defer func() { moto.Stop() }()
	proxy, err := peers.NewFaultProxy(moto.URL(), o.faults, time.Now().UnixNano())
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
		wg.Go(func() { soakClient(lctx, i, target, browser, token, counts) })
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
			fmt.Fprintf(stdout, "soak: %s: SIGKILL the portal (pid %d)\n", at, sb.PID())
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
			// and later plans create again. It also forgets the sessions
			// the portal assumed, and files their calls under its default
			// account until the portal assumes its roles again (after
			// the next restart); FindDuplicates reads that account too.
			fmt.Fprintf(stdout, "soak: %s: restart moto\n", at)
			fresh, err := peers.StartMoto(ctx, peers.MotoOptions{Log: motoLog})
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
	dups, err := FindDuplicates(ctx, moto.AWSConfig("us-east-1"))
	if err != nil {
		return fmt.Errorf("duplicate check: %w", err)
	}
	return soakChecks(ctx, dir, counts, time.Since(start), peak, dups, stdout)
}
