package stunserver

import (
	"net/netip"
	"testing"

	"github.com/pion/stun/v4"
)

// FuzzHandle feeds arbitrary bytes, sources, sockets and transports to the
// handler. It must never panic, and whatever it answers must be a valid
// response to the request, sent from one of the server's sockets to the
// request's own IP.
func FuzzHandle(f *testing.F) {
	seed := func(attrs ...stun.Setter) []byte { return newRequest(f, attrs...).Raw }
	seeds := [][]byte{
		nil,
		[]byte("not stun"),
		seed(),
		seed(changeRequest(true, true)),
		seed(changeRequest(false, true), responsePort(5000)),
		seed(responsePort(0)),
		seed(rawAttr{stun.AttrPadding, make([]byte, 12)}, rawAttr{0x7001, nil}),
		seed(stun.NewUsername("u"), stun.NewShortTermIntegrity("p")),
		seed()[:headerSize],
	}
	for i, s := range seeds {
		f.Add(s, []byte{198, 51, 100, byte(i)}, uint16(40000+i), uint8(i%numSockets), i%2 == 1)
	}
	f.Add(seed(), netip.MustParseAddr("2001:db8::7").AsSlice(), uint16(1), uint8(0), false)

	handlers := []*handler{
		newHandler(testAddrs, true, DefaultSoftware),
		newHandler(testAddrs, false, DefaultSoftware),
		newHandler(Addrs{Primary: testAddrs.Primary, TCP: testAddrs.TCP}, true, DefaultSoftware),
	}
	f.Fuzz(func(t *testing.T, data, ip []byte, port uint16, via uint8, tcp bool) {
		addr, _ := netip.AddrFromSlice(ip)
		src := netip.AddrPortFrom(addr, port)
		p := protoUDP
		if tcp {
			p = protoTCP
		}
		for _, h := range handlers {
			r := h.handle(request{data: data, src: src, via: socket(via), proto: p})
			switch r.verdict {
			case verdictDrop, verdictFailed:
				if r.data != nil {
					t.Fatalf("verdict %v with data", r.verdict)
				}
				continue
			}
			req := new(stun.Message)
			if err := stun.Decode(data, req); err != nil {
				t.Fatalf("answered an undecodable request: %v", err)
			}
			m := new(stun.Message)
			if err := stun.Decode(r.data, m); err != nil {
				t.Fatalf("response does not decode: %v", err)
			}
			if err := stun.Fingerprint.Check(m); err != nil {
				t.Fatalf("response FINGERPRINT: %v", err)
			}
			if m.TransactionID != req.TransactionID {
				t.Fatal("transaction ID changed")
			}
			unmapped := netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
			if r.to.Addr() != unmapped.Addr() || r.to.Port() == 0 {
				t.Fatalf("response to %v for a request from %v", r.to, src)
			}
			if !h.origin(p, r.from).IsValid() {
				t.Fatalf("response from socket %v, which does not exist", r.from)
			}
			if p == protoTCP && (r.from != sockPrimary || r.to != unmapped) {
				t.Fatalf("TCP response redirected from %v to %v", r.from, r.to)
			}
			wantClass := stun.ClassSuccessResponse
			if r.verdict == verdictError {
				wantClass = stun.ClassErrorResponse
			}
			if m.Type.Class != wantClass {
				t.Fatalf("class %v for verdict %v", m.Type.Class, r.verdict)
			}
		}
	})
}
