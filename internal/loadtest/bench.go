package loadtest

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"portal/internal/peers"
	"portal/internal/staff"
)

// BenchPages are the pages loaded by `portal-dev bench`.
var BenchPages = []Page{
	{Name: "Overview", Path: "/"},
	{Name: "Runs", Path: "/runs"},
	{Name: "Activity", Path: "/activity"},
	{Name: "Billing", Path: "/billing"},
}

// BenchCommand implements `portal-dev bench`: the Go benchmarks of every
// package, then an HTTP load against a sandbox portal, then a report in
// Markdown and JSON beside the previous one. It returns the exit code: 1
// when any step failed (the report is written all the same).
func BenchCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("portal-dev bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "report folder (default reports/ in the project)")
	pattern := fs.String("bench", ".", "Go benchmarks to run (go test -bench); empty skips them")
	pkgs := fs.String("packages", "./...", "packages whose benchmarks run")
	benchtime := fs.String("benchtime", "", "go test -benchtime (default go's own)")
	pgPattern := fs.String("postgres-bench", "Activity(Ten)?Million", "Go benchmarks to run again on PostgreSQL (PORTAL_TEST_STORE=postgres), reported beside SQLite's; empty skips them")
	pgPkgs := fs.String("postgres-packages", "./internal/activity/", "packages whose benchmarks run again on PostgreSQL")
	clients := fs.Int("clients", 100, "concurrent signed-in clients of the HTTP load; 0 skips the load")
	duration := fs.Duration("load-duration", 30*time.Second, "how long each HTTP load lasts")
	think := fs.Duration("think", time.Second, "mean pause between a client's pages in a second load of each portal (the think-time model, beside the saturation one); 0 skips it")
	stores := fs.String("load-stores", "sqlite,postgres", "where the HTTP load runs, comma-separated: sqlite (one sandbox portal), postgres (-replicas sandbox replicas on PostgreSQL behind the load balancer)")
	replicas := fs.Int("replicas", 2, "how many replicas share PostgreSQL in the postgres load")
	settle := fs.Duration("settle", 20*time.Second, "wait after the sandbox serves, so its first Stripe sync and trail ingest are not measured as load")
	exe := fs.String("portal", "", "portal binary to run as the sandbox (default this one)")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	onSQLite, onPostgres := false, false
	for _, s := range strings.Split(*stores, ",") {
		switch strings.TrimSpace(s) {
		case "sqlite":
			onSQLite = true
		case "postgres":
			onPostgres = true
		case "":
		default:
			fmt.Fprintf(stderr, "portal-dev bench: -load-stores: %q is neither sqlite nor postgres\n", s)
			return 2
		}
	}
	if onPostgres && *replicas < 1 {
		fmt.Fprintln(stderr, "portal-dev bench: -replicas: want at least 1")
		return 2
	}
	root, err := peers.ProjectRoot()
	if err != nil {
		fmt.Fprintf(stderr, "portal-dev bench: %v\n", err)
		return 1
	}
	if *out == "" {
		*out = filepath.Join(root, "reports")
	}
	if *exe == "" {
		if *exe, err = os.Executable(); err != nil {
			fmt.Fprintf(stderr, "portal-dev bench: %v\n", err)
			return 1
		}
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintf(stderr, "portal-dev bench: %v\n", err)
		return 1
	}
	r := &Report{Started: time.Now().UTC(), Commit: commit(root),
		Host: fmt.Sprintf("%d CPUs, %s, %s/%s, load average %s at the start", runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH, loadAverage())}
	stamp := r.Started.Format("20060102-150405")

	if *pattern != "" {
		fmt.Fprintf(stdout, "== Go benchmarks (%s)\n", *pkgs)
		raw, err := os.Create(filepath.Join(*out, "bench-"+stamp+"-go.txt"))
		if err != nil {
			fmt.Fprintf(stderr, "portal-dev bench: %v\n", err)
			return 1
		}
		var buf bytes.Buffer
		goArgs := []string{"test", "-run", "^$", "-bench", *pattern, "-benchmem", "-timeout", "120m"}
		if *benchtime != "" {
			goArgs = append(goArgs, "-benchtime", *benchtime)
		}
		cmd := exec.CommandContext(ctx, "go", append(goArgs, strings.Fields(*pkgs)...)...)
		cmd.Dir = root
		cmd.Stdout = io.MultiWriter(stdout, raw, &buf)
		cmd.Stderr = io.MultiWriter(stderr, raw)
		if err := cmd.Run(); err != nil {
			r.Failures = append(r.Failures, fmt.Sprintf("go test -bench: %v (output in %s)", err, raw.Name()))
		}
		raw.Close()
		r.Metrics = ParseGoBench(&buf)
	}

	if *pgPattern != "" {
		fmt.Fprintf(stdout, "== Go benchmarks on PostgreSQL (%s)\n", *pgPkgs)
		raw, err := os.Create(filepath.Join(*out, "bench-"+stamp+"-go-postgres.txt"))
		if err != nil {
			fmt.Fprintf(stderr, "portal-dev bench: %v\n", err)
			return 1
		}
		var buf bytes.Buffer
		goArgs := []string{"test", "-run", "^$", "-bench", *pgPattern, "-benchmem", "-benchtime", "1x", "-timeout", "120m"}
		cmd := exec.CommandContext(ctx, "go", append(goArgs, strings.Fields(*pgPkgs)...)...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "PORTAL_TEST_STORE=postgres")
		cmd.Stdout = io.MultiWriter(stdout, raw, &buf)
		cmd.Stderr = io.MultiWriter(stderr, raw)
		if err := cmd.Run(); err != nil {
			r.Failures = append(r.Failures, fmt.Sprintf("go test -bench on PostgreSQL: %v (output in %s)", err, raw.Name()))
		}
		raw.Close()
		for _, m := range ParseGoBench(&buf) {
			m.Package += PostgresSuffix
			r.Metrics = append(r.Metrics, m)
		}
	}

	if *clients > 0 {
		lo := loadOptions{clients: *clients, duration: *duration, think: *think, settle: *settle}
		if onSQLite {
			fmt.Fprintf(stdout, "== HTTP load: %d clients for %s against a sandbox portal on SQLite\n", *clients, *duration)
			if err := loadSandbox(ctx, r, *exe, *out, stamp, lo, stdout); err != nil {
				r.Failures = append(r.Failures, err.Error())
			}
		}
		if onPostgres {
			fmt.Fprintf(stdout, "== HTTP load: %d clients for %s against %d sandbox replicas on PostgreSQL behind a load balancer\n", *clients, *duration, *replicas)
			if err := loadReplicas(ctx, r, *exe, *out, stamp, *replicas, lo, stdout); err != nil {
				r.Failures = append(r.Failures, "replicas on PostgreSQL: "+err.Error())
			}
		}
	}

	r.Took = time.Since(r.Started).Seconds()
	r.Compute()
	latest := filepath.Join(*out, "bench-latest.json")
	prev, err := ReadReport(latest)
	prevName := ""
	if err != nil {
		prev = nil
	} else {
		prevName = "bench-" + prev.Started.Format("20060102-150405") + ".md"
	}
	if err := writeReport(r, prev, prevName, *out, stamp); err != nil {
		fmt.Fprintf(stderr, "portal-dev bench: %v\n", err)
		return 1
	}
	md := filepath.Join(*out, "bench-"+stamp+".md")
	fmt.Fprintf(stdout, "\n")
	r.WriteMarkdown(&firstSection{w: stdout}, prev, prevName)
	fmt.Fprintf(stdout, "\nReport: %s (and .json); latest also as %s\n", md, filepath.Join(*out, "bench-latest.md"))
	if len(r.Failures) > 0 {
		for _, f := range r.Failures {
			fmt.Fprintf(stderr, "portal-dev bench: failed: %s\n", f)
		}
		return 1
	}
	return 0
}

// loadOptions are the HTTP load's settings, the same for every portal.
type loadOptions struct {
	clients         int
	duration, think time.Duration
	settle          time.Duration
}

// loadSandbox starts a sandbox portal on SQLite with the load accounts,
// loads it and records the loads and the portal's peak RSS in r.
func loadSandbox(ctx context.Context, r *Report, exe, out, stamp string, o loadOptions, stdout io.Writer) error {
	dir, err := os.MkdirTemp("", "portal-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// One account per client, and one for the warm-up.
	accts, err := PrepareAccounts(ctx, dir, "load", o.clients+1, staff.Compliance, staff.Finance)
	if err != nil {
		return err
	}
	logPath := filepath.Join(out, "bench-"+stamp+"-sandbox.log")
	log, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer log.Close()
	sb, err := StartSandbox(ctx, exe, dir, log)
	if err != nil {
		return fmt.Errorf("%w (log in %s)", err, logPath)
	}
	defer sb.Stop()
	fmt.Fprintf(stdout, "sandbox portal at %s (pid %d, log in %s); settling for %s\n", sb.URL, sb.PID(), logPath, o.settle)
	sleep(ctx, o.settle)
	return loadModels(ctx, r, LoadRun{Key: "sqlite", Portal: "a sandbox portal on SQLite", Replicas: 1}, sb.URL, accts, []*Sandbox{sb}, o, nil, stdout)
}

// loadReplicas starts n sandbox replicas sharing one PostgreSQL (with
// pg_stat_statements) and one moto, behind the balancer, loads them
// through it as loadSandbox loads the SQLite portal, and records the
// loads, each replica's peak RSS and the statements the loads ran in r.
func loadReplicas(ctx context.Context, r *Report, exe, out, stamp string, n int, o loadOptions, stdout io.Writer) error {
	dir, err := os.MkdirTemp("", "portal-bench-replicas-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	logPath := filepath.Join(out, "bench-"+stamp+"-replicas.log")
	log, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer log.Close()
	shared, err := StartSharedStore(ctx, dir, log, pgStatSettings...)
	if err != nil {
		return err
	}
	defer shared.Stop()
	db, trail, sealer, err := shared.Open(ctx)
	if err != nil {
		return err
	}
	accts, err := CreateAccounts(ctx, db, trail, sealer, "load", o.clients+1, staff.Compliance, staff.Finance)
	db.Close()
	if err != nil {
		return err
	}
	// moto runs here, shared by the replicas as AWS is, reached through
	// a proxy that fails nothing (the replicas reach moto over plain HTTP
	// on loopback, the proxy over TLS with the CA only it trusts).
	ca, err := peers.NewCA()
	if err != nil {
		return err
	}
	moto, err := peers.StartMoto(ctx, peers.MotoOptions{Log: log, CA: ca})
	if err != nil {
		return err
	}
	defer moto.Stop()
	proxy, err := peers.NewFaultProxy(moto.URL(), ca.Pool(), 0, 1)
	if err != nil {
		return err
	}
	defer proxy.Close()
	reps, err := StartReplicas(ctx, exe, dir, n, append(shared.Flags(), "-aws-endpoint", proxy.URL())...)
	if err != nil {
		return err
	}
	defer func() {
		reps.Stop()
		// The replicas' logs live in the folder thrown away.
		for i := range n {
			name := fmt.Sprintf("replica-%d.log", i+1)
			if b, err := os.ReadFile(filepath.Join(dir, name)); err == nil {
				os.WriteFile(filepath.Join(out, "bench-"+stamp+"-"+name), b, 0o644)
			}
		}
	}()
	var sbs []*Sandbox
	for i := range n {
		sbs = append(sbs, reps.Replica(i))
		fmt.Fprintf(stdout, "replica %d at %s (pid %d)\n", i+1, reps.Replica(i).URL, reps.Replica(i).PID())
	}
	fmt.Fprintf(stdout, "balancer at %s (PostgreSQL at %s); settling for %s\n", reps.URL, shared.DSN, o.settle)
	sleep(ctx, o.settle)
	run := LoadRun{Key: "postgres", Portal: fmt.Sprintf("%d sandbox replicas on PostgreSQL 15 behind the round-robin balancer (portal-dev lb), one moto", n), Replicas: n}
	return loadModels(ctx, r, run, reps.URL, accts, sbs, o, &queryStats{url: shared.DSN, db: "portal"}, stdout)
}

// loadModels warms the pages up through base with the last account, then
// loads them with the others under the saturation model and, when
// o.think is set, the think-time model, recording each as a copy of run
// with the replicas' peak RSS and, on PostgreSQL (qs), the statements
// the load ran.
func loadModels(ctx context.Context, r *Report, run LoadRun, base string, accts []*Account, sbs []*Sandbox, o loadOptions, qs *queryStats, stdout io.Writer) error {
	// One signed-in pass over the pages first: a page that fails here
	// would only produce a report full of failures.
	c, err := SignIn(ctx, base, accts[o.clients])
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	for range len(sbs) {
		for _, p := range BenchPages {
			if err := get(ctx, c, base+p.Path); err != nil {
				return fmt.Errorf("load: warm-up: %w", err)
			}
		}
	}
	models := []time.Duration{0}
	if o.think > 0 {
		models = append(models, o.think)
	}
	var failed []string
	for _, think := range models {
		if qs != nil {
			if err := qs.reset(ctx); err != nil {
				return err
			}
		}
		res, err := Load(ctx, LoadConfig{BaseURL: base, Accounts: accts[:o.clients], Clients: o.clients, Duration: o.duration, Pages: BenchPages, Think: think})
		if err != nil {
			return err
		}
		x := run
		x.Load, x.Model = res, ModelSaturation
		if think > 0 {
			x.Key, x.Model = run.Key+"-think", ThinkModel(think)
		}
		for _, sb := range sbs {
			mb, err := sb.PeakRSS()
			if err != nil {
				return err
			}
			x.PeakRSS = append(x.PeakRSS, mb)
		}
		if qs != nil {
			// Signing the clients in is part of the count: a few
			// statements per client, against thousands of requests.
			stats, total, err := qs.read(ctx, res.Total.Requests)
			if err != nil {
				return err
			}
			if res.Total.Requests > 0 {
				x.QueriesPerRequest = float64(total) / float64(res.Total.Requests)
			}
			x.Queries = stats[:min(len(stats), 25)]
		}
		r.Loads = append(r.Loads, x)
		fmt.Fprintf(stdout, "%s: %d requests, %d failed, p50/p95/p99 %.1f/%.1f/%.1f ms (%s)\n", x.label(), res.Total.Requests, res.Total.Failed,
			res.Total.P50ms, res.Total.P95ms, res.Total.P99ms, res.UptimeEnd)
		if res.Total.Failed > 0 {
			failed = append(failed, fmt.Sprintf("%s: %d of %d requests failed", x.label(), res.Total.Failed, res.Total.Requests))
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("load: %s", strings.Join(failed, "; "))
	}
	return nil
}

func writeReport(r *Report, prev *Report, prevName, out, stamp string) error {
	var js, md bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		return err
	}
	r.WriteMarkdown(&md, prev, prevName)
	for name, b := range map[string][]byte{
		"bench-" + stamp + ".json": js.Bytes(), "bench-" + stamp + ".md": md.Bytes(),
		"bench-latest.json": js.Bytes(), "bench-latest.md": md.Bytes(),
	} {
		if err := os.WriteFile(filepath.Join(out, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func commit(root string) string {
	cmd := exec.Command("git", "rev-parse", "--short", "HEAD")
	cmd.Dir = root
	b, err := cmd.Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

// firstSection passes writes through until the table of every Go
// benchmark metric, so the console shows the headline figures and the load.
type firstSection struct {
	w    io.Writer
	done bool
}

func (f *firstSection) Write(b []byte) (int, error) {
	if f.done || bytes.Contains(b, []byte("## Every Go benchmark")) {
		f.done = true
		return len(b), nil
	}
	return f.w.Write(b)
}

// loadAverage is the machine's load average, so a report taken on a busy
// machine says so.
func loadAverage() string { return strings.TrimPrefix(Uptime(), "load average: ") }
