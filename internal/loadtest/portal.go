package loadtest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pquerna/otp/totp"

	"portal/internal/app"
	"portal/internal/audit"
	"portal/internal/staff"
	"portal/internal/store"
)

// Account is a staff account the harness signs in with: a password and a
// two-factor secret (every role uses two-factor). SignIn takes each code
// from a time step after the last one used, so one goroutine may sign an
// account in again; accounts are not shared between goroutines.
type Account struct {
	Email, Password, Secret string
	lastStep                int64
}

// loadPassword is the load accounts' password; they live only in a
// throw-away sandbox folder.
const loadPassword = "Sturdy-harness-2026-horse"

// PrepareAccounts creates, in the sandbox folder dir before the portal
// starts, n accounts holding roles (emails prefix-1@portal.local, …) with
// loadPassword set and two-factor enrolled, so clients can sign in through
// the forms without a first-sign-in step. Each client gets its own account:
// a two-factor code is accepted once per account and time step, and many
// clients sign in at once.
func PrepareAccounts(ctx context.Context, dir, prefix string, n int, roles ...staff.Role) ([]*Account, error) {
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, fmt.Errorf("loadtest: %w", err)
	}
	key, err := app.LoadOrCreateKey(filepath.Join(data, "secret.key"))
	if err != nil {
		return nil, err
	}
	sealer, err := staff.NewSealer(key)
	if err != nil {
		return nil, err
	}
	db, err := store.Open(ctx, filepath.Join(data, "portal.db"))
	if err != nil {
		return nil, err
	}
	defer db.Close()
	log, err := auditLog(db, data)
	if err != nil {
		return nil, err
	}
	return CreateAccounts(ctx, db, log, sealer, prefix, n, roles...)
}

// CreateAccounts creates, in the portal's database db (whose audit trail
// is log and whose two-factor secrets sealer seals), n accounts as
// PrepareAccounts does.
func CreateAccounts(ctx context.Context, db *store.DB, log *audit.Log, sealer *staff.Sealer, prefix string, n int, roles ...staff.Role) ([]*Account, error) {
	svc := staff.NewService(db, log, sealer, staff.DefaultConfig(), nil)
	by := audit.Entry{Actor: "portal bench"}
	out := make([]*Account, n)
	for i := range out {
		email := fmt.Sprintf("%s-%d@portal.local", prefix, i+1)
		u, otp, err := svc.Create(ctx, by, staff.NewUser{Email: email, Name: "Load generator", Roles: roles})
		if err != nil {
			return nil, fmt.Errorf("loadtest: create %s: %w", email, err)
		}
		if err := svc.ChangePassword(ctx, by, u.ID, otp, loadPassword, loadPassword); err != nil {
			return nil, fmt.Errorf("loadtest: set the password of %s: %w", email, err)
		}
		e, err := svc.BeginEnrolment(u)
		if err != nil {
			return nil, err
		}
		acct := &Account{Email: email, Password: loadPassword, Secret: e.Secret}
		code, err := acct.code(ctx)
		if err != nil {
			return nil, err
		}
		if err := svc.ConfirmEnrolment(ctx, by, u.ID, e.Secret, code); err != nil {
			return nil, fmt.Errorf("loadtest: two-factor of %s: %w", email, err)
		}
		out[i] = acct
	}
	return out, nil
}

// auditLog is the audit trail of the sandbox data folder data, sealed with
// its key ring (audit.key there, made now if the portal has not run yet),
// as the portal started on that folder will seal and verify it.
func auditLog(db *store.DB, data string) (*audit.Log, error) {
	ring, reload, err := app.LoadAuditKeys(app.AuditConfig{KeyFile: filepath.Join(data, "audit.key")})
	if err != nil {
		return nil, err
	}
	return audit.NewKeyed(db, nil, ring, reload), nil
}

// code returns the account's two-factor code for the first time step after
// the last one used, waiting for it to come when it is more than one step
// ahead (the portal accepts one step of clock skew).
func (a *Account) code(ctx context.Context) (string, error) {
	step := max(time.Now().Unix()/30, a.lastStep+1)
	if wait := time.Until(time.Unix((step-1)*30, 0)); wait > 0 {
		sleep(ctx, wait)
	}
	a.lastStep = step
	return totp.GenerateCode(a.Secret, time.Unix(step*30, 0))
}

// Sandbox is a `portal-dev sandbox` process: the portal, moto and stripe-mock.
type Sandbox struct {
	URL    string
	cmd    *exec.Cmd
	done   chan struct{} // closed once the process has exited
	result error         // how it exited, once done is closed
}

func (s *Sandbox) wait() error { <-s.done; return s.result }

// exited reports whether the process has exited.
func (s *Sandbox) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

var runningAt = regexp.MustCompile(`The portal is running at (http://\S+) `)

// StartSandbox runs exe (a portal binary) as `portal-dev sandbox` on a free
// port with its data in dir and any further flags, and returns once it
// serves. Its output goes to log.
func StartSandbox(ctx context.Context, exe, dir string, log io.Writer, flags ...string) (*Sandbox, error) {
	cmd := exec.Command(exe, append([]string{"sandbox", "-addr", "127.0.0.1:0", "-dir", dir}, flags...)...)
	cmd.Stderr = log
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("loadtest: start %s sandbox: %w", exe, err)
	}
	s := &Sandbox{cmd: cmd, done: make(chan struct{})}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			fmt.Fprintln(log, sc.Text())
			if m := runningAt.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
		s.result = cmd.Wait()
		close(s.done)
	}()
	select {
	case s.URL = <-found:
		return s, nil
	case <-s.done:
		return nil, fmt.Errorf("loadtest: the sandbox exited before serving: %v", s.result)
	case <-time.After(5 * time.Minute):
		s.Stop()
		return nil, fmt.Errorf("loadtest: the sandbox did not serve within 5 minutes")
	case <-ctx.Done():
		s.Stop()
		return nil, ctx.Err()
	}
}

// PID is the portal process's id.
func (s *Sandbox) PID() int { return s.cmd.Process.Pid }

// PeakRSS is the portal process's peak resident set size so far, in MiB
// (VmHWM from /proc; Linux only).
func (s *Sandbox) PeakRSS() (float64, error) { return peakRSS(s.PID()) }

func peakRSS(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("loadtest: peak RSS: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err != nil {
				return 0, fmt.Errorf("loadtest: peak RSS: %q: %w", line, err)
			}
			return kb / 1024, nil
		}
	}
	return 0, fmt.Errorf("loadtest: peak RSS: no VmHWM in /proc/%d/status", pid)
}

// Stop interrupts the sandbox, which stops moto and stripe-mock, and waits
// for it; after 30 seconds it is killed. Stopping one that has exited
// returns how it exited.
func (s *Sandbox) Stop() error {
	if s.exited() {
		return s.result
	}
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.done:
		return s.result
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		return s.wait()
	}
}
