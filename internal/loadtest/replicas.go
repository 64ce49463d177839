package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"portal/internal/app"
	"portal/internal/audit"
	"portal/internal/peers"
	"portal/internal/staff"
	"portal/internal/store"
)

// SharedStore is what replicas of one portal share: a PostgreSQL server
// on loopback holding the portal's database, and the two keys every
// replica is given (the secret key that seals two-factor secrets and the
// audit key ring), made as an operator makes them before the first start.
type SharedStore struct {
	PG                          *peers.Postgres
	DSN                         string
	SecretKeyFile, AuditKeyFile string
}

// StartSharedStore starts PostgreSQL with its cluster in dir/postgres
// (output to log, settings added to the server's, e.g.
// "shared_preload_libraries=pg_stat_statements") and creates the database
// "portal" there; the keys are dir/data/secret.key and dir/data/audit.key,
// made when missing.
func StartSharedStore(ctx context.Context, dir string, log io.Writer, settings ...string) (*SharedStore, error) {
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, fmt.Errorf("loadtest: %w", err)
	}
	// PostgreSQL's cluster lives inside, and runs as another account when
	// this process is root (peers.StartPostgres): that account must be
	// able to reach it (a folder from os.MkdirTemp is the owner's alone).
	// The keys stay in data, the owner's alone.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, fmt.Errorf("loadtest: %w", err)
	}
	s := &SharedStore{SecretKeyFile: filepath.Join(data, "secret.key"), AuditKeyFile: filepath.Join(data, "audit.key")}
	if _, err := app.LoadOrCreateKey(s.SecretKeyFile); err != nil {
		return nil, err
	}
	if _, _, err := app.LoadAuditKeys(app.AuditConfig{KeyFile: s.AuditKeyFile}); err != nil {
		return nil, err
	}
	pg, err := peers.StartPostgres(ctx, peers.PostgresOptions{Dir: filepath.Join(dir, "postgres"), Log: log, Settings: settings})
	if err != nil {
		return nil, err
	}
	if err := pg.CreateDatabase(ctx, "portal", ""); err != nil {
		pg.Stop()
		return nil, err
	}
	s.PG, s.DSN = pg, pg.URL("portal")
	return s, nil
}

// Flags are the flags that make a portal (serve or sandbox) a replica on
// this store.
func (s *SharedStore) Flags() []string {
	return []string{"-db", s.DSN, "-secret-key-file", s.SecretKeyFile, "-audit-key-file", s.AuditKeyFile}
}

// Open opens the database (migrating it when no replica has yet) with its
// audit trail and the sealer of two-factor secrets, as a replica has them.
func (s *SharedStore) Open(ctx context.Context) (*store.DB, *audit.Log, *staff.Sealer, error) {
	key, err := app.LoadOrCreateKey(s.SecretKeyFile)
	if err != nil {
		return nil, nil, nil, err
	}
	sealer, err := staff.NewSealer(key)
	if err != nil {
		return nil, nil, nil, err
	}
	ring, reload, err := app.LoadAuditKeys(app.AuditConfig{KeyFile: s.AuditKeyFile, Shared: true})
	if err != nil {
		return nil, nil, nil, err
	}
	db, err := store.Open(ctx, s.DSN)
	if err != nil {
		return nil, nil, nil, err
	}
	return db, audit.NewKeyed(db, nil, ring, reload), sealer, nil
}

// Stop stops PostgreSQL; the cluster stays in its folder.
func (s *SharedStore) Stop() error { return s.PG.Stop() }

// Replicas are several `portal-dev sandbox` processes serving one portal
// behind a Balancer on loopback: they share the sandbox folder (its
// identity directory and trail key), the database and keys (a
// SharedStore's Flags) and the AWS endpoint given in their flags. Each
// runs the sandbox's own stripe-mock, Stripe fixture server, mailpit and
// identity provider, which SIGKILL takes down with it. Replica i logs to
// replica-i.log in the folder.
type Replicas struct {
	URL string // the balancer's: where people reach the portal
	LB  *Balancer

	exe, dir string
	flags    []string
	srv      *http.Server

	mu       sync.Mutex
	replicas []*Sandbox
	logs     []*os.File
}

// StartReplicas starts the balancer, then n replicas one after the other
// (the first migrates the database and creates the first administrator),
// each with flags and -base-url the balancer's address.
func StartReplicas(ctx context.Context, exe, dir string, n int, flags ...string) (*Replicas, error) {
	if n < 1 {
		return nil, errors.New("loadtest: at least one replica")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("loadtest: balancer: %w", err)
	}
	r := &Replicas{URL: "http://" + ln.Addr().String(), exe: exe, dir: dir}
	r.flags = append(append([]string(nil), flags...), "-base-url", r.URL)
	var urls []string
	for i := range n {
		sb, log, err := r.start(ctx, i)
		if err != nil {
			ln.Close()
			r.Stop()
			return nil, err
		}
		r.replicas, r.logs = append(r.replicas, sb), append(r.logs, log)
		urls = append(urls, sb.URL)
	}
	if r.LB, err = NewBalancer(urls); err != nil {
		ln.Close()
		r.Stop()
		return nil, err
	}
	r.srv = &http.Server{Handler: r.LB, ReadHeaderTimeout: 10 * time.Second}
	go r.srv.Serve(ln)
	return r, nil
}

func (r *Replicas) start(ctx context.Context, i int) (*Sandbox, *os.File, error) {
	path := filepath.Join(r.dir, fmt.Sprintf("replica-%d.log", i+1))
	log, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("loadtest: %w", err)
	}
	sb, err := StartSandbox(ctx, r.exe, r.dir, log, r.flags...)
	if err != nil {
		log.Close()
		return nil, nil, fmt.Errorf("replica %d: %w (log in %s)", i+1, err, path)
	}
	return sb, log, nil
}

// N is the number of replicas.
func (r *Replicas) N() int { return len(r.replicas) }

// Replica is replica i's current process (numbered from 0).
func (r *Replicas) Replica(i int) *Sandbox {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.replicas[i]
}

// Kill sends SIGKILL to replica i and waits for it; the balancer passes
// over it from its next request.
func (r *Replicas) Kill(i int) { r.Replica(i).Kill() }

// Restart starts replica i again (after Kill) and points the balancer at
// it.
func (r *Replicas) Restart(ctx context.Context, i int) error {
	sb, log, err := r.start(ctx, i)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.replicas[i] = sb
	r.logs[i].Close()
	r.logs[i] = log
	r.mu.Unlock()
	return r.LB.SetReplica(i, sb.URL)
}

// Stop stops the balancer and every replica (SIGINT, as a deploy does).
func (r *Replicas) Stop() error {
	if r.srv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = r.srv.Shutdown(sctx)
		cancel()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for i, sb := range r.replicas {
		if err := sb.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("replica %d: %w", i+1, err))
		}
		r.logs[i].Close()
	}
	return errors.Join(errs...)
}
