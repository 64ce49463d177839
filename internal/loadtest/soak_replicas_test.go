package loadtest

import (
	"testing"
	"time"
)

// TestHolderPID: the process id is read from a run's holder as the app
// names its runner (host-PID-random), host names with dashes included.
func TestHolderPID(t *testing.T) {
	for holder, want := range map[string]int{
		"box-4242-0a1b2c3d":          4242,
		"ip-10-0-1-7-31337-deadbeef": 31337,
		"":                           0,
		"restarted":                  0,
	} {
		if got := holderPID(holder); got != want {
			t.Errorf("holderPID(%q) = %d, want %d", holder, got, want)
		}
	}
}

// TestSortCuts: of the requests replicas dropped, only those the killed
// replica dropped within cutWindow of its kill are its in-flight ones
// (resent when safe); a cut before the kill, long after it, or at another
// replica is a failure.
func TestSortCuts(t *testing.T) {
	kill := time.Date(2026, 12, 7, 14, 0, 0, 0, time.UTC)
	kills := []replicaKill{{replica: 1, at: kill}}
	cuts := []BalancerCut{
		{Replica: 1, At: kill.Add(2 * time.Millisecond), Method: "POST"},
		{Replica: 1, At: kill.Add(3 * time.Millisecond), Method: "GET", Retried: true},
		{Replica: 1, At: kill.Add(time.Second), Method: "POST"},
		{Replica: 1, At: kill.Add(-time.Second), Method: "POST"},           // before the kill
		{Replica: 1, At: kill.Add(cutWindow + time.Second), Method: "GET"}, // long after
		{Replica: 0, At: kill.Add(time.Millisecond), Method: "POST"},       // the survivor
	}
	inFlight, resent, other := sortCuts(cuts, kills)
	if inFlight != 2 || resent != 1 || len(other) != 3 {
		t.Fatalf("in flight %d, resent %d, other %d; want 2, 1, 3", inFlight, resent, len(other))
	}
	for _, c := range other {
		if c.Replica == 1 && !c.At.Before(kill) && c.At.Before(kill.Add(cutWindow)) {
			t.Errorf("%+v sorted as a failure, but it was in flight at the kill", c)
		}
	}
}

// TestCutByBalancer: the soak's clients tell the balancer's 502 for a
// dropped request from any other 502.
func TestCutByBalancer(t *testing.T) {
	if !cutByBalancer(502, []byte(balancerCutMessage+"replica 127.0.0.1:1 took the request and failed: EOF")) {
		t.Error("the balancer's 502 not recognized")
	}
	if cutByBalancer(502, []byte("Bad Gateway")) || cutByBalancer(500, []byte(balancerCutMessage)) {
		t.Error("another answer taken for the balancer's")
	}
}

// TestChaosPlan: one sandbox has moto restarted, then the portal killed,
// in each slot; the replicas' soak kills first, a third of a slot earlier,
// and restarts moto after.
func TestChaosPlan(t *testing.T) {
	d := 10 * time.Minute
	single := chaosPlan(d, 1, 1, false)
	if len(single) != 2 || single[0] != (chaos{5 * time.Minute, "moto"}) || single[1] != (chaos{5 * time.Minute, "kill"}) {
		t.Errorf("one sandbox: %v, want moto then kill at 5m", single)
	}
	reps := chaosPlan(d, 1, 1, true)
	want := []chaos{{5*time.Minute - d/6, "kill"}, {5 * time.Minute, "moto"}}
	if len(reps) != 2 || reps[0] != want[0] || reps[1] != want[1] {
		t.Errorf("replicas: %v, want %v", reps, want)
	}
	if got := chaosPlan(d, 2, 1, true); len(got) != 3 || got[0].kind != "kill" || got[1].kind != "moto" || got[2].kind != "kill" || !(got[0].at < got[1].at && got[1].at < got[2].at) {
		t.Errorf("replicas, two kills and one moto restart: %v, want kill, moto, kill in order", got)
	}
}
