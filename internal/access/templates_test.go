package access

import (
	"strings"
	"testing"
	"testing/fstest"

	staffroles "portal/blueprints/staff-roles"
)

// The shipped templates pass every rule: this is the review gate for
// blueprints/staff-roles/*.json.
func TestShippedTemplates(t *testing.T) {
	ts, err := LoadTemplates(staffroles.FS)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tm := range ts.All() {
		names = append(names, tm.Name)
	}
	want := "ops-readonly,ops-deployer,compliance-auditor,finance-billing,break-glass-admin"
	if got := strings.Join(names, ","); got != want {
		t.Errorf("templates %s, want %s", got, want)
	}
	dep, _ := ts.Get("ops-deployer")
	if dep.StandingIn("prod") {
		t.Error("ops-deployer may be held permanently in prod; want elevation only")
	}
	if got := dep.MaxHours("prod"); got != 4 {
		t.Errorf("ops-deployer prod max %d hours, want 4", got)
	}
}

func TestTemplateRules(t *testing.T) {
	good := func() Template {
		return Template{Name: "ops-readonly", Title: "t", Description: "d", PortalRoles: []string{"ops"}, Standing: []string{"dev"},
			MaxElevationHours: map[string]int{"dev": 8, "test": 8, "prod": 4},
			Policy: Policy{Version: "2012-10-17", Statement: []Statement{
				{Sid: "Read", Effect: "Allow", Action: stringList{"ec2:DescribeInstances"}, Resource: stringList{"*"},
					Condition: map[string]map[string]string{"Bool": {"aws:MultiFactorAuthPresent": "true"}}},
				{Sid: "Deny", Effect: "Deny", Action: patientReads, Resource: stringList{"*"}},
			}}}
	}
	if p := good().Check(); len(p) != 0 {
		t.Fatalf("good template: %v", p)
	}
	tests := []struct {
		name, want string
		edit       func(*Template)
	}{
		{"star", `action "*" grants everything`, func(t *Template) { t.Policy.Statement[0].Action = stringList{"*"} }},
		{"star star", `action "*:*" grants everything`, func(t *Template) { t.Policy.Statement[0].Action = stringList{"*:*"} }},
		{"service wildcard", `action "ec2:*" grants a whole service`, func(t *Template) { t.Policy.Statement[0].Action = stringList{"ec2:*"} }},
		{"no mfa", "must require MFA", func(t *Template) { t.Policy.Statement[0].Condition = nil }},
		{"mfa false", "must require MFA", func(t *Template) {
			t.Policy.Statement[0].Condition = map[string]map[string]string{"Bool": {"aws:MultiFactorAuthPresent": "false"}}
		}},
		{"not action", "NotAction in an Allow", func(t *Template) { t.Policy.Statement[0].NotAction = stringList{"iam:*"} }},
		{"patient data", "must deny s3:GetObject", func(t *Template) { t.Policy.Statement[1].Action = stringList{"dynamodb:GetItem"} }},
		{"prod too long", "max_elevation_hours.prod: 8 is more than 4", func(t *Template) { t.MaxElevationHours["prod"] = 8 }},
		{"missing env", "max_elevation_hours.test: required", func(t *Template) { delete(t.MaxElevationHours, "test") }},
		{"unknown portal role", `unknown role "root"`, func(t *Template) { t.PortalRoles = []string{"root"} }},
		{"break-glass standing", "break-glass is granted through elevation only", func(t *Template) { t.Name = BreakGlass }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tm := good()
			tc.edit(&tm)
			got := strings.Join(tm.Check(), "; ")
			if !strings.Contains(got, tc.want) {
				t.Errorf("problems %q, want one containing %q", got, tc.want)
			}
		})
	}
}

func TestLoadTemplatesNamesTheFile(t *testing.T) {
	fsys := fstest.MapFS{
		"wide.json": {Data: []byte(`{"name":"wide","title":"t","description":"d","portal_roles":["ops"],"standing":[],
			"max_elevation_hours":{"dev":1,"test":1,"prod":1},
			"policy":{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}}`)},
	}
	_, err := LoadTemplates(fsys)
	if err == nil || !strings.Contains(err.Error(), "wide.json") {
		t.Fatalf("err %v, want one naming wide.json", err)
	}
}
