package stunserver

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/pion/stun/v4"
)

// testAddrs are the sockets of an RFC 5780 server on documentation addresses.
var testAddrs = Addrs{
	Primary:      netip.MustParseAddrPort("192.0.2.1:3478"),
	AltPort:      netip.MustParseAddrPort("192.0.2.1:3479"),
	AltIP:        netip.MustParseAddrPort("192.0.2.2:3478"),
	AltIPAltPort: netip.MustParseAddrPort("192.0.2.2:3479"),
	TCP:          netip.MustParseAddrPort("192.0.2.1:3478"),
}

var testClient = netip.MustParseAddrPort("198.51.100.7:40000")

func TestSocketChanged(t *testing.T) {
	tests := []struct {
		via              socket
		changeIP, change bool
		want             socket
	}{
		{sockPrimary, false, false, sockPrimary},
		{sockPrimary, false, true, sockAltPort},
		{sockPrimary, true, false, sockAltIP},
		{sockPrimary, true, true, sockAltIPAltPort},
		{sockAltPort, false, true, sockPrimary},
		{sockAltPort, true, false, sockAltIPAltPort},
		{sockAltPort, true, true, sockAltIP},
		{sockAltIP, false, true, sockAltIPAltPort},
		{sockAltIP, true, false, sockPrimary},
		{sockAltIP, true, true, sockAltPort},
		{sockAltIPAltPort, false, true, sockAltIP},
		{sockAltIPAltPort, true, false, sockAltPort},
		{sockAltIPAltPort, true, true, sockPrimary},
	}
	for _, tt := range tests {
		if got := tt.via.changed(tt.changeIP, tt.change); got != tt.want {
			t.Errorf("%v.changed(ip=%v, port=%v) = %v, want %v", tt.via, tt.changeIP, tt.change, got, tt.want)
		}
	}
}

func TestHandleBinding(t *testing.T) {
	rfc5780 := newHandler(testAddrs, true, "test-server")
	noChange := newHandler(testAddrs, false, "test-server")
	single := newHandler(Addrs{Primary: testAddrs.Primary, TCP: testAddrs.TCP}, true, "test-server")

	type want struct {
		verdict    verdict
		code       stun.ErrorCode
		unknown    stun.UnknownAttributes
		from       socket
		to         netip.AddrPort
		origin     netip.AddrPort
		other      bool
		changed    bool
		redirected bool
	}
	tests := []struct {
		name  string
		h     *handler
		via   socket
		proto proto
		attrs []stun.Setter
		want  want
	}{
		{
			name: "plain binding",
			h:    rfc5780,
			want: want{verdict: verdictSuccess, from: sockPrimary, to: testClient, origin: testAddrs.Primary, other: true},
		},
		{
			name: "plain binding on the alternate socket",
			h:    rfc5780, via: sockAltIPAltPort,
			want: want{verdict: verdictSuccess, from: sockAltIPAltPort, to: testClient, origin: testAddrs.AltIPAltPort, other: true},
		},
		{
			name: "change port", h: rfc5780,
			attrs: []stun.Setter{changeRequest(false, true)},
			want:  want{verdict: verdictSuccess, from: sockAltPort, to: testClient, origin: testAddrs.AltPort, other: true, changed: true},
		},
		{
			name: "change IP", h: rfc5780,
			attrs: []stun.Setter{changeRequest(true, false)},
			want:  want{verdict: verdictSuccess, from: sockAltIP, to: testClient, origin: testAddrs.AltIP, other: true, changed: true},
		},
		{
			name: "change IP and port", h: rfc5780,
			attrs: []stun.Setter{changeRequest(true, true)},
			want:  want{verdict: verdictSuccess, from: sockAltIPAltPort, to: testClient, origin: testAddrs.AltIPAltPort, other: true, changed: true},
		},
		{
			name: "change IP relative to the alternate port", h: rfc5780, via: sockAltPort,
			attrs: []stun.Setter{changeRequest(true, false)},
			want:  want{verdict: verdictSuccess, from: sockAltIPAltPort, to: testClient, origin: testAddrs.AltIPAltPort, other: true, changed: true},
		},
		{
			name: "change request without flags", h: rfc5780,
			attrs: []stun.Setter{changeRequest(false, false)},
			want:  want{verdict: verdictSuccess, from: sockPrimary, to: testClient, origin: testAddrs.Primary, other: true},
		},
		{
			name: "change request disabled", h: noChange,
			attrs: []stun.Setter{changeRequest(true, true)},
			want:  want{verdict: verdictError, code: stun.CodeUnknownAttribute, unknown: stun.UnknownAttributes{stun.AttrChangeRequest}, from: sockPrimary, to: testClient},
		},
		{
			name: "disabled change request still sends OTHER-ADDRESS", h: noChange,
			want: want{verdict: verdictSuccess, from: sockPrimary, to: testClient, origin: testAddrs.Primary, other: true},
		},
		{
			name: "change request without alternate", h: single,
			attrs: []stun.Setter{changeRequest(false, true)},
			want:  want{verdict: verdictError, code: stun.CodeUnknownAttribute, unknown: stun.UnknownAttributes{stun.AttrChangeRequest}, from: sockPrimary, to: testClient},
		},
		{
			name: "no OTHER-ADDRESS without alternate", h: single,
			want: want{verdict: verdictSuccess, from: sockPrimary, to: testClient, origin: testAddrs.Primary},
		},
		{
			name: "change request with a bad length", h: rfc5780,
			attrs: []stun.Setter{rawAttr{stun.AttrChangeRequest, []byte{4}}},
			want:  want{verdict: verdictError, code: stun.CodeBadRequest, from: sockPrimary, to: testClient},
		},
		{
			name: "response port", h: rfc5780,
			attrs: []stun.Setter{responsePort(50000)},
			want: want{verdict: verdictSuccess, from: sockPrimary, to: netip.AddrPortFrom(testClient.Addr(), 50000),
				origin: testAddrs.Primary, other: true, redirected: true},
		},
		{
			name: "response port without padding", h: rfc5780,
			attrs: []stun.Setter{rawAttr{stun.AttrResponsePort, []byte{0xC3, 0x50}}},
			want: want{verdict: verdictSuccess, from: sockPrimary, to: netip.AddrPortFrom(testClient.Addr(), 50000),
				origin: testAddrs.Primary, other: true, redirected: true},
		},
		{
			name: "response port and change IP", h: rfc5780,
			attrs: []stun.Setter{changeRequest(true, false), responsePort(50000)},
			want: want{verdict: verdictSuccess, from: sockAltIP, to: netip.AddrPortFrom(testClient.Addr(), 50000),
				origin: testAddrs.AltIP, other: true, changed: true, redirected: true},
		},
		{
			name: "response port on a single-address server", h: single,
			attrs: []stun.Setter{responsePort(50000)},
			want:  want{verdict: verdictSuccess, from: sockPrimary, to: netip.AddrPortFrom(testClient.Addr(), 50000), origin: testAddrs.Primary, redirected: true},
		},
		{
			name: "response port zero", h: rfc5780,
			attrs: []stun.Setter{responsePort(0)},
			want:  want{verdict: verdictError, code: stun.CodeBadRequest, from: sockPrimary, to: testClient},
		},
		{
			name: "response port with a bad length", h: rfc5780,
			attrs: []stun.Setter{rawAttr{stun.AttrResponsePort, []byte{1, 2, 3, 4, 5, 6, 7, 8}}},
			want:  want{verdict: verdictError, code: stun.CodeBadRequest, from: sockPrimary, to: testClient},
		},
		{
			name: "unknown required attributes", h: rfc5780,
			attrs: []stun.Setter{rawAttr{stun.AttrPadding, make([]byte, 8)}, rawAttr{0x7FFF, []byte{1}}, rawAttr{0x7FFF, []byte{2}}},
			want:  want{verdict: verdictError, code: stun.CodeUnknownAttribute, unknown: stun.UnknownAttributes{stun.AttrPadding, 0x7FFF}, from: sockPrimary, to: testClient},
		},
		{
			name: "unknown required attribute with a change request answers from the receiving socket", h: rfc5780,
			attrs: []stun.Setter{changeRequest(true, true), rawAttr{0x0042, nil}},
			want:  want{verdict: verdictError, code: stun.CodeUnknownAttribute, unknown: stun.UnknownAttributes{0x0042}, from: sockPrimary, to: testClient},
		},
		{
			name: "attributes after MESSAGE-INTEGRITY are ignored", h: rfc5780,
			attrs: []stun.Setter{stun.NewUsername("u"), stun.NewShortTermIntegrity("p"), rawAttr{0x0042, nil}, changeRequest(true, true)},
			want:  want{verdict: verdictSuccess, from: sockPrimary, to: testClient, origin: testAddrs.Primary, other: true},
		},
		{
			name: "attributes after MESSAGE-INTEGRITY-SHA256 are ignored", h: rfc5780,
			attrs: []stun.Setter{rawAttr{stun.AttrMessageIntegritySHA256, make([]byte, 32)}, rawAttr{0x0042, nil}, responsePort(50000)},
			want:  want{verdict: verdictSuccess, from: sockPrimary, to: testClient, origin: testAddrs.Primary, other: true},
		},
		{
			name: "attributes before MESSAGE-INTEGRITY still count", h: rfc5780,
			attrs: []stun.Setter{rawAttr{0x0042, nil}, stun.NewUsername("u"), stun.NewShortTermIntegrity("p")},
			want:  want{verdict: verdictError, code: stun.CodeUnknownAttribute, unknown: stun.UnknownAttributes{0x0042}, from: sockPrimary, to: testClient},
		},
		{
			name: "unknown optional attribute", h: rfc5780,
			attrs: []stun.Setter{rawAttr{0xC0FE, []byte("x")}},
			want:  want{verdict: verdictSuccess, from: sockPrimary, to: testClient, origin: testAddrs.Primary, other: true},
		},
		{
			name: "credentials are ignored", h: rfc5780,
			attrs: []stun.Setter{stun.NewUsername("alice"), stun.NewShortTermIntegrity("secret")},
			want:  want{verdict: verdictSuccess, from: sockPrimary, to: testClient, origin: testAddrs.Primary, other: true},
		},
		{
			name: "TCP binding", h: rfc5780, proto: protoTCP,
			want: want{verdict: verdictSuccess, from: sockPrimary, to: testClient, origin: testAddrs.TCP, other: true},
		},
		{
			name: "TCP change request", h: rfc5780, proto: protoTCP,
			attrs: []stun.Setter{changeRequest(true, true)},
			want:  want{verdict: verdictError, code: stun.CodeUnknownAttribute, unknown: stun.UnknownAttributes{stun.AttrChangeRequest}, from: sockPrimary, to: testClient},
		},
		{
			name: "TCP response port", h: rfc5780, proto: protoTCP,
			attrs: []stun.Setter{responsePort(50000)},
			want:  want{verdict: verdictError, code: stun.CodeUnknownAttribute, unknown: stun.UnknownAttributes{stun.AttrResponsePort}, from: sockPrimary, to: testClient},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := newRequest(t, tt.attrs...)
			r := tt.h.handle(request{data: req.Raw, src: testClient, via: tt.via, proto: tt.proto})
			w := tt.want
			if r.verdict != w.verdict {
				t.Fatalf("verdict %v (%s), want %v", r.verdict, r.reason, w.verdict)
			}
			if r.from != w.from || r.to != w.to || r.changed != w.changed || r.redirected != w.redirected {
				t.Errorf("from %v to %v changed %v redirected %v, want from %v to %v changed %v redirected %v",
					r.from, r.to, r.changed, r.redirected, w.from, w.to, w.changed, w.redirected)
			}
			m := decoded(t, req, r.data)
			if !m.Contains(stun.AttrSoftware) {
				t.Error("no SOFTWARE")
			}
			if w.verdict == verdictError {
				if got := errorCode(t, m); got != w.code || r.code != w.code {
					t.Errorf("error code %v (reply says %v), want %v", got, r.code, w.code)
				}
				if w.unknown != nil {
					if got := unknownAttrs(t, m); !slices.Equal(got, w.unknown) {
						t.Errorf("UNKNOWN-ATTRIBUTES %v, want %v", got, w.unknown)
					}
				}
				if m.Contains(stun.AttrXORMappedAddress) {
					t.Error("error response carries XOR-MAPPED-ADDRESS")
				}
				return
			}
			if m.Type != stun.BindingSuccess {
				t.Fatalf("type %v, want Binding success", m.Type)
			}
			if got := addrAttr(t, m, stun.AttrXORMappedAddress); got != testClient {
				t.Errorf("XOR-MAPPED-ADDRESS %v, want %v", got, testClient)
			}
			if got := addrAttr(t, m, stun.AttrMappedAddress); got != testClient {
				t.Errorf("MAPPED-ADDRESS %v, want %v", got, testClient)
			}
			if got := addrAttr(t, m, stun.AttrResponseOrigin); got != w.origin {
				t.Errorf("RESPONSE-ORIGIN %v, want %v", got, w.origin)
			}
			if w.other {
				if got := addrAttr(t, m, stun.AttrOtherAddress); got != testAddrs.AltIPAltPort {
					t.Errorf("OTHER-ADDRESS %v, want %v", got, testAddrs.AltIPAltPort)
				}
			} else if m.Contains(stun.AttrOtherAddress) {
				t.Error("unexpected OTHER-ADDRESS")
			}
			var sw stun.Software
			if err := sw.GetFrom(m); err != nil || sw.String() != "test-server" {
				t.Errorf("SOFTWARE %q (%v), want test-server", sw, err)
			}
		})
	}
}

func TestHandleIPv6(t *testing.T) {
	addrs := Addrs{
		Primary:      netip.MustParseAddrPort("[2001:db8::1]:3478"),
		AltPort:      netip.MustParseAddrPort("[2001:db8::1]:3479"),
		AltIP:        netip.MustParseAddrPort("[2001:db8::2]:3478"),
		AltIPAltPort: netip.MustParseAddrPort("[2001:db8::2]:3479"),
	}
	h := newHandler(addrs, true, DefaultSoftware)
	client := netip.MustParseAddrPort("[2001:db8:ffff::7]:40000")
	req := newRequest(t, changeRequest(true, false))
	r := h.handle(request{data: req.Raw, src: client, via: sockPrimary})
	if r.verdict != verdictSuccess || r.from != sockAltIP || r.to != client {
		t.Fatalf("verdict %v from %v to %v (%s)", r.verdict, r.from, r.to, r.reason)
	}
	m := decoded(t, req, r.data)
	if got := addrAttr(t, m, stun.AttrXORMappedAddress); got != client {
		t.Errorf("XOR-MAPPED-ADDRESS %v, want %v", got, client)
	}
	if got := addrAttr(t, m, stun.AttrResponseOrigin); got != addrs.AltIP {
		t.Errorf("RESPONSE-ORIGIN %v, want %v", got, addrs.AltIP)
	}
	if got := addrAttr(t, m, stun.AttrOtherAddress); got != addrs.AltIPAltPort {
		t.Errorf("OTHER-ADDRESS %v, want %v", got, addrs.AltIPAltPort)
	}
}

func TestHandleMappedSourceIsUnmapped(t *testing.T) {
	h := newHandler(testAddrs, true, DefaultSoftware)
	src := netip.AddrPortFrom(netip.AddrFrom16(testClient.Addr().As16()), testClient.Port())
	req := newRequest(t)
	r := h.handle(request{data: req.Raw, src: src})
	if r.verdict != verdictSuccess || r.to != testClient {
		t.Fatalf("verdict %v to %v, want success to %v", r.verdict, r.to, testClient)
	}
	if got := addrAttr(t, decoded(t, req, r.data), stun.AttrXORMappedAddress); got != testClient {
		t.Errorf("XOR-MAPPED-ADDRESS %v, want %v", got, testClient)
	}
}

func TestHandleUnsupportedMethod(t *testing.T) {
	h := newHandler(testAddrs, true, DefaultSoftware)
	req, err := stun.Build(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest), stun.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	r := h.handle(request{data: req.Raw, src: testClient})
	if r.verdict != verdictError {
		t.Fatalf("verdict %v, want error", r.verdict)
	}
	m := decoded(t, req, r.data)
	if got := errorCode(t, m); got != stun.CodeBadRequest {
		t.Errorf("code %v, want 400", got)
	}
	if m.Type.Method != stun.MethodAllocate {
		t.Errorf("method %v, want Allocate", m.Type.Method)
	}
}

func TestHandleDrops(t *testing.T) {
	h := newHandler(testAddrs, true, DefaultSoftware)
	valid := newRequest(t).Raw

	mutate := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(valid)) }
	build := func(setters ...stun.Setter) []byte {
		m, err := stun.Build(setters...)
		if err != nil {
			t.Fatal(err)
		}
		return m.Raw
	}
	tests := []struct {
		name   string
		reason string // a substring of the drop reason
		data   []byte
		src    netip.AddrPort
		via    socket
	}{
		{name: "empty", reason: "not a STUN request", data: nil},
		{name: "garbage", reason: "not a STUN request", data: []byte("GET / HTTP/1.1\r\n\r\n")},
		{name: "RTP-like", reason: "not a STUN request", data: append([]byte{0x80, 0x60}, make([]byte, 40)...)},
		{name: "truncated header", reason: "not a STUN request", data: valid[:12]},
		{name: "truncated body", reason: "bad length", data: valid[:len(valid)-4]},
		{name: "trailing bytes", reason: "bad length", data: append(bytes.Clone(valid), 0, 0, 0, 0)},
		{name: "wrong magic cookie", reason: "not a STUN request", data: mutate(func(b []byte) []byte { b[4] ^= 0xFF; return b })},
		{name: "length not a multiple of 4", reason: "bad length", data: mutate(func(b []byte) []byte {
			binary.BigEndian.PutUint16(b[2:4], uint16(len(b)-headerSize-2))
			return b[:len(b)-2]
		})},
		{name: "bad fingerprint", reason: "bad fingerprint", data: mutate(func(b []byte) []byte { b[len(b)-1] ^= 1; return b })},
		{name: "attribute overruns message", reason: "undecodable", data: func() []byte {
			b := build(stun.TransactionID, stun.BindingRequest, rawAttr{0x8001, []byte{1, 2, 3, 4, 5, 6, 7, 8}})
			binary.BigEndian.PutUint16(b[2:4], 8)
			return b[:headerSize+8]
		}()},
		{name: "success response", reason: "not a STUN request", data: build(stun.TransactionID, stun.BindingSuccess)},
		{name: "error response", reason: "not a STUN request", data: build(stun.TransactionID, stun.BindingError, stun.CodeBadRequest)},
		{name: "indication", reason: "not a STUN request", data: build(stun.TransactionID, stun.NewType(stun.MethodBinding, stun.ClassIndication))},
		{name: "source port zero", reason: "bad source", data: valid, src: netip.AddrPortFrom(testClient.Addr(), 0)},
		{name: "unspecified source", reason: "bad source", data: valid, src: netip.MustParseAddrPort("0.0.0.0:4000")},
		{name: "multicast source", reason: "bad source", data: valid, src: netip.MustParseAddrPort("224.0.0.1:4000")},
		{name: "broadcast source", reason: "bad source", data: valid, src: netip.MustParseAddrPort("255.255.255.255:4000")},
		{name: "invalid source", reason: "bad source", data: valid, src: netip.AddrPort{}},
		{name: "unknown socket", reason: "unknown receiving socket", data: valid, via: 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := tt.src
			if src == (netip.AddrPort{}) && tt.name != "invalid source" {
				src = testClient
			}
			r := h.handle(request{data: tt.data, src: src, via: tt.via})
			if r.verdict != verdictDrop || r.data != nil {
				t.Errorf("verdict %v with %d bytes, want a silent drop", r.verdict, len(r.data))
			}
			if !strings.Contains(r.reason, tt.reason) {
				t.Errorf("dropped because %q, want %q", r.reason, tt.reason)
			}
		})
	}

	t.Run("missing alternate socket", func(t *testing.T) {
		r := newHandler(Addrs{Primary: testAddrs.Primary}, true, "x").handle(request{data: valid, src: testClient, via: sockAltIP})
		if r.verdict != verdictDrop {
			t.Errorf("verdict %v, want drop", r.verdict)
		}
	})
}

func TestLooksLikeRequest(t *testing.T) {
	req := newRequest(t).Raw
	if !looksLikeRequest(req) {
		t.Error("a Binding request was not recognised")
	}
	resp, _ := stun.Build(stun.TransactionID, stun.BindingSuccess)
	ind, _ := stun.Build(stun.TransactionID, stun.NewType(stun.MethodBinding, stun.ClassIndication))
	for _, b := range [][]byte{nil, req[:19], resp.Raw, ind.Raw} {
		if looksLikeRequest(b) {
			t.Errorf("%x looks like a request", b)
		}
	}
}
