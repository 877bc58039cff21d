package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rtckit/rtckit/turnserver"
)

// turnServeSchema versions the JSON lines of `rtckit turn serve --json`.
const turnServeSchema = "rtckit.turn.serve/v1"

// Defaults of `rtckit turn serve`.
const (
	// defaultTurnListen is loopback: serving the internet is a deliberate
	// choice of a public address.
	defaultTurnListen = "127.0.0.1"
	// defaultTurnPort is the IANA STUN/TURN port.
	defaultTurnPort = 3478
	// defaultTurnTLSPort is the IANA STUN/TURN over TLS port.
	defaultTurnTLSPort = 5349
	// defaultTurnMinPort and defaultTurnMaxPort are the relay port range
	// RFC 8656 §7.2 recommends, as coturn uses by default.
	defaultTurnMinPort = 49152
	defaultTurnMaxPort = 65535
)

// TurnServeOptions are the inputs of `rtckit turn serve`.
type TurnServeOptions struct {
	// Listen is the IP of every listener, a concrete address of this host.
	Listen netip.Addr
	// Port is the UDP and TCP port; 0 picks a free one.
	Port int
	// UDP and TCP select the plain listeners.
	UDP, TCP bool
	// TLSPort is the TLS listener's port, used with TLSCert; 0 picks one.
	TLSPort int
	// TLSCert and TLSKey are PEM files; a certificate enables TLS.
	TLSCert, TLSKey string
	// Realm is the long-term credential realm.
	Realm string
	// Users are the long-term credentials from --user and --users-file.
	Users map[string]string
	// AuthSecret is the TURN REST shared secret, from --auth-secret or
	// --auth-secret-file.
	AuthSecret string
	// RelayIP is the address relay sockets bind; invalid means Listen.
	RelayIP netip.Addr
	// ExternalIP is announced for relays instead of RelayIP (1:1 NAT).
	ExternalIP netip.Addr
	// MinPort and MaxPort are the relay port range; both 0 lets the system
	// pick.
	MinPort, MaxPort int
	// Quota is the concurrent allocations per user; 0 means no limit.
	Quota int
	// MaxPermissions is the peer addresses one allocation may hold
	// permissions for; 0 means no limit.
	MaxPermissions int
	// AllowLoopbackPeers and AllowPrivatePeers open the relay to those peers.
	AllowLoopbackPeers, AllowPrivatePeers bool
}

// turnServeFlags are the flag values that need parsing or files read.
type turnServeFlags struct {
	listen, relayIP, externalIP string
	users                       []string
	usersFile                   string
	authSecretFile              string
}

// TurnServeEvent is one line of `rtckit turn serve --json` output: a
// "listening" event once every listener is bound, and a "stopped" event
// with the final counters.
type TurnServeEvent struct {
	Schema string `json:"schema"`
	// Event is "listening" or "stopped".
	Event string `json:"event"`
	// Addrs are the bound listeners: udp, tcp and tls, the absent ones
	// omitted.
	turnserver.Addrs
	// URIs are the ICE server URIs of the listeners.
	URIs []string `json:"uris"`
	// Info is how the server relays and whom it serves (realm, relay_ip,
	// quota_per_user, ...); secrets are never part of it.
	turnserver.Info
	// Stats are the final counters of a "stopped" event.
	Stats *turnserver.Stats `json:"stats,omitempty"`
}

func newTurnServeCmd(g *GlobalOptions) *cobra.Command {
	opts := &TurnServeOptions{}
	fl := &turnServeFlags{}
	c := &cobra.Command{
		Use:   "serve",
		Short: "Run a TURN relay server",
		Long: `Serve runs a TURN server (RFC 8656, with RFC 6062 TCP relays) on UDP and TCP,
and on TLS when given a certificate. Clients authenticate with long-term
credentials: users from --user and --users-file, and TURN REST credentials
derived from --auth-secret as coturn's use-auth-secret does. Serve refuses to
start without any credentials, because an unauthenticated TURN server is an
open relay.

Each user may hold --quota allocations at once; further Allocate requests get
486. Each allocation may hold permissions for --max-permissions peer addresses;
requests for another one get 403 until one expires. Relays bind --relay-ip (default: --listen) on a port between --min-port and
--max-port; behind a 1:1 NAT, --external-ip is announced to clients instead.

Clients may relay to public addresses only: permissions to loopback and private
peers are refused (403) unless --allow-loopback-peers or --allow-private-peers
is given, so the server cannot be used to reach services on its own host or
network. Link-local (cloud metadata services), multicast, broadcast and
unspecified peers are always refused.

The server runs until interrupted (or for --timeout), then releases every
allocation and prints its counters. With --json it prints one JSON object per
line: a "listening" event with the bound addresses and ICE server URIs, and a
"stopped" event.`,
		Example: `  # A lab relay on loopback for two test users
  rtckit turn serve --user alice:wonderland --user bob:builder --allow-loopback-peers

  # A public relay with TURN REST credentials and TLS, users from a file
  rtckit turn serve --listen 198.51.100.10 --auth-secret-file /etc/rtckit/turn-secret \
    --users-file /etc/rtckit/turn-users --tls-cert fullchain.pem --tls-key privkey.pem

  # Behind a 1:1 NAT (a cloud VM): bind the private address, announce the public one
  rtckit turn serve --listen 10.0.0.5 --external-ip 203.0.113.7 --users-file users.txt

  # A test relay on free ports, announced as JSON
  rtckit turn serve --port 0 --user u:p --allow-loopback-peers --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := opts.parse(cmd, fl); err != nil {
				return usageError(err)
			}
			ctx, cancel := g.Context(cmd.Context(), 0)
			defer cancel()
			return runTurnServe(ctx, g, opts, cmd.OutOrStdout())
		},
	}
	f := c.Flags()
	// Listeners.
	f.StringVar(&fl.listen, "listen", defaultTurnListen, "IP of every listener, an address of this host (0.0.0.0 is refused); the default serves loopback only")
	f.IntVar(&opts.Port, "port", defaultTurnPort, "UDP and TCP port (0: pick a free one)")
	f.BoolVar(&opts.UDP, "udp", true, "listen on UDP")
	f.BoolVar(&opts.TCP, "tcp", true, "listen on TCP")
	f.IntVar(&opts.TLSPort, "tls-port", defaultTurnTLSPort, "TLS port, used with --tls-cert (0: pick a free one)")
	f.StringVar(&opts.TLSCert, "tls-cert", "", "PEM certificate chain; enables the TLS listener (turns:)")
	f.StringVar(&opts.TLSKey, "tls-key", "", "PEM private key of --tls-cert")
	// Credentials.
	f.StringVar(&opts.Realm, "realm", turnserver.DefaultRealm, "long-term credential realm")
	f.StringArrayVar(&fl.users, "user", nil, "long-term credential user:password (repeatable; visible to other local users, prefer --users-file)")
	f.StringVar(&fl.usersFile, "users-file", "", "file of user:password lines (# starts a comment)")
	f.StringVar(&opts.AuthSecret, "auth-secret", "", "TURN REST shared secret (coturn static-auth-secret); prefer --auth-secret-file")
	f.StringVar(&fl.authSecretFile, "auth-secret-file", "", "file holding the TURN REST shared secret")
	f.IntVar(&opts.Quota, "quota", turnserver.DefaultQuotaPerUser, "concurrent allocations per user (0: no limit)")
	f.IntVar(&opts.MaxPermissions, "max-permissions", turnserver.DefaultMaxPermissions, "peer addresses one allocation may hold permissions for (0: no limit)")
	// Relays.
	f.StringVar(&fl.relayIP, "relay-ip", "", "IP relay sockets bind (default: --listen)")
	f.StringVar(&fl.externalIP, "external-ip", "", "IP announced to clients for relays, behind a 1:1 NAT")
	f.IntVar(&opts.MinPort, "min-port", defaultTurnMinPort, "lowest relay port (0 with --max-port 0: any port)")
	f.IntVar(&opts.MaxPort, "max-port", defaultTurnMaxPort, "highest relay port")
	f.BoolVar(&opts.AllowLoopbackPeers, "allow-loopback-peers", false, "relay to 127.0.0.0/8 and ::1 (labs on one host)")
	f.BoolVar(&opts.AllowPrivatePeers, "allow-private-peers", false, "relay to private addresses: RFC 1918, 100.64.0.0/10, fc00::/7 (labs on a LAN)")
	return c
}

// parse validates the flags that need more than their type and reads the
// credential files.
func (o *TurnServeOptions) parse(cmd *cobra.Command, fl *turnServeFlags) error {
	ip := func(flag, s string) (netip.Addr, error) {
		if s == "" {
			return netip.Addr{}, nil
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Addr{}, fmt.Errorf("--%s: %q is not an IP address", flag, s)
		}
		return a, nil
	}
	var err error
	if o.Listen, err = ip("listen", fl.listen); err != nil {
		return err
	}
	if !o.Listen.IsValid() {
		return errors.New("--listen: an IP address is required")
	}
	if o.RelayIP, err = ip("relay-ip", fl.relayIP); err != nil {
		return err
	}
	if o.RelayIP.IsValid() {
		// Relay sockets are bound per allocation: an address of
		// another host would fail every Allocate with 508.
		c, err := net.ListenPacket("udp", netip.AddrPortFrom(o.RelayIP, 0).String())
		if err != nil {
			return fmt.Errorf("--relay-ip %s: not an address of this host (%v)", o.RelayIP, err)
		}
		_ = c.Close() // a probe only
	}
	if o.ExternalIP, err = ip("external-ip", fl.externalIP); err != nil {
		return err
	}

	changed := cmd.Flags().Changed
	if o.TLSCert == "" && (changed("tls-port") || o.TLSKey != "") {
		return errors.New("--tls-port and --tls-key need --tls-cert")
	}
	if o.TLSCert != "" && o.TLSKey == "" {
		return errors.New("--tls-cert needs --tls-key")
	}
	if !o.UDP && !o.TCP && o.TLSCert == "" {
		return errors.New("nothing to listen on: --udp=false and --tcp=false need --tls-cert")
	}
	if o.Quota < 0 {
		return errors.New("--quota must not be negative (0 means no limit)")
	}
	if o.MaxPermissions < 0 {
		return errors.New("--max-permissions must not be negative (0 means no limit)")
	}
	if (o.MinPort == 0) != (o.MaxPort == 0) {
		return errors.New("--min-port and --max-port must both be 0 (any port) or both be set")
	}

	if err := o.readUsers(fl); err != nil {
		return err
	}
	if fl.authSecretFile != "" {
		if o.AuthSecret != "" {
			return errors.New("--auth-secret and --auth-secret-file exclude each other")
		}
		b, err := os.ReadFile(fl.authSecretFile)
		if err != nil {
			return fmt.Errorf("--auth-secret-file: %w", err)
		}
		if o.AuthSecret = strings.TrimSpace(string(b)); o.AuthSecret == "" {
			return fmt.Errorf("--auth-secret-file %s is empty", fl.authSecretFile)
		}
	}
	if len(o.Users) == 0 && o.AuthSecret == "" {
		return errors.New("no credentials: give --user, --users-file or --auth-secret (rtckit never runs an open relay)")
	}
	return nil
}

// readUsers collects --user and --users-file into o.Users; a user defined
// twice is an error. Errors never quote a password.
func (o *TurnServeOptions) readUsers(fl *turnServeFlags) error {
	o.Users = make(map[string]string)
	from := make(map[string]string)
	add := func(user, pass, source string) error {
		if prev, dup := from[user]; dup {
			return fmt.Errorf("user %q is defined twice (%s and %s)", user, prev, source)
		}
		o.Users[user], from[user] = pass, source
		return nil
	}
	if fl.usersFile != "" {
		f, err := os.Open(fl.usersFile)
		if err != nil {
			return fmt.Errorf("--users-file: %w", err)
		}
		users, err := turnserver.ParseUsers(f)
		_ = f.Close() // read-only: a close error changes nothing
		if err != nil {
			return fmt.Errorf("--users-file %s: %w", fl.usersFile, err)
		}
		for user, pass := range users {
			if err := add(user, pass, "--users-file"); err != nil {
				return err
			}
		}
	}
	for i, s := range fl.users {
		user, pass, err := turnserver.ParseUser(s)
		if err != nil {
			return fmt.Errorf("--user #%d: %w", i+1, err)
		}
		if err := add(user, pass, "--user"); err != nil {
			return err
		}
	}
	return nil
}

// config turns the options into the server's configuration.
func (o *TurnServeOptions) config() turnserver.Config {
	// The CLI's 0 is the library's "unlimited".
	quota, perms := o.Quota, o.MaxPermissions
	if quota == 0 {
		quota = -1
	}
	if perms == 0 {
		perms = -1
	}
	return turnserver.Config{
		ListenIP:           o.Listen,
		Port:               o.Port,
		UDP:                o.UDP,
		TCP:                o.TCP,
		TLSPort:            o.TLSPort,
		TLSCert:            o.TLSCert,
		TLSKey:             o.TLSKey,
		Realm:              o.Realm,
		Users:              o.Users,
		AuthSecret:         o.AuthSecret,
		RelayIP:            o.RelayIP,
		ExternalIP:         o.ExternalIP,
		MinPort:            o.MinPort,
		MaxPort:            o.MaxPort,
		QuotaPerUser:       quota,
		MaxPermissions:     perms,
		AllowLoopbackPeers: o.AllowLoopbackPeers,
		AllowPrivatePeers:  o.AllowPrivatePeers,
	}
}

// runTurnServe serves until ctx ends, printing a "listening" event once
// bound and a "stopped" event at the end.
func runTurnServe(ctx context.Context, g *GlobalOptions, opts *TurnServeOptions, out io.Writer) error {
	cfg := opts.config()
	cfg.Logger = g.Logger()
	srv, err := turnserver.Listen(cfg)
	if err != nil {
		if errors.Is(err, turnserver.ErrInvalidConfig) {
			return usageError(err)
		}
		return err
	}
	ev := TurnServeEvent{
		Schema: turnServeSchema,
		Event:  "listening",
		Addrs:  srv.Addrs(),
		URIs:   srv.Addrs().URIs(),
		Info:   srv.Info(),
	}
	if err := writeEvent(out, g.JSON, ev, turnServeText); err != nil {
		return errors.Join(err, srv.Close())
	}
	serveErr := srv.Serve(ctx)
	stats := srv.Stats()
	ev.Event, ev.Stats = "stopped", &stats
	return errors.Join(serveErr, writeEvent(out, g.JSON, ev, turnServeText))
}

// turnServeText renders an event for people.
func turnServeText(ev TurnServeEvent) string {
	var b strings.Builder
	if ev.Event == "stopped" && ev.Stats != nil {
		s := ev.Stats
		fmt.Fprintf(&b, "TURN server stopped: %d allocations (%d still active), %d auth failures, %d quota rejections, "+
			"%d peer denials, %d permissions (%d refused over the limit), %d channels, %d/%d packets to/from peers (%d/%d bytes), "+
			"%d TCP connections (%d refused), %d errors\n",
			s.Allocations, s.AllocationsActive, s.AuthFailures, s.QuotaRejections, s.PeerDenials, s.Permissions, s.PermissionRefusals, s.Channels,
			s.PacketsToPeers, s.PacketsFromPeers, s.BytesToPeers, s.BytesFromPeers, s.TCPAccepted, s.TCPRejected, s.Errors)
		return b.String()
	}
	b.WriteString("TURN server listening\n")
	row := func(name, value string) { fmt.Fprintf(&b, "  %-12s %s\n", name, value) }
	for _, l := range []struct {
		name string
		addr netip.AddrPort
	}{{"udp", ev.UDP}, {"tcp", ev.TCP}, {"tls", ev.TLS}} {
		if l.addr.IsValid() {
			row(l.name, l.addr.String())
		}
	}
	row("realm", ev.Realm)
	var creds []string
	if ev.Users > 0 {
		creds = append(creds, plural(ev.Users, "user"))
	}
	if ev.RESTAuth {
		creds = append(creds, "TURN REST secret")
	}
	row("credentials", strings.Join(creds, ", "))
	if ev.QuotaPerUser > 0 {
		row("quota", fmt.Sprintf("%s per user", plural(ev.QuotaPerUser, "allocation")))
	} else {
		row("quota", "none")
	}
	if ev.MaxPermissions > 0 {
		row("permissions", fmt.Sprintf("%s per allocation", plural(ev.MaxPermissions, "peer")))
	} else {
		row("permissions", "no limit")
	}
	relay := ev.RelayIP.String()
	if ev.MinPort > 0 {
		relay += fmt.Sprintf(", ports %d-%d", ev.MinPort, ev.MaxPort)
	}
	if ev.ExternalIP.IsValid() {
		relay += ", announced as " + ev.ExternalIP.String()
	}
	row("relay", relay)
	peers := []string{"public"}
	if ev.AllowPrivatePeers {
		peers = append(peers, "private")
	}
	if ev.AllowLoopbackPeers {
		peers = append(peers, "loopback")
	}
	row("peers", strings.Join(peers, ", "))
	for i, u := range ev.URIs {
		name := ""
		if i == 0 {
			name = "uris"
		}
		row(name, u)
	}
	return b.String()
}

// plural renders "1 user" or "2 users".
func plural(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
