package loadtest

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

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
// sandbox portal while the portal (and with it moto) is killed with
// SIGKILL and restarted, with duplicate and out-of-order webhooks and
// malformed requests; then the end-of-run checks. Exit 1 when a check
// fails.
func SoakCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("portal soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	duration := fs.Duration("duration", 10*time.Minute, "how long the load lasts")
	clients := fs.Int("clients", 100, "concurrent clients")
	kills := fs.Int("kills", 1, "times the portal is killed with SIGKILL and restarted during the load")
	exe := fs.String("portal", "", "portal binary to run as the sandbox (default this one)")
	keep := fs.String("dir", "", "sandbox folder to use and keep (default a temporary one, removed)")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if err := soak(ctx, *duration, *clients, *kills, *exe, *keep, stdout); err != nil {
		fmt.Fprintf(stderr, "portal soak: %v\n", err)
		return 1
	}
	return 0
}

func soak(ctx context.Context, d time.Duration, clients, kills int, exe, dir string, stdout io.Writer) error {
	var err error
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
	sb, err := StartSandbox(ctx, exe, dir, log)
	if err != nil {
		return err
	}
	target := &soakTarget{url: sb.URL}
	fmt.Fprintf(stdout, "soak: %d clients for %s against %s (data in %s); %d SIGKILL restart(s)\n", clients, d, sb.URL, dir, kills)
	counts := &soakCounts{webhooks: map[string]int{}, sent: map[string]int{}, plans: map[int64]bool{}, runs: map[int64]bool{}, failures: map[string]int{}}
	lctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	start := time.Now()

	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() { soakClient(lctx, i, target, browser, token, counts) })
	}
	// The chaos: kill the whole sandbox process (the portal; moto and
	// stripe-mock die with it) at even points through the run, restart it
	// on the same data folder.
	var peak float64
	for k := 1; k <= kills; k++ {
		at := start.Add(d * time.Duration(k) / time.Duration(kills+1))
		select {
		case <-lctx.Done():
		case <-time.After(time.Until(at)):
		}
		if lctx.Err() != nil {
			break
		}
		if rss, err := sb.PeakRSS(); err == nil {
			peak = max(peak, rss)
		}
		fmt.Fprintf(stdout, "soak: %s: SIGKILL the portal (pid %d)\n", time.Since(start).Round(time.Second), sb.PID())
		target.clear()
		sb.Kill()
		if sb, err = StartSandbox(ctx, exe, dir, log); err != nil {
			cancel()
			wg.Wait()
			return fmt.Errorf("restart after SIGKILL: %w (log in %s)", err, logPath)
		}
		target.set(sb.URL)
		fmt.Fprintf(stdout, "soak: %s: restarted at %s (pid %d)\n", time.Since(start).Round(time.Second), sb.URL, sb.PID())
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
	return soakChecks(ctx, dir, counts, time.Since(start), peak, stdout)
}
