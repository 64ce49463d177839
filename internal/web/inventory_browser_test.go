package web_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"portal/internal/audit"
	"portal/internal/peers/peertest"
	"portal/internal/staff"
)

// TestInventoryInBrowser is what a compliance officer does: sign in, read
// the inventory counts on the Overview, open the inventory, narrow it to
// residency violations, open the offending resource, and read what changed
// between two discoveries. Screenshots go to $PORTAL_SCREENSHOTS.
func TestInventoryInBrowser(t *testing.T) {
	e := newInvEstate(t)
	first := e.waitDiscovery(t, 0)
	e.bucket(t, "eu-west-1", "later-"+e.sfx, nil)
	if _, err := e.h.app.Estate.Inventory.Request(context.Background(), auditBy()); err != nil {
		t.Fatal(err)
	}
	e.waitDiscovery(t, first.ID)
	u := e.h.newUser(t, staff.Compliance)

	bctx := peertest.Chromium(t)
	bctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	defer cancel()
	shot := func(name string) { peertest.KeepScreenshot(t, bctx, "inventory-"+name+".png") }
	do := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, actions...); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return strings.Join(strings.Fields(s), " ")
	}

	do("sign in", e.h.browserSignIn(t, u), chromedp.WaitVisible(`[data-testid=overview-inventory]`))
	shot("01-overview")
	if got := text(`[data-testid=overview-inventory]`); !strings.Contains(got, "4 S3") || !strings.Contains(got, "1 residency violation") {
		t.Errorf("overview inventory reads %q, want 4 S3 and 1 residency violation", got)
	}
	do("open the inventory", chromedp.Click(`[data-testid=nav-inventory]`), chromedp.WaitVisible(`[data-testid=inventory]`))
	shot("02-inventory")
	do("read the help", chromedp.Click(`[data-testid=inventory-help] summary`))
	shot("03-help")
	// The unfiltered page has a total too: the box checked by the page
	// itself (the attribute, not the click's state) marks the filtered one.
	do("only violations", chromedp.Click(`input[name=violations]`), chromedp.Submit(`[data-testid=inventory-filter]`),
		chromedp.WaitVisible(`input[name=violations][checked]`), chromedp.WaitVisible(`[data-testid=inventory-total]`))
	shot("04-violations")
	if got := text(`[data-testid=inventory-total]`); !strings.HasPrefix(got, "1 resource(s) match") {
		t.Errorf("violations filter: %q, want 1 match", got)
	}
	do("open the resource", chromedp.Click(`[data-testid=inventory-row] a`), chromedp.WaitVisible(`[data-testid=resource-facts]`))
	shot("05-resource")
	if got := text(`[data-testid=residency-violation]`); !strings.Contains(got, "outside the EU regions") {
		t.Errorf("resource page: %q", got)
	}
	do("changes", chromedp.Navigate(e.h.url+"/inventory/changes"), chromedp.WaitVisible(`[data-testid=changes-summary]`))
	shot("06-changes")
	do("unmanaged only", chromedp.Navigate(e.h.url+"/inventory?managed=no"), chromedp.WaitVisible(`[data-testid=inventory]`))
	shot("07-unmanaged")
}

func auditBy() audit.Entry { return audit.Entry{Actor: "test"} }
