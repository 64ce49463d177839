package drivers_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"portal/internal/engine"
	"portal/internal/peers"
	"portal/internal/peers/peertest"
)

func TestMain(m *testing.M) { peertest.Main(m) }

// newEnv returns an Env for a fresh AWS account in moto, so tests never
// see each other's resources. Its log lines go to t.Log.
func newEnv(t *testing.T, stackRegion string) *engine.Env {
	t.Helper()
	m := peertest.MotoForTest(t)
	account := peertest.AccountForTest(t)
	var mu sync.Mutex
	cfgs := map[string]aws.Config{}
	return &engine.Env{
		Stack: engine.StackInfo{ID: "dev-eu", Environment: "dev", Jurisdiction: "eu", Region: stackRegion, Version: "v1", AccountID: account},
		Config: func(region string) aws.Config {
			mu.Lock()
			defer mu.Unlock()
			if c, ok := cfgs[region]; ok {
				return c
			}
			c := peers.AssumeAccount(context.Background(), m.AWSConfig(region), account, peertest.TestRole)
			cfgs[region] = c
			return c
		},
		Logf: func(format string, args ...any) { t.Logf(format, args...) },
	}
}

func ownershipTags(env *engine.Env, id string) map[string]string {
	return map[string]string{
		engine.TagStack: env.Stack.ID, engine.TagResource: id, engine.TagVersion: env.Stack.Version, engine.TagManaged: "portal",
	}
}

// lifecycle drives one resource through what the engine does with it:
// absent, created, found again without a record (by name or tags), no
// differences, updated in place, read back changed, deleted, absent.
// update changes d in place and returns the field paths it changed.
func lifecycle(t *testing.T, env *engine.Env, drv engine.Driver, d *engine.Desired, update func(d *engine.Desired) []string) *engine.Live {
	t.Helper()
	ctx := context.Background()
	if d.Tags == nil {
		d.Tags = ownershipTags(env, d.ID)
	}
	if _, err := drv.Read(ctx, env, d, nil); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("Read before Create: err %v, want ErrNotFound", err)
	}
	created, err := drv.Create(ctx, env, d)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if created.PhysicalID == "" {
		t.Fatalf("Create returned no physical id: %+v", created)
	}
	if !created.OwnedBy(env.Stack.ID) {
		t.Errorf("created resource tags %v lack %s=%s", created.Tags, engine.TagStack, env.Stack.ID)
	}
	found, err := drv.Read(ctx, env, d, nil)
	if err != nil {
		t.Fatalf("Read without a record (state lost): %v", err)
	}
	if found.PhysicalID != created.PhysicalID {
		t.Errorf("Read without a record found %s, want %s", found.PhysicalID, created.PhysicalID)
	}
	if ch := engine.Diff(d, found, drv.ForceNew()); len(ch) != 0 {
		t.Errorf("right after Create the diff is %+v, want none", ch)
	}
	prior := &engine.Prior{PhysicalID: created.PhysicalID, Region: created.Region, Outputs: created.Outputs}
	if update != nil {
		paths := update(d)
		live, err := drv.Read(ctx, env, d, prior)
		if err != nil {
			t.Fatalf("Read before Update: %v", err)
		}
		changes := engine.Diff(d, live, drv.ForceNew())
		if got := changePaths(changes); fmt.Sprint(got) != fmt.Sprint(paths) {
			t.Fatalf("diff after changing %v lists %v (%+v)", paths, got, changes)
		}
		for _, c := range changes {
			if c.Replace {
				t.Fatalf("change of %s needs a replacement, want in place", c.Path)
			}
		}
		if _, err := drv.Update(ctx, env, d, live, changes); err != nil {
			t.Fatalf("Update: %v", err)
		}
		after, err := drv.Read(ctx, env, d, prior)
		if err != nil {
			t.Fatalf("Read after Update: %v", err)
		}
		if ch := engine.Diff(d, after, drv.ForceNew()); len(ch) != 0 {
			t.Errorf("after Update the diff is %+v, want none", ch)
		}
	}
	final, err := drv.Read(ctx, env, d, prior)
	if err != nil {
		t.Fatalf("Read before Delete: %v", err)
	}
	if err := drv.Delete(ctx, env, final); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := drv.Read(ctx, env, d, prior); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("Read after Delete: err %v, want ErrNotFound", err)
	}
	return final
}

func changePaths(cs []engine.FieldChange) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Path
	}
	return out
}
