package loadtest

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"portal/internal/app"
	"portal/internal/audit"
	"portal/internal/billing"
	"portal/internal/staff"
	"portal/internal/store"
)

// LoadCommand implements `portal-dev load`: signed-in clients request the
// bench pages of a running portal (one replica, or several behind a load
// balancer) for a while, and the page latencies and each replica's peak
// RSS are printed. The load accounts are created in the portal's
// database first, so the command needs what a replica needs to seal
// their two-factor secrets and audit their creation.
func LoadCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("portal-dev load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("url", "http://127.0.0.1:8080", "the portal, or the load balancer in front of its replicas")
	dsn := fs.String("db", os.Getenv("PORTAL_DB"), "the portal's database (a postgres:// URL, or a SQLite file; default $PORTAL_DB)")
	keyFile := fs.String("secret-key-file", os.Getenv("PORTAL_SECRET_KEY_FILE"), "the replicas' secret key file ($"+app.SecretKeyEnv+" wins)")
	auditKeys := fs.String("audit-key-file", os.Getenv("PORTAL_AUDIT_KEY_FILE"), "the replicas' audit key ring")
	clients := fs.Int("clients", 100, "concurrent signed-in clients")
	duration := fs.Duration("duration", 30*time.Second, "how long they keep requesting")
	think := fs.Duration("think", 0, "mean pause between a client's pages (uniform between half and one and a half times it), as people read a page; 0 is a saturation test, each client asking for its next page at once")
	pids := fs.String("pids", "", "process ids of the replicas, comma-separated, to report their peak RSS")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	fail := func(err error) int { fmt.Fprintf(stderr, "portal-dev load: %v\n", err); return 1 }
	if *dsn == "" || *clients < 1 {
		fmt.Fprintln(stderr, "portal-dev load: -db is required, and -clients at least 1")
		return 2
	}
	key, err := app.LoadSecretKey(billing.NewSecret(os.Getenv(app.SecretKeyEnv)), *keyFile, true)
	if err != nil {
		return fail(err)
	}
	sealer, err := staff.NewSealer(key)
	if err != nil {
		return fail(err)
	}
	ring, reload, err := app.LoadAuditKeys(app.AuditConfig{KeyFile: *auditKeys, Shared: true, KeysFromEnv: os.Getenv(app.AuditKeysEnv) != ""})
	if err != nil {
		return fail(err)
	}
	db, err := store.Open(ctx, *dsn)
	if err != nil {
		return fail(err)
	}
	defer db.Close()
	prefix := "load-" + strconv.FormatInt(time.Now().Unix(), 36)
	fmt.Fprintf(stdout, "creating %d load accounts (%s-N@portal.local)\n", *clients, prefix)
	accts, err := CreateAccounts(ctx, db, audit.NewKeyed(db, nil, ring, reload), sealer, prefix, *clients, staff.Compliance, staff.Finance)
	if err != nil {
		return fail(err)
	}
	model := ModelSaturation
	if *think > 0 {
		model = ThinkModel(*think)
	}
	fmt.Fprintf(stdout, "signing in %d clients at %s, then loading %s for %s (%s)\n", *clients, *base, pageNames(), *duration, model)
	res, err := Load(ctx, LoadConfig{BaseURL: *base, Accounts: accts, Clients: *clients, Duration: *duration, Pages: BenchPages, Think: *think})
	if err != nil {
		return fail(err)
	}
	fmt.Fprintf(stdout, "%-10s %9s %7s %8s %8s %8s %8s\n", "page", "requests", "failed", "req/s", "p50 ms", "p95 ms", "p99 ms")
	for _, p := range append(res.Pages, res.Total) {
		fmt.Fprintf(stdout, "%-10s %9d %7d %8.1f %8.1f %8.1f %8.1f\n", p.Name, p.Requests, p.Failed, p.RPS, p.P50ms, p.P95ms, p.P99ms)
	}
	for _, e := range res.Errors {
		fmt.Fprintf(stdout, "failure: %s\n", e)
	}
	fmt.Fprintf(stdout, "uptime: %s at the start, %s at the end\n", res.UptimeStart, res.UptimeEnd)
	for _, s := range splitPIDs(*pids) {
		pid, err := strconv.Atoi(s)
		if err != nil {
			return fail(fmt.Errorf("-pids: %q is not a process id", s))
		}
		mb, err := peakRSS(pid)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "replica pid %d: peak RSS %.0f MiB\n", pid, mb)
	}
	if res.Total.Failed > 0 {
		return 1
	}
	return 0
}

func pageNames() string {
	var n []string
	for _, p := range BenchPages {
		n = append(n, p.Path)
	}
	return strings.Join(n, " ")
}

func splitPIDs(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
