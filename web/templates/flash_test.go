package templates

import (
	"bytes"
	"context"
	"testing"

	"github.com/PuerkitoBio/goquery"
	"github.com/a-h/templ"
)

// TestFlashKinds renders a flash of each kind in the layout: each has its
// own style, and only a failure is an alert.
func TestFlashKinds(t *testing.T) {
	for _, tc := range []struct {
		kind        FlashKind
		class, role string
	}{
		{FlashSuccess, "flash flash-ok", "status"},
		{FlashWarning, "flash flash-warn", "status"},
		{FlashError, "flash flash-error", "alert"},
		{"", "flash flash-ok", "status"},
	} {
		t.Run(string(tc.kind), func(t *testing.T) {
			var b bytes.Buffer
			ctx := templ.WithChildren(context.Background(), templ.NopComponent)
			if err := Layout(Page{Title: "t", Flash: Flash{Kind: tc.kind, Text: "Validation #2 failed with 1 finding."}}).Render(ctx, &b); err != nil {
				t.Fatal(err)
			}
			doc, err := goquery.NewDocumentFromReader(&b)
			if err != nil {
				t.Fatal(err)
			}
			f := doc.Find(`[data-testid="flash"]`)
			if f.Length() != 1 {
				t.Fatalf("got %d flashes, want 1", f.Length())
			}
			if got, _ := f.Attr("class"); got != tc.class {
				t.Errorf("class: got %q, want %q", got, tc.class)
			}
			if got, _ := f.Attr("role"); got != tc.role {
				t.Errorf("role: got %q, want %q", got, tc.role)
			}
			if got := f.Text(); got != "Validation #2 failed with 1 finding." {
				t.Errorf("text: got %q", got)
			}
		})
	}
}
