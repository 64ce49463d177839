package engine_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"portal/internal/audit"
	"portal/internal/blueprints"
	"portal/internal/engine"
	"portal/internal/store"
)

// memDriver is an in-memory driver: every resource exists with the fields
// it is asked for. It stands in for AWS only to measure the engine's own
// planning work on graphs far larger than any emulator holds.
type memDriver struct{}

func (memDriver) Type() string       { return "mem" }
func (memDriver) ForceNew() []string { return nil }
func (memDriver) Read(_ context.Context, env *engine.Env, d *engine.Desired, _ *engine.Prior) (*engine.Live, error) {
	return &engine.Live{PhysicalID: d.ID, Region: d.Region, Outputs: map[string]string{"arn": "arn:mem:" + d.ID, "id": d.ID},
		Fields: d.Fields, Tags: d.Tags}, nil
}
func (m memDriver) Create(ctx context.Context, env *engine.Env, d *engine.Desired) (*engine.Live, error) {
	return m.Read(ctx, env, d, nil)
}
func (m memDriver) Update(ctx context.Context, env *engine.Env, d *engine.Desired, _ *engine.Live, _ []engine.FieldChange) (*engine.Live, error) {
	return m.Read(ctx, env, d, nil)
}
func (memDriver) Delete(context.Context, *engine.Env, *engine.Live) error { return nil }

// BenchmarkPlan10000 plans a graph of 10,000 resources in layers of 100,
// each resource referring to two in the layer before.
func BenchmarkPlan10000(b *testing.B) {
	db, err := store.Open(context.Background(), filepath.Join(b.TempDir(), "portal.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	reg, _ := engine.NewRegistry(memDriver{})
	source := func(string, string) (aws.Config, error) { return aws.Config{}, nil }
	eng := engine.New(reg, source, db, audit.New(db, nil), slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	var resources []blueprints.Resource
	const width = 100
	for i := 0; i < 10000; i++ {
		r := blueprints.Resource{ID: fmt.Sprintf("r%05d", i), Type: "mem", Region: "eu-central-1", Fields: map[string]any{"size": int64(i % 7), "name": fmt.Sprintf("res-%d", i)}}
		if i >= width {
			a, c := fmt.Sprintf("r%05d", i-width), fmt.Sprintf("r%05d", i-width+(i%width+1)%width)
			r.Fields["after"] = "${ref." + a + ".arn}"
			r.Fields["with"] = []any{"${ref." + c + ".id}"}
			r.DependsOn = []string{a, c}
			if a > c {
				r.DependsOn = []string{c, a}
			}
		}
		resources = append(resources, r)
	}
	st := blueprints.NewStack("dev-eu", "dev", "eu", "eu-central-1", "v1", resources)
	info := engine.StackInfo{ID: st.ID, Environment: "dev", Jurisdiction: "eu", Region: st.Region, Version: "v1"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p, err := eng.Plan(context.Background(), engine.Target{Stack: st, Info: info}, "apply")
		if err != nil {
			b.Fatal(err)
		}
		if len(p.Changes) != 10000 || p.HasChanges() {
			b.Fatalf("plan of 10,000 existing resources: %d changes, has changes %v", len(p.Changes), p.HasChanges())
		}
	}
}
