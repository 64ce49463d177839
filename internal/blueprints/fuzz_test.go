package blueprints

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"portal/internal/guardrails"
)

// FuzzParse checks that no input makes Parse panic and that every diagnostic
// it returns has a position.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"architecture.yaml", "stacks/prod-eu.yaml", "stacks/dev-apac.yaml"} {
		if b, err := os.ReadFile(filepath.Join(shipped, name)); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, ds := Parse("stacks/prod-eu.yaml", data)
		for _, d := range ds {
			if d.File == "" || d.Line < 1 || d.Message == "" {
				t.Errorf("diagnostic without position or message: %#v", d)
			}
			_ = d.String()
		}
		if file != nil {
			_ = Digest([]*File{file})
		}
	})
}

// FuzzValidate resolves a fuzzed architecture with a fuzzed stack file and
// runs the guardrails on the result: nothing may panic, and a stack that
// resolves has no error diagnostics.
func FuzzValidate(f *testing.F) {
	arch, err := os.ReadFile(filepath.Join(shipped, "architecture.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range []string{"prod-eu", "dev-us", "test-apac"} {
		if b, err := os.ReadFile(filepath.Join(shipped, "stacks", name+".yaml")); err == nil {
			f.Add(arch, b)
		}
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, archData, stackData []byte) {
		af, _ := Parse("architecture.yaml", archData)
		var files []*File
		if af != nil {
			files = append(files, af)
		}
		// Parse once to learn the stack id, then under its proper file name.
		var id string
		if probe, _ := Parse("probe.yaml", stackData); probe != nil && probe.Kind == KindStack {
			id = probe.Params.Stack
			if sf, _ := Parse("stacks/"+id+".yaml", stackData); sf != nil && !sf.hasErrors {
				files = append(files, sf)
			} else {
				id = ""
			}
		}
		set, _ := NewSet(files)
		if set.Architecture == nil || id == "" {
			return
		}
		st, ds := set.Resolve(id)
		if st == nil {
			return
		}
		if HasErrors(ds) {
			t.Fatalf("resolved stack with errors: %v", ds)
		}
		_ = st.TopologicalOrder()
		rep := guardrails.Evaluate(st, nil, now)
		for _, r := range rep.Results {
			_ = r.String()
		}
	})
}

func BenchmarkValidateAllStacks(b *testing.B) {
	for b.Loop() {
		set, ds := LoadDir(shipped)
		if HasErrors(ds) {
			b.Fatal(ds)
		}
		now := time.Now()
		for _, id := range set.StackIDs() {
			st, _ := set.Resolve(id)
			if rep := guardrails.Evaluate(st, nil, now); !rep.OK() {
				b.Fatal(rep.Blocking())
			}
		}
	}
}
