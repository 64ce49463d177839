package web

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// activityCSS styles the activity pages (tabs, event tables, raw records,
// charts) with app.css's variables. The Content-Security-Policy allows no
// inline styles, so it is served as a file.
const activityCSS = `
.tabs { display: flex; flex-wrap: wrap; gap: 0.25rem; border-bottom: 1px solid var(--border); margin: 0 0 1rem; }
.tab { padding: 0.45rem 0.9rem; text-decoration: none; color: var(--muted); border: 1px solid transparent; border-bottom: none;
  border-radius: var(--radius) var(--radius) 0 0; margin-bottom: -1px; }
.tab:hover { color: var(--text); background: #eef1f4; }
.tab-active { color: var(--text); background: var(--surface); border-color: var(--border); font-weight: 600; }
.nowrap { white-space: nowrap; }
.small { font-size: 0.82rem; }
.events td { padding: 0.4rem 0.6rem; }
.events code { font-size: 0.85em; }
.events .resources code { display: block; max-width: 26rem; overflow-wrap: anywhere; }
.events td:nth-child(2) .muted { display: block; }
.ingest-status { display: flex; flex-wrap: wrap; align-items: center; gap: 0.5rem 1rem; margin: 0 0 1rem; }
.ingest-status p { margin: 0; }
.ingest-status details ul { margin: 0.3rem 0 0; }
.pager { display: flex; gap: 0.5rem; }
pre.raw { background: #0f1726; color: #e6edf3; padding: 1rem; border-radius: var(--radius); overflow: auto; font-size: 0.82rem; max-height: 40rem; }
code.key { overflow-wrap: anywhere; }
.history { margin: 0; padding-left: 1rem; font-size: 0.85rem; }
.chains { padding-left: 1.2rem; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(30rem, 1fr)); gap: 1rem; }
.chart-card { margin: 0; background: var(--surface); border: 1px solid var(--border); border-radius: var(--radius); padding: 0.75rem 1rem; }
.chart-card figcaption { display: flex; justify-content: space-between; gap: 1rem; margin-bottom: 0.4rem; }
.chart-empty { min-height: 6rem; display: flex; align-items: center; }
svg.chart { width: 100%; height: auto; }
svg.chart .grid { stroke: #e5e9ee; stroke-width: 1; }
svg.chart .axis { fill: var(--muted); font-size: 11px; font-family: var(--font); }
svg.chart .line { fill: none; stroke: var(--accent); stroke-width: 2; }
svg.chart .dot { fill: var(--accent); }
`

func (s *Server) activityStyles(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "public, max-age=3600")
	return c.Blob(http.StatusOK, "text/css; charset=utf-8", []byte(activityCSS))
}
