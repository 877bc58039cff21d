package peer

import (
	"errors"
	"strings"
	"testing"
)

func FuzzParseICEServerURI(f *testing.F) {
	for _, seed := range []string{
		"stun:stun.example.org",
		"stun:stun.example.org:19302",
		"stuns:stun.example.org",
		"stun:[2001:db8::1]:3478",
		"stun:192.0.2.1",
		"turn:turn.example.org?transport=tcp",
		"turns:turn.example.org:443?transport=udp",
		"turn:alice:s3cret@turn.example.org:3478?transport=tcp",
		"turns:bob%40corp:p%3Ass@[::1]",
		"turn:1700000000%3Aalice:c2VjcmV0+/=@192.0.2.7",
		"STUN:Host.Example.",
		"stun://host",
		"stun:2001:db8::1",
		"stun:host:99999",
		"stun:[fe80::1%25eth0]",
		"turn:host?transport=udp&transport=tcp",
		"stun:user:pass@host",
		"turn:host?foo=bar",
		"stun:[::1",
		"",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := ParseICEServerURI(raw)
		if err != nil {
			if !errors.Is(err, ErrBadURI) {
				t.Fatalf("ParseICEServerURI(%q): error %v does not wrap ErrBadURI", raw, err)
			}
			var ue *URIError
			if !errors.As(err, &ue) || ue.Kind == nil {
				t.Fatalf("ParseICEServerURI(%q): error %v is not a *URIError with a kind", raw, err)
			}
			return
		}
		if u.Port < 1 || u.Port > 65535 {
			t.Fatalf("ParseICEServerURI(%q): port %d out of range", raw, u.Port)
		}
		if !u.Scheme.known() {
			t.Fatalf("ParseICEServerURI(%q): unknown scheme %q", raw, u.Scheme)
		}
		if u.Transport != TransportUDP && u.Transport != TransportTCP {
			t.Fatalf("ParseICEServerURI(%q): unknown transport %q", raw, u.Transport)
		}
		if u.Host == "" || strings.ContainsAny(u.Host, "[]") {
			t.Fatalf("ParseICEServerURI(%q): bad host %q", raw, u.Host)
		}
		if !u.IsTURN() && (u.Username != "" || u.Password != "") {
			t.Fatalf("ParseICEServerURI(%q): credentials on a %s URI", raw, u.Scheme)
		}

		s := u.String()
		if strings.Contains(s, "@") {
			t.Fatalf("String() %q of %q shows credentials", s, raw)
		}
		again, err := ParseICEServerURI(s)
		if err != nil {
			t.Fatalf("String() %q of %q does not re-parse: %v", s, raw, err)
		}
		want := u
		want.Username, want.Password = "", ""
		if again != want {
			t.Fatalf("String() %q of %q re-parses to %#v, want %#v", s, raw, again, want)
		}
		checkPionAgrees(t, u)
	})
}
