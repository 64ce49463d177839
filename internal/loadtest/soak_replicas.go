package loadtest

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"portal/internal/audit"
	"portal/internal/staff"
	"portal/internal/store"
)

// replicaPortal is several sandbox replicas of one portal on PostgreSQL
// behind the balancer. A "kill" is a SIGKILL of the replica that holds the
// claim of a run while it applies; the others serve on, one of them
// resumes the run once its lease lapses and the load's deployer resumes
// it; once the run has ended, moto is searched for anything created
// twice, and only then is the killed replica started again.
type replicaPortal struct {
	exe, dir string
	n        int
	shared   *SharedStore
	pgLog    *os.File
	reps     *Replicas
	db       *store.DB // the soak's own view of the database, to see who holds a run
	peaks    []float64 // per replica, over its processes
	pids     [][]int   // per replica, its processes
	kills    []replicaKill
}

// replicaKill is what one SIGKILL of a replica did.
type replicaKill struct {
	replica int       // the one killed
	at      time.Time // when
	run     int64     // the run it was applying (0: none was)
	attempt int       // the run's attempt it was applying
	// What became of the run: the replica that claimed it again (-1:
	// none seen), how long after the kill, and whether the soak (not the
	// load) resumed it because the load had ended.
	resumedBy    int
	resumedAfter time.Duration
	bySoak       bool
	// What moto held once the run ended, before anything else disrupted
	// it (nil when the run did not end in time).
	dups   *Duplicates
	dupErr error
}

func (p *replicaPortal) prepare(ctx context.Context, n int) ([]*Account, string, error) {
	var err error
	if p.pgLog, err = os.Create(filepath.Join(p.dir, "soak-postgres.log")); err != nil {
		return nil, "", err
	}
	if p.shared, err = StartSharedStore(ctx, p.dir, p.pgLog); err != nil {
		return nil, "", err
	}
	db, log, sealer, err := p.shared.Open(ctx)
	if err != nil {
		return nil, "", err
	}
	defer db.Close()
	browsers, err := CreateAccounts(ctx, db, log, sealer, "browse", n, staff.Compliance, staff.Finance)
	if err != nil {
		return nil, "", err
	}
	token, err := CreateToken(ctx, db, log, sealer, "deployer@portal.local", staff.Ops)
	return browsers, token, err
}

func (p *replicaPortal) start(ctx context.Context, awsURL string) (string, error) {
	var err error
	if p.reps, err = StartReplicas(ctx, p.exe, p.dir, p.n, append(p.shared.Flags(), "-aws-endpoint", awsURL)...); err != nil {
		return "", err
	}
	if p.db, _, _, err = p.shared.Open(ctx); err != nil {
		return "", err
	}
	p.peaks, p.pids = make([]float64, p.n), make([][]int, p.n)
	for i := range p.n {
		p.pids[i] = []int{p.reps.Replica(i).PID()}
	}
	return p.reps.URL, nil
}

func (p *replicaPortal) describe() string {
	var rs []string
	for i := range p.n {
		sb := p.reps.Replica(i)
		rs = append(rs, fmt.Sprintf("replica %d at %s (pid %d)", i+1, sb.URL, sb.PID()))
	}
	return fmt.Sprintf("the balancer at %s in front of %s, on PostgreSQL", p.reps.URL, strings.Join(rs, ", "))
}

func (p *replicaPortal) killed() string {
	return "the replica applying a run (restarted once another replica has resumed and ended the run)"
}

func (p *replicaPortal) sampleRSS(i int) {
	if rss, err := p.reps.Replica(i).PeakRSS(); err == nil {
		p.peaks[i] = max(p.peaks[i], rss)
	}
}

// holderPID is the process id in a run's holder (host-PID-random, see
// the app's runner name), or 0.
func holderPID(holder string) int {
	parts := strings.Split(holder, "-")
	if len(parts) < 3 {
		return 0
	}
	pid, _ := strconv.Atoi(parts[len(parts)-2])
	return pid
}

// replicaOf is the replica whose current process is pid, or -1.
func (p *replicaPortal) replicaOf(pid int) int {
	for i := range p.n {
		if p.reps.Replica(i).PID() == pid {
			return i
		}
	}
	return -1
}

// applying waits up to limit for a run to be running on a replica with a
// quarter of its steps done, so the kill lands part-way through the apply
// (steps done, steps under way, steps to come); it returns the run, the
// attempt and the replica holding it, or run 0 when none got that far in
// time.
//
// Only a run created from now on counts: one created earlier may have
// begun before moto was restarted, in the same slot of the chaos plan,
// and a resumed run of that kind fails on what the restart lost, which
// says nothing of the replicas.
func (p *replicaPortal) applying(ctx context.Context, limit time.Duration) (run int64, attempt, replica int) {
	var before int64
	if err := p.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM runs`).Scan(&before); err != nil {
		return 0, 0, 0
	}
	deadline := time.Now().Add(limit)
	for ; time.Now().Before(deadline) && ctx.Err() == nil; sleep(ctx, 250*time.Millisecond) {
		var holder string
		err := p.db.QueryRowContext(ctx, `SELECT id, attempt, holder FROM runs WHERE state = 'running' AND id > ? ORDER BY id LIMIT 1`, before).Scan(&run, &attempt, &holder)
		if err != nil {
			continue
		}
		var steps, done int
		if err := p.db.QueryRowContext(ctx, `SELECT COUNT(*), COUNT(CASE WHEN state = 'done' THEN 1 END) FROM run_steps WHERE run_id = ?`, run).Scan(&steps, &done); err != nil {
			continue
		}
		if done == 0 || done < steps/4 {
			continue
		}
		if i := p.replicaOf(holderPID(holder)); i >= 0 {
			return run, attempt, i
		}
	}
	return 0, 0, 0
}

func (p *replicaPortal) kill(ctx, lctx context.Context, r *soakRun) error {
	for i := range p.n {
		p.sampleRSS(i)
	}
	run, attempt, victim := p.applying(lctx, 3*time.Minute)
	if lctx.Err() != nil {
		return nil
	}
	k := replicaKill{replica: victim, run: run, attempt: attempt, resumedBy: -1}
	sb := p.reps.Replica(victim)
	if run != 0 {
		var done, steps int
		_ = p.db.QueryRowContext(ctx, `SELECT COUNT(*), COUNT(CASE WHEN state = 'done' THEN 1 END) FROM run_steps WHERE run_id = ?`, run).Scan(&steps, &done)
		fmt.Fprintf(r.w, "soak: %s: SIGKILL replica %d (pid %d), which holds run #%d (attempt %d) and has done %d of its %d steps\n",
			r.since(), victim+1, sb.PID(), run, attempt, done, steps)
	} else {
		fmt.Fprintf(r.w, "soak: %s: SIGKILL replica %d (pid %d); no new run was applying within 3 minutes\n", r.since(), victim+1, sb.PID())
	}
	p.sampleRSS(victim)
	k.at = time.Now()
	p.reps.Kill(victim)

	if run != 0 {
		p.awaitResume(ctx, lctx, r, &k)
		if state := p.awaitEnd(ctx, k.run, 5*time.Minute); state != "" {
			fmt.Fprintf(r.w, "soak: %s: run #%d %s; looking in moto for resources created twice\n", r.since(), k.run, state)
			d, err := r.duplicates(ctx)
			k.dups, k.dupErr = &d, err
		} else {
			fmt.Fprintf(r.w, "soak: %s: run #%d did not end within 5 minutes\n", r.since(), k.run)
		}
	}
	if err := p.reps.Restart(ctx, victim); err != nil {
		p.kills = append(p.kills, k)
		return fmt.Errorf("restart replica %d after SIGKILL: %w", victim+1, err)
	}
	sb = p.reps.Replica(victim)
	p.pids[victim] = append(p.pids[victim], sb.PID())
	fmt.Fprintf(r.w, "soak: %s: replica %d restarted at %s (pid %d); the balancer sends it requests again\n", r.since(), victim+1, sb.URL, sb.PID())
	p.kills = append(p.kills, k)
	return nil
}

// awaitResume follows the killed replica's run until another replica
// holds it again (or it ended), for up to four minutes: its lease lapses,
// a replica marks it interrupted, the load's deployer resumes it and a
// replica claims it. When the load ends first, the soak resumes it, as
// the deployer would have.
func (p *replicaPortal) awaitResume(ctx, lctx context.Context, r *soakRun, k *replicaKill) {
	deadline := k.at.Add(4 * time.Minute)
	interrupted := false
	for time.Now().Before(deadline) && ctx.Err() == nil {
		var state, holder string
		var attempt int
		if err := p.db.QueryRowContext(ctx, `SELECT state, attempt, holder FROM runs WHERE id = ?`, k.run).Scan(&state, &attempt, &holder); err != nil {
			fmt.Fprintf(r.w, "soak: run #%d: %v\n", k.run, err)
			return
		}
		after := time.Since(k.at).Round(100 * time.Millisecond)
		switch {
		case state == "interrupted" && !interrupted:
			interrupted = true
			fmt.Fprintf(r.w, "soak: %s: run #%d marked interrupted by a surviving replica %s after the kill (its lease lapsed)\n", r.since(), k.run, after)
		case state == "interrupted" && lctx.Err() != nil && !k.bySoak:
			k.bySoak = true
			fmt.Fprintf(r.w, "soak: %s: the load ended before resuming run #%d: the soak resumes it\n", r.since(), k.run)
			if code := resumeRun(ctx, p.reps.URL, r.token, k.run); code != http.StatusAccepted && code != http.StatusOK {
				fmt.Fprintf(r.w, "soak: resume run #%d: status %d\n", k.run, code)
			}
		case state == "running" && attempt > k.attempt:
			k.resumedBy, k.resumedAfter = p.replicaOf(holderPID(holder)), after
			fmt.Fprintf(r.w, "soak: %s: run #%d resumed by replica %d (holder %s, attempt %d) %s after the kill\n", r.since(), k.run, k.resumedBy+1, holder, attempt, after)
			return
		case state != "running" && state != "interrupted" && state != "queued":
			fmt.Fprintf(r.w, "soak: %s: run #%d is %s %s after the kill, without the soak seeing a replica resume it\n", r.since(), k.run, state, after)
			return
		}
		sleep(ctx, 200*time.Millisecond)
	}
	fmt.Fprintf(r.w, "soak: run #%d was not resumed within 4 minutes of the kill\n", k.run)
}

// awaitEnd waits up to limit for run id to end and returns its state, or
// "" when it has not ended.
func (p *replicaPortal) awaitEnd(ctx context.Context, id int64, limit time.Duration) string {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline) && ctx.Err() == nil; sleep(ctx, time.Second) {
		var state string
		if err := p.db.QueryRowContext(ctx, `SELECT state FROM runs WHERE id = ?`, id).Scan(&state); err != nil {
			return ""
		}
		if state != "queued" && state != "running" && state != "interrupted" {
			return state
		}
	}
	return ""
}

func resumeRun(ctx context.Context, base, token string, id int64) int {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, fmt.Sprintf("%s/api/v1/runs/%d/resume", base, id), nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (p *replicaPortal) settle(context.Context, *soakRun) {
	for i := range p.n {
		p.sampleRSS(i)
	}
}

func (p *replicaPortal) stop(w io.Writer) {
	if p.reps == nil {
		return
	}
	for i := range p.n {
		p.sampleRSS(i)
	}
	if err := p.reps.Stop(); err != nil {
		fmt.Fprintf(w, "soak: the replicas stopped with %v\n", err)
	}
}

func (p *replicaPortal) open(ctx context.Context) (*store.DB, *audit.Log, error) {
	db, log, _, err := p.shared.Open(ctx)
	return db, log, err
}

func (p *replicaPortal) checks(ctx context.Context, db *store.DB, c *soakCounts, w io.Writer, check func(ok bool, format string, args ...any)) error {
	stats := p.reps.LB.Stats()
	for i := range p.n {
		fmt.Fprintf(w, "  replica %d: peak RSS %.0f MiB (pids %v); the balancer sent it %d requests answered, passed over it %d times (connection refused), %d cut (%d of them resent to another replica)\n",
			i+1, p.peaks[i], p.pids[i], stats[i].Answered, stats[i].PassedOver, stats[i].Cut, stats[i].Retried)
	}
	check(len(p.kills) > 0, "a replica was SIGKILLed while it applied (%d kill(s))", len(p.kills))
	for _, k := range p.kills {
		if k.run == 0 {
			check(false, "replica %d was killed while no run was applying", k.replica+1)
			continue
		}
		var state, msg string
		var attempt int
		if err := db.QueryRowContext(ctx, `SELECT state, attempt, error FROM runs WHERE id = ?`, k.run).Scan(&state, &attempt, &msg); err != nil && err != sql.ErrNoRows {
			return err
		}
		by := "no replica seen resuming it"
		if k.resumedBy >= 0 {
			by = fmt.Sprintf("replica %d resumed it %s after the kill", k.resumedBy+1, k.resumedAfter)
			if k.bySoak {
				by += " (the soak asked, the load having ended)"
			}
		}
		ended := state == "succeeded" || state == "failed"
		if state == "failed" {
			state += ": " + msg
		}
		check(k.resumedBy >= 0 && k.resumedBy != k.replica && ended, "run #%d, applying on replica %d when it was killed: %s; it ended %s after %d attempts",
			k.run, k.replica+1, by, state, attempt)
		switch {
		case k.dupErr != nil:
			check(false, "after run #%d ended, moto could be searched for duplicates: %v", k.run, k.dupErr)
		case k.dups == nil:
			check(false, "run #%d ended in time for moto to be searched for duplicates", k.run)
		default:
			for _, e := range k.dups.Errors {
				fmt.Fprintf(w, "    discovery error: %s\n", e)
			}
			for _, r := range k.dups.Repeated {
				fmt.Fprintf(w, "    repeated: %s\n", r)
			}
			check(len(k.dups.Repeated) == 0 && len(k.dups.Errors) == 0,
				"nothing applied twice by the kill and the resume: once run #%d ended, %d managed resources in moto, %d stack resources more than once, %d places not read",
				k.run, k.dups.Managed, len(k.dups.Repeated), len(k.dups.Errors))
		}
		// Its story is in the audit trail: the apply, the interruption
		// a survivor recorded, the resume, and its end.
		// (Targets are "run:ID stack:STACK", or "run:ID" alone.)
		var missing []string
		alone, withStack := fmt.Sprintf("run:%d", k.run), fmt.Sprintf("run:%d %%", k.run)
		for _, e := range []struct{ actions, target string }{
			{"run.apply", withStack}, {"run.interrupted", alone}, {"run.resume", alone}, {"run.succeeded|run.failed", withStack},
		} {
			n := 0
			for _, a := range strings.Split(e.actions, "|") {
				n += 1 - auditMissing(ctx, db, a, e.target)
			}
			if n == 0 {
				missing = append(missing, e.actions)
			}
		}
		if len(missing) == 0 {
			missing = []string{"none"}
		}
		check(missing[0] == "none", "audit complete for run #%d: its apply, interruption, resume and end are recorded (missing: %s)", k.run, strings.Join(missing, ", "))
	}
	check(c.signedOut.Load() == 0, "every signed-in client kept its session: %d sign-ins, %d pages sent a signed-in client back to sign in", c.signIns.Load(), c.signedOut.Load())

	// Requests the killed replica had taken when it died are cut; the
	// balancer resent the safe ones, the rest reached the client as 502.
	// Any other cut, or a 502 the balancer did not record, is a failure.
	cuts := p.reps.LB.Cuts()
	inFlight, resent, other := sortCuts(cuts, p.kills)
	if len(cuts) > 0 {
		byPath := map[string]int{}
		for _, c := range cuts {
			byPath[c.Method+" "+c.Path]++
		}
		fmt.Fprintf(w, "  requests the replicas took and dropped: %s\n", countsLine(byPath))
	}
	for _, cut := range other {
		fmt.Fprintf(w, "    cut not at a kill: replica %d %s %s at %s: %s\n", cut.Replica+1, cut.Method, cut.Path, cut.At.Format(time.TimeOnly), cut.Err)
	}
	check(len(other) == 0 && int64(inFlight) == c.cut.Load(),
		"requests cut by the kill: %d in flight at the killed replica (%d safe ones resent by the balancer and answered, %d answered 502, the clients counting %d); cut otherwise %d. (A safe request cut on a kept-alive connection is first resent by the balancer's HTTP transport on a new connection, which the killed replica refuses: it counts as passed over, and is answered by another replica)",
		inFlight+resent, resent, inFlight, c.cut.Load(), len(other))
	return nil
}

// countsLine is "a x3, b x1", most first.
func countsLine(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] || m[keys[i]] == m[keys[j]] && keys[i] < keys[j] })
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s x%d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// cutWindow is how long after a SIGKILL a request cut at the killed
// replica counts as one it had in flight: the kernel resets its
// connections at once, so the balancer sees them fail within
// milliseconds; the margin is for a loaded machine.
const cutWindow = 5 * time.Second

// sortCuts sorts the requests replicas took and did not answer: those the
// killed replica had in flight (cut there within cutWindow after the kill),
// answered 502 (inFlight) or resent by the balancer (resent), and any
// other, which is a failure.
func sortCuts(cuts []BalancerCut, kills []replicaKill) (inFlight, resent int, other []BalancerCut) {
	for _, cut := range cuts {
		atKill := false
		for _, k := range kills {
			if cut.Replica == k.replica && !cut.At.Before(k.at) && cut.At.Before(k.at.Add(cutWindow)) {
				atKill = true
			}
		}
		switch {
		case !atKill:
			other = append(other, cut)
		case cut.Retried:
			resent++
		default:
			inFlight++
		}
	}
	return inFlight, resent, other
}

func (p *replicaPortal) close() {
	if p.reps != nil {
		p.reps.Stop()
	}
	if p.db != nil {
		p.db.Close()
	}
	if p.shared != nil {
		p.shared.Stop()
	}
	if p.pgLog != nil {
		p.pgLog.Close()
	}
}
