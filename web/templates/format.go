package templates

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// when formats a time for tables: UTC, to the second.
func when(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func isoTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func itoa[T ~int | ~int64](n T) string { return fmt.Sprint(n) }

func join(xs []string) string { return strings.Join(xs, ", ") }

func fieldID(name string) string { return "f-" + strings.ReplaceAll(name, "_", "-") }

func errID(name string) string { return fieldID(name) + "-error" }

func navClass(active, key string) string {
	if active == key {
		return "nav-link active"
	}
	return "nav-link"
}

func csrfHeader(token string) string {
	if token == "" {
		return ""
	}
	return `{"X-CSRF-Token": "` + token + `"}`
}

func displayName(u *UserView) string {
	if u.Name != "" {
		return u.Name
	}
	return u.Email
}

func fieldType(t string) string {
	if t == "" {
		return "text"
	}
	return t
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

func took(start, end time.Time) string {
	if start.IsZero() || end.IsZero() {
		return "—"
	}
	return end.Sub(start).Round(time.Millisecond).String()
}

func clock(t time.Time) string { return t.UTC().Format("15:04:05.000") }

func pad(s string) string {
	if s == "" {
		return "·"
	}
	return s
}

func contains(list []string, s string) bool { return slices.Contains(list, s) }

// roundDuration writes a run's length as people say it: "850ms", "12s",
// "4m 05s", "1h 02m".
func roundDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < time.Hour:
		d = d.Round(time.Second)
		return fmt.Sprintf("%dm %02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	d = d.Round(time.Minute)
	return fmt.Sprintf("%dh %02dm", int(d.Hours()), int(d.Minutes())%60)
}
