package blueprints

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const shipped = "../../blueprints"

func loadShipped(t testing.TB) *Set {
	t.Helper()
	set, ds := LoadDir(shipped)
	for _, d := range ds {
		t.Errorf("%s", d)
	}
	return set
}

func TestShippedBlueprintsValidateClean(t *testing.T) {
	set := loadShipped(t)
	if set.Architecture == nil {
		t.Fatal("no architecture loaded")
	}
	want := []string{"dev-us", "dev-eu", "dev-apac", "test-us", "test-eu", "test-apac", "prod-us", "prod-eu", "prod-apac"}
	if got := set.StackIDs(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("stacks = %v, want %v", got, want)
	}
	for _, id := range want {
		st, ds := set.Resolve(id)
		if st == nil {
			t.Fatalf("Resolve(%s) = nil, %v", id, ds)
		}
		if len(st.TopologicalOrder()) != len(st.Resources) {
			t.Errorf("%s: topological order misses resources", id)
		}
	}
}

func TestSchemaCopyIdentical(t *testing.T) {
	ed, err := os.ReadFile(filepath.Join(shipped, "schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ed, SchemaJSON()) {
		t.Fatal("blueprints/schema.json differs from internal/blueprints/schema.json: cp internal/blueprints/schema.json blueprints/schema.json")
	}
}
