package peer

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/pion/stun/v4"
)

func TestParseICEServerURIAccepts(t *testing.T) {
	tests := []struct {
		in        string
		want      ICEServerURI
		canonical string
	}{
		// stun: (RFC 7064).
		{"stun:stun.example.org", ICEServerURI{Scheme: SchemeSTUN, Host: "stun.example.org", Port: 3478, Transport: TransportUDP}, "stun:stun.example.org:3478"},
		{"stun:stun.example.org:19302", ICEServerURI{Scheme: SchemeSTUN, Host: "stun.example.org", Port: 19302, Transport: TransportUDP}, "stun:stun.example.org:19302"},
		{"stun:192.0.2.1:3478", ICEServerURI{Scheme: SchemeSTUN, Host: "192.0.2.1", Port: 3478, Transport: TransportUDP}, "stun:192.0.2.1:3478"},
		{"stun:localhost", ICEServerURI{Scheme: SchemeSTUN, Host: "localhost", Port: 3478, Transport: TransportUDP}, "stun:localhost:3478"},
		{"stun:[2001:db8::1]", ICEServerURI{Scheme: SchemeSTUN, Host: "2001:db8::1", Port: 3478, Transport: TransportUDP}, "stun:[2001:db8::1]:3478"},
		{"stun:[2001:DB8:0:0::1]:3479", ICEServerURI{Scheme: SchemeSTUN, Host: "2001:db8::1", Port: 3479, Transport: TransportUDP}, "stun:[2001:db8::1]:3479"},
		{"stun:[::1]:1", ICEServerURI{Scheme: SchemeSTUN, Host: "::1", Port: 1, Transport: TransportUDP}, "stun:[::1]:1"},
		{"stun:[::ffff:192.0.2.1]", ICEServerURI{Scheme: SchemeSTUN, Host: "::ffff:192.0.2.1", Port: 3478, Transport: TransportUDP}, "stun:[::ffff:192.0.2.1]:3478"},
		{"stun:host:65535", ICEServerURI{Scheme: SchemeSTUN, Host: "host", Port: 65535, Transport: TransportUDP}, "stun:host:65535"},
		{"stun:host:03478", ICEServerURI{Scheme: SchemeSTUN, Host: "host", Port: 3478, Transport: TransportUDP}, "stun:host:3478"},
		{"STUN:Stun.Example.ORG", ICEServerURI{Scheme: SchemeSTUN, Host: "stun.example.org", Port: 3478, Transport: TransportUDP}, "stun:stun.example.org:3478"},
		{"stun:example.org.", ICEServerURI{Scheme: SchemeSTUN, Host: "example.org.", Port: 3478, Transport: TransportUDP}, "stun:example.org.:3478"},
		{"stun:_stun.x-1.example", ICEServerURI{Scheme: SchemeSTUN, Host: "_stun.x-1.example", Port: 3478, Transport: TransportUDP}, "stun:_stun.x-1.example:3478"},
		{"stun:" + strings.Repeat("a", 63) + ".example", ICEServerURI{Scheme: SchemeSTUN, Host: strings.Repeat("a", 63) + ".example", Port: 3478, Transport: TransportUDP}, "stun:" + strings.Repeat("a", 63) + ".example:3478"},
		{"stun:xn--bcher-kva.example", ICEServerURI{Scheme: SchemeSTUN, Host: "xn--bcher-kva.example", Port: 3478, Transport: TransportUDP}, "stun:xn--bcher-kva.example:3478"},

		// stuns: is STUN over TLS over TCP.
		{"stuns:stun.example.org", ICEServerURI{Scheme: SchemeSTUNS, Host: "stun.example.org", Port: 5349, Transport: TransportTCP}, "stuns:stun.example.org:5349"},
		{"stuns:[2001:db8::2]:443", ICEServerURI{Scheme: SchemeSTUNS, Host: "2001:db8::2", Port: 443, Transport: TransportTCP}, "stuns:[2001:db8::2]:443"},

		// turn: and turns: (RFC 7065).
		{"turn:turn.example.org", ICEServerURI{Scheme: SchemeTURN, Host: "turn.example.org", Port: 3478, Transport: TransportUDP}, "turn:turn.example.org:3478?transport=udp"},
		{"turn:turn.example.org?transport=tcp", ICEServerURI{Scheme: SchemeTURN, Host: "turn.example.org", Port: 3478, Transport: TransportTCP}, "turn:turn.example.org:3478?transport=tcp"},
		{"turn:turn.example.org:80?transport=udp", ICEServerURI{Scheme: SchemeTURN, Host: "turn.example.org", Port: 80, Transport: TransportUDP}, "turn:turn.example.org:80?transport=udp"},
		{"turn:turn.example.org?TRANSPORT=TCP", ICEServerURI{Scheme: SchemeTURN, Host: "turn.example.org", Port: 3478, Transport: TransportTCP}, "turn:turn.example.org:3478?transport=tcp"},
		{"turn:[2001:db8::3]:3479?transport=tcp", ICEServerURI{Scheme: SchemeTURN, Host: "2001:db8::3", Port: 3479, Transport: TransportTCP}, "turn:[2001:db8::3]:3479?transport=tcp"},
		{"turns:turn.example.org", ICEServerURI{Scheme: SchemeTURNS, Host: "turn.example.org", Port: 5349, Transport: TransportTCP}, "turns:turn.example.org:5349?transport=tcp"},
		{"turns:turn.example.org:443?transport=tcp", ICEServerURI{Scheme: SchemeTURNS, Host: "turn.example.org", Port: 443, Transport: TransportTCP}, "turns:turn.example.org:443?transport=tcp"},
		{"turns:turn.example.org?transport=udp", ICEServerURI{Scheme: SchemeTURNS, Host: "turn.example.org", Port: 5349, Transport: TransportUDP}, "turns:turn.example.org:5349?transport=udp"},

		// Credentials on TURN URIs, percent-decoded, never in String().
		{"turn:alice:s3cret@turn.example.org:3478?transport=tcp", ICEServerURI{Scheme: SchemeTURN, Host: "turn.example.org", Port: 3478, Transport: TransportTCP, Username: "alice", Password: "s3cret"}, "turn:turn.example.org:3478?transport=tcp"},
		{"turns:bob%40corp:p%3Ass%2Fw%3Fd%23@[2001:db8::4]", ICEServerURI{Scheme: SchemeTURNS, Host: "2001:db8::4", Port: 5349, Transport: TransportTCP, Username: "bob@corp", Password: "p:ss/w?d#"}, "turns:[2001:db8::4]:5349?transport=tcp"},
		{"turn:1700000000%3Aalice:c2VjcmV0+/=@192.0.2.7", ICEServerURI{Scheme: SchemeTURN, Host: "192.0.2.7", Port: 3478, Transport: TransportUDP, Username: "1700000000:alice", Password: "c2VjcmV0+/="}, "turn:192.0.2.7:3478?transport=udp"},
		{"turn:carol:p@ss@turn.example.org", ICEServerURI{Scheme: SchemeTURN, Host: "turn.example.org", Port: 3478, Transport: TransportUDP, Username: "carol", Password: "p@ss"}, "turn:turn.example.org:3478?transport=udp"},
		{"turn:dave:pass:with:colons@turn.example.org", ICEServerURI{Scheme: SchemeTURN, Host: "turn.example.org", Port: 3478, Transport: TransportUDP, Username: "dave", Password: "pass:with:colons"}, "turn:turn.example.org:3478?transport=udp"},
		{"turn:erin@turn.example.org", ICEServerURI{Scheme: SchemeTURN, Host: "turn.example.org", Port: 3478, Transport: TransportUDP, Username: "erin"}, "turn:turn.example.org:3478?transport=udp"},
		{"turn:grace:se/cr/et@turn.example.org", ICEServerURI{Scheme: SchemeTURN, Host: "turn.example.org", Port: 3478, Transport: TransportUDP, Username: "grace", Password: "se/cr/et"}, "turn:turn.example.org:3478?transport=udp"},
		{"turn:frank:p%20w@turn.example.org", ICEServerURI{Scheme: SchemeTURN, Host: "turn.example.org", Port: 3478, Transport: TransportUDP, Username: "frank", Password: "p w"}, "turn:turn.example.org:3478?transport=udp"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseICEServerURI(tt.in)
			if err != nil {
				t.Fatalf("ParseICEServerURI(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("ParseICEServerURI(%q) = %#v, want %#v", tt.in, got, tt.want)
			}
			if s := got.String(); s != tt.canonical {
				t.Errorf("String() = %q, want %q", s, tt.canonical)
			}
			if s := got.PionURL(); s != tt.canonical {
				t.Errorf("PionURL() = %q, want %q", s, tt.canonical)
			}
			again, err := ParseICEServerURI(got.String())
			if err != nil {
				t.Fatalf("re-parsing String() %q: %v", got.String(), err)
			}
			noCreds := got
			noCreds.Username, noCreds.Password = "", ""
			if again != noCreds {
				t.Errorf("re-parsing String() = %#v, want %#v", again, noCreds)
			}
			checkPionAgrees(t, got)
		})
	}
}

// checkPionAgrees parses u.PionURL() with pion's own parser, the one
// pion/webrtc applies to ICEServer.URLs, and compares the result.
func checkPionAgrees(t *testing.T, u ICEServerURI) {
	t.Helper()
	p, err := stun.ParseURI(u.PionURL())
	if err != nil {
		t.Fatalf("pion rejects PionURL() %q: %v", u.PionURL(), err)
	}
	if p.Scheme.String() != string(u.Scheme) || p.Host != u.Host || p.Port != u.Port || p.Proto.String() != string(u.Transport) {
		t.Fatalf("pion reads PionURL() %q as %s host %q port %d %s; want %s host %q port %d %s",
			u.PionURL(), p.Scheme, p.Host, p.Port, p.Proto, u.Scheme, u.Host, u.Port, u.Transport)
	}
}

func TestParseICEServerURIRejects(t *testing.T) {
	tests := []struct {
		in   string
		kind error
		msg  string // the whole error message
	}{
		// Syntax.
		{"", ErrSyntax, `bad ICE server URI "": empty URI; want e.g. stun:stun.example.org or turn:turn.example.org?transport=tcp`},
		{" stun:host", ErrSyntax, `bad ICE server URI " stun:host": space at offset 0`},
		{"stun:host ", ErrSyntax, `bad ICE server URI "stun:host ": space at offset 9`},
		{"stun:ho st", ErrSyntax, `bad ICE server URI "stun:ho st": space at offset 7`},
		{"stun:host\n", ErrSyntax, `bad ICE server URI "stun:host\n": control character 0x0a at offset 9`},
		{"stun:\thost", ErrSyntax, `bad ICE server URI "stun:\thost": control character 0x09 at offset 5`},
		{"stun:host\x00", ErrSyntax, `bad ICE server URI "stun:host\x00": control character 0x00 at offset 9`},
		{"stun:host\x7f", ErrSyntax, `bad ICE server URI "stun:host\x7f": control character 0x7f at offset 9`},
		{"stun:bücher.example", ErrSyntax, `bad ICE server URI "stun:bücher.example": non-ASCII character at offset 6; write internationalized host names in punycode (xn--)`},
		{"stun://stun.example.org", ErrSyntax, `bad ICE server URI "stun://stun.example.org": stun URIs have no "//" (RFC 7064); write "stun:stun.example.org"`},
		{"turn://alice:secret@turn.example.org:3478/", ErrSyntax, `bad ICE server URI "turn://alice:***@turn.example.org:3478/": turn URIs have no "//" (RFC 7065); write "turn:alice:***@turn.example.org:3478"`},
		{"stun:host/", ErrSyntax, `bad ICE server URI "stun:host/": path "/" is not allowed; want stun:host[:port]`},
		{"stun:host:3478/path", ErrSyntax, `bad ICE server URI "stun:host:3478/path": path "/path" is not allowed; want stun:host[:port]`},
		{"stun:host#frag", ErrSyntax, `bad ICE server URI "stun:host#frag": fragment "#frag" is not allowed`},

		// Scheme.
		{"stun.example.org", ErrScheme, `bad ICE server URI "stun.example.org": missing scheme; want stun:, stuns:, turn: or turns: before the host`},
		{"stun.example.org:3478", ErrScheme, `bad ICE server URI "stun.example.org:3478": missing scheme; want e.g. "stun:stun.example.org:3478"`},
		{"localhost:3478", ErrScheme, `bad ICE server URI "localhost:3478": missing scheme; want e.g. "stun:localhost:3478"`},
		{"[::1]:3478", ErrScheme, `bad ICE server URI "[::1]:3478": missing scheme; want stun:, stuns:, turn: or turns: before the host`},
		{":host", ErrScheme, `bad ICE server URI ":host": missing scheme; want stun:, stuns:, turn: or turns: before the host`},
		{"http://stun.example.org", ErrScheme, `bad ICE server URI "http://stun.example.org": unknown scheme "http"; want stun, stuns, turn or turns`},
		{"stunx:host", ErrScheme, `bad ICE server URI "stunx:host": unknown scheme "stunx"; want stun, stuns, turn or turns`},
		{"udp:host", ErrScheme, `bad ICE server URI "udp:host": unknown scheme "udp"; want stun, stuns, turn or turns`},

		// Host.
		{"stun:", ErrHost, `bad ICE server URI "stun:": empty host`},
		{"stun::3478", ErrHost, `bad ICE server URI "stun::3478": empty host`},
		{"turn:?transport=udp", ErrHost, `bad ICE server URI "turn:?transport=udp": empty host`},
		{"turn:alice:pw@", ErrHost, `bad ICE server URI "turn:alice:***@": empty host`},
		{"stun:[]:3478", ErrHost, `bad ICE server URI "stun:[]:3478": empty host between '[' and ']'`},
		{"stun:[2001:db8::1", ErrHost, `bad ICE server URI "stun:[2001:db8::1": unbalanced '[': missing ']' after the IPv6 address`},
		{"stun:2001:db8::1]", ErrHost, `bad ICE server URI "stun:2001:db8::1]": unbalanced ']': brackets must enclose the whole IPv6 address, as in [2001:db8::1]:3478`},
		{"stun:host]", ErrHost, `bad ICE server URI "stun:host]": unbalanced ']': brackets must enclose the whole IPv6 address, as in [2001:db8::1]:3478`},
		{"stun:[2001:db8::1]]", ErrHost, `bad ICE server URI "stun:[2001:db8::1]]": unexpected "]" after ']'; want [address] or [address]:port`},
		{"stun:[2001:db8::1]3478", ErrHost, `bad ICE server URI "stun:[2001:db8::1]3478": unexpected "3478" after ']'; want [address] or [address]:port`},
		{"stun:2001:db8::1", ErrHost, `bad ICE server URI "stun:2001:db8::1": IPv6 address must be in brackets: write "stun:[2001:db8::1]", or "stun:[2001:db8::1]:3478" with a port`},
		{"turns:2001:db8::1:5349", ErrHost, `bad ICE server URI "turns:2001:db8::1:5349": IPv6 address must be in brackets: write "turns:[2001:db8::1:5349]", or "turns:[2001:db8::1:5349]:5349" with a port`},
		{"stun:::1", ErrHost, `bad ICE server URI "stun:::1": IPv6 address must be in brackets: write "stun:[::1]", or "stun:[::1]:3478" with a port`},
		{"stun:host:3478:1", ErrHost, `bad ICE server URI "stun:host:3478:1": too many ':'; an IPv6 address must be in brackets, as in [2001:db8::1]:3478`},
		{"stun:[192.0.2.1]", ErrHost, `bad ICE server URI "stun:[192.0.2.1]": brackets are only for IPv6 addresses; write 192.0.2.1 without them`},
		{"stun:[fe80::1%25eth0]", ErrHost, `bad ICE server URI "stun:[fe80::1%25eth0]": IPv6 zone in "fe80::1%25eth0" is not supported`},
		{"stun:[host.example]", ErrHost, `bad ICE server URI "stun:[host.example]": "host.example" is not a valid IPv6 address`},
		{"stun:[v1.fe80::1]", ErrHost, `bad ICE server URI "stun:[v1.fe80::1]": "v1.fe80::1" is not a valid IPv6 address`},
		{"stun:192.0.2.256", ErrHost, `bad ICE server URI "stun:192.0.2.256": "192.0.2.256" is not a valid IPv4 address`},
		{"stun:192.0.2", ErrHost, `bad ICE server URI "stun:192.0.2": "192.0.2" is not a valid IPv4 address`},
		{"stun:3478", ErrHost, `bad ICE server URI "stun:3478": "3478" is not a valid IPv4 address`},
		{"stun:192.000.2.1", ErrHost, `bad ICE server URI "stun:192.000.2.1": "192.000.2.1" is not a valid IPv4 address`},
		{"stun:.", ErrHost, `bad ICE server URI "stun:.": "." is not a valid host name`},
		{"stun:host..example", ErrHost, `bad ICE server URI "stun:host..example": "host..example" is not a valid host name: empty label`},
		{"stun:.host", ErrHost, `bad ICE server URI "stun:.host": ".host" is not a valid host name: empty label`},
		{"stun:-host.example", ErrHost, `bad ICE server URI "stun:-host.example": "-host.example" is not a valid host name: label "-host" starts or ends with '-'`},
		{"stun:host-.example", ErrHost, `bad ICE server URI "stun:host-.example": "host-.example" is not a valid host name: label "host-" starts or ends with '-'`},
		{"stun:ho!st", ErrHost, `bad ICE server URI "stun:ho!st": "ho!st" is not a valid host name: character '!' is not allowed`},
		{"stun:ho%41st", ErrHost, `bad ICE server URI "stun:ho%41st": "ho%41st" is not a valid host name: character '%' is not allowed`},
		{"stun:" + strings.Repeat("a", 64) + ".example", ErrHost, `bad ICE server URI "stun:` + strings.Repeat("a", 64) + `.example": "` + strings.Repeat("a", 64) + `.example" is not a valid host name: label of 64 characters; at most 63 are allowed`},
		{"stun:" + strings.Repeat("a.", 128), ErrHost, `bad ICE server URI "stun:` + strings.Repeat("a.", 128) + `": host name is 255 characters long; at most 253 are allowed`},

		// Port.
		{"stun:host:", ErrPort, `bad ICE server URI "stun:host:": empty port after ':'`},
		{"stun:[::1]:", ErrPort, `bad ICE server URI "stun:[::1]:": empty port after ':'`},
		{"stun:host:0", ErrPort, `bad ICE server URI "stun:host:0": port out of range 1-65535`},
		{"stun:host:00000", ErrPort, `bad ICE server URI "stun:host:00000": port out of range 1-65535`},
		{"stun:host:65536", ErrPort, `bad ICE server URI "stun:host:65536": port out of range 1-65535`},
		{"stun:host:99999", ErrPort, `bad ICE server URI "stun:host:99999": port out of range 1-65535`},
		{"stun:host:99999999999999999999999", ErrPort, `bad ICE server URI "stun:host:99999999999999999999999": port out of range 1-65535`},
		{"stun:host:-1", ErrPort, `bad ICE server URI "stun:host:-1": port "-1" is not a decimal number`},
		{"stun:host:+80", ErrPort, `bad ICE server URI "stun:host:+80": port "+80" is not a decimal number`},
		{"stun:host:http", ErrPort, `bad ICE server URI "stun:host:http": port "http" is not a decimal number`},
		{"stun:host:0x50", ErrPort, `bad ICE server URI "stun:host:0x50": port "0x50" is not a decimal number`},
		{"turn:[::1]:99999?transport=udp", ErrPort, `bad ICE server URI "turn:[::1]:99999?transport=udp": port out of range 1-65535`},

		// Query.
		{"stun:host?", ErrQuery, `bad ICE server URI "stun:host?": empty query after '?'`},
		{"turn:host?", ErrQuery, `bad ICE server URI "turn:host?": empty query after '?'`},
		{"stun:host?foo=bar", ErrQuery, `bad ICE server URI "stun:host?foo=bar": stun URIs take no query (RFC 7064); found "foo=bar"`},
		{"turn:host?foo=bar", ErrQuery, `bad ICE server URI "turn:host?foo=bar": unknown query parameter "foo"; only "transport" is allowed`},
		{"turn:host?transport=udp&foo=bar", ErrQuery, `bad ICE server URI "turn:host?transport=udp&foo=bar": unknown query parameter "foo"; only "transport" is allowed`},
		{"turn:host?transport=udp&transport=tcp", ErrQuery, `bad ICE server URI "turn:host?transport=udp&transport=tcp": "transport" given more than once`},
		{"turn:host?transport=udp&", ErrQuery, `bad ICE server URI "turn:host?transport=udp&": empty query parameter (stray '&')`},
		{"turn:host?transport", ErrQuery, `bad ICE server URI "turn:host?transport": "transport" needs a value: transport=udp or transport=tcp`},
		{"turn:host?transport=udp?x", ErrTransport, `bad ICE server URI "turn:host?transport=udp?x": unknown transport "udp?x"; want udp or tcp`},

		// Transport.
		{"stun:host?transport=udp", ErrTransport, `bad ICE server URI "stun:host?transport=udp": stun URIs take no transport (RFC 7064)`},
		{"stuns:host?transport=tcp", ErrTransport, `bad ICE server URI "stuns:host?transport=tcp": stuns URIs take no transport (RFC 7064); stuns is always TLS over TCP`},
		{"turn:host?transport=sctp", ErrTransport, `bad ICE server URI "turn:host?transport=sctp": unknown transport "sctp"; want udp or tcp`},
		{"turn:host?transport=tls", ErrTransport, `bad ICE server URI "turn:host?transport=tls": unknown transport "tls"; want udp or tcp`},
		{"turn:host?transport=", ErrTransport, `bad ICE server URI "turn:host?transport=": empty transport; want udp or tcp`},

		// Credentials.
		{"stun:alice:secret@stun.example.org", ErrCredentials, `bad ICE server URI "stun:alice:***@stun.example.org": stun URIs take no credentials (RFC 7064); only turn: and turns: accept user:password@`},
		{"stuns:alice@stun.example.org", ErrCredentials, `bad ICE server URI "stuns:alice@stun.example.org": stuns URIs take no credentials (RFC 7064); only turn: and turns: accept user:password@`},
		{"turn::secret@host", ErrCredentials, `bad ICE server URI "turn::***@host": empty username before '@'`},
		{"turn:@host", ErrCredentials, `bad ICE server URI "turn:@host": empty username before '@'`},
		{"turn:al%zzice:secret@host", ErrCredentials, `bad ICE server URI "turn:al%zzice:***@host": bad percent-encoding in username`},
		{"turn:alice:sec%2@host", ErrCredentials, `bad ICE server URI "turn:alice:***@host": bad percent-encoding in password`},
		{"turn:alice%0a:secret@host", ErrCredentials, `bad ICE server URI "turn:alice%0a:***@host": username contains a control character`},
		{"turn:alice:sec%00ret@host", ErrCredentials, `bad ICE server URI "turn:alice:***@host": password contains a control character`},
		{"turn:alice:se?cret@host", ErrCredentials, `bad ICE server URI "turn:alice:***@host": '@' after '?' or '#': percent-encode those characters in the username and password (%3F, %23)`},
		{"turn:alice:se#cret@host", ErrCredentials, `bad ICE server URI "turn:alice:***@host": '@' after '?' or '#': percent-encode those characters in the username and password (%3F, %23)`},
		{"alice:secret@turn.example.org", ErrScheme, `bad ICE server URI "***@turn.example.org": unknown scheme "alice"; want stun, stuns, turn or turns`},
	}
	kinds := []error{ErrSyntax, ErrScheme, ErrHost, ErrPort, ErrQuery, ErrTransport, ErrCredentials}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseICEServerURI(tt.in)
			if err == nil {
				t.Fatalf("ParseICEServerURI(%q) = %#v, want an error", tt.in, got)
			}
			if got != (ICEServerURI{}) {
				t.Errorf("ParseICEServerURI(%q) returned %#v with its error, want the zero value", tt.in, got)
			}
			if err.Error() != tt.msg {
				t.Errorf("error message\n got: %s\nwant: %s", err, tt.msg)
			}
			if !errors.Is(err, ErrBadURI) {
				t.Errorf("error %v does not wrap ErrBadURI", err)
			}
			for _, kind := range kinds {
				if want := kind == tt.kind; errors.Is(err, kind) != want {
					t.Errorf("errors.Is(err, %v) = %v, want %v", kind, !want, want)
				}
			}
			var ue *URIError
			if !errors.As(err, &ue) {
				t.Fatalf("error %T is not a *URIError", err)
			}
			for _, secret := range []string{"secret", "sec%2", "sec%00ret", "se?cret", "se#cret"} {
				if strings.Contains(tt.in, "@") && strings.Contains(err.Error(), secret) {
					t.Errorf("error message %q shows the password", err)
				}
			}
		})
	}
}

func TestICEServerURIMethods(t *testing.T) {
	tests := []struct {
		in       string
		hostPort string
		secure   bool
		turn     bool
	}{
		{"stun:host", "host:3478", false, false},
		{"stuns:host", "host:5349", true, false},
		{"turn:[2001:db8::1]:80", "[2001:db8::1]:80", false, true},
		{"turns:192.0.2.1:443?transport=tcp", "192.0.2.1:443", true, true},
	}
	for _, tt := range tests {
		u, err := ParseICEServerURI(tt.in)
		if err != nil {
			t.Fatalf("ParseICEServerURI(%q): %v", tt.in, err)
		}
		if got := u.HostPort(); got != tt.hostPort {
			t.Errorf("%q: HostPort() = %q, want %q", tt.in, got, tt.hostPort)
		}
		if got := u.Secure(); got != tt.secure {
			t.Errorf("%q: Secure() = %v, want %v", tt.in, got, tt.secure)
		}
		if got := u.IsTURN(); got != tt.turn {
			t.Errorf("%q: IsTURN() = %v, want %v", tt.in, got, tt.turn)
		}
	}
}

func TestICEServerURIJSONHidesPassword(t *testing.T) {
	u, err := ParseICEServerURI("turn:alice:secret@turn.example.org?transport=tcp")
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"scheme":"turn","host":"turn.example.org","port":3478,"transport":"tcp","username":"alice"}`
	if string(b) != want {
		t.Errorf("json.Marshal = %s, want %s", b, want)
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"stun:host", "stun:host"},
		{"turn:alice@host", "turn:alice@host"},
		{"turn:alice:secret@host", "turn:alice:***@host"},
		{"TURN:alice:secret@host", "TURN:alice:***@host"},
		{"turns://alice:secret@host/", "turns://alice:***@host/"},
		{"turn:alice:se@cr:et@host?transport=tcp", "turn:alice:***@host?transport=tcp"},
		{"alice:secret@host", "***@host"},
		{"turn:alice:secret@", "turn:alice:***@"},
	}
	for _, tt := range tests {
		if got := redact(tt.in); got != tt.want {
			t.Errorf("redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
