package analysis_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"portal/internal/analysis"
	"portal/internal/blueprints"
	"portal/internal/regions"
)

// edited loads the shipped blueprints with file rel's text edited by
// replacing old with new (each must occur).
func edited(t *testing.T, edits ...[3]string) *blueprints.Set {
	t.Helper()
	var files []*blueprints.File
	err := filepath.WalkDir(shipped, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yaml") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(shipped, p)
		text := string(b)
		for _, e := range edits {
			if e[0] != rel {
				continue
			}
			if !strings.Contains(text, e[1]) {
				t.Fatalf("%s lacks %q", rel, e[1])
			}
			text = strings.Replace(text, e[1], e[2], -1)
		}
		f, ds := blueprints.Parse("blueprints/"+rel, []byte(text))
		if len(ds) > 0 {
			t.Fatalf("parse %s: %v", rel, ds)
		}
		files = append(files, f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	set, ds := blueprints.NewSet(files)
	if len(ds) > 0 {
		t.Fatal(ds)
	}
	return set
}

// failures returns "stack rule resource: message" for every failed hop.
func failures(rep analysis.Report) []string {
	var out []string
	for _, c := range rep.Checks {
		for _, rule := range analysis.Rules() {
			for _, f := range rep.Findings(rule, c.Stack) {
				s := c.Stack + " " + rule + " " + f.Resource + ": " + f.Message
				if c.Rule == rule && !contains(out, s) {
					out = append(out, s)
				}
			}
		}
	}
	return out
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// Each mutation of the shipped estate that would leave the service dead
// on AWS is caught, naming the resource, the hop and the fix.
func TestMutationsOfTheShippedEstateAreCaught(t *testing.T) {
	cases := []struct {
		name  string
		edits [][3]string
		want  []string // substrings of one failure each, in prod-eu
	}{
		{"drop the endpoints", [][3]string{
			{"architecture.yaml", "    services: [kms, sns, textract, logs]\n    subnet_tier: private\n    security_groups: [\"${ref.endpoints_sg.id}\"]", "    services: [sns]\n    subnet_tier: private\n    security_groups: [\"${ref.endpoints_sg.id}\"]"},
			{"architecture.yaml", "    services: [s3, dynamodb]\n    route_tables: [private]\n  api_endpoints:", "    services: [dynamodb]\n    route_tables: [private]\n  api_endpoints:"},
		}, []string{
			"prod-eu works-network api_endpoints: app_asg -> the AWS APIs app_role may call (eu-central-1): app_asg -> KMS in eu-central-1 fails: the private subnets have no route to KMS: no endpoint for it in vpc and no NAT route. Fix: add kms to the services of the VPC's Interface endpoints",
			"prod-eu works-network gateway_endpoints: app_asg -> the AWS APIs app_role may call (eu-central-1): app_asg -> S3 in eu-central-1 fails",
			"Fix: add s3 to the services of gateway_endpoints",
		}},
		{"drop the database egress", [][3]string{
			{"architecture.yaml", "      - {protocol: tcp, from_port: 5432, to_port: 5432, source: \"${ref.db_sg.id}\", description: the database}\n", ""},
		}, []string{
			"prod-eu works-network app_egress_sg: Patients -> CloudFront -> alb -> app -> database (eu-central-1): app_asg -> db (prod-eu, eu-central-1) :5432 fails: no security group of the app's instances (app_sg, app_ingress_sg, app_egress_sg) lets them open tcp 5432 to the database's groups (db_sg). Fix: add {protocol: tcp, from_port: 5432, to_port: 5432, source: ${ref.db_sg.id}} to the egress",
		}},
		{"remove CloudFront from the assets key policy", [][3]string{
			{"layer.yaml", "      - sid: CloudFrontReadsAssets\n        principal: {service: cloudfront.amazonaws.com}", "      - sid: CloudFrontReadsAssets\n        principal: {service: s3.amazonaws.com}"},
		}, []string{
			"prod-global works-keys assets_key_policy: Who uses assets_key (us-east-1): CloudFront (cdn reads assets_bucket) -> assets_key fails: the policy of assets_key does not allow CloudFront (cdn reads assets_bucket) to call kms:Decrypt",
		}},
		{"origin name outside the certificate", [][3]string{
			{"architecture.yaml", `alternative_names: ["*.${param.domain}", "origin.${layer.zone.name}"]`, `alternative_names: ["*.${param.domain}"]`},
		}, []string{
			"prod-eu works-tls-dns certificate: Certificate of alb covers every name that reaches it: origin.medportal.example -> alb fails: CloudFront cdn connects to it as its origin app (TLS with that name), but certificate covers only eu.medportal.example, *.eu.medportal.example",
			"Fix: add \"origin.medportal.example\" to alternative_names of certificate",
		}},
		{"no failover secondary", [][3]string{
			{"architecture.yaml", "    description: The standby region, answered when the home region's health check fails.\n    enabled: ${stack.has_standby}", "    description: The standby region, answered when the home region's health check fails.\n    enabled: false"},
		}, []string{
			"prod-eu works-routing origin: European Union: origin.eu.medportal.example fails over inside the jurisdiction: origin.eu.medportal.example -> SECONDARY fails: no SECONDARY: when eu-central-1 fails, European Union's patients get errors though the catalogue allows a standby in eu-west-1",
		}},
		{"a health-checked geolocation record spills patients", [][3]string{
			{"layer.yaml", "    geolocation: ${param.routing.us}\n    alias: {target: \"${jurisdiction.us.origin.fqdn}\", evaluate_target_health: false}", "    geolocation: ${param.routing.us}\n    alias: {target: \"${jurisdiction.us.origin.fqdn}\", evaluate_target_health: true}"},
		}, []string{
			"prod-global works-routing origin_us: Every jurisdiction's patients reach their jurisdiction: origin.medportal.example -> origin_us fails: geolocation record origin_us is health-checked",
			"patients in United States are answered by alb in eu-central-1, a region United States does not allow",
		}},
		{"drop the load balancer's CloudFront rule", [][3]string{
			{"architecture.yaml", "      - {protocol: tcp, from_port: 443, to_port: 443, prefix_list: com.amazonaws.global.cloudfront.origin-facing, description: HTTPS from CloudFront}\n    egress:\n      - {protocol: tcp, from_port: 8080, to_port: 8080, source: \"${ref.app_sg.id}\"", "      - {protocol: tcp, from_port: 443, to_port: 443, cidrs: [10.0.0.0/8], description: internal only}\n    egress:\n      - {protocol: tcp, from_port: 8080, to_port: 8080, source: \"${ref.app_sg.id}\""},
		}, []string{
			"prod-eu works-network alb_sg: Patients -> CloudFront -> alb -> app -> database (eu-central-1): CloudFront -> alb (prod-eu, eu-central-1) :443 fails: no security group of the load balancer (alb_sg, alb_health_sg) admits tcp 443 from CloudFront",
		}},
		{"nothing delegates the zone", [][3]string{
			{"layer.yaml", "  delegation:\n    type: dns_delegation\n", "  delegation:\n    type: dns_delegation\n    enabled: false\n"},
			{"layer.yaml", "    depends_on: [delegation]\n", ""},
		}, []string{
			"prod-global works-tls-dns zone: ACM can validate cdn_certificate: parent domain -> medportal.example fails: nothing delegates medportal.example from its parent",
			"prod-eu works-tls-dns : ACM can validate certificate: parent domain -> medportal.example fails: nothing delegates medportal.example from its parent: public DNS never answers its names, so ACM never issues the certificates validated in it. Fix: add a dns_delegation for the zone naming its parent_domain (change zone of stack prod-global)",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			set := edited(t, tc.edits...)
			rep := analysis.Analyze("prod", environment(t, set, "prod"))
			got := failures(rep)
			if len(got) == 0 {
				t.Fatal("the mutation is not caught")
			}
			for _, w := range tc.want {
				found := false
				for _, g := range got {
					if strings.Contains(g, w) {
						found = true
					}
				}
				if !found {
					t.Errorf("no failure contains\n  %s\ngot:\n  %s", w, strings.Join(got, "\n  "))
				}
			}
		})
	}
}

// The explorer's answers for the patients of the issue.
func TestRouteFollowsPatients(t *testing.T) {
	set, _ := blueprints.LoadDir(shipped)
	stacks := environment(t, set, "prod")
	checks := map[string]string{}
	for _, h := range analysis.HealthChecks("prod", stacks) {
		checks[h.Region] = h.Key
	}
	if len(checks) != 5 {
		t.Fatalf("health checks by region: %v, want the five regions' (three homes, two standbys)", checks)
	}
	de, _ := analysis.LocationOf("DE", "")
	tx, _ := analysis.LocationOf("US", "TX")
	sg, _ := analysis.LocationOf("SG", "")
	br, _ := analysis.LocationOf("BR", "")
	cases := []struct {
		name        string
		loc         analysis.Location
		down        []string
		region      string
		maintenance bool
		chain       string
	}{
		{"Germany", de, nil, "eu-central-1", false, "origin_eu"},
		{"Germany, Frankfurt down", de, []string{"eu-central-1"}, "eu-west-1", false, "origin_standby"},
		{"Germany, both EU regions down", de, []string{"eu-central-1", "eu-west-1"}, "", true, "origin_eu"},
		{"Germany, every US region down", de, []string{"us-east-1", "us-east-2"}, "eu-central-1", false, "origin_eu"},
		{"Texas", tx, nil, "us-east-1", false, "origin_us"},
		{"Texas, Virginia down", tx, []string{"us-east-1"}, "us-east-2", false, "origin_standby"},
		{"Singapore", sg, nil, "ap-southeast-1", false, "origin_apac"},
		{"Singapore down", sg, []string{"ap-southeast-1"}, "", true, "origin_apac"},
		{"Brazil (default: the EU)", br, nil, "eu-central-1", false, "origin_default"},
	}
	for _, tc := range cases {
		down := map[string]bool{}
		for _, r := range tc.down {
			down[checks[r]] = true
		}
		got := analysis.Route("prod", stacks, tc.loc, down)
		var chain []string
		for _, s := range got.Chain {
			chain = append(chain, s.Resource)
		}
		if got.Region != tc.region || got.Maintenance != tc.maintenance || !strings.Contains(strings.Join(chain, " "), tc.chain) {
			t.Errorf("%s: region %q maintenance %v chain %v (%s); want %q, %v, through %s", tc.name, got.Region, got.Maintenance, chain, got.Summary, tc.region, tc.maintenance, tc.chain)
		}
		if got.Region != "" {
			if j, _ := regions.JurisdictionByID(strings.TrimPrefix(got.Stack, "prod-")); !j.Allows(got.Region) {
				t.Errorf("%s: answered from %s by %s", tc.name, got.Region, got.Stack)
			}
		}
	}
}
