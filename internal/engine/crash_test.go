package engine_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	tagging "github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi"
	taggingtypes "github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi/types"

	"portal/internal/audit"
	"portal/internal/blueprints"
	"portal/internal/drivers"
	"portal/internal/engine"
	"portal/internal/peers"
	"portal/internal/peers/peertest"
	"portal/internal/store"
)

// chainStack is n keys, each depending on the one before, so a run of it
// goes one step at a time and can be killed half-way.
func chainStack(n int) *blueprints.Stack {
	s := &blueprints.Stack{ID: "dev-eu", Environment: "dev", Jurisdiction: "eu", Region: "eu-central-1", Version: "v1"}
	for i := 0; i < n; i++ {
		r := blueprints.Resource{ID: fmt.Sprintf("key_%02d", i), Type: "kms_key", Region: "eu-central-1",
			Fields: map[string]any{"data_class": "documents", "rotation": true, "alias": fmt.Sprintf("alias/chain-%02d", i)}}
		if i > 0 {
			prev := fmt.Sprintf("key_%02d", i-1)
			r.Fields["description"] = "after ${ref." + prev + ".arn}"
			r.DependsOn = []string{prev}
		}
		s.Resources = append(s.Resources, r)
	}
	return s
}

// crashLease is the lease of the runs in these tests: short, so that a
// killed runner's lease lapses within the test.
const crashLease = 2 * time.Second

// crashEngine builds an engine on the database at path, talking to moto at
// motoURL (its certificate signed by the CA in caFile) as account, with
// clock now.
func crashEngine(t testing.TB, path, motoURL, caFile, account string, now func() time.Time) (*engine.Engine, *store.DB) {
	db, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := engine.NewRegistry(drivers.All()...)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	source := func(env, region string) (aws.Config, error) {
		base, err := awsconfig.LoadDefaultConfig(context.Background(), awsconfig.WithRegion(region), awsconfig.WithBaseEndpoint(motoURL),
			awsconfig.WithCustomCABundle(bytes.NewReader(ca)),
			awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("testing", "testing", "")))
		if err != nil {
			return aws.Config{}, err
		}
		return peers.AssumeAccount(context.Background(), base, account, peertest.TestRole), nil
	}
	eng := engine.New(reg, source, db, audit.New(db, nil), slog.New(slog.NewTextHandler(io.Discard, nil)), now)
	eng.Parallelism = 1
	eng.Lease = crashLease
	return eng, db
}

// TestCrashChild is the process TestKilledMidApply kills: it runs queued
// runs until killed. It does nothing unless started by that test.
func TestCrashChild(t *testing.T) {
	path := os.Getenv("PORTAL_CRASH_DB")
	if path == "" {
		return // only meaningful as TestKilledMidApply's child process
	}
	eng, db := crashEngine(t, path, os.Getenv("PORTAL_CRASH_MOTO"), os.Getenv("PORTAL_CRASH_CA"), os.Getenv("PORTAL_CRASH_ACCOUNT"), nil)
	defer db.Close()
	if err := eng.RunNow(context.Background(), "child"); err != nil {
		t.Fatal(err)
	}
}

// TestKilledMidApply kills the process applying a plan with SIGKILL half-way,
// then recovers, resumes, and checks AWS: every resource exists once.
func TestKilledMidApply(t *testing.T) {
	m := peertest.MotoForTest(t)
	account := peertest.AccountForTest(t)
	path := peertest.StoreDSNForTest(t)
	eng, db := crashEngine(t, path, m.URL(), m.CAFile(), account, nil)
	defer db.Close()
	ctx := context.Background()
	const n = 16
	info := engine.StackInfo{ID: "dev-eu", Environment: "dev", Jurisdiction: "eu", Region: "eu-central-1", Version: "v1", AccountID: account}
	p, err := eng.Plan(ctx, engine.Target{Stack: chainStack(n), Info: info, Exceptions: testExceptions}, "apply")
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.SavePlan(ctx, by, p); err != nil {
		t.Fatal(err)
	}
	runID, err := eng.Apply(ctx, by, p.ID)
	if err != nil {
		t.Fatal(err)
	}

	child := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	child.Env = append(os.Environ(), "PORTAL_CRASH_DB="+path, "PORTAL_CRASH_MOTO="+m.URL(), "PORTAL_CRASH_CA="+m.CAFile(), "PORTAL_CRASH_ACCOUNT="+account)
	child.Stdout, child.Stderr = io.Discard, io.Discard
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	var done int
	for done < 4 {
		if time.Now().After(deadline) {
			child.Process.Kill()
			t.Fatalf("the child finished %d steps in 60s", done)
		}
		_ = db.QueryRowContext(ctx, `SELECT COUNT(*) FROM run_steps WHERE run_id = ? AND state = 'done'`, runID).Scan(&done)
		time.Sleep(2 * time.Millisecond)
	}
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	run, _, _ := eng.GetRun(ctx, runID)
	if run.State != engine.RunRunning {
		t.Fatalf("after SIGKILL the run is %s, want still marked running (its lease not yet lapsed)", run.State)
	}
	t.Logf("killed the applying process after %d of %d steps", done, n)

	// Once the dead runner's lease lapses (on the database's clock), a
	// runner on another handle marks the run interrupted.
	later, db2 := crashEngine(t, path, m.URL(), m.CAFile(), account, nil)
	defer db2.Close()
	if k, err := later.Recover(ctx); err != nil || k != 0 {
		t.Fatalf("Recover before the lease lapsed: %d runs, %v; want 0", k, err)
	}
	recovered := 0
	for give := time.Now().Add(3 * crashLease); recovered == 0 && time.Now().Before(give); time.Sleep(100 * time.Millisecond) {
		if recovered, err = later.Recover(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if recovered != 1 {
		t.Fatalf("Recover after the lease lapsed: %d runs, want 1", recovered)
	}
	if run, _, _ = later.GetRun(ctx, runID); run.State != engine.RunInterrupted {
		t.Fatalf("after recovery the run is %s, want interrupted", run.State)
	}
	if err := eng.Resume(ctx, by, runID); err != nil {
		t.Fatal(err)
	}
	if err := eng.RunNow(ctx, "restarted"); err != nil {
		t.Fatal(err)
	}
	run, steps, _ := eng.GetRun(ctx, runID)
	if run.State != engine.RunSucceeded {
		for _, s := range steps {
			t.Logf("%s %s %s", s.ResourceID, s.State, s.Error)
		}
		t.Fatalf("resumed run %s (%s), want succeeded", run.State, run.Error)
	}

	// Every key exists exactly once in AWS.
	c := tagging.NewFromConfig(peers.AssumeAccount(ctx, m.AWSConfig("eu-central-1"), account, peertest.TestRole))
	out, err := c.GetResources(ctx, &tagging.GetResourcesInput{ResourceTypeFilters: []string{"kms:key"},
		TagFilters: []taggingtypes.TagFilter{{Key: aws.String(engine.TagStack), Values: []string{"dev-eu"}}}})
	if err != nil {
		t.Fatal(err)
	}
	perResource := map[string]int{}
	for _, r := range out.ResourceTagMappingList {
		for _, tag := range r.Tags {
			if aws.ToString(tag.Key) == engine.TagResource {
				perResource[aws.ToString(tag.Value)]++
			}
		}
	}
	if len(perResource) != n {
		t.Errorf("%d distinct keys tagged, want %d", len(perResource), n)
	}
	for id, k := range perResource {
		if k != 1 {
			t.Errorf("%s exists %d times in AWS, want once", id, k)
		}
	}
}
