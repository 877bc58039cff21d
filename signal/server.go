package signal

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Subprotocol is the WebSocket subprotocol classic clients ask for; the
// server selects it whenever it is offered.
const Subprotocol = "json"

// Transports of Config.Transport.
const (
	// TransportAuto serves plain-TCP WebSockets from one event loop on
	// Linux, without a goroutine or buffer per idle connection, and TLS
	// ones (and all of them elsewhere) like TransportGoroutines.
	TransportAuto = "auto"
	// TransportGoroutines serves every WebSocket with a reader and a
	// writer goroutine of its own.
	TransportGoroutines = "goroutines"
)

// Defaults of Config.
const (
	// DefaultSendQueue bounds the messages waiting for one connection's
	// writer; a client whose queue is full is dropped.
	DefaultSendQueue = 256
	// DefaultWriteTimeout bounds writing one message.
	DefaultWriteTimeout = 10 * time.Second
	// DefaultPingInterval is how often the server pings an idle
	// connection at the WebSocket level.
	DefaultPingInterval = 25 * time.Second
	// DefaultIdleTimeout is how long a ping may wait for its pong before
	// the connection is closed.
	DefaultIdleTimeout = 20 * time.Second
	// DefaultDrainTimeout bounds a graceful shutdown: connections still
	// open after it are closed at once.
	DefaultDrainTimeout = 5 * time.Second
	// hardReadFactor times MaxMessageSize is the size beyond which a
	// message closes the connection (1009) instead of being skipped with
	// a too-large error.
	hardReadFactor = 4
	// readHeaderTimeout bounds an HTTP request's headers.
	readHeaderTimeout = 10 * time.Second
	// httpIdleTimeout closes idle keep-alive HTTP connections (not
	// WebSockets).
	httpIdleTimeout = 2 * time.Minute
)

// Config configures a Server. The zero value serves on any listener with
// the defaults.
type Config struct {
	// Hub configures users, routing and limits.
	Hub HubConfig
	// Page serves every non-WebSocket request other than /healthz and
	// /metrics (the call page and its assets); nil serves a short text.
	Page http.Handler
	// Token, when set, is the access token every WebSocket client must
	// present (?token= or Authorization: Bearer).
	Token string
	// TokenSecret, when set, also accepts tokens made by SignToken.
	TokenSecret string
	// AllowedOrigins are extra host patterns (path.Match, e.g.
	// "app.example.com" or "*.example.com:8443", or "https://host" to
	// match the scheme too) for browser Origins; the server's own host
	// and loopback origins are always allowed, "*" allows every origin.
	AllowedOrigins []string
	// SendQueue, WriteTimeout, PingInterval, IdleTimeout and DrainTimeout
	// take the defaults above when zero.
	SendQueue    int
	WriteTimeout time.Duration
	PingInterval time.Duration
	IdleTimeout  time.Duration
	DrainTimeout time.Duration
	// TLSCert and TLSKey are PEM files; with them Serve speaks HTTPS.
	TLSCert, TLSKey string
	// Transport chooses how WebSockets are served: TransportAuto (the
	// default when empty) or TransportGoroutines.
	Transport string
	// Registry receives the metrics served at /metrics; nil makes a new
	// one.
	Registry *prometheus.Registry
	// Logger receives structured logs (never tokens); nil discards them.
	Logger *slog.Logger
}

// Server is the signaling hub's HTTP and WebSocket transport.
type Server struct {
	cfg     Config
	hub     *Hub
	log     *slog.Logger
	metrics *Metrics
	tls     *tls.Config
	handler http.Handler

	stopping atomic.Bool
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[*wsConn]struct{}
	poll     *poller // the running event loop, guarded by mu
}

// NewServer checks cfg and builds a server; errors wrap ErrInvalidConfig.
func NewServer(cfg Config) (*Server, error) {
	if cfg.SendQueue <= 0 {
		cfg.SendQueue = DefaultSendQueue
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = DefaultPingInterval
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = DefaultDrainTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	switch cfg.Transport {
	case "":
		cfg.Transport = TransportAuto
	case TransportAuto, TransportGoroutines:
	default:
		return nil, fmt.Errorf("%w: unknown transport %q (want %q or %q)", ErrInvalidConfig, cfg.Transport, TransportAuto, TransportGoroutines)
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	for _, p := range cfg.AllowedOrigins {
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("%w: origin pattern %q: %v", ErrInvalidConfig, p, err)
		}
	}
	s := &Server{cfg: cfg, log: cfg.Logger, conns: make(map[*wsConn]struct{})}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return nil, fmt.Errorf("%w: a TLS certificate and key go together", ErrInvalidConfig)
	}
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("%w: loading the TLS certificate: %v", ErrInvalidConfig, err)
		}
		s.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	m, err := NewMetrics(cfg.Registry)
	if err != nil {
		return nil, fmt.Errorf("%w: registering metrics: %v", ErrInvalidConfig, err)
	}
	s.metrics = m
	hc := cfg.Hub
	hc.Metrics = m
	if hc.Logger == nil {
		hc.Logger = cfg.Logger
	}
	s.hub = NewHub(hc)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.serveHealth)
	mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/", s.serveRoot)
	s.handler = mux
	return s, nil
}

// Hub returns the server's hub.
func (s *Server) Hub() *Hub { return s.hub }

// Handler returns the HTTP handler: WebSocket upgrades at / and /ws,
// /healthz, /metrics and the page.
func (s *Server) Handler() http.Handler { return s.handler }

// TLS reports whether Serve speaks HTTPS.
func (s *Server) TLS() bool { return s.tls != nil }

// Health is the body of /healthz.
type Health struct {
	// Status is "ok", or "shutting-down" (with HTTP 503).
	Status string `json:"status"`
	HubStats
}

func (s *Server) serveHealth(w http.ResponseWriter, _ *http.Request) {
	h := Health{Status: "ok", HubStats: s.hub.Stats()}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if s.stopping.Load() {
		h.Status = "shutting-down"
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(h) // a failed write is the client's loss
}

// isUpgrade reports whether r asks for a WebSocket.
func isUpgrade(r *http.Request) bool {
	return headerHas(r.Header, "Connection", "upgrade") && headerHas(r.Header, "Upgrade", "websocket")
}

func headerHas(h http.Header, key, token string) bool {
	for _, v := range h.Values(key) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

func (s *Server) serveRoot(w http.ResponseWriter, r *http.Request) {
	switch {
	case isUpgrade(r) && (r.URL.Path == "/" || r.URL.Path == "/ws"):
		s.serveWebSocket(w, r)
	case r.URL.Path == "/ws":
		http.Error(w, "this endpoint speaks WebSocket", http.StatusUpgradeRequired)
	case s.cfg.Page != nil:
		s.cfg.Page.ServeHTTP(w, r)
	case r.URL.Path == "/":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "rtckit signal: the call page is not available in this build.\n"+
			"WebSocket clients connect to this URL or to /ws.\n")
	default:
		http.NotFound(w, r)
	}
}

// originAllowed reports whether a browser's Origin may open a WebSocket:
// no Origin (not a browser), the server's own host, a loopback origin, or
// a configured pattern.
func (s *Server) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	switch strings.ToLower(u.Hostname()) {
	case "localhost", "127.0.0.1", "::1":
		return true
	}
	for _, p := range s.cfg.AllowedOrigins {
		target := u.Host
		if strings.Contains(p, "://") {
			target = u.Scheme + "://" + u.Host
		}
		if ok, _ := path.Match(strings.ToLower(p), strings.ToLower(target)); ok {
			return true
		}
	}
	return false
}

// tokenAllowed checks the access token when one is required.
func (s *Server) tokenAllowed(r *http.Request) bool {
	if s.cfg.Token == "" && s.cfg.TokenSecret == "" {
		return true
	}
	tok := r.URL.Query().Get("token")
	if tok == "" {
		if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			tok = strings.TrimSpace(v)
		}
	}
	if tok == "" {
		return false
	}
	if s.cfg.Token != "" && equalToken(tok, s.cfg.Token) {
		return true
	}
	return s.cfg.TokenSecret != "" && VerifyToken(s.cfg.TokenSecret, tok, time.Now())
}

func (s *Server) refuse(w http.ResponseWriter, status int, reason, text string) {
	s.metrics.reject(reason)
	http.Error(w, text, status)
}

func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	if !s.originAllowed(r) {
		s.log.Info("websocket refused", "reason", "origin", "origin", r.Header.Get("Origin"), "remote", r.RemoteAddr)
		s.refuse(w, http.StatusForbidden, rejectOrigin, "origin not allowed")
		return
	}
	if !s.tokenAllowed(r) {
		s.log.Info("websocket refused", "reason", "token", "remote", r.RemoteAddr)
		s.refuse(w, http.StatusUnauthorized, rejectToken, "missing or invalid access token")
		return
	}
	if err := s.hub.Reserve(); err != nil {
		reason := rejectFull
		if errors.Is(err, ErrClosed) {
			reason = rejectShuttingDown
		}
		s.refuse(w, http.StatusServiceUnavailable, reason, err.Error())
		return
	}
	if pollSupported && s.cfg.Transport == TransportAuto && r.TLS == nil {
		s.servePoll(w, r)
		return
	}
	hj := &hijackRecorder{ResponseWriter: w}
	ws, err := websocket.Accept(hj, r, &websocket.AcceptOptions{
		Subprotocols:       []string{Subprotocol},
		InsecureSkipVerify: true, // originAllowed checked the Origin
		CompressionMode:    websocket.CompressionDisabled,
	})
	if err != nil {
		s.log.Debug("websocket upgrade failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	limit := s.hub.MaxMessageSize()
	ws.SetReadLimit(int64(limit) * hardReadFactor)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := &wsConn{
		ws:      ws,
		netConn: hj.conn,
		wake:    make(chan struct{}, 1),
		closing: make(chan struct{}),
		cfg:     &s.cfg,
		log:     s.log,
	}
	if !s.track(c) {
		_ = ws.CloseNow() // shutdown began during the upgrade; the drain no longer waits
		return
	}
	defer s.untrack(c)
	client, err := s.hub.Connect(c)
	if err != nil {
		_ = ws.Close(websocket.StatusTryAgainLater, err.Error()) // the client may be gone already
		return
	}
	c.wg.Add(1)
	go c.writer(ctx)
	if s.readLoop(ctx, ws, client, limit) && !c.isClosing() {
		client.Leave() // the client closed first, normally
	} else {
		client.Disconnect()
	}
	c.Close(int(websocket.StatusNormalClosure), "")
	c.wg.Wait()
}

// readLoop hands every message to the hub until the connection ends; it
// reports whether the client closed it normally (1000: it left).
func (s *Server) readLoop(ctx context.Context, ws *websocket.Conn, client *Client, limit int) (left bool) {
	for {
		_, r, err := ws.Reader(ctx)
		if err != nil {
			status := websocket.CloseStatus(err)
			s.log.Debug("connection ended", "id", client.ID(), "status", int(status))
			return status == websocket.StatusNormalClosure
		}
		data, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
		if err != nil {
			return false
		}
		if len(data) > limit {
			if _, err := io.Copy(io.Discard, r); err != nil {
				s.metrics.dropped(dropTooLarge)
				return false
			}
			client.TooLarge(limit)
			continue
		}
		client.Handle(data)
	}
}

func (s *Server) track(c *wsConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping.Load() {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) untrack(c *wsConn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

// Serve serves HTTP (HTTPS with a certificate) on l until ctx is done,
// then shuts down gracefully: clients get a shutdown error message and a
// 1001 close after their queued messages, and connections still open
// after DrainTimeout are cut (a warning, not an error). Serve closes l and
// returns nil after such a stop, or the error that ended serving.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	if s.tls != nil {
		l = tls.NewListener(l, s.tls)
	}
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       httpIdleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(l) }()
	var serveErr error
	select {
	case serveErr = <-errc:
	case <-ctx.Done():
	}
	dctx, cancel := context.WithTimeout(context.Background(), s.cfg.DrainTimeout)
	defer cancel()
	if err := s.Shutdown(dctx); err != nil {
		s.log.Warn("connections cut after the drain timeout", "timeout", s.cfg.DrainTimeout)
	}
	if err := hs.Shutdown(dctx); err != nil {
		_ = hs.Close() // cut what the drain left; the clients were told
	}
	if serveErr == nil {
		serveErr = <-errc
	}
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	return serveErr
}

// Shutdown tells every client that the server is going away, closes the
// connections after their queued messages and waits for them until ctx is
// done; then it cuts the rest and returns ctx's error. Use it when serving
// Handler from your own http.Server.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.stopping.Store(true)
	s.mu.Unlock()
	s.hub.Shutdown("server shutting down")
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	for c := range s.conns {
		c.cut()
	}
	s.cutPoll()
	s.mu.Unlock()
	<-done
	return fmt.Errorf("signal: drain: %w", ctx.Err())
}
