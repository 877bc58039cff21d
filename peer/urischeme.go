// ICE server URI schemes and transports, with their defaults (RFC 7064, RFC 7065).

package peer

// Scheme is the scheme of an ICE server URI.
type Scheme string

// The ICE server URI schemes of RFC 7064 (STUN) and RFC 7065 (TURN).
const (
	SchemeSTUN  Scheme = "stun"
	SchemeSTUNS Scheme = "stuns"
	SchemeTURN  Scheme = "turn"
	SchemeTURNS Scheme = "turns"
)

func (s Scheme) known() bool {
	switch s {
	case SchemeSTUN, SchemeSTUNS, SchemeTURN, SchemeTURNS:
		return true
	}
	return false
}

// rfc names the document that defines the scheme's URI syntax.
func (s Scheme) rfc() string {
	if s.IsTURN() {
		return "RFC 7065"
	}
	return "RFC 7064"
}

// Secure reports whether the scheme runs over TLS (or DTLS for turns over UDP).
func (s Scheme) Secure() bool { return s == SchemeSTUNS || s == SchemeTURNS }

// IsTURN reports whether the scheme names a TURN relay.
func (s Scheme) IsTURN() bool { return s == SchemeTURN || s == SchemeTURNS }

// DefaultPort returns the port used when a URI gives none: 3478 for stun and
// turn, 5349 for stuns and turns.
func (s Scheme) DefaultPort() int {
	if s.Secure() {
		return DefaultTLSPort
	}
	return DefaultPort
}

// DefaultTransport returns the transport used when a URI gives none: UDP for
// stun and turn, TCP for stuns and turns.
func (s Scheme) DefaultTransport() Transport {
	if s.Secure() {
		return TransportTCP
	}
	return TransportUDP
}

// Transport is the transport protocol used to reach an ICE server.
type Transport string

// The transports an ICE server URI can name.
const (
	TransportUDP Transport = "udp"
	TransportTCP Transport = "tcp"
)

// Default ports of STUN and TURN servers (RFC 8489 section 9, RFC 8656 section 4).
const (
	// DefaultPort is the port of stun: and turn: servers.
	DefaultPort = 3478
	// DefaultTLSPort is the port of stuns: and turns: servers.
	DefaultTLSPort = 5349
)

// Limits on host names (RFC 1035 section 2.3.4).
const (
	maxHostnameLen = 253
	maxLabelLen    = 63
)
