package blueprints

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
)

func TestValidateCommand(t *testing.T) {
	broken := copyShipped(t, map[string][][2]string{
		"stacks/prod-eu.yaml": {{"    min: 3", "    min: 4"}},
		"stacks/test-eu.yaml": {{"    vpc_cidr: 10.26.0.0/16", "    vpc_cidr: 10.26.0.0/33"}},
		"stacks/prod-us.yaml": {{"    deletion_protection: true", "    deletion_protection: false"}},
	})
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  []string
	}{
		{"shipped", []string{shipped}, 0, []string{"ok: 1 architecture, 9 stacks, 1 layer, 3 environments, 0 errors, 0 warnings\n"}},
		{"one stack with architecture", []string{shipped + "/architecture.yaml", shipped + "/stacks/prod-eu.yaml"}, 0, []string{"ok: 1 architecture, 1 stacks, 0 errors, 0 warnings\n"}},
		{"stack alone", []string{shipped + "/stacks/dev-us.yaml"}, 0, []string{"ok: 0 architecture, 1 stacks, 0 errors, 0 warnings (no architecture given"}},
		{"broken", []string{broken}, 1, []string{
			fmt.Sprintf("stacks/prod-eu.yaml:%d:5: params.asg.min: must be <= desired (4 > 3)\n", lineOf(t, "stacks/prod-eu.yaml", "    min: 3")),
			fmt.Sprintf("stacks/prod-us.yaml:%d:5: db.deletion_protection: [prod-deletion-protection, blocking, 45 CFR 164.312(c)(1)] deletion protection is off in prod (stack prod-us)\n", lineOf(t, "stacks/prod-us.yaml", "    deletion_protection: true")),
			fmt.Sprintf("stacks/test-eu.yaml:%d:5: params.standby.vpc_cidr: \"10.26.0.0/33\" is not an IPv4 CIDR block\n", lineOf(t, "stacks/test-eu.yaml", "    vpc_cidr: 10.26.0.0/16")),
			"FAIL: 1 architecture, 9 stacks, 1 layer, 3 environments, 4 errors, 0 warnings\n",
		}},
		{"guardrail failures", []string{broken + "/architecture.yaml", broken + "/stacks/prod-us.yaml"}, 1, []string{
			"FAIL: 1 architecture, 1 stacks, 2 errors, 0 warnings\n",
		}},
		{"missing path", []string{"/nonexistent/blueprints"}, 1, []string{"/nonexistent/blueprints:0:0: stat /nonexistent/blueprints: no such file or directory"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := ValidateCommand(context.Background(), tt.args, &out, &errb)
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, out.String(), errb.String())
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

func TestValidateCommandUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := ValidateCommand(context.Background(), nil, &out, &errb); code != 2 || !strings.Contains(errb.String(), "usage: portal blueprint validate PATH...") {
		t.Errorf("no args: code %d, stderr %q", code, errb.String())
	}
}
