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
	"portal/internal/audit"
	"portal/internal/peers"
	"portal/internal/staff"
	"portal/internal/store"
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
	// With replicas: requests the balancer answered 502 for (a replica
	// took them and died), and times a signed-in client was sent to sign
	// in again.
	cut, signedOut atomic.Int64

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
	fs.IntVar(&o.replicas, "replicas", 1, "portal replicas: 1 is one sandbox on SQLite, killed and restarted; 2 or more share a PostgreSQL database and keys behind a loopback load balancer, and each kill is a SIGKILL of the replica applying a run, the others serving on")
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
	if o.replicas < 1 {
		fmt.Fprintf(stderr, "portal-dev soak: -replicas %d: want 1 or more\n", o.replicas)
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
	replicas            int
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
//
// killFirst (the replicas' soak) turns each slot around: the kill comes a
// third of a slot earlier, and moto's restart once the kill is over. The
// replicas' kill follows the run it cut to its end and looks for anything
// created twice before moto forgets it, and lands in the applies of a
// healthy stack, not in those rebuilding after the restart.
func chaosPlan(d time.Duration, kills, motoRestarts int, killFirst bool) []chaos {
	slots := max(kills, motoRestarts)
	var out []chaos
	for i := 1; i <= slots; i++ {
		at := d * time.Duration(i) / time.Duration(slots+1)
		if killFirst && i <= kills {
			out = append(out, chaos{at - d/time.Duration(3*(slots+1)), "kill"})
		}
		if i <= motoRestarts {
			out = append(out, chaos{at, "moto"})
		}
		if !killFirst && i <= kills {
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
	var portal soakPortal = &singlePortal{exe: exe, dir: dir}
	if o.replicas > 1 {
		portal = &replicaPortal{exe: exe, dir: dir, n: o.replicas}
	}
	defer portal.close()
	browsers, token, err := portal.prepare(ctx, o.clients)
	if err != nil {
		return err
	}

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

	url, err := portal.start(ctx, proxy.URL())
	if err != nil {
		return err
	}
	target := &soakTarget{url: url}
	plan := chaosPlan(o.duration, o.kills, o.motoRestarts, o.replicas > 1)
	fmt.Fprintf(stdout, "soak: %d clients for %s against %s (data in %s); %d SIGKILL(s) of %s, %d restart(s) of moto, %.0f%% of AWS calls faulted\n",
		o.clients, o.duration, portal.describe(), dir, o.kills, portal.killed(), o.motoRestarts, o.faults*100)
	counts := &soakCounts{webhooks: map[string]int{}, sent: map[string]int{}, plans: map[int64]bool{}, runs: map[int64]bool{}, failures: map[string]int{}}
	lctx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	run := &soakRun{start: time.Now(), w: stdout, target: target, token: token, counts: counts}
	run.duplicates = func(ctx context.Context) (Duplicates, error) {
		check := moto.AWSConfig("us-east-1")
		check.RetryMaxAttempts = accounts.MaxAttempts
		return FindDuplicates(ctx, check)
	}

	var wg sync.WaitGroup
	for i := range o.clients {
		wg.Go(func() { soakClient(lctx, i, target, browsers[i], token, counts) })
	}
	for _, c := range plan {
		select {
		case <-lctx.Done():
		case <-time.After(time.Until(run.start.Add(c.at))):
		}
		if lctx.Err() != nil {
			break
		}
		switch c.kind {
		case "kill":
			if err := portal.kill(ctx, lctx, run); err != nil {
				cancel()
				wg.Wait()
				return err
			}
		case "moto":
			// A new moto starts empty: what the portal made is gone, as
			// after losing a region; calls in flight fail or are retried
			// and later plans create again. The proxy keeps the portal's
			// role sessions valid across it, as AWS would.
			fmt.Fprintf(stdout, "soak: %s: restart moto\n", run.since())
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
			fmt.Fprintf(stdout, "soak: %s: moto restarted at %s (empty)\n", run.since(), fresh.URL())
		}
	}
	wg.Wait()
	// Let queued runs settle before stopping, then stop cleanly.
	portal.settle(ctx, run)
	waitRuns(ctx, target.get(), token, counts, 3*time.Minute)
	portal.stop(stdout)
	total, injected := proxy.Counts()
	fmt.Fprintf(stdout, "soak: the fault proxy passed %d AWS calls and answered %d itself with throttling or a 5xx\n", total-injected, injected)
	dups, err := run.duplicates(ctx)
	if err != nil {
		return fmt.Errorf("duplicate check: %w", err)
	}
	return soakChecks(ctx, portal, counts, time.Since(run.start), dups, stdout)
}

// soakRun is what the disruptions of a soak share with the load.
type soakRun struct {
	start  time.Time
	w      io.Writer
	target *soakTarget
	token  string
	counts *soakCounts
	// duplicates looks in moto (the one running now) for stack
	// resources that exist more than once.
	duplicates func(context.Context) (Duplicates, error)
}

// since is the time since the load started, for the soak's lines.
func (r *soakRun) since() time.Duration { return time.Since(r.start).Round(time.Second) }

// soakPortal is the portal under the soak's load: one sandbox on SQLite
// (singlePortal) or several replicas on PostgreSQL behind the balancer
// (replicaPortal).
type soakPortal interface {
	// prepare makes the load's accounts (n browsing clients) and the
	// deployer's API token before the portal starts.
	prepare(ctx context.Context, n int) ([]*Account, string, error)
	// start starts the portal on the AWS endpoint awsURL and returns
	// where the clients reach it.
	start(ctx context.Context, awsURL string) (string, error)
	describe() string
	killed() string // what a "kill" disruption kills
	// kill is one "kill" disruption, lctx the load's context.
	kill(ctx, lctx context.Context, r *soakRun) error
	// settle finishes what the disruptions left once the load ended.
	settle(ctx context.Context, r *soakRun)
	// stop stops the portal (cleanly), noting its peak RSS.
	stop(w io.Writer)
	// open opens the portal's database and audit trail for the checks.
	open(ctx context.Context) (*store.DB, *audit.Log, error)
	// checks prints (to w) and checks what is particular to this portal.
	checks(ctx context.Context, db *store.DB, c *soakCounts, w io.Writer, check func(ok bool, format string, args ...any)) error
	close()
}

// singlePortal is one sandbox portal on SQLite, killed and restarted.
type singlePortal struct {
	exe, dir, aws string
	sb            *Sandbox
	log           *os.File
	peak          float64
}

func (p *singlePortal) prepare(ctx context.Context, n int) ([]*Account, string, error) {
	// One account per client (only the browsing ones use theirs).
	browsers, err := PrepareAccounts(ctx, p.dir, "browse", n, staff.Compliance, staff.Finance)
	if err != nil {
		return nil, "", err
	}
	token, err := PrepareToken(ctx, p.dir, "deployer@portal.local")
	return browsers, token, err
}

func (p *singlePortal) logPath() string { return filepath.Join(p.dir, "soak-sandbox.log") }

func (p *singlePortal) start(ctx context.Context, awsURL string) (string, error) {
	log, err := os.Create(p.logPath())
	if err != nil {
		return "", err
	}
	p.log, p.aws = log, awsURL
	if p.sb, err = StartSandbox(ctx, p.exe, p.dir, p.log, "-aws-endpoint", p.aws); err != nil {
		return "", fmt.Errorf("%w (log in %s)", err, p.logPath())
	}
	return p.sb.URL, nil
}

func (p *singlePortal) describe() string { return p.sb.URL }
func (p *singlePortal) killed() string   { return "the portal (restarted)" }

func (p *singlePortal) sampleRSS() {
	if rss, err := p.sb.PeakRSS(); err == nil {
		p.peak = max(p.peak, rss)
	}
}

func (p *singlePortal) kill(ctx, lctx context.Context, r *soakRun) error {
	p.sampleRSS()
	run := awaitApplying(lctx, p.sb.URL, r.token, 90*time.Second)
	if lctx.Err() != nil {
		return nil
	}
	if run != 0 {
		fmt.Fprintf(r.w, "soak: %s: SIGKILL the portal (pid %d) while run #%d applies\n", r.since(), p.sb.PID(), run)
	} else {
		fmt.Fprintf(r.w, "soak: %s: SIGKILL the portal (pid %d); no run was applying\n", r.since(), p.sb.PID())
	}
	r.target.clear()
	p.sb.Kill()
	var err error
	if p.sb, err = StartSandbox(ctx, p.exe, p.dir, p.log, "-aws-endpoint", p.aws); err != nil {
		return fmt.Errorf("restart after SIGKILL: %w (log in %s)", err, p.logPath())
	}
	r.target.set(p.sb.URL)
	fmt.Fprintf(r.w, "soak: %s: the portal restarted at %s (pid %d)\n", r.since(), p.sb.URL, p.sb.PID())
	return nil
}

func (p *singlePortal) settle(context.Context, *soakRun) { p.sampleRSS() }

func (p *singlePortal) stop(w io.Writer) {
	if p.sb == nil {
		return
	}
	p.sampleRSS()
	if err := p.sb.Stop(); err != nil {
		fmt.Fprintf(w, "soak: the sandbox stopped with %v\n", err)
	}
	p.sb = nil
}

func (p *singlePortal) open(ctx context.Context) (*store.DB, *audit.Log, error) {
	data := filepath.Join(p.dir, "data")
	db, err := store.Open(ctx, filepath.Join(data, "portal.db"))
	if err != nil {
		return nil, nil, err
	}
	log, err := auditLog(db, data)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return db, log, nil
}

func (p *singlePortal) checks(ctx context.Context, db *store.DB, c *soakCounts, w io.Writer, check func(ok bool, format string, args ...any)) error {
	fmt.Fprintf(w, "  portal peak RSS %.0f MiB\n", p.peak)
	var integrity string
	if err := db.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&integrity); err != nil {
		return err
	}
	check(integrity == "ok", "database integrity check: %s", integrity)
	return nil
}

func (p *singlePortal) close() {
	if p.sb != nil {
		p.sb.Stop()
	}
	if p.log != nil {
		p.log.Close()
	}
}
