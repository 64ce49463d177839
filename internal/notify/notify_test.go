package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"portal/internal/notify"
	"portal/internal/peers/peertest"
)

func TestMain(m *testing.M) { peertest.Main(m) }

// endpoint is an HTTP subscriber: moto really POSTs SNS messages to it.
type endpoint struct {
	mu       sync.Mutex
	messages []string
}

func (e *endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var m struct{ Type, Subject, Message string }
	_ = json.Unmarshal(b, &m)
	if m.Type == "Notification" {
		e.mu.Lock()
		e.messages = append(e.messages, m.Subject+"|"+m.Message)
		e.mu.Unlock()
	}
}

func (e *endpoint) got() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.messages...)
}

func TestOpsNotificationsGoToTheOpsTopicOnly(t *testing.T) {
	ctx := context.Background()
	cfg, _ := peertest.AccountConfigForTest(t, peertest.MotoForTest(t), "eu-central-1")
	c := sns.NewFromConfig(cfg)
	subscribe := func(name string) (string, *endpoint) {
		topic, err := c.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		ep := &endpoint{}
		srv := httptest.NewServer(ep)
		t.Cleanup(srv.Close)
		if _, err := c.Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("http"), Endpoint: aws.String(srv.URL + "/hook")}); err != nil {
			t.Fatal(err)
		}
		return aws.ToString(topic.TopicArn), ep
	}
	opsARN, ops := subscribe("medportal-dev-eu-ops-alerts")
	_, doctors := subscribe("medportal-dev-eu-doctor-alerts")

	db := peertest.StoreForTest(t)
	topics := func(ctx context.Context, stack string) (string, notify.Publisher, error) {
		if stack != "dev-eu" {
			return "", nil, errors.New(stack + " has no ops_alerts topic yet: deploy it first")
		}
		return opsARN, c, nil
	}
	svc := notify.New(db, topics, nil, nil)
	svc.BaseURL = "https://portal.example.com"
	n, err := svc.Notify(ctx, notify.Notification{Kind: notify.Drift, Stack: "dev-eu", Subject: "Drift in dev-eu", Message: "db_sg changed", Link: "/drift/1"})
	if err != nil {
		t.Fatal(err)
	}
	if !n.Published() || n.TopicARN != opsARN {
		t.Fatalf("notification: got %+v, want published to %s", n, opsARN)
	}
	other, err := svc.Notify(ctx, notify.Notification{Kind: notify.RunFailed, Stack: "prod-us", Subject: "Run #3 failed", Message: "boom"})
	if err != nil {
		t.Fatal(err)
	}
	if other.Published() || !strings.Contains(other.PublishError, "no ops_alerts topic") {
		t.Errorf("notification for an undeployed stack: got %+v, want kept with the reason it was not published", other)
	}

	deadline := time.Now().Add(5 * time.Second)
	for len(ops.got()) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := ops.got(); len(got) != 1 || !strings.Contains(got[0], "db_sg changed") || !strings.Contains(got[0], "https://portal.example.com/drift/1") {
		t.Errorf("ops endpoint: got %q, want the drift message with its link", got)
	}
	if got := doctors.got(); len(got) != 0 {
		t.Errorf("doctors' endpoint got %q, want nothing: ops messages never go to doctors", got)
	}

	list, more, err := svc.List(ctx, notify.Filter{Limit: 1})
	if err != nil || !more || len(list) != 1 || list[0].ID != other.ID {
		t.Errorf("list page 1: got %+v more=%v err=%v, want the newest and more", list, more, err)
	}
	list, more, _ = svc.List(ctx, notify.Filter{Limit: 1, BeforeID: list[0].ID})
	if len(list) != 1 || more || list[0].ID != n.ID {
		t.Errorf("list page 2: got %+v more=%v, want the oldest and no more", list, more)
	}
}
