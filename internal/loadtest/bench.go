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
	pgPattern := fs.String("postgres-bench", "ActivityMillion", "Go benchmarks to run again on PostgreSQL (PORTAL_TEST_STORE=postgres), reported beside SQLite's; empty skips them")
	pgPkgs := fs.String("postgres-packages", "./internal/activity/", "packages whose benchmarks run again on PostgreSQL")
	clients := fs.Int("clients", 20, "concurrent signed-in clients of the HTTP load; 0 skips the load")
	duration := fs.Duration("load-duration", 30*time.Second, "how long the HTTP load lasts")
	settle := fs.Duration("settle", 20*time.Second, "wait after the sandbox serves, so its first Stripe sync and trail ingest are not measured as load")
	exe := fs.String("portal", "", "portal binary to run as the sandbox (default this one)")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
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
		goArgs := []string{"test", "-run", "^$", "-bench", *pattern, "-benchmem", "-timeout", "30m"}
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
		goArgs := []string{"test", "-run", "^$", "-bench", *pgPattern, "-benchmem", "-benchtime", "1x", "-timeout", "60m"}
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
		fmt.Fprintf(stdout, "== HTTP load: %d clients for %s against a sandbox portal\n", *clients, *duration)
		if err := loadSandbox(ctx, r, *exe, *out, stamp, *clients, *duration, *settle, stdout); err != nil {
			r.Failures = append(r.Failures, err.Error())
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

// loadSandbox starts a sandbox portal with a load account, loads it and
// records the load figures and the portal's peak RSS in r.
func loadSandbox(ctx context.Context, r *Report, exe, out, stamp string, clients int, d, settle time.Duration, stdout io.Writer) error {
	dir, err := os.MkdirTemp("", "portal-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// One account per client, and one for the warm-up.
	accts, err := PrepareAccounts(ctx, dir, "load", clients+1, staff.Compliance, staff.Finance)
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
	fmt.Fprintf(stdout, "sandbox portal at %s (pid %d, log in %s); settling for %s\n", sb.URL, sb.PID(), logPath, settle)
	sleep(ctx, settle)
	// One signed-in pass over the pages first: a page that fails here
	// would only produce a report full of failures.
	c, err := SignIn(ctx, sb.URL, accts[clients])
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	for _, p := range BenchPages {
		if err := get(ctx, c, sb.URL+p.Path); err != nil {
			return fmt.Errorf("load: warm-up: %w", err)
		}
	}
	res, err := Load(ctx, LoadConfig{BaseURL: sb.URL, Accounts: accts[:clients], Clients: clients, Duration: d, Pages: BenchPages})
	if err != nil {
		return err
	}
	r.Load = &res
	if r.PeakRSS, err = sb.PeakRSS(); err != nil {
		return err
	}
	if res.Total.Failed > 0 {
		return fmt.Errorf("load: %d of %d requests failed", res.Total.Failed, res.Total.Requests)
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

// loadAverage is the machine's 1-minute load average, so a report taken on
// a busy machine says so.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "unknown"
}
