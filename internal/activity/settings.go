package activity

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"
)

// Settings are the activity flags of `portal serve`, parsed.
type Settings struct {
	Buckets    []TrailBucket
	Lookups    []LookupSource
	DigestKeys []DigestKey
	// KeysFile is where DigestKeys were read from.
	KeysFile string
	// Webhook receives a JSON POST for each batch of new sensitive events.
	Webhook string
	// Retention is -activity-retention, read by ParseRetention.
	Retention Retention
}

// ParseSettings reads the flags:
//
//	buckets: ENV:BUCKET[:REGION[:PREFIX]], comma-separated
//	lookups: ENV:REGION, comma-separated
//	keysFile: PEM file of trusted digest public keys
//	webhook: URL notified of sensitive events
func ParseSettings(buckets, lookups, keysFile, webhook string) (Settings, error) {
	var s Settings
	for _, b := range splitList(buckets) {
		parts := strings.SplitN(b, ":", 4)
		if len(parts) < 2 || parts[0] == "" || parts[1] == "" {
			return s, fmt.Errorf("-activity-trail-bucket: %q: want ENV:BUCKET[:REGION[:PREFIX]], e.g. prod:medportal-trail:us-east-1", b)
		}
		tb := TrailBucket{Environment: parts[0], Bucket: parts[1], Region: "us-east-1"}
		if len(parts) > 2 && parts[2] != "" {
			tb.Region = parts[2]
		}
		if len(parts) > 3 {
			tb.Prefix = strings.Trim(parts[3], "/")
		}
		s.Buckets = append(s.Buckets, tb)
	}
	byEnv := map[string]int{}
	for _, l := range splitList(lookups) {
		env, region, ok := strings.Cut(l, ":")
		if !ok || env == "" || region == "" {
			return s, fmt.Errorf("-activity-lookup: %q: want ENV:REGION, e.g. test:eu-central-1", l)
		}
		if i, ok := byEnv[env]; ok {
			s.Lookups[i].Regions = append(s.Lookups[i].Regions, region)
			continue
		}
		byEnv[env] = len(s.Lookups)
		s.Lookups = append(s.Lookups, LookupSource{Environment: env, Regions: []string{region}})
	}
	if keysFile != "" {
		b, err := os.ReadFile(keysFile)
		if err != nil {
			return s, fmt.Errorf("-activity-digest-keys: %w", err)
		}
		if s.DigestKeys, err = ParseDigestKeys(b); err != nil {
			return s, fmt.Errorf("-activity-digest-keys %s: %w", keysFile, err)
		}
		s.KeysFile = keysFile
	}
	if webhook != "" && !strings.HasPrefix(webhook, "https://") && !strings.HasPrefix(webhook, "http://") {
		return s, fmt.Errorf("-activity-webhook: %q is not an http(s) URL", webhook)
	}
	s.Webhook = webhook
	return s, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Notification is what the webhook receives for new sensitive events.
type Notification struct {
	Text   string              `json:"text"`
	Events []NotificationEvent `json:"events"`
}

// NotificationEvent is one sensitive event in a notification.
type NotificationEvent struct {
	Time      time.Time `json:"time"`
	Why       string    `json:"why"`
	Event     string    `json:"event"`
	Who       string    `json:"who"`
	Account   string    `json:"account"`
	Region    string    `json:"region"`
	Resources []string  `json:"resources,omitempty"`
	Link      string    `json:"link"`
	Sandbox   bool      `json:"sandbox,omitempty"`
}

// Notifier logs new sensitive events and, when url is set, POSTs them as
// JSON (a Slack-compatible "text" plus the events) to url. baseURL makes
// links to the event pages.
func Notifier(logger *slog.Logger, url, baseURL string) func(ctx context.Context, events []Event) {
	client := &http.Client{Timeout: 10 * time.Second}
	return func(ctx context.Context, events []Event) {
		n := Notification{Text: fmt.Sprintf("%d new sensitive AWS events", len(events))}
		for _, e := range events {
			logger.Warn("sensitive AWS event", slog.String("why", e.Sensitive), slog.String("event", e.Name), slog.String("who", e.PrincipalARN),
				slog.String("account", e.Account), slog.String("region", e.Region), slog.Time("at", e.Time), slog.Bool("sandbox", e.Sandbox))
			n.Events = append(n.Events, NotificationEvent{Time: e.Time, Why: e.Sensitive, Event: e.Source + " " + e.Name, Who: e.PrincipalARN,
				Account: e.Account, Region: e.Region, Resources: e.Resources, Link: fmt.Sprintf("%s/activity/events/%d", baseURL, e.Seq), Sandbox: e.Sandbox})
		}
		if url == "" {
			return
		}
		body, _ := json.Marshal(n)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			logger.Error("sensitive event webhook", slog.String("err", err.Error()))
			return
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			logger.Error("sensitive event webhook", slog.String("err", err.Error()))
			return
		}
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			logger.Error("sensitive event webhook", slog.Int("status", resp.StatusCode))
		}
	}
}
