package cmd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/rtckit/rtckit/peer"
	rtcsignal "github.com/rtckit/rtckit/signal"
	"github.com/rtckit/rtckit/signal/web"
	"github.com/rtckit/rtckit/turnserver"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// signalServeSchema versions the JSON lines of `rtckit signal serve --json`.
const signalServeSchema = "rtckit.signal.serve/v1"

// Defaults of `rtckit signal serve`.
const (
	// defaultSignalListen is loopback: serving other machines is a
	// deliberate choice of --listen 0.0.0.0:8080 or a LAN address.
	defaultSignalListen = "127.0.0.1:8080"
	// embeddedTURNSecretBytes is the size of the per-run TURN REST secret
	// of --turn-embedded.
	embeddedTURNSecretBytes = 32
)

// signalICEFlags are the flags of addICEFlags that a signaling server
// passes on to its clients; the others configure a local PeerConnection.
var signalICEFlags = []string{"stun", "turn", "turn-user", "turn-pass", "turn-secret", "turn-ttl"}

// SignalServeOptions are the inputs of `rtckit signal serve`.
type SignalServeOptions struct {
	// Listen is the HTTP listen address, host:port.
	Listen string
	// TLSCert and TLSKey are PEM files; with them the server speaks HTTPS.
	TLSCert, TLSKey string
	// Token and TokenSecret require an access token from WebSocket clients.
	Token, TokenSecret string
	// AllowOrigins are extra browser Origin host patterns.
	AllowOrigins []string
	// MaxConnections, MaxMessageSize, Rate, Burst and SendQueue are the
	// per-server and per-connection limits.
	MaxConnections, MaxMessageSize int
	Rate                           float64
	Burst, SendQueue               int
	// ResumeGrace, QueueMessages and QueueTTL govern resumable sessions.
	ResumeGrace   time.Duration
	QueueMessages int
	QueueTTL      time.Duration
	// PingInterval, IdleTimeout and DrainTimeout are the heartbeat and
	// shutdown timers.
	PingInterval, IdleTimeout, DrainTimeout time.Duration
	// ICE are the STUN and TURN servers sent to clients.
	ICE peer.ICEConfig
	// TURNEmbedded runs a TURN server in-process on TURNListen:TURNPort.
	TURNEmbedded bool
	TURNListen   string
	TURNPort     int
	// Cluster is the NATS URL that joins this hub to others; empty keeps
	// the hub alone, in memory.
	Cluster string
	// ClusterName separates clusters sharing one NATS server.
	ClusterName string
	// Transport is "auto" (an event loop for plain TCP on Linux) or
	// "goroutines".
	Transport string
}

// SignalServeEvent is one line of `rtckit signal serve --json` output: a
// "listening" event once the socket is bound and a "stopped" event with
// the final counters.
type SignalServeEvent struct {
	Schema string `json:"schema"`
	// Event is "listening" or "stopped".
	Event string `json:"event"`
	// Addr is the bound address.
	Addr string `json:"addr"`
	// URL is the page's URL; WebSocket clients connect to it or to /ws.
	URL string `json:"url"`
	// WebSocket is the WebSocket URL.
	WebSocket string `json:"websocket"`
	// TLS tells whether the server speaks HTTPS.
	TLS bool `json:"tls"`
	// TokenRequired tells whether WebSocket clients need an access token.
	TokenRequired bool `json:"token_required"`
	// ICEServers are the server URIs handed to clients, without
	// credentials.
	ICEServers []string `json:"ice_servers"`
	// TURN are the embedded TURN server's listeners, when it runs.
	TURN *turnserver.Addrs `json:"turn,omitempty"`
	// Cluster describes the cluster the hub joined, with --cluster.
	Cluster *SignalClusterInfo `json:"cluster,omitempty"`
	// Stats are the hub's final counters in a "stopped" event.
	Stats *rtcsignal.HubStats `json:"stats,omitempty"`
}

// SignalClusterInfo describes the cluster of a hub started with --cluster.
type SignalClusterInfo struct {
	// URL is the NATS URL with any password redacted.
	URL string `json:"url"`
	// Name is the cluster name; Node is this hub's node id.
	Name string `json:"name"`
	Node string `json:"node"`
}

func newSignalServeCmd(g *GlobalOptions) *cobra.Command {
	opts := &SignalServeOptions{}
	c := &cobra.Command{
		Use:   "serve",
		Short: "Run a WebSocket signaling hub and the browser call page",
		Long: `Serve runs a signaling hub: a WebSocket server that relays JSON messages
between browsers, and the call page at /. Open the page in two tabs (or on two
machines) to call. docs/protocol.md describes the protocol; clients written for
the classic WebRTC chat-server protocol work unchanged, at / or /ws, with or
without the "json" subprotocol.

The server listens on 127.0.0.1:8080, reachable from this machine only; use
--listen 0.0.0.0:8080 (or a LAN address) for other machines, and TLS
(--tls-cert, --tls-key) for them too, as browsers only grant camera and
microphone to secure origins and localhost.

Clients get their ICE servers from the hub: --stun and --turn, with TURN REST
credentials minted per client from --turn-secret, or --turn-embedded to run a
TURN server in this process with a random per-run secret. On one machine no
ICE server is needed.

Limits keep one client from hurting the others: message size, message rate,
a bounded send queue (a client that does not read is dropped), connection
count, a browser Origin allow-list, and ping/idle timeouts. /healthz and
Prometheus /metrics serve operations. On interrupt every client is told, then
closed with 1001 after its queued messages. With --json the server prints a
"listening" and a "stopped" event, one JSON object per line.

Several hubs form one service with --cluster nats://host:4222: users on
different hubs see each other and call each other, through a NATS server.
Without it the hub is alone and needs no other service.`,
		Example: `  # A call service on this machine: open http://localhost:8080 in two tabs
  rtckit signal serve

  # On the LAN with TLS, a relay for clients behind strict NATs, and a token
  rtckit signal serve --listen 0.0.0.0:8443 --tls-cert cert.pem --tls-key key.pem \
    --turn-embedded --turn-listen 192.168.1.20 --token "$TOKEN"

  # Hand out a public STUN server and minted credentials for a coturn relay
  rtckit signal serve --stun stun:stun.example.net --turn turn:turn.example.net \
    --turn-secret "$TURN_SECRET"

  # Free port, machine-readable events
  rtckit signal serve --listen 127.0.0.1:0 --json

  # Two hubs of one service, joined through NATS
  rtckit signal serve --listen 0.0.0.0:8080 --cluster nats://nats.internal:4222 --cluster-name prod`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("turn-port") && !opts.TURNEmbedded {
				return usageError(errors.New("--turn-port needs --turn-embedded"))
			}
			if err := opts.validate(); err != nil {
				return usageError(err)
			}
			ctx, cancel := g.Context(cmd.Context(), 0)
			defer cancel()
			return runSignalServe(ctx, g, opts, cmd.OutOrStdout())
		},
	}
	f := c.Flags()
	f.StringVar(&opts.Listen, "listen", defaultSignalListen, "HTTP listen address host:port; 0.0.0.0:8080 serves other machines")
	f.StringVar(&opts.TLSCert, "tls-cert", "", "PEM certificate chain; serve HTTPS and wss:")
	f.StringVar(&opts.TLSKey, "tls-key", "", "PEM private key of --tls-cert")
	f.StringVar(&opts.Token, "token", "", "access token WebSocket clients must present (?token= or Authorization: Bearer)")
	f.StringVar(&opts.TokenSecret, "token-secret", "", "also accept tokens signed with this HMAC secret (expiry.signature)")
	f.StringArrayVar(&opts.AllowOrigins, "allow-origin", nil, `extra browser Origin host pattern, e.g. "*.example.com" or "https://app.example.com" ("*": any; repeatable)`)
	f.IntVar(&opts.MaxConnections, "max-connections", rtcsignal.DefaultMaxConnections, "concurrent WebSocket connections")
	f.IntVar(&opts.MaxMessageSize, "max-message-size", rtcsignal.DefaultMaxMessageSize, "largest client message in bytes")
	f.Float64Var(&opts.Rate, "rate", rtcsignal.DefaultRate, "messages per second per connection (0: no limit)")
	f.IntVar(&opts.Burst, "burst", rtcsignal.DefaultBurst, "message burst per connection")
	f.IntVar(&opts.SendQueue, "send-queue", rtcsignal.DefaultSendQueue, "messages queued for one connection before it is dropped")
	f.DurationVar(&opts.ResumeGrace, "resume-grace", rtcsignal.DefaultResumeGrace, "how long a disconnected user can resume its name (0: no resume)")
	f.IntVar(&opts.QueueMessages, "resume-queue", rtcsignal.DefaultQueueMessages, "messages kept for a disconnected user")
	f.DurationVar(&opts.QueueTTL, "resume-queue-ttl", rtcsignal.DefaultQueueTTL, "how long a kept message waits before its sender gets an expired error")
	f.DurationVar(&opts.PingInterval, "ping-interval", rtcsignal.DefaultPingInterval, "WebSocket ping interval")
	f.DurationVar(&opts.IdleTimeout, "idle-timeout", rtcsignal.DefaultIdleTimeout, "close a connection whose ping is unanswered this long")
	f.DurationVar(&opts.DrainTimeout, "drain-timeout", rtcsignal.DefaultDrainTimeout, "how long shutdown waits for connections to close")
	ice := pflag.NewFlagSet("ice", pflag.ContinueOnError)
	addICEFlags(ice, &opts.ICE)
	for _, name := range signalICEFlags {
		f.AddFlag(ice.Lookup(name))
	}
	f.BoolVar(&opts.TURNEmbedded, "turn-embedded", false, "run a TURN server in this process and hand out credentials for it")
	f.StringVar(&opts.TURNListen, "turn-listen", "", "IP of the embedded TURN server (default: the --listen IP, which must then be concrete)")
	f.IntVar(&opts.TURNPort, "turn-port", 3478, "UDP and TCP port of the embedded TURN server (0: a free one)")
	f.StringVar(&opts.Cluster, "cluster", "", "join other hubs through NATS: nats://[user:pass@]host:port (tls:// for TLS; comma-separated for several)")
	f.StringVar(&opts.Transport, "transport", rtcsignal.TransportAuto, `how WebSockets are served: "auto" (one event loop for plain TCP on Linux, goroutines for TLS) or "goroutines" (two per connection)`)
	f.StringVar(&opts.ClusterName, "cluster-name", rtcsignal.DefaultClusterName, "cluster name, to run several clusters on one NATS server (letters, digits, - and _)")
	return c
}

// minMaxMessageSize is the smallest --max-message-size: any lower and
// browsers' offers could never pass.
const minMaxMessageSize = 4 << 10

// validate checks the flags that need more than their type.
func (o *SignalServeOptions) validate() error {
	_, port, err := net.SplitHostPort(o.Listen)
	if err != nil {
		return fmt.Errorf("--listen: %q is not host:port", o.Listen)
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("--listen: port %q: not a port number (0–65535) or service name", port)
	}
	if o.TURNPort < 0 || o.TURNPort > 65535 {
		return fmt.Errorf("--turn-port: %d is not a port number (0–65535)", o.TURNPort)
	}
	if math.IsNaN(o.Rate) || math.IsInf(o.Rate, 0) {
		return fmt.Errorf("--rate: %v is not a rate", o.Rate)
	}
	if o.MaxMessageSize < minMaxMessageSize {
		return fmt.Errorf("--max-message-size must be at least %d bytes (an offer's SDP alone is larger)", minMaxMessageSize)
	}
	if len(o.ICE.TURN) == 0 && (o.ICE.TURNSecret != "" || o.ICE.TURNUser != "" || o.ICE.TURNPass != "") {
		return errors.New("--turn-secret, --turn-user and --turn-pass are credentials for --turn servers: give one")
	}
	if o.ICE.TURNSecret != "" && o.ICE.TURNTTL <= 0 {
		return errors.New("--turn-ttl must be positive")
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	for name, v := range map[string]int{
		"--max-connections": o.MaxConnections, "--max-message-size": o.MaxMessageSize,
		"--burst": o.Burst, "--send-queue": o.SendQueue, "--resume-queue": o.QueueMessages,
	} {
		if v < 1 {
			return fmt.Errorf("%s must be at least 1", name)
		}
	}
	if o.Rate < 0 || o.ResumeGrace < 0 {
		return errors.New("--rate and --resume-grace must not be negative")
	}
	for name, d := range map[string]time.Duration{
		"--resume-queue-ttl": o.QueueTTL, "--ping-interval": o.PingInterval,
		"--idle-timeout": o.IdleTimeout, "--drain-timeout": o.DrainTimeout,
	} {
		if d <= 0 {
			return fmt.Errorf("%s must be positive", name)
		}
	}
	if o.TURNEmbedded && (o.ICE.TURNSecret != "" || o.ICE.TURNUser != "" || o.ICE.TURNPass != "") {
		return errors.New("--turn-embedded mints its own credentials: give other TURN servers theirs in the URI (turn:user:pass@host)")
	}
	if !o.TURNEmbedded && o.TURNListen != "" {
		return errors.New("--turn-listen needs --turn-embedded")
	}
	if _, err := o.ICE.Servers(time.Now()); err != nil {
		return err
	}
	if o.Cluster != "" {
		if err := rtcsignal.CheckClusterURL(o.Cluster); err != nil {
			return fmt.Errorf("--cluster: %w", err)
		}
	}
	if o.Transport != rtcsignal.TransportAuto && o.Transport != rtcsignal.TransportGoroutines {
		return fmt.Errorf("--transport must be %q or %q", rtcsignal.TransportAuto, rtcsignal.TransportGoroutines)
	}
	if err := rtcsignal.CheckClusterName(o.ClusterName); err != nil {
		return fmt.Errorf("--cluster-name: %w", err)
	}
	return nil
}

// redactClusterURL returns the --cluster URLs without passwords.
func redactClusterURL(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil {
			parts[i] = u.Redacted()
		}
	}
	return strings.Join(parts, ",")
}

// joinCluster connects to the --cluster NATS server; nil without one.
func joinCluster(ctx context.Context, g *GlobalOptions, opts *SignalServeOptions) (*rtcsignal.Cluster, error) {
	if opts.Cluster == "" {
		return nil, nil
	}
	cl, err := rtcsignal.NewCluster(ctx, rtcsignal.ClusterConfig{URL: opts.Cluster, Name: opts.ClusterName, Logger: g.Logger()})
	if err != nil {
		if errors.Is(err, rtcsignal.ErrInvalidConfig) {
			return nil, usageError(fmt.Errorf("--cluster: %w", err))
		}
		return nil, fmt.Errorf("--cluster %s: %w", redactClusterURL(opts.Cluster), err)
	}
	return cl, nil
}

// turnListenIP returns the embedded TURN server's IP: --turn-listen, or
// the --listen host when it is a concrete address.
func (o *SignalServeOptions) turnListenIP() (netip.Addr, error) {
	s := o.TURNListen
	if s == "" {
		host, _, _ := net.SplitHostPort(o.Listen) // validated
		if strings.EqualFold(host, "localhost") {
			host = "127.0.0.1"
		}
		s = host
	}
	ip, err := netip.ParseAddr(s)
	if err != nil || ip.IsUnspecified() {
		return netip.Addr{}, errors.New("--turn-embedded needs --turn-listen with an address of this host that clients can reach, " +
			"because --listen is not one (a TURN server announces its address)")
	}
	return ip, nil
}

// config turns the options into the server's configuration.
func (o *SignalServeOptions) config() rtcsignal.Config {
	rate := o.Rate
	if rate == 0 {
		rate = -1 // the CLI's 0 is the library's "unlimited"
	}
	grace := o.ResumeGrace
	if grace == 0 {
		grace = -1 // the CLI's 0 is the library's "no resume"
	}
	return rtcsignal.Config{
		Hub: rtcsignal.HubConfig{
			MaxConnections: o.MaxConnections,
			MaxMessageSize: o.MaxMessageSize,
			Rate:           rate,
			Burst:          o.Burst,
			ResumeGrace:    grace,
			QueueMessages:  o.QueueMessages,
			QueueTTL:       o.QueueTTL,
		},
		Page:           web.Handler(),
		Token:          o.Token,
		TokenSecret:    o.TokenSecret,
		AllowedOrigins: o.AllowOrigins,
		SendQueue:      o.SendQueue,
		PingInterval:   o.PingInterval,
		IdleTimeout:    o.IdleTimeout,
		DrainTimeout:   o.DrainTimeout,
		TLSCert:        o.TLSCert,
		TLSKey:         o.TLSKey,
		Transport:      o.Transport,
	}
}

// iceServersFor returns the per-connection ICE server list: TURN REST
// credentials are minted for each client, named after its id.
func iceServersFor(ice peer.ICEConfig, now func() time.Time) func(int64) []rtcsignal.ICEServer {
	return func(id int64) []rtcsignal.ICEServer {
		c := ice
		if c.TURNSecret != "" && c.TURNUser == "" {
			c.TURNUser = "client" + strconv.FormatInt(id, 10)
		}
		servers, err := c.Servers(now())
		if err != nil {
			return nil // validated at startup; nothing better to hand out
		}
		out := make([]rtcsignal.ICEServer, 0, len(servers))
		for _, s := range servers {
			is := rtcsignal.ICEServer{URLs: []string{s.URI.String()}}
			if s.URI.IsTURN() {
				is.Username, is.Credential = s.Username, s.Credential
			}
			out = append(out, is)
		}
		return out
	}
}

// startEmbeddedTURN binds the in-process TURN server and adds it to the
// ICE configuration with a random per-run secret. The returned function
// stops it and waits.
func startEmbeddedTURN(ctx context.Context, g *GlobalOptions, opts *SignalServeOptions) (turnserver.Addrs, func() error, error) {
	ip, err := opts.turnListenIP()
	if err != nil {
		return turnserver.Addrs{}, nil, usageError(err)
	}
	secret := make([]byte, embeddedTURNSecretBytes)
	_, _ = rand.Read(secret) // crypto/rand.Read never fails
	srv, err := turnserver.Listen(turnserver.Config{
		ListenIP:   ip,
		Port:       opts.TURNPort,
		UDP:        true,
		TCP:        true,
		AuthSecret: hex.EncodeToString(secret),
		// The embedded relay serves calls on this machine or its LAN.
		AllowLoopbackPeers: ip.IsLoopback(),
		AllowPrivatePeers:  true,
		Logger:             g.Logger(),
	})
	if err != nil {
		if errors.Is(err, turnserver.ErrInvalidConfig) {
			return turnserver.Addrs{}, nil, usageError(err)
		}
		return turnserver.Addrs{}, nil, fmt.Errorf("--turn-embedded: %w", err)
	}
	opts.ICE.TURN = append(opts.ICE.TURN, srv.Addrs().URIs()...)
	opts.ICE.TURNSecret = hex.EncodeToString(secret)
	tctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(tctx) }()
	return srv.Addrs(), func() error { cancel(); return <-done }, nil
}

// runSignalServe serves until ctx ends, printing a "listening" event once
// bound and a "stopped" event at the end.
func runSignalServe(ctx context.Context, g *GlobalOptions, opts *SignalServeOptions, out io.Writer) error {
	cfg := opts.config()
	cfg.Logger = g.Logger()
	var turnAddrs *turnserver.Addrs
	stopTURN := func() error { return nil }
	if opts.TURNEmbedded {
		addrs, stop, err := startEmbeddedTURN(ctx, g, opts)
		if err != nil {
			return err
		}
		turnAddrs, stopTURN = &addrs, stop
	}
	cfg.Hub.ICEServers = iceServersFor(opts.ICE, time.Now)
	cluster, err := joinCluster(ctx, g, opts)
	if err != nil {
		return errors.Join(err, stopTURN())
	}
	stop := stopTURN
	if cluster != nil {
		cfg.Hub.Bus = cluster
		// The cluster closes after the hub's shutdown has told the other
		// nodes that its users are gone.
		stop = func() error { return errors.Join(cluster.Close(), stopTURN()) }
	}
	srv, err := rtcsignal.NewServer(cfg)
	if err != nil {
		err = errors.Join(err, stop())
		if errors.Is(err, rtcsignal.ErrInvalidConfig) {
			return usageError(err)
		}
		return err
	}
	if cluster != nil {
		if err := cluster.Start(srv.Hub()); err != nil {
			return errors.Join(fmt.Errorf("--cluster: %w", err), stop())
		}
	}
	l, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return errors.Join(fmt.Errorf("--listen: %w", err), stop())
	}
	ev := signalListeningEvent(l.Addr().String(), srv.TLS(), opts, turnAddrs)
	if cluster != nil {
		ev.Cluster = &SignalClusterInfo{URL: redactClusterURL(opts.Cluster), Name: cluster.Name(), Node: cluster.NodeID()}
	}
	if err := writeSignalServeEvent(out, g.JSON, ev); err != nil {
		return errors.Join(err, l.Close(), stop())
	}
	serveErr := srv.Serve(ctx, l)
	stats := srv.Hub().Stats()
	ev.Event, ev.Stats = "stopped", &stats
	return errors.Join(serveErr, stop(), writeSignalServeEvent(out, g.JSON, ev))
}
