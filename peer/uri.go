package peer

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// ICEServerURI is a parsed and validated STUN or TURN server URI.
//
// Its zero value is not a valid URI; build one with ParseICEServerURI.
type ICEServerURI struct {
	// Scheme is stun, stuns, turn or turns.
	Scheme Scheme `json:"scheme"`
	// Host is a lower-case host name, an IPv4 address, or an IPv6 address
	// in canonical form without brackets.
	Host string `json:"host"`
	// Port is in 1-65535; the scheme's default when the URI gave none.
	Port int `json:"port"`
	// Transport is always set: the URI's ?transport= or the scheme's default.
	// For stuns it is TCP, as STUNS is STUN over TLS over TCP.
	Transport Transport `json:"transport"`
	// Username and Password are the percent-decoded credentials of a
	// turn:user:pass@host URI; empty otherwise.
	Username string `json:"username,omitempty"`
	Password string `json:"-"`
}

// String returns the canonical form of the URI, with the port and (for TURN)
// the transport spelled out. It never includes credentials.
func (u ICEServerURI) String() string {
	s := string(u.Scheme) + ":" + u.HostPort()
	if u.IsTURN() {
		s += "?transport=" + string(u.Transport)
	}
	return s
}

// HostPort returns the host and port joined for net.Dial, with brackets
// around an IPv6 address.
func (u ICEServerURI) HostPort() string {
	return net.JoinHostPort(u.Host, strconv.Itoa(u.Port))
}

// Secure reports whether the server is reached over TLS (or DTLS for turns
// over UDP).
func (u ICEServerURI) Secure() bool { return u.Scheme.Secure() }

// IsTURN reports whether the URI names a TURN relay.
func (u ICEServerURI) IsTURN() bool { return u.Scheme.IsTURN() }

// PionURL returns the URI in the form pion/webrtc accepts in ICEServer.URLs:
// scheme:host:port, plus ?transport= for TURN (pion rejects any query on
// stun and stuns URIs). Credentials are left out; pion takes them in
// ICEServer.Username and ICEServer.Credential.
func (u ICEServerURI) PionURL() string {
	return u.String()
}

// ParseICEServerURI parses a STUN or TURN server URI as defined by RFC 7064
// and RFC 7065:
//
//	stun:host[:port]
//	stuns:host[:port]
//	turn:[user[:password]@]host[:port][?transport=udp|tcp]
//	turns:[user[:password]@]host[:port][?transport=udp|tcp]
//
// The host is a host name, an IPv4 address or an IPv6 address in brackets.
// Missing ports default to 3478 (stun, turn) or 5349 (stuns, turns); a
// missing transport to UDP (turn) or TCP (turns). Credentials, an extension
// to RFC 7065, are percent-decoded.
//
// Every error is a *URIError that wraps ErrBadURI and a specific sentinel
// such as ErrPort; its message quotes the input with the password hidden.
func ParseICEServerURI(raw string) (ICEServerURI, error) {
	u, err := parseICEServerURI(raw)
	if err != nil {
		err.URI = redact(raw)
		return ICEServerURI{}, err
	}
	return u, nil
}

// bad builds a *URIError without its URI, which ParseICEServerURI fills in.
func bad(kind error, format string, args ...any) *URIError {
	return &URIError{Kind: kind, Reason: fmt.Sprintf(format, args...)}
}

func parseICEServerURI(raw string) (ICEServerURI, *URIError) {
	fail := func(kind error, format string, args ...any) (ICEServerURI, *URIError) {
		return ICEServerURI{}, bad(kind, format, args...)
	}

	if raw == "" {
		return fail(ErrSyntax, "empty URI; want e.g. stun:stun.example.org or turn:turn.example.org?transport=tcp")
	}
	if reason := badCharacter(raw); reason != "" {
		return fail(ErrSyntax, "%s", reason)
	}

	rawScheme, rest, ok := strings.Cut(raw, ":")
	scheme := Scheme(strings.ToLower(rawScheme))
	switch {
	case scheme.known():
	case !ok || rawScheme == "" || rawScheme[0] == '[':
		return fail(ErrScheme, "missing scheme; want stun:, stuns:, turn: or turns: before the host")
	case isDigits(rest) || strings.Contains(rawScheme, "."):
		// "example.org:3478": a host and port without a scheme.
		return fail(ErrScheme, "missing scheme; want e.g. %q", redact("stun:"+raw))
	default:
		return fail(ErrScheme, "unknown scheme %q; want stun, stuns, turn or turns", rawScheme)
	}

	if after, found := strings.CutPrefix(rest, "//"); found {
		return fail(ErrSyntax, "%s URIs have no \"//\" (%s); write %q",
			scheme, scheme.rfc(), redact(string(scheme)+":"+strings.TrimSuffix(after, "/")))
	}

	u := ICEServerURI{Scheme: scheme}

	// Credentials: everything before the last '@'. Host names never contain
	// '@' and these URIs have no path, so an unencoded '@' or '/' in a
	// password (base64 TURN REST credentials have '/') still parses.
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		if !scheme.IsTURN() {
			return fail(ErrCredentials, "%s URIs take no credentials (RFC 7064); only turn: and turns: accept user:password@", scheme)
		}
		if strings.ContainsAny(rest[:at], "?#") {
			return fail(ErrCredentials, "'@' after '?' or '#': percent-encode those characters in the username and password (%%3F, %%23)")
		}
		user, pass, reason := parseUserinfo(rest[:at])
		if reason != "" {
			return fail(ErrCredentials, "%s", reason)
		}
		u.Username, u.Password = user, pass
		rest = rest[at+1:]
	}

	if i := strings.IndexByte(rest, '#'); i >= 0 {
		return fail(ErrSyntax, "fragment %q is not allowed", rest[i:])
	}
	hostport, query, hasQuery := strings.Cut(rest, "?")
	if i := strings.IndexByte(hostport, '/'); i >= 0 {
		return fail(ErrSyntax, "path %q is not allowed; want %s:host[:port]", hostport[i:], scheme)
	}

	host, port, err := parseHostPort(scheme, hostport)
	if err != nil {
		return ICEServerURI{}, err
	}
	u.Host = host
	u.Port = port
	if u.Port == 0 {
		u.Port = scheme.DefaultPort()
	}

	transport, err := parseQuery(scheme, query, hasQuery)
	if err != nil {
		return ICEServerURI{}, err
	}
	u.Transport = transport
	if u.Transport == "" {
		u.Transport = scheme.DefaultTransport()
	}
	return u, nil
}

// badCharacter describes the first byte of s that may not appear in an ICE
// server URI, or returns "".
func badCharacter(s string) string {
	for i := 0; i < len(s); i++ {
		switch b := s[i]; {
		case b == ' ':
			return fmt.Sprintf("space at offset %d", i)
		case b < 0x20 || b == 0x7f:
			return fmt.Sprintf("control character %#02x at offset %d", b, i)
		case b >= 0x80:
			return fmt.Sprintf("non-ASCII character at offset %d; write internationalized host names in punycode (xn--)", i)
		}
	}
	return ""
}

// parseUserinfo splits and percent-decodes user[:password]. A non-empty
// reason says what is wrong without quoting the password.
func parseUserinfo(userinfo string) (user, pass, reason string) {
	rawUser, rawPass, _ := strings.Cut(userinfo, ":")
	if rawUser == "" {
		return "", "", "empty username before '@'"
	}
	user, err := url.PathUnescape(rawUser)
	if err != nil {
		return "", "", "bad percent-encoding in username"
	}
	pass, err = url.PathUnescape(rawPass)
	if err != nil {
		return "", "", "bad percent-encoding in password"
	}
	if hasControl(user) {
		return "", "", "username contains a control character"
	}
	if hasControl(pass) {
		return "", "", "password contains a control character"
	}
	return user, pass, ""
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// parseQuery reads the query of a URI. It returns an empty transport when
// none was given.
func parseQuery(scheme Scheme, query string, hasQuery bool) (Transport, *URIError) {
	if !hasQuery {
		return "", nil
	}
	if query == "" {
		return "", bad(ErrQuery, "empty query after '?'")
	}
	if !scheme.IsTURN() {
		key, _, _ := strings.Cut(query, "=")
		if strings.EqualFold(key, "transport") {
			if scheme.Secure() {
				return "", bad(ErrTransport, "%s URIs take no transport (RFC 7064); stuns is always TLS over TCP", scheme)
			}
			return "", bad(ErrTransport, "%s URIs take no transport (RFC 7064)", scheme)
		}
		return "", bad(ErrQuery, "%s URIs take no query (RFC 7064); found %q", scheme, query)
	}
	var transport Transport
	for _, param := range strings.Split(query, "&") {
		key, value, ok := strings.Cut(param, "=")
		switch {
		case param == "":
			return "", bad(ErrQuery, "empty query parameter (stray '&')")
		case !strings.EqualFold(key, "transport"):
			return "", bad(ErrQuery, "unknown query parameter %q; only \"transport\" is allowed", key)
		case !ok:
			return "", bad(ErrQuery, "\"transport\" needs a value: transport=udp or transport=tcp")
		case transport != "":
			return "", bad(ErrQuery, "\"transport\" given more than once")
		}
		switch t := Transport(strings.ToLower(value)); t {
		case TransportUDP, TransportTCP:
			transport = t
		case "":
			return "", bad(ErrTransport, "empty transport; want udp or tcp")
		default:
			return "", bad(ErrTransport, "unknown transport %q; want udp or tcp", value)
		}
	}
	return transport, nil
}

// redact hides the password in a URI that is about to be shown in an error.
// It keeps the username, which helps to spot a wrong account. When the input
// has no recognisable scheme, everything before the last '@' is hidden.
func redact(raw string) string {
	at := strings.LastIndexByte(raw, '@')
	if at < 0 {
		return raw
	}
	scheme, rest, ok := strings.Cut(raw[:at], ":")
	if !ok || !Scheme(strings.ToLower(scheme)).known() {
		return "***" + raw[at:]
	}
	prefix := scheme + ":"
	if after, found := strings.CutPrefix(rest, "//"); found {
		prefix += "//"
		rest = after
	}
	user, _, hasPass := strings.Cut(rest, ":")
	if !hasPass {
		return raw
	}
	return prefix + user + ":***" + raw[at:]
}
