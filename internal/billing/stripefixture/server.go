package stripefixture

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Server serves a Dataset over Stripe's HTTP API shapes.
type Server struct {
	mu    sync.RWMutex
	data  *Dataset
	lists map[string]*list
	// OnList, when set, is called before each list page is answered (with
	// the kind, e.g. "charges", and the page's query); tests use it to
	// cancel a sync part-way.
	OnList func(kind string, q url.Values)

	reqMu    sync.Mutex
	requests []string

	ln   net.Listener
	http *http.Server
}

// list is one kind's objects, newest first as Stripe lists them.
type list struct {
	items   []item
	byID    map[string]int
	payouts map[string][]item // balance transactions by payout listing
}

type item struct {
	id      string
	created int64
	charge  string // refunds and disputes: their charge
	v       any
}

// New returns a server over d (not yet listening; use it as an
// http.Handler, or Start it).
func New(d *Dataset) *Server {
	s := &Server{data: d}
	s.index()
	return s
}

func (s *Server) index() {
	d := s.data
	s.lists = map[string]*list{}
	add := func(kind string, items []item) {
		sort.Slice(items, func(i, j int) bool {
			if items[i].created != items[j].created {
				return items[i].created > items[j].created
			}
			return items[i].id > items[j].id
		})
		l := &list{items: items, byID: make(map[string]int, len(items))}
		for i, it := range items {
			l.byID[it.id] = i
		}
		s.lists[kind] = l
	}
	var items []item
	for _, v := range d.Customers {
		items = append(items, item{id: v.ID, created: v.Created, v: v})
	}
	add("customers", items)
	items = nil
	for _, v := range d.PaymentIntents {
		items = append(items, item{id: v.ID, created: v.Created, v: v})
	}
	add("payment_intents", items)
	items = nil
	for _, v := range d.Charges {
		items = append(items, item{id: v.ID, created: v.Created, v: v})
	}
	add("charges", items)
	items = nil
	for _, v := range d.Refunds {
		items = append(items, item{id: v.ID, created: v.Created, charge: v.Charge, v: v})
	}
	add("refunds", items)
	items = nil
	for _, v := range d.Disputes {
		items = append(items, item{id: v.ID, created: v.Created, charge: v.Charge, v: v})
	}
	add("disputes", items)
	items = nil
	for _, v := range d.Payouts {
		items = append(items, item{id: v.ID, created: v.Created, v: v})
	}
	add("payouts", items)
	items = nil
	for _, v := range d.BalanceTransactions {
		items = append(items, item{id: v.ID, created: v.Created, v: v})
	}
	add("balance_transactions", items)
	bts := s.lists["balance_transactions"]
	bts.payouts = map[string][]item{}
	for po, txs := range d.PayoutTransactions {
		var its []item
		for _, bt := range txs {
			its = append(its, bts.items[bts.byID[bt.ID]])
		}
		sort.Slice(its, func(i, j int) bool {
			if its[i].created != its[j].created {
				return its[i].created > its[j].created
			}
			return its[i].id > its[j].id
		})
		bts.payouts[po] = its
	}
}

// Update changes the dataset under the server's lock (objects may be
// changed or added; the lists are rebuilt afterwards).
func (s *Server) Update(fn func(d *Dataset)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(s.data)
	s.index()
}

// Start listens on a free port of 127.0.0.1 and serves until Close.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("stripefixture: listen: %w", err)
	}
	s.ln = ln
	s.http = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.http.Serve(ln) }()
	return nil
}

// URL is the server's base address, for stripe-go's backend URL.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() }

// Close stops the server.
func (s *Server) Close() error {
	if s.http == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.http.Shutdown(ctx)
}

// Requests returns the requests served so far ("GET /v1/charges?limit=100").
func (s *Server) Requests() []string {
	s.reqMu.Lock()
	defer s.reqMu.Unlock()
	return append([]string(nil), s.requests...)
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.reqMu.Lock()
	s.requests = append(s.requests, r.Method+" "+r.URL.RequestURI())
	s.reqMu.Unlock()
	w.Header().Set("Request-Id", "req_fixture")
	w.Header().Set("Content-Type", "application/json")
	if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
		stripeError(w, http.StatusUnauthorized, "invalid_request_error", "", "You did not provide an API key.")
		return
	}
	if r.Method != http.MethodGet {
		stripeError(w, http.StatusBadRequest, "invalid_request_error", "", "The fixture server only answers GET requests.")
		return
	}
	parts := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/v1/"), "/"), "/")
	s.mu.RLock()
	defer s.mu.RUnlock()
	l, ok := s.lists[parts[0]]
	if !ok || len(parts) > 2 {
		stripeError(w, http.StatusNotFound, "invalid_request_error", "", "Unrecognized request URL (GET: "+r.URL.Path+").")
		return
	}
	if len(parts) == 2 {
		i, ok := l.byID[parts[1]]
		if !ok {
			stripeError(w, http.StatusNotFound, "invalid_request_error", "resource_missing",
				fmt.Sprintf("No such %s: '%s'", strings.TrimSuffix(parts[0], "s"), parts[1]))
			return
		}
		_ = json.NewEncoder(w).Encode(l.items[i].v)
		return
	}
	q := r.URL.Query()
	if s.OnList != nil {
		s.mu.RUnlock()
		s.OnList(parts[0], q)
		s.mu.RLock()
	}
	page, more, err := l.page(q)
	if err != nil {
		stripeError(w, http.StatusBadRequest, "invalid_request_error", "", err.Error())
		return
	}
	data := make([]any, len(page))
	for i, it := range page {
		data[i] = it.v
	}
	_ = json.NewEncoder(w).Encode(struct {
		Object  string `json:"object"`
		URL     string `json:"url"`
		HasMore bool   `json:"has_more"`
		Data    []any  `json:"data"`
	}{"list", "/v1/" + parts[0], more, data})
}

// page answers one list request: limit (1-100, default 10),
// starting_after, created[gte|gt|lte|lt] or created, payout (balance
// transactions) and charge (refunds, disputes).
func (l *list) page(q url.Values) ([]item, bool, error) {
	limit := 10
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return nil, false, errors.New("Invalid limit: must be an integer between 1 and 100")
		}
		limit = n
	}
	items := l.items
	if po := q.Get("payout"); po != "" {
		if l.payouts == nil {
			return nil, false, errors.New("Received unknown parameter: payout")
		}
		items = l.payouts[po]
	}
	start := 0
	if after := q.Get("starting_after"); after != "" {
		i := -1
		if q.Get("payout") == "" {
			if j, ok := l.byID[after]; ok {
				i = j
			}
		} else {
			i = indexOf(items, after)
		}
		if i < 0 {
			return nil, false, fmt.Errorf("Invalid starting_after: no such object %s in this list", after)
		}
		start = i + 1
	}
	lo, hi := int64(-1<<62), int64(1<<62)
	for key, set := range map[string]func(n int64){
		"created[gte]": func(n int64) { lo = max(lo, n) }, "created[gt]": func(n int64) { lo = max(lo, n+1) },
		"created[lte]": func(n int64) { hi = min(hi, n) }, "created[lt]": func(n int64) { hi = min(hi, n-1) },
		"created": func(n int64) { lo, hi = n, n },
	} {
		if v := q.Get(key); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, false, fmt.Errorf("Invalid %s: must be an integer", key)
			}
			set(n)
		}
	}
	// Newest first: skip what is newer than hi at once.
	if first := sort.Search(len(items), func(i int) bool { return items[i].created <= hi }); first > start {
		start = first
	}
	charge := q.Get("charge")
	var out []item
	for i := start; i < len(items); i++ {
		it := items[i]
		if it.created < lo {
			break
		}
		if charge != "" && it.charge != charge {
			continue
		}
		if len(out) == limit {
			return out, true, nil
		}
		out = append(out, it)
	}
	return out, false, nil
}

func indexOf(items []item, id string) int {
	for i, it := range items {
		if it.id == id {
			return i
		}
	}
	return -1
}

func stripeError(w http.ResponseWriter, status int, typ, code, msg string) {
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"type": typ, "code": code, "message": msg}})
}
