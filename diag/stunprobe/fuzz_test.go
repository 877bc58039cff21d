package stunprobe

import (
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v4"
)

// FuzzResponse feeds arbitrary datagrams through the probe's receive path:
// decoding, routing to a waiting transaction and reading a Binding response.
// Nothing may panic, and a parsed reply's addresses must be valid or absent.
func FuzzResponse(f *testing.F) {
	id := [stun.TransactionIDSize]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	good, _ := stun.Build(stun.NewTransactionIDSetter(id), stun.BindingSuccess,
		&stun.XORMappedAddress{IP: net.IPv4(198, 51, 100, 1), Port: 40000},
		&stun.OtherAddress{IP: net.IPv4(203, 0, 113, 11), Port: 3479}, stun.Fingerprint)
	bad, _ := stun.Build(stun.NewTransactionIDSetter(id), stun.NewType(stun.MethodBinding, stun.ClassErrorResponse),
		stun.CodeUnknownAttribute, stun.Fingerprint)
	f.Add(good.Raw)
	f.Add(bad.Raw)
	f.Add(good.Raw[:24])
	f.Add([]byte("not stun"))
	f.Fuzz(func(t *testing.T, data []byte) {
		e := newEngine(nil, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now, DefaultRTO)
		ch := e.register(id)
		e.deliver(data, netip.MustParseAddrPort("203.0.113.10:3478"), &udpSocket{})
		select {
		case in := <-ch:
			o := parseReply(in.msg, observation{})
			for _, a := range []netip.AddrPort{o.mapped, o.plain, o.other, o.origin} {
				if a.IsValid() && !a.Addr().IsValid() {
					t.Fatalf("invalid address %v", a)
				}
			}
		default:
		}
		if len(data) >= stunHeaderSize {
			_, _ = readTCPMessage(bytesReader(data))
		}
	})
}

type byteReader struct{ b []byte }

func bytesReader(b []byte) *byteReader { return &byteReader{b} }

func (r *byteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}
