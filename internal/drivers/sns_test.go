package drivers_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"portal/internal/drivers"
	"portal/internal/engine"
)

func TestSNSTopic(t *testing.T) {
	t.Parallel()
	for _, region := range storeRegions {
		t.Run(region, func(t *testing.T) {
			env := newEnv(t, region)
			key1, key2 := storeKey(t, env, region), storeKey(t, env, region)
			d := &engine.Desired{ID: "doctor_alerts", Type: "sns_topic", Region: region, Fields: map[string]any{
				"name": "medportal-dev-eu-doctor-alerts", "data_class": "patient", "description": "Alerts.", "kms_key": key1,
			}}
			live := lifecycle(t, env, drivers.SNSTopic{}, d, func(d *engine.Desired) []string {
				d.Fields["kms_key"] = key2
				return []string{"kms_key"}
			})
			arn := live.Outputs["arn"]
			if !strings.HasPrefix(arn, "arn:aws:sns:"+region+":") || !strings.HasSuffix(arn, ":medportal-dev-eu-doctor-alerts") || live.Outputs["name"] != "medportal-dev-eu-doctor-alerts" {
				t.Errorf("outputs %v, want the topic's arn in %s and its name", live.Outputs, region)
			}
			if live.Fields["kms_key"] != key2 {
				t.Errorf("kms_key %v, want %s", live.Fields["kms_key"], key2)
			}
		})
	}
}

func TestSNSSubscription(t *testing.T) {
	t.Parallel()
	for _, region := range storeRegions {
		t.Run(region, func(t *testing.T) {
			ctx := context.Background()
			env := newEnv(t, region)
			c := sns.NewFromConfig(env.Config(region))
			topic := &engine.Desired{ID: "ops_alerts", Type: "sns_topic", Region: region, Tags: ownershipTags(env, "ops_alerts"), Fields: map[string]any{
				"name": "medportal-dev-eu-ops-alerts", "kms_key": storeKey(t, env, region),
			}}
			tl, err := drivers.SNSTopic{}.Create(ctx, env, topic)
			if err != nil {
				t.Fatalf("Create topic: %v", err)
			}
			topicARN := tl.Outputs["arn"]
			// Someone else's subscription on the same topic stays put.
			other, err := c.Subscribe(ctx, &sns.SubscribeInput{TopicArn: aws.String(topicARN), Protocol: aws.String("sms"), Endpoint: aws.String("+15555550100"), ReturnSubscriptionArn: true})
			if err != nil {
				t.Fatalf("Subscribe: %v", err)
			}
			d := &engine.Desired{ID: "ops_alert_subscriptions", Type: "sns_subscription", Region: region, Fields: map[string]any{
				"topic": topicARN, "protocol": "email", "endpoints": []any{"ops@medportal.example", "oncall@medportal.example"},
			}}
			live := lifecycle(t, env, drivers.SNSSubscription{}, d, func(d *engine.Desired) []string {
				subs, err := c.ListSubscriptionsByTopic(ctx, &sns.ListSubscriptionsByTopicInput{TopicArn: aws.String(topicARN)})
				if err != nil {
					t.Fatalf("ListSubscriptionsByTopic: %v", err)
				}
				if len(subs.Subscriptions) != 3 {
					t.Errorf("topic has %d subscriptions, want 2 email and 1 sms", len(subs.Subscriptions))
				}
				d.Fields["endpoints"] = []any{"oncall@medportal.example", "security@medportal.example"}
				return []string{"endpoints"}
			})
			if live.Outputs["topic_arn"] != topicARN || len(strings.Split(live.Outputs["subscription_arns"], ",")) != 2 {
				t.Errorf("outputs %v, want the topic arn and two subscription arns", live.Outputs)
			}
			subs, err := c.ListSubscriptionsByTopic(ctx, &sns.ListSubscriptionsByTopicInput{TopicArn: aws.String(topicARN)})
			if err != nil {
				t.Fatalf("ListSubscriptionsByTopic: %v", err)
			}
			if len(subs.Subscriptions) != 1 || aws.ToString(subs.Subscriptions[0].SubscriptionArn) != aws.ToString(other.SubscriptionArn) {
				t.Errorf("after Delete the topic has %d subscriptions, want only the sms one nobody in the stack made", len(subs.Subscriptions))
			}
		})
	}
}
