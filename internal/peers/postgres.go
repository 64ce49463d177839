package peers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresBinDir is where Debian's postgresql-15 package installs initdb
// and postgres.
const PostgresBinDir = "/usr/lib/postgresql/15/bin"

// PostgresOptions configures StartPostgres. The zero value is ready to use.
type PostgresOptions struct {
	// BinDir holds initdb and postgres. Empty means $PORTAL_PG_BINDIR, or
	// else PostgresBinDir.
	BinDir string
	// Dir is the folder the cluster is created in (and kept). Empty means
	// a new temporary folder, removed by Stop.
	Dir string
	// Log receives the server's output. Nil discards it; the last few KiB
	// are quoted in start errors either way.
	Log io.Writer
	// StartTimeout bounds initdb and the wait until the server accepts
	// connections. Zero means 60s.
	StartTimeout time.Duration
	// Settings are extra server settings (name=value), e.g.
	// "shared_buffers=1GB". They come after the defaults, so they win.
	Settings []string
	// Durable keeps fsync and synchronous commits on. Tests and
	// benchmarks run without them: a crash of the machine loses their
	// data, which is thrown away anyway.
	Durable bool
}

// Postgres is a running PostgreSQL server on 127.0.0.1, in a cluster of
// its own whose superuser is "portal", trusted on loopback without a
// password.
type Postgres struct {
	port      int
	dir       string
	removeDir bool
	proc      *proc
}

// PostgresUser is the superuser of a cluster StartPostgres creates.
const PostgresUser = "portal"

// StartPostgres creates a cluster with initdb in a fresh folder and starts
// postgres on a free port of 127.0.0.1 (no Unix socket), returning once it
// accepts connections. PostgreSQL refuses to run as root: when this process
// is root, the cluster belongs to, and the server runs as, the "postgres"
// account Debian's package creates, or "nobody" where there is none.
// ctx bounds the start only; the server runs until Stop. Missing binaries
// give an error wrapping ErrNotInstalled.
func StartPostgres(ctx context.Context, opts PostgresOptions) (*Postgres, error) {
	bin := opts.BinDir
	if bin == "" {
		bin = os.Getenv("PORTAL_PG_BINDIR")
	}
	if bin == "" {
		bin = PostgresBinDir
	}
	for _, name := range []string{"initdb", "postgres"} {
		if _, err := os.Stat(filepath.Join(bin, name)); err != nil {
			return nil, fmt.Errorf("peers: start PostgreSQL: %w: %s (run `make tools`, which runs `apt-get install -y postgresql-15`, or set PORTAL_PG_BINDIR)",
				ErrNotInstalled, filepath.Join(bin, name))
		}
	}
	timeout := opts.StartTimeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	cred, err := postgresCredential()
	if err != nil {
		return nil, fmt.Errorf("peers: start PostgreSQL: %w", err)
	}
	pg := &Postgres{dir: opts.Dir}
	if pg.dir == "" {
		if pg.dir, err = os.MkdirTemp("", "portal-pg-"); err != nil {
			return nil, fmt.Errorf("peers: start PostgreSQL: %w", err)
		}
		pg.removeDir = true
	} else if err := os.MkdirAll(pg.dir, 0o700); err != nil {
		return nil, fmt.Errorf("peers: start PostgreSQL: %w", err)
	}
	fail := func(err error) (*Postgres, error) {
		if pg.removeDir {
			os.RemoveAll(pg.dir)
		}
		return nil, fmt.Errorf("peers: start PostgreSQL: %w", err)
	}
	if cred != nil {
		if err := os.Chown(pg.dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return fail(err)
		}
	}
	data := filepath.Join(pg.dir, "data")
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		ictx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		initdb := exec.CommandContext(ictx, filepath.Join(bin, "initdb"), "-D", data, "-U", PostgresUser, "--auth=trust",
			"--encoding=UTF8", "--locale=C", "--no-sync")
		initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		initdb.Dir = pg.dir
		if out, err := initdb.CombinedOutput(); err != nil {
			return fail(fmt.Errorf("initdb: %w; output:\n%s", err, out))
		}
	}
	settings := []string{
		"listen_addresses=127.0.0.1", "unix_socket_directories=", "max_connections=300",
		"shared_buffers=256MB", "log_min_messages=warning", "log_checkpoints=off",
	}
	if !opts.Durable {
		settings = append(settings, "fsync=off", "synchronous_commit=off", "full_page_writes=off")
	}
	settings = append(settings, opts.Settings...)
	p, ports, err := startProc(ctx, spec{
		name:  "postgres",
		path:  filepath.Join(bin, "postgres"),
		ports: 1,
		args: func(ports []int) []string {
			args := []string{"-D", data, "-p", strconv.Itoa(ports[0])}
			for _, s := range settings {
				args = append(args, "-c", s)
			}
			return args
		},
		check: func(ctx context.Context, ports []int) error {
			c, err := pgx.Connect(ctx, postgresURL(ports[0], "postgres"))
			if err != nil {
				return err
			}
			return c.Close(ctx)
		},
		out:     opts.Log,
		timeout: timeout,
		cred:    cred,
		// SIGINT is PostgreSQL's fast shutdown: it ends every session and
		// stops; SIGTERM would wait for clients to leave.
		stopSignal: syscall.SIGINT,
		dir:        pg.dir,
	})
	if err != nil {
		return fail(err)
	}
	pg.port, pg.proc = ports[0], p
	return pg, nil
}

// postgresCredential is the account the server runs as: nil (this
// process's) unless this process is root.
func postgresCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	var errs []string
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil {
			errs = append(errs, "account "+name+" has no numeric ids")
			continue
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
	}
	return nil, fmt.Errorf("PostgreSQL does not run as root and no account to run it as was found (%s)", strings.Join(errs, "; "))
}

func postgresURL(port int, db string) string {
	return fmt.Sprintf("postgres://%s@%s/%s?sslmode=disable", PostgresUser, hostPort(port), db)
}

// URL returns the address of database db on this server, e.g.
// "postgres://portal@127.0.0.1:41234/portal?sslmode=disable".
func (p *Postgres) URL(db string) string { return postgresURL(p.port, db) }

// Port is the server's TCP port on 127.0.0.1.
func (p *Postgres) Port() int { return p.port }

// Dir is the folder holding the cluster.
func (p *Postgres) Dir() string { return p.dir }

// CreateDatabase creates database name (from template when not empty).
func (p *Postgres) CreateDatabase(ctx context.Context, name, template string) error {
	c, err := pgx.Connect(ctx, p.URL("postgres"))
	if err != nil {
		return fmt.Errorf("peers: create database %s: %w", name, err)
	}
	defer c.Close(ctx)
	q := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize()
	if template != "" {
		q += " TEMPLATE " + pgx.Identifier{template}.Sanitize()
	}
	if _, err := c.Exec(ctx, q); err != nil {
		return fmt.Errorf("peers: create database %s: %w", name, err)
	}
	return nil
}

// DropDatabase drops database name, ending its sessions first.
func (p *Postgres) DropDatabase(ctx context.Context, name string) error {
	c, err := pgx.Connect(ctx, p.URL("postgres"))
	if err != nil {
		return fmt.Errorf("peers: drop database %s: %w", name, err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("peers: drop database %s: %w", name, err)
	}
	return nil
}

// Stop shuts the server down (fast shutdown, then SIGKILL after a grace
// period) and removes the cluster's folder when StartPostgres made it. It
// is idempotent.
func (p *Postgres) Stop() error {
	err := p.proc.stop()
	if p.removeDir {
		if rerr := os.RemoveAll(p.dir); rerr != nil && err == nil {
			err = rerr
		}
	}
	if err != nil {
		return fmt.Errorf("peers: stop PostgreSQL: %w", err)
	}
	return nil
}
