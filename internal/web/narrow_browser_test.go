package web_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"portal/internal/peers/peertest"
	"portal/internal/staff"
)

// overflow is what sticks out of an 800-pixel-wide page: the page's own
// sideways scroll, and each table wider than the box it sits in when that
// box does not scroll (the table is cut off).
const overflowJS = `(() => {
	const out = [];
	const doc = document.documentElement;
	if (doc.scrollWidth > window.innerWidth + 1) out.push("the page is " + doc.scrollWidth + "px wide");
	document.querySelectorAll("table").forEach((t, i) => {
		const r = t.getBoundingClientRect();
		let scrolls = false;
		for (let e = t; e && e !== document.body; e = e.parentElement) {
			const s = getComputedStyle(e);
			if ((s.overflowX === "auto" || s.overflowX === "scroll") && e.clientWidth < window.innerWidth) { scrolls = true; break; }
		}
		if (r.right > window.innerWidth + 1 && !scrolls) out.push("table " + (t.dataset.testid || i) + " ends at " + Math.round(r.right) + "px");
		else if (t.parentElement && t.scrollWidth > t.parentElement.clientWidth + 1) out.push("table " + (t.dataset.testid || i) + " needs " + t.scrollWidth + "px of " + t.parentElement.clientWidth + " (scrolls sideways)");
	});
	return out;
})()`

// TestPagesAt800Pixels: on a laptop's half screen (800 pixels wide) no page
// scrolls sideways and no table is cut off: a table wider than the page
// scrolls in its own box. PORTAL_SCREENSHOTS=DIR keeps each page.
func TestPagesAt800Pixels(t *testing.T) {
	e := newActivityEstate(t)
	u := e.h.newUser(t, staff.Admin, staff.Compliance, staff.Ops, staff.Finance)
	ctx := peertest.Chromium(t)
	ctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(800, 900), e.h.browserSignIn(t, u), chromedp.WaitVisible(`[data-testid="nav-activity"]`)); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/", "/activity", "/activity/sensitive", "/activity/integrity", "/activity/evidence", "/runs", "/runs?show=plans", "/stacks",
		"/blueprints", "/promotions", "/approvals", "/inventory", "/access", "/audit", "/billing"} {
		if err := chromedp.Do(ctx, chromedp.Navigate(e.h.url+path), chromedp.WaitReady("body")); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		name := strings.Trim(strings.NewReplacer("/", "-", "?", "-", "=", "-").Replace(path), "-")
		if name == "" {
			name = "overview"
		}
		peertest.KeepScreenshot(t, ctx, "narrow-"+name+".png")
		out, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](overflowJS))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for _, o := range out {
			t.Errorf("%s at 800px: %s", path, o)
		}
	}
}
