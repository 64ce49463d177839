package peers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// stopGrace is how long Stop waits after SIGTERM before it sends SIGKILL.
const stopGrace = 5 * time.Second

// proc is a peer process running in its own process group.
type proc struct {
	name string
	cmd  *exec.Cmd
	tail *tailBuffer
	done chan struct{} // closed once cmd.Wait has returned
	sig  syscall.Signal

	stopOnce sync.Once
	stopErr  error
}

// spec describes how to start one peer and how to tell it is ready.
type spec struct {
	name  string
	path  string
	args  func(ports []int) []string // command-line arguments for the given free ports
	ports int                        // how many free ports the peer needs
	ready func(ports []int) string   // URL that answers once the peer is up
	// check, when set, replaces ready: it returns nil once the peer is up.
	check  func(ctx context.Context, ports []int) error
	client *http.Client        // asks the ready URL; nil means a plain client
	cred   *syscall.Credential // user to run as; nil for this process's
	// stopSignal asks the peer to stop; zero means SIGTERM.
	stopSignal syscall.Signal
	dir        string    // working directory; "" for this process's
	out        io.Writer // receives the peer's stdout and stderr; may be nil
	env        []string  // extra environment variables
	timeout    time.Duration
}

// startProc starts the peer and waits until its ready URL answers any HTTP
// response. ctx bounds the start only: the process runs until stop. A peer
// that exits before it is ready (for instance because another process took its
// port) is retried a few times on fresh ports.
func startProc(ctx context.Context, s spec) (*proc, []int, error) {
	const attempts = 3
	var lastErr error
	for i := 0; i < attempts; i++ {
		ports, err := freePorts(s.ports)
		if err != nil {
			return nil, nil, err
		}
		p, err := launch(s, ports)
		if err != nil {
			return nil, nil, err
		}
		if s.check != nil {
			err = p.waitCheck(ctx, func(ctx context.Context) error { return s.check(ctx, ports) }, s.timeout)
		} else {
			err = p.waitReady(ctx, s.client, s.ready(ports), s.timeout)
		}
		if err == nil {
			return p, ports, nil
		}
		p.stop()
		lastErr = err
		if !errors.Is(err, errExited) {
			break
		}
	}
	return nil, nil, lastErr
}

func launch(s spec, ports []int) (*proc, error) {
	tail := &tailBuffer{max: 8 << 10}
	var out io.Writer = tail
	if s.out != nil {
		out = io.MultiWriter(tail, s.out)
	}
	cmd := exec.Command(s.path, s.args(ports)...)
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = sysProcAttr()
	cmd.SysProcAttr.Credential = s.cred
	cmd.Dir = s.dir
	if len(s.env) > 0 {
		cmd.Env = append(os.Environ(), s.env...)
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	sig := s.stopSignal
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	p := &proc{name: s.name, cmd: cmd, tail: tail, done: make(chan struct{}), sig: sig}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

var errExited = errors.New("exited before it was ready")

func (p *proc) waitReady(ctx context.Context, client *http.Client, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if client == nil {
		client = &http.Client{Timeout: time.Second}
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%w (%s); output:\n%s", errExited, p.cmd.ProcessState, p.tail)
		case <-ctx.Done():
			return fmt.Errorf("not ready at %s after %s: %w; output:\n%s", url, timeout, ctx.Err(), p.tail)
		case <-tick.C:
		}
	}
}

// waitCheck waits until check returns nil, the process exits, or timeout.
func (p *proc) waitCheck(ctx context.Context, check func(context.Context) error, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		cctx, ccancel := context.WithTimeout(ctx, time.Second)
		last = check(cctx)
		ccancel()
		if last == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%w (%s); output:\n%s", errExited, p.cmd.ProcessState, p.tail)
		case <-ctx.Done():
			return fmt.Errorf("not ready after %s: %v; output:\n%s", timeout, last, p.tail)
		case <-tick.C:
		}
	}
}

// stop terminates the process group: its stop signal (SIGTERM unless the
// spec says otherwise), then SIGKILL after stopGrace.
// It is idempotent and safe for concurrent use.
func (p *proc) stop() error {
	p.stopOnce.Do(func() {
		pgid := p.cmd.Process.Pid
		if err := syscall.Kill(-pgid, p.sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			p.stopErr = fmt.Errorf("signal %s: %w", p.name, err)
		}
		select {
		case <-p.done:
		case <-time.After(stopGrace):
		}
		// Kill the group whatever happened: it also reaps stragglers that
		// outlived the leader.
		if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) && p.stopErr == nil {
			p.stopErr = fmt.Errorf("kill %s: %w", p.name, err)
		}
		<-p.done
	})
	return p.stopErr
}

// freePorts returns n distinct ports that were free on 127.0.0.1 a moment ago.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func hostPort(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// tailBuffer keeps the last max bytes written to it, for error messages.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(b), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
