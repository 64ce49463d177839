package engine_test

import (
	"context"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"portal/internal/engine"
)

// With StackConfigs set, a stack's plans and runs reach AWS through it,
// told which stack and jurisdiction they work for (the portal assumes a
// session tagged with them there).
func TestStackConfigsGiveTheStacksSessions(t *testing.T) {
	h := newHarness(t)
	var mu sync.Mutex
	var asked []engine.StackInfo
	h.eng.StackConfigs = func(info engine.StackInfo, region string) (aws.Config, error) {
		mu.Lock()
		asked = append(asked, info)
		mu.Unlock()
		return h.cfg(region), nil
	}
	if _, err := h.eng.Plan(context.Background(), h.target(keyStack(true)), "apply"); err != nil {
		t.Fatal(err)
	}
	if len(asked) == 0 {
		t.Fatal("the plan did not ask StackConfigs for its AWS configuration")
	}
	for _, info := range asked {
		if info.ID != "dev-eu" || info.Jurisdiction != "eu" || info.Environment != "dev" {
			t.Errorf("asked for %+v, want dev-eu in eu", info)
		}
	}
}
