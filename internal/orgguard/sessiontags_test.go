package orgguard

import (
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"portal/internal/accounts"
	"portal/internal/regions"
)

// The portal's deployer sessions carry the tags the residency policies
// select on, so AWS holds the deployer of a jurisdiction's stack to its
// regions: judged here with the tags accounts.StackConfig really sends.
func TestTaggedDeployerSessionIsHeldToItsJurisdiction(t *testing.T) {
	if accounts.TagJurisdiction != TagJurisdiction || accounts.TagStack != TagStack {
		t.Fatalf("session tag keys %s, %s; the policies select %s, %s", accounts.TagJurisdiction, accounts.TagStack, TagJurisdiction, TagStack)
	}
	somewhere := []string{"us-east-1", "us-east-2", "us-west-2", "eu-central-1", "eu-west-1", "eu-west-2", "ap-southeast-1", "ap-southeast-2", "sa-east-1"}
	for _, env := range envs {
		for _, j := range regions.Jurisdictions() {
			ctx := map[string]string{}
			for _, tag := range accounts.StackSessionTags(env, j.ID) {
				ctx["aws:PrincipalTag/"+aws.ToString(tag.Key)] = aws.ToString(tag.Value)
			}
			for _, p := range All(envs, prodAccount) {
				if p.Jurisdiction == "" {
					continue
				}
				for _, region := range somewhere {
					ctx["aws:RequestedRegion"] = region
					denied, sid := Denied(p.Policy, Request{Action: "s3:CreateBucket", Context: ctx})
					want := p.Jurisdiction == j.ID && !slices.Contains(j.AllowedRegions, region)
					if denied != want {
						t.Errorf("%s deployer creating a bucket in %s under %s: denied %v (%s), want %v", regions.StackID(env, j.ID), region, p.Name, denied, sid, want)
					}
				}
			}
			// Global services stay reachable from the jurisdiction's session.
			ctx["aws:RequestedRegion"] = "us-east-1"
			if denied, sid := Denied(Residency(j, envs).Policy, Request{Action: "iam:CreateRole", Context: ctx}); denied {
				t.Errorf("%s deployer's IAM call denied by %s", regions.StackID(env, j.ID), sid)
			}
		}
	}
}
