package peer

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/pion/webrtc/v4"
)

// ErrICEConfig is wrapped by every error of ICEConfig validation.
var ErrICEConfig = errors.New("bad ICE configuration")

// Network types accepted by ICEConfig.Networks.
var networkTypes = map[string]webrtc.NetworkType{
	"udp4": webrtc.NetworkTypeUDP4, "udp6": webrtc.NetworkTypeUDP6,
	"tcp4": webrtc.NetworkTypeTCP4, "tcp6": webrtc.NetworkTypeTCP6,
}

// mDNS candidate modes accepted by ICEConfig.MDNS.
const (
	MDNSDisabled = "disabled"
	MDNSQuery    = "query"
	MDNSGather   = "gather"
)

// ICE transport policies accepted by ICEConfig.Policy.
const (
	PolicyAll   = "all"
	PolicyRelay = "relay"
)

// ICEConfig is the ICE configuration every command that makes a
// PeerConnection shares; cmd binds it to the same flags everywhere.
type ICEConfig struct {
	// STUN and TURN are server URIs (stun:, stuns:, turn:, turns:).
	STUN, TURN []string
	// TURNUser and TURNPass are long-term credentials for TURN servers
	// whose URI carries none.
	TURNUser, TURNPass string
	// TURNSecret mints TURN REST credentials (coturn use-auth-secret) valid
	// for TURNTTL, for TURN servers without other credentials; TURNUser, if
	// set, becomes the user part of the minted username.
	TURNSecret string
	TURNTTL    time.Duration
	// Networks restricts the candidate network types: udp4, udp6, tcp4,
	// tcp6. Empty means all.
	Networks []string
	// Interfaces keeps only these interfaces for host candidates;
	// ExcludeInterfaces drops these. Empty means no filter.
	Interfaces, ExcludeInterfaces []string
	// MDNS is the mDNS mode for host candidates: disabled, query or gather.
	// Empty means disabled (real addresses, what a diagnostic wants).
	MDNS string
	// Policy is the ICE transport policy: all or relay.
	Policy string
	// IncludeLoopback gathers loopback host candidates.
	IncludeLoopback bool
}

// ICEServer is a validated ICE server with its credentials.
type ICEServer struct {
	URI        ICEServerURI
	Username   string
	Credential string //nolint:gosec // G117: a credential field, not a hard-coded secret.
	// REST tells whether the credentials were minted from a TURN REST secret.
	REST bool
}

// WebRTC returns the server in pion's form.
func (s ICEServer) WebRTC() webrtc.ICEServer {
	out := webrtc.ICEServer{URLs: []string{s.URI.PionURL()}}
	if s.URI.IsTURN() {
		out.Username, out.Credential = s.Username, s.Credential
	}
	return out
}

// Validate checks the options that do not depend on the servers.
func (c ICEConfig) Validate() error {
	for _, n := range c.Networks {
		if _, ok := networkTypes[n]; !ok {
			return fmt.Errorf("%w: unknown network type %q (want udp4, udp6, tcp4 or tcp6)", ErrICEConfig, n)
		}
	}
	switch c.MDNS {
	case "", MDNSDisabled, MDNSQuery, MDNSGather:
	default:
		return fmt.Errorf("%w: unknown mDNS mode %q (want disabled, query or gather)", ErrICEConfig, c.MDNS)
	}
	switch c.Policy {
	case "", PolicyAll, PolicyRelay:
	default:
		return fmt.Errorf("%w: unknown ICE transport policy %q (want all or relay)", ErrICEConfig, c.Policy)
	}
	if c.TURNTTL < 0 {
		return fmt.Errorf("%w: TURN credential lifetime must not be negative", ErrICEConfig)
	}
	if (c.TURNUser == "") != (c.TURNPass == "") && c.TURNSecret == "" {
		return fmt.Errorf("%w: give both a TURN user and a TURN password", ErrICEConfig)
	}
	return nil
}

// Servers parses and validates the STUN and TURN URIs and attaches TURN
// credentials: those in the URI first, then TURNUser/TURNPass, then
// credentials minted from TURNSecret at now. A TURN server left without
// credentials, and a stuns: server (CheckICEUsable), are errors.
func (c ICEConfig) Servers(now time.Time) ([]ICEServer, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	var out []ICEServer
	for _, raw := range c.STUN {
		u, err := ParseICEServerURI(raw)
		if err != nil {
			return nil, err
		}
		if u.IsTURN() {
			return nil, fmt.Errorf("%w: %s is a TURN URI; give it with --turn", ErrICEConfig, u)
		}
		if err := CheckICEUsable(u); err != nil {
			return nil, err
		}
		out = append(out, ICEServer{URI: u})
	}
	for _, raw := range c.TURN {
		u, err := ParseICEServerURI(raw)
		if err != nil {
			return nil, err
		}
		if !u.IsTURN() {
			return nil, fmt.Errorf("%w: %s is a STUN URI; give it with --stun", ErrICEConfig, u)
		}
		s := ICEServer{URI: u, Username: u.Username, Credential: u.Password}
		switch {
		case s.Username != "" && s.Credential == "":
			return nil, fmt.Errorf("%w: TURN URI %s has a user but no password (turn:user:pass@host)", ErrICEConfig, u)
		case s.Username != "":
		case c.TURNSecret != "":
			s.Username, s.Credential = TURNRESTCredentials(c.TURNSecret, c.TURNUser, c.TURNTTL, now)
			s.REST = true
		case c.TURNUser != "":
			s.Username, s.Credential = c.TURNUser, c.TURNPass
		default:
			return nil, fmt.Errorf("%w: TURN server %s needs credentials (user:pass@ in the URI, --turn-user/--turn-pass or --turn-secret)", ErrICEConfig, u)
		}
		out = append(out, s)
	}
	return out, nil
}

// networkTypeList returns the pion network types to gather, nil for all.
func (c ICEConfig) networkTypeList() []webrtc.NetworkType {
	var out []webrtc.NetworkType
	for _, n := range c.Networks {
		t := networkTypes[n]
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// interfaceFilter returns the host-interface filter, nil for none.
func (c ICEConfig) interfaceFilter() func(string) bool {
	if len(c.Interfaces) == 0 && len(c.ExcludeInterfaces) == 0 {
		return nil
	}
	include, exclude := slices.Clone(c.Interfaces), slices.Clone(c.ExcludeInterfaces)
	return func(name string) bool {
		if slices.Contains(exclude, name) {
			return false
		}
		return len(include) == 0 || slices.Contains(include, name)
	}
}

// Configuration returns a PeerConnection configuration for servers.
func (c ICEConfig) Configuration(servers []ICEServer) webrtc.Configuration {
	cfg := webrtc.Configuration{}
	for _, s := range servers {
		cfg.ICEServers = append(cfg.ICEServers, s.WebRTC())
	}
	if c.Policy == PolicyRelay {
		cfg.ICETransportPolicy = webrtc.ICETransportPolicyRelay
	}
	return cfg
}

// IsPrivate reports whether ip is a loopback, private (RFC 1918, RFC 4193),
// link-local, CGNAT (RFC 6598) or unspecified address: one a remote peer on
// the internet cannot reach.
func IsPrivate(ip net.IP) bool {
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsUnspecified() {
		return true
	}
	_, cgnat, _ := net.ParseCIDR("100.64.0.0/10")
	return cgnat.Contains(ip)
}

// CheckICEUsable returns an ErrICEConfig error for a server URI that the ICE
// agent would skip without a word: a stuns: server, since pion gathers
// server-reflexive candidates only from stun: servers over UDP.
func CheckICEUsable(u ICEServerURI) error {
	if u.Scheme != SchemeSTUNS {
		return nil
	}
	return fmt.Errorf("%w: %s: stuns: is not supported for ICE (the WebRTC stack asks STUN servers over UDP only); "+
		"give STUN servers as stun:host[:port] and TURN servers as turn: or turns: (rtckit stun probe tests STUN over TLS)", ErrICEConfig, u)
}
