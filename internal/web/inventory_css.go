package web

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// inventoryCSS styles the inventory pages; it uses app.css's variables.
// (The Content-Security-Policy allows no inline styles.)
const inventoryCSS = `/* Inventory. Uses the variables of app.css. */
.inv-discovery { background: var(--surface); border: 1px solid var(--border); border-radius: var(--radius); padding: 0.6rem 1rem; margin-bottom: 1rem; }
.inv-discovery p { margin: 0.3rem 0; }
.inv-discovery form { display: flex; gap: 0.75rem; align-items: center; flex-wrap: wrap; margin: 0.4rem 0; }
.inv-progress progress { width: 100%; max-width: 30rem; height: 0.9rem; }
.inv-help { margin: 0 0 1rem; background: var(--surface); border: 1px solid var(--border); border-radius: var(--radius); padding: 0.5rem 1rem; }
.inv-help summary { cursor: pointer; font-weight: 600; color: var(--accent); }
.inv-help li { margin: 0.35rem 0; }
.inv-counts { list-style: none; display: flex; flex-wrap: wrap; gap: 0.5rem; padding: 0; margin: 0 0 1rem; }
.inv-counts a { display: inline-flex; gap: 0.35rem; align-items: center; background: var(--surface); border: 1px solid var(--border); border-radius: 999px; padding: 0.25rem 0.75rem; text-decoration: none; color: var(--text); font-size: 0.9rem; }
.inv-counts a:hover, .inv-counts a.inv-count-active { border-color: var(--accent); color: var(--accent); }
.inv-table td { font-size: 0.88rem; }
.inv-arn { display: block; color: var(--muted); font-size: 0.78rem; word-break: break-all; max-width: 26rem; }
.inv-type, .inv-sub { display: block; color: var(--muted); font-size: 0.82rem; }
.inv-table td:nth-child(2) { white-space: nowrap; }
.inv-settings { display: grid; grid-template-columns: max-content 1fr; gap: 0 0.6rem; margin: 0; font-size: 0.82rem; }
.inv-settings dt { color: var(--muted); }
.inv-settings dd { margin: 0; }
.inv-settings dd.inv-bad { color: var(--bad); font-weight: 600; }
.inv-settings dd.inv-bad::before { content: "✕ "; }
.inv-tags code { display: inline-block; margin: 0 0.25rem 0.2rem 0; font-size: 0.78rem; background: #f0f3f6; padding: 0 0.3rem; border-radius: 3px; word-break: break-all; }
.inv-tags summary { cursor: pointer; color: var(--accent); }
.table tr.inv-unmanaged { background: var(--warn-bg); }
.table tr.inv-unmanaged td:first-child { box-shadow: inset 4px 0 0 var(--warn); }
.table tr.inv-violation { background: var(--bad-bg); }
.table tr.inv-violation td:first-child { box-shadow: inset 4px 0 0 var(--bad); }
.inv-details { margin: 0; padding-left: 1.1rem; }
.inv-tag-table { max-width: 48rem; }
`

func (s *Server) inventoryStyles(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "public, max-age=3600")
	return c.Blob(http.StatusOK, "text/css; charset=utf-8", []byte(inventoryCSS))
}
