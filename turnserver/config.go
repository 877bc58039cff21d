package turnserver

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net/netip"
	"time"
	"unicode/utf8"

	"github.com/pion/transport/v5"

	"github.com/rtckit/rtckit/internal/netaddr"
)

// Defaults applied by Listen to zero-valued Config fields.
const (
	// DefaultRealm is the authentication realm when Config.Realm is empty.
	DefaultRealm = "rtckit"

	// DefaultQuotaPerUser is the number of concurrent allocations one user
	// may hold when Config.QuotaPerUser is zero. A browser needs one per
	// ICE component and TURN server URL; ten leaves room for a few tabs.
	DefaultQuotaPerUser = 10

	// DefaultMaxPermissions is the number of peer addresses one allocation
	// may hold permissions for when Config.MaxPermissions is zero. A call
	// needs one per address of the peer's candidates: a handful.
	DefaultMaxPermissions = 64

	// DefaultTCPIdleTimeout closes a TCP or TLS connection that has carried
	// nothing for this long. It is longer than the longest allocation
	// lifetime a client can ask for (one hour), so a client that refreshes
	// its allocation is never cut off; it only reaps dead connections.
	DefaultTCPIdleTimeout = 65 * time.Minute

	// DefaultMaxTCPConns bounds the concurrent TCP and TLS connections;
	// further connections are accepted and closed at once.
	DefaultMaxTCPConns = 1024

	// DefaultTCPAuthTimeout closes a TCP or TLS connection that has not
	// carried an authenticated request this long after it was accepted. A
	// client sends its first Allocate (or, on an RFC 6062 data connection,
	// ConnectionBind) at once and authenticates it one round trip later; a
	// connection that does neither only holds a slot of MaxTCPConns.
	DefaultTCPAuthTimeout = 30 * time.Second

	// MaxUnauthTCPConnsPerSource bounds the TCP and TLS connections of one
	// source (an IPv4 address or an IPv6 /64) that have not carried an
	// authenticated request yet, so that one host cannot hold every one of
	// MaxTCPConns without credentials. Authenticated connections are not
	// counted: many clients may share one address behind a NAT.
	MaxUnauthTCPConnsPerSource = 32

	// maxUsernameBytes is the longest USERNAME RFC 8489 §14.3 allows.
	maxUsernameBytes = 508
	// maxRealmBytes is the longest REALM RFC 8489 §14.9 allows.
	maxRealmBytes = 763
	// maxPasswordBytes bounds a password; RFC 8489 sets no limit, this one
	// only keeps a user list from holding megabytes per line.
	maxPasswordBytes = 1024
)

// Config describes the sockets a Server binds, whom it serves and where it
// relays. Listen validates it and fills in defaults.
type Config struct {
	// ListenIP is the address the UDP, TCP and TLS listeners bind. It is
	// required and must be a concrete address of this host, not 0.0.0.0 or
	// ::: a UDP response must leave from the address the request came to.
	ListenIP netip.Addr

	// Port is the UDP and TCP listen port. Zero picks a port that is free
	// for both (tests use this); the CLI's default is 3478.
	Port int

	// UDP and TCP select the plain listeners on ListenIP:Port. At least one
	// listener (UDP, TCP or TLS) is required.
	UDP, TCP bool

	// TLSPort is the port of the TLS listener (turns: URIs), which runs when
	// TLSCert or TLSConfig is set. Zero picks a free port.
	TLSPort int

	// TLSCert and TLSKey are the PEM files of the TLS listener's certificate
	// chain and private key; both or neither must be given.
	TLSCert, TLSKey string

	// TLSConfig is an alternative to TLSCert and TLSKey for programs that
	// embed the server and manage their own certificates. It must not be set
	// together with TLSCert.
	TLSConfig *tls.Config

	// Realm is the long-term credential realm; empty means DefaultRealm.
	Realm string

	// Users are the long-term credentials, user name to password. Listen
	// copies the map.
	Users map[string]string

	// AuthSecret enables TURN REST credentials (coturn's use-auth-secret):
	// the user name is "expiry:user" (or just "expiry") with expiry in Unix
	// seconds, and the password is base64(HMAC-SHA1(AuthSecret, user name)).
	// Expired credentials are refused. peer.TURNRESTCredentials mints them.
	AuthSecret string

	// RelayIP is the address relay sockets bind; the zero value means
	// ListenIP. It must be a concrete address of this host, of the same
	// family as ListenIP.
	RelayIP netip.Addr

	// ExternalIP, when valid, is announced in XOR-RELAYED-ADDRESS instead of
	// RelayIP: the server's public address behind a 1:1 NAT, as coturn's
	// external-ip. It must be of the same family as RelayIP.
	ExternalIP netip.Addr

	// MinPort and MaxPort bound the relay ports (inclusive). Both zero lets
	// the operating system pick ephemeral ports.
	MinPort, MaxPort int

	// QuotaPerUser is the number of concurrent allocations one user may
	// hold; further Allocate requests get 486 (Allocation Quota Reached).
	// Zero means DefaultQuotaPerUser, a negative value means no limit. A
	// TURN REST user is the part after the colon, so a user's fresh
	// credentials share one quota.
	QuotaPerUser int

	// MaxPermissions is the number of peer addresses one allocation may
	// hold permissions for at once; CreatePermission, ChannelBind and
	// Connect requests for another one get 403 (Forbidden) until one
	// expires. Zero means DefaultMaxPermissions, a negative value means no
	// limit.
	MaxPermissions int

	// AllowLoopbackPeers lets clients relay to 127.0.0.0/8 and ::1. Off by
	// default: a relay to loopback reaches services on the server itself.
	AllowLoopbackPeers bool

	// AllowPrivatePeers lets clients relay to private addresses
	// (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 100.64.0.0/10,
	// 198.18.0.0/15, fc00::/7, fec0::/10). Off by default: such a relay
	// reaches the server's internal network.
	AllowPrivatePeers bool

	// TCPIdleTimeout closes TCP and TLS connections idle this long; zero
	// means DefaultTCPIdleTimeout.
	TCPIdleTimeout time.Duration

	// MaxTCPConns bounds the concurrent TCP and TLS connections; zero
	// means DefaultMaxTCPConns.
	MaxTCPConns int

	// TCPAuthTimeout closes TCP and TLS connections that have not carried
	// an authenticated request this long after they were accepted; zero
	// means DefaultTCPAuthTimeout.
	TCPAuthTimeout time.Duration

	// Now is the clock that TURN REST expiry is checked against; nil means
	// time.Now.
	Now func() time.Time

	// Net creates every socket, listeners and relays alike. Nil means the
	// host's real network (pion's stdnet); tests may pass a vnet.Net, which
	// supports UDP only.
	Net transport.Net

	// Logger receives the server's logs, pion's included; nil discards them.
	// Passwords and secrets are never logged.
	Logger *slog.Logger
}

// tlsEnabled reports whether the configuration asks for a TLS listener.
func (c *Config) tlsEnabled() bool { return c.TLSCert != "" || c.TLSKey != "" || c.TLSConfig != nil }

// normalize validates c and returns a copy with defaults filled in and the
// TLS certificate loaded. It does not touch Net or Logger.
func (c Config) normalize() (Config, error) {
	bad := func(format string, args ...any) (Config, error) {
		return Config{}, fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	if !c.ListenIP.IsValid() {
		return bad("a listen IP is required")
	}
	c.ListenIP = c.ListenIP.Unmap()
	if err := netaddr.CheckServerIP(c.ListenIP, "TURN"); err != nil {
		return bad("listen IP %s: %v", c.ListenIP, err)
	}
	if err := netaddr.CheckPort(c.Port); err != nil {
		return bad("port %d: %v", c.Port, err)
	}
	if !c.UDP && !c.TCP && !c.tlsEnabled() {
		return bad("no listener: enable UDP, TCP or TLS")
	}

	if c.tlsEnabled() {
		if err := netaddr.CheckPort(c.TLSPort); err != nil {
			return bad("TLS port %d: %v", c.TLSPort, err)
		}
		if c.TCP && c.TLSPort != 0 && c.TLSPort == c.Port {
			return bad("TCP and TLS both want port %d", c.Port)
		}
		switch {
		case c.TLSConfig != nil && (c.TLSCert != "" || c.TLSKey != ""):
			return bad("give either a TLS config or certificate files, not both")
		case c.TLSConfig != nil:
			if len(c.TLSConfig.Certificates) == 0 && c.TLSConfig.GetCertificate == nil && c.TLSConfig.GetConfigForClient == nil {
				return bad("the TLS config has no certificate")
			}
			c.TLSConfig = c.TLSConfig.Clone()
		case c.TLSCert == "" || c.TLSKey == "":
			return bad("TLS needs both a certificate and a key file")
		default:
			cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
			if err != nil {
				return bad("loading the TLS certificate: %v", err)
			}
			c.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		}
	} else {
		c.TLSPort = 0
	}

	if c.Realm == "" {
		c.Realm = DefaultRealm
	}
	if len(c.Realm) > maxRealmBytes || !utf8.ValidString(c.Realm) {
		return bad("the realm must be valid UTF-8 of at most %d bytes", maxRealmBytes)
	}
	if len(c.Users) == 0 && c.AuthSecret == "" {
		return Config{}, fmt.Errorf("%w: %w", ErrInvalidConfig, ErrNoCredentials)
	}
	for user, pass := range c.Users {
		if err := checkCredentials(user, pass); err != nil {
			return bad("%v", err)
		}
	}
	c.Users = maps.Clone(c.Users)

	if !c.RelayIP.IsValid() {
		c.RelayIP = c.ListenIP
	}
	c.RelayIP = c.RelayIP.Unmap()
	if err := netaddr.CheckServerIP(c.RelayIP, "TURN"); err != nil {
		return bad("relay IP %s: %v", c.RelayIP, err)
	}
	if c.RelayIP.Is4() != c.ListenIP.Is4() {
		return bad("relay IP %s and listen IP %s are of different families", c.RelayIP, c.ListenIP)
	}
	if c.ExternalIP.IsValid() {
		c.ExternalIP = c.ExternalIP.Unmap()
		if err := netaddr.CheckServerIP(c.ExternalIP, "TURN"); err != nil {
			return bad("external IP %s: %v", c.ExternalIP, err)
		}
		if c.ExternalIP.Is4() != c.RelayIP.Is4() {
			return bad("external IP %s and relay IP %s are of different families", c.ExternalIP, c.RelayIP)
		}
	}

	switch {
	case c.MinPort == 0 && c.MaxPort == 0:
	case c.MinPort < 1 || c.MaxPort > math.MaxUint16 || c.MinPort > c.MaxPort:
		return bad("relay port range %d-%d: want 1 <= min <= max <= 65535 (or both 0)", c.MinPort, c.MaxPort)
	}

	switch {
	case c.QuotaPerUser == 0:
		c.QuotaPerUser = DefaultQuotaPerUser
	case c.QuotaPerUser < 0:
		c.QuotaPerUser = -1
	}
	switch {
	case c.MaxPermissions == 0:
		c.MaxPermissions = DefaultMaxPermissions
	case c.MaxPermissions < 0:
		c.MaxPermissions = -1
	}
	switch {
	case c.TCPIdleTimeout < 0:
		return bad("TCP idle timeout %v is negative", c.TCPIdleTimeout)
	case c.TCPIdleTimeout == 0:
		c.TCPIdleTimeout = DefaultTCPIdleTimeout
	}
	switch {
	case c.TCPAuthTimeout < 0:
		return bad("TCP authentication timeout %v is negative", c.TCPAuthTimeout)
	case c.TCPAuthTimeout == 0:
		c.TCPAuthTimeout = DefaultTCPAuthTimeout
	}
	switch {
	case c.MaxTCPConns < 0:
		return bad("max TCP connections %d is negative", c.MaxTCPConns)
	case c.MaxTCPConns == 0:
		c.MaxTCPConns = DefaultMaxTCPConns
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, nil
}

// checkCredentials validates one user name and password without quoting the
// password in its error.
func checkCredentials(user, pass string) error {
	switch {
	case user == "":
		return fmt.Errorf("empty user name")
	case len(user) > maxUsernameBytes:
		return fmt.Errorf("user name is %d bytes long, more than %d", len(user), maxUsernameBytes)
	case !utf8.ValidString(user):
		return fmt.Errorf("user name is not valid UTF-8")
	case pass == "":
		return fmt.Errorf("user %q has an empty password", user)
	case len(pass) > maxPasswordBytes:
		return fmt.Errorf("user %q has a password longer than %d bytes", user, maxPasswordBytes)
	}
	return nil
}
