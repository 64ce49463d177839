package app

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"portal/internal/activity"
)

// buildActivity assembles the activity service: trail buckets and
// LookupEvents accounts are read with each environment's deployer role,
// CloudWatch through the awsQuery protocol, and new sensitive events are
// logged and sent to the configured webhook. Its jobs (ingestion every
// five minutes, validation hourly) run on the scheduler.
func (a *App) buildActivity(baseURL string, opts Options) *activity.Service {
	set := a.cfg.Activity
	cfg := activity.Config{Buckets: set.Buckets, Lookups: set.Lookups, DigestKeys: set.DigestKeys, Retention: set.Retention,
		Notify: activity.Notifier(a.log, set.Webhook, baseURL), Environments: map[string]string{}}
	if e := a.Estate; e != nil {
		config := func(env, region string) (aws.Config, error) { return e.Accounts.Config(env, region) }
		cfg.Clients = activity.Clients{
			Config: config,
			S3: func(env, region string) (activity.S3API, error) {
				c, err := config(env, region)
				if err != nil {
					return nil, err
				}
				// Path-style addressing works with AWS and the emulator alike.
				return s3.NewFromConfig(c, func(o *s3.Options) { o.UsePathStyle, o.DisableLogOutputChecksumValidationSkipped = true, true }), nil
			},
			Lookup: func(env, region string) (activity.LookupAPI, error) {
				c, err := config(env, region)
				if err != nil {
					return nil, err
				}
				return cloudtrail.NewFromConfig(c), nil
			},
			CloudWatch: func(env, region string) (activity.CloudWatchAPI, error) {
				c, err := config(env, region)
				if err != nil {
					return nil, err
				}
				return activity.NewCloudWatchClient(c), nil
			},
		}
		for _, env := range e.Catalogue.Environments() {
			cfg.Environments[env.AccountID] = env.Name
		}
		for _, st := range e.Catalogue.Stacks() {
			cfg.Stacks = append(cfg.Stacks, activity.StackRef{ID: st.ID, Environment: st.Environment.Name, Jurisdiction: st.Jurisdiction.ID, Region: st.Region()})
		}
	}
	svc := activity.New(cfg, a.DB, a.Audit, a.log, opts.Now)
	svc.Register(a.Jobs, activity.DefaultSchedule)
	return svc
}
