package peers

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// AlertInbox stands in for the HTTP(S) endpoints SNS topics deliver to
// (the doctors' and ops alert receivers the blueprints subscribe, such as
// https://alerts.eu.dev.medportal.example/doctor, which resolve nowhere on
// this machine). It is an HTTP proxy on loopback that moto's outgoing
// requests go through (MotoOptions.Outbound): a CONNECT to any host is
// answered by the inbox itself, over TLS with a certificate for that host
// from the sandbox CA (which moto's requests trust, and nothing else), and
// every request that arrives is kept as a Delivery. So the blueprints stay
// as they are on AWS, moto delivers for real over TLS, and the sandbox can
// show what the subscribers received.
type AlertInbox struct {
	ln    net.Listener
	srv   *http.Server
	inner *http.Server
	conns *connListener
	ca    *CA

	mu         sync.Mutex
	deliveries []Delivery // oldest first, at most maxDeliveries
	nextID     int64
	changed    chan struct{} // closed and replaced on every delivery
	started    time.Time
}

// maxDeliveries bounds what the inbox keeps.
const maxDeliveries = 500

// Delivery is one request an SNS topic made to a subscriber.
type Delivery struct {
	ID  int64     `json:"id"`
	At  time.Time `json:"at"`
	URL string    `json:"url"`
	// Type is the SNS message type (x-amz-sns-message-type, or the body's
	// Type): Notification, SubscriptionConfirmation...
	Type      string `json:"type"`
	TopicARN  string `json:"topic_arn"`
	MessageID string `json:"message_id"`
	Subject   string `json:"subject"`
	Message   string `json:"message"`
	Body      string `json:"body"`
}

// StartAlertInbox listens on a free loopback port; Close stops it.
func StartAlertInbox(ca *CA) (*AlertInbox, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("peers: alert inbox: %w", err)
	}
	in := &AlertInbox{ln: ln, ca: ca, changed: make(chan struct{}), started: time.Now(),
		conns: &connListener{ch: make(chan net.Conn), done: make(chan struct{}), addr: ln.Addr()}}
	in.inner = &http.Server{Handler: http.HandlerFunc(in.receive), ReadHeaderTimeout: 10 * time.Second, TLSConfig: ca.ServerTLS()}
	in.srv = &http.Server{Handler: http.HandlerFunc(in.proxy), ReadHeaderTimeout: 10 * time.Second}
	go in.inner.Serve(in.conns)
	go in.srv.Serve(ln)
	return in, nil
}

// ProxyURL is the proxy address to give moto (MotoOptions.Outbound).
func (in *AlertInbox) ProxyURL() string { return "http://" + in.ln.Addr().String() }

// Since is when the inbox started.
func (in *AlertInbox) Since() time.Time { return in.started }

// Close stops the inbox.
func (in *AlertInbox) Close() error {
	in.conns.Close()
	return errors.Join(in.srv.Close(), in.inner.Close())
}

// Deliveries returns what the inbox received, newest first.
func (in *AlertInbox) Deliveries() []Delivery {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := make([]Delivery, len(in.deliveries))
	for i, d := range in.deliveries {
		out[len(out)-1-i] = d
	}
	return out
}

// Wait returns the first delivery, old or new, for which match is true,
// waiting for it until ctx ends.
func (in *AlertInbox) Wait(ctx context.Context, match func(Delivery) bool) (Delivery, error) {
	for {
		in.mu.Lock()
		for _, d := range in.deliveries {
			if match(d) {
				in.mu.Unlock()
				return d, nil
			}
		}
		ch := in.changed
		in.mu.Unlock()
		select {
		case <-ctx.Done():
			return Delivery{}, fmt.Errorf("peers: alert inbox: no matching delivery: %w", ctx.Err())
		case <-ch:
		}
	}
}

// proxy serves the outer, plain-HTTP port: CONNECT tunnels end in the
// inbox's own TLS server; absolute-URL requests (plain http subscribers)
// are received directly.
func (in *AlertInbox) proxy(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodConnect:
		hj, ok := w.(http.Hijacker)
		if !ok {
			http.Error(w, "cannot tunnel", http.StatusInternalServerError)
			return
		}
		conn, rw, err := hj.Hijack()
		if err != nil {
			return
		}
		if _, err := rw.WriteString("HTTP/1.1 200 Connection established\r\n\r\n"); err != nil || rw.Flush() != nil {
			conn.Close()
			return
		}
		c := net.Conn(&bufferedConn{Conn: conn, r: rw.Reader})
		if !in.conns.push(tls.Server(c, in.inner.TLSConfig)) {
			conn.Close()
		}
	case r.URL.IsAbs():
		in.receive(w, r)
	default:
		http.Error(w, "this is the sandbox's alert inbox: SNS deliveries reach it through moto's proxy setting", http.StatusNotFound)
	}
}

// receive keeps one delivery and answers 200, as a subscriber does.
func (in *AlertInbox) receive(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 256<<10))
	d := Delivery{At: time.Now(), Body: string(body), Type: r.Header.Get("x-amz-sns-message-type")}
	u := *r.URL
	if !u.IsAbs() {
		u.Scheme, u.Host = "https", r.Host
		if h, port, err := net.SplitHostPort(r.Host); err == nil && port == "443" {
			u.Host = h
		}
	}
	d.URL = u.String()
	var msg struct {
		Type, TopicArn, MessageId, Subject, Message string
	}
	if json.Unmarshal(body, &msg) == nil {
		if d.Type == "" {
			d.Type = msg.Type
		}
		d.TopicARN, d.MessageID, d.Subject, d.Message = msg.TopicArn, msg.MessageId, msg.Subject, msg.Message
	}
	in.mu.Lock()
	in.nextID++
	d.ID = in.nextID
	in.deliveries = append(in.deliveries, d)
	if over := len(in.deliveries) - maxDeliveries; over > 0 {
		in.deliveries = append(in.deliveries[:0], in.deliveries[over:]...)
	}
	close(in.changed)
	in.changed = make(chan struct{})
	in.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain")
	_, _ = io.WriteString(w, "received\n")
}

// connListener hands tunnelled connections to an http.Server.
type connListener struct {
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
	addr net.Addr
}

func (l *connListener) push(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *connListener) Addr() net.Addr { return l.addr }

// bufferedConn reads first what the proxy's reader had already buffered.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(b []byte) (int, error) { return c.r.Read(b) }
