package drivers_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"

	"portal/internal/drivers"
	"portal/internal/engine"
)

func TestACMCertificate(t *testing.T) {
	t.Parallel()
	for _, region := range []string{"eu-central-1", "us-east-1"} {
		t.Run(region, func(t *testing.T) {
			env := newEnv(t, "eu-central-1")
			ctx := context.Background()
			r53 := route53.NewFromConfig(env.Config("us-east-1"))
			z, err := r53.CreateHostedZone(ctx, &route53.CreateHostedZoneInput{Name: aws.String("eu.dev.example.org"), CallerReference: aws.String(t.Name())})
			if err != nil {
				t.Fatal(err)
			}
			zone := strings.TrimPrefix(aws.ToString(z.HostedZone.Id), "/hostedzone/")
			d := &engine.Desired{ID: "certificate", Type: "acm_certificate", Region: region, Fields: map[string]any{
				"domain": "eu.dev.example.org", "alternative_names": []any{"*.eu.dev.example.org"}, "validation_zone": zone,
			}}
			live := lifecycle(t, env, drivers.ACMCertificate{}, d, nil)
			if live.Outputs["status"] != "ISSUED" || !strings.Contains(live.Outputs["arn"], ":acm:"+region+":") {
				t.Errorf("outputs %v, want an issued certificate in %s", live.Outputs, region)
			}
			// The validation records were written, and removed with the certificate.
			recs, err := r53.ListResourceRecordSets(ctx, &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(zone)})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs.ResourceRecordSets {
				if r.Type == "CNAME" {
					t.Errorf("validation record %s left in the zone after the certificate was deleted", aws.ToString(r.Name))
				}
			}
		})
	}
}
