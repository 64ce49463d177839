package peers_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"portal/internal/peers"
	"portal/internal/peers/peertest"
)

// TestAlertInbox subscribes the blueprints' kind of receiver addresses to
// a topic in moto and publishes: moto delivers over TLS (https, through
// the inbox's proxy, trusting the sandbox CA) and over plain http, and the
// inbox keeps both deliveries with the SNS message's fields.
func TestAlertInbox(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := peertest.MotoForTest(t)
	inbox := peertest.AlertInboxForTest(t)
	cfg, account := peertest.AccountConfigForTest(t, m, "eu-central-1")
	c := sns.NewFromConfig(cfg)
	topic, err := c.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("medportal-dev-eu-doctor-alerts")})
	if err != nil {
		t.Fatal(err)
	}
	for _, sub := range []struct{ protocol, endpoint string }{
		{"https", "https://alerts.eu.dev.medportal.example/doctor"},
		{"http", "http://pager.eu.dev.medportal.example/hook"},
	} {
		if _, err := c.Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String(sub.protocol), Endpoint: aws.String(sub.endpoint)}); err != nil {
			t.Fatal(err)
		}
	}
	out, err := c.Publish(ctx, &sns.PublishInput{TopicArn: topic.TopicArn, Subject: aws.String("Patient request"), Message: aws.String("A patient asked for a consultation.")})
	if err != nil {
		t.Fatalf("Publish: %v (moto delivers synchronously: an unreachable subscriber fails the call)", err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, want := range []string{"https://alerts.eu.dev.medportal.example/doctor", "http://pager.eu.dev.medportal.example/hook"} {
		d, err := inbox.Wait(wctx, func(d peers.Delivery) bool { return d.URL == want && d.MessageID == aws.ToString(out.MessageId) })
		if err != nil {
			t.Fatalf("delivery to %s: %v; the inbox has %+v", want, err, inbox.Deliveries())
		}
		if d.Type != "Notification" || d.Subject != "Patient request" || d.Message != "A patient asked for a consultation." || !strings.Contains(d.TopicARN, account) {
			t.Errorf("delivery to %s: got %+v, want the notification of topic %s", want, d, aws.ToString(topic.TopicArn))
		}
	}
}
