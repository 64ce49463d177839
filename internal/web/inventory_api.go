package web

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"portal/internal/apperr"
	"portal/internal/inventory"
)

// APISnapshot is a discovery in API responses.
type APISnapshot struct {
	ID               int64                 `json:"id"`
	State            string                `json:"state"`
	RequestedBy      string                `json:"requested_by"`
	RequestedByActor *APIActor             `json:"requested_by_actor,omitempty"`
	CreatedAt        time.Time             `json:"created_at"`
	StartedAt        *time.Time            `json:"started_at,omitempty"`
	FinishedAt       *time.Time            `json:"finished_at,omitempty"`
	TasksTotal       int                   `json:"tasks_total"`
	TasksDone        int                   `json:"tasks_done"`
	Calls            int64                 `json:"calls"`
	Resources        int                   `json:"resources"`
	TookMS           int64                 `json:"took_ms"`
	Errors           []inventory.TaskError `json:"errors"`
}

func apiSnapshot(sn inventory.Snapshot) APISnapshot {
	out := APISnapshot{ID: sn.ID, State: sn.State, RequestedBy: sn.RequestedBy, RequestedByActor: apiActor(sn.RequestedBy), CreatedAt: sn.CreatedAt, TasksTotal: sn.TasksTotal, TasksDone: sn.TasksDone,
		Calls: sn.Calls, Resources: sn.Resources, TookMS: sn.Took.Milliseconds(), Errors: sn.Errors}
	if !sn.StartedAt.IsZero() {
		out.StartedAt = &sn.StartedAt
	}
	if !sn.FinishedAt.IsZero() {
		out.FinishedAt = &sn.FinishedAt
	}
	if out.Errors == nil {
		out.Errors = []inventory.TaskError{}
	}
	return out
}

// APIInventory is a page of the inventory.
type APIInventory struct {
	Snapshot  APISnapshot              `json:"snapshot"`
	Items     []inventory.Resource     `json:"items"`
	Total     int                      `json:"total"`
	Counts    []inventory.ServiceCount `json:"counts"`
	NextAfter int64                    `json:"next_after,omitempty"`
}

func (s *Server) apiInventory(c echo.Context) error {
	inv, err := s.inventorySvc()
	if err != nil {
		return err
	}
	f, _, err := parseInventoryFilter(c.QueryParams())
	if err != nil {
		return err
	}
	p, err := inv.Query(c.Request().Context(), f)
	if err != nil {
		return err
	}
	out := APIInventory{Snapshot: apiSnapshot(p.Snapshot), Items: p.Resources, Total: p.Total, Counts: p.Counts, NextAfter: p.NextAfter}
	if out.Items == nil {
		out.Items = []inventory.Resource{}
	}
	if out.Counts == nil {
		out.Counts = []inventory.ServiceCount{}
	}
	return c.JSON(http.StatusOK, out)
}

// APIInventoryChanges compares two discoveries.
type APIInventoryChanges struct {
	From     APISnapshot        `json:"from"`
	To       APISnapshot        `json:"to"`
	Added    []inventory.Change `json:"added"`
	Removed  []inventory.Change `json:"removed"`
	Changed  []inventory.Change `json:"changed"`
	NAdded   int                `json:"n_added"`
	NRemoved int                `json:"n_removed"`
	NChanged int                `json:"n_changed"`
}

func (s *Server) apiInventoryChanges(c echo.Context) error {
	inv, err := s.inventorySvc()
	if err != nil {
		return err
	}
	from, to, err := s.compareParams(c, inv)
	if err != nil {
		return err
	}
	ch, err := inv.Compare(c.Request().Context(), from, to)
	if err != nil {
		return err
	}
	if ch.To.ID == 0 {
		return apperr.New(apperr.NotFound, "nothing to compare yet: the estate has been discovered fewer than twice")
	}
	nz := func(cs []inventory.Change) []inventory.Change {
		if cs == nil {
			return []inventory.Change{}
		}
		return cs
	}
	return c.JSON(http.StatusOK, APIInventoryChanges{From: apiSnapshot(ch.From), To: apiSnapshot(ch.To), Added: nz(ch.Added), Removed: nz(ch.Removed), Changed: nz(ch.Changed),
		NAdded: ch.NAdded, NRemoved: ch.NRemoved, NChanged: ch.NChanged})
}

func (s *Server) apiInventoryDiscover(c echo.Context) error {
	inv, err := s.inventorySvc()
	if err != nil {
		return err
	}
	sn, err := inv.Request(c.Request().Context(), who(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, apiSnapshot(sn))
}

func (s *Server) apiInventorySnapshot(c echo.Context) error {
	inv, err := s.inventorySvc()
	if err != nil {
		return err
	}
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	sn, err := inv.Snapshot(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, apiSnapshot(sn))
}
