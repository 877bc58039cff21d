package stunserver

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"go.uber.org/goleak"
)

// ioTimeout bounds every network wait in the tests.
const ioTimeout = 5 * time.Second

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// rawAttr adds an attribute with arbitrary type and value.
type rawAttr struct {
	t stun.AttrType
	v []byte
}

func (a rawAttr) AddTo(m *stun.Message) error {
	m.Add(a.t, a.v)
	return nil
}

func changeRequest(changeIP, changePort bool) rawAttr {
	var flags byte
	if changeIP {
		flags |= changeIPFlag
	}
	if changePort {
		flags |= changePortFlag
	}
	return rawAttr{stun.AttrChangeRequest, []byte{0, 0, 0, flags}}
}

func responsePort(port uint16) rawAttr {
	v := make([]byte, 4)
	binary.BigEndian.PutUint16(v, port)
	return rawAttr{stun.AttrResponsePort, v}
}

// newRequest builds a Binding request with a fresh transaction ID, the given
// attributes and a FINGERPRINT.
func newRequest(t testing.TB, attrs ...stun.Setter) *stun.Message {
	t.Helper()
	setters := append([]stun.Setter{stun.TransactionID, stun.BindingRequest}, attrs...)
	setters = append(setters, stun.Fingerprint)
	m, err := stun.Build(setters...)
	if err != nil {
		t.Fatalf("building request: %v", err)
	}
	return m
}

// decoded parses a response and checks the invariants every response has:
// a valid FINGERPRINT and the request's transaction ID.
func decoded(t *testing.T, req *stun.Message, raw []byte) *stun.Message {
	t.Helper()
	m := new(stun.Message)
	if err := stun.Decode(raw, m); err != nil {
		t.Fatalf("decoding response: %v", err)
	}
	if err := stun.Fingerprint.Check(m); err != nil {
		t.Errorf("FINGERPRINT: %v", err)
	}
	if req != nil && m.TransactionID != req.TransactionID {
		t.Errorf("transaction ID %x, want %x", m.TransactionID, req.TransactionID)
	}
	return m
}

// addrAttr reads an address attribute as a netip.AddrPort; XOR-MAPPED-ADDRESS
// is decoded with the XOR applied.
func addrAttr(t *testing.T, m *stun.Message, at stun.AttrType) netip.AddrPort {
	t.Helper()
	var ip net.IP
	var port int
	switch at {
	case stun.AttrXORMappedAddress:
		var a stun.XORMappedAddress
		if err := a.GetFrom(m); err != nil {
			t.Fatalf("%v: %v", at, err)
		}
		ip, port = a.IP, a.Port
	default:
		var a stun.MappedAddress
		if err := a.GetFromAs(m, at); err != nil {
			t.Fatalf("%v: %v", at, err)
		}
		ip, port = a.IP, a.Port
	}
	addr, ok := netip.AddrFromSlice(ip)
	if !ok {
		t.Fatalf("%v: bad IP %v", at, ip)
	}
	return netip.AddrPortFrom(addr.Unmap(), uint16(port))
}

func errorCode(t *testing.T, m *stun.Message) stun.ErrorCode {
	t.Helper()
	if m.Type.Class != stun.ClassErrorResponse {
		t.Fatalf("class %v, want error response", m.Type.Class)
	}
	var ec stun.ErrorCodeAttribute
	if err := ec.GetFrom(m); err != nil {
		t.Fatalf("ERROR-CODE: %v", err)
	}
	return ec.Code
}

func unknownAttrs(t *testing.T, m *stun.Message) stun.UnknownAttributes {
	t.Helper()
	var u stun.UnknownAttributes
	if err := u.GetFrom(m); err != nil {
		t.Fatalf("UNKNOWN-ATTRIBUTES: %v", err)
	}
	return u
}

// udpClient is a raw STUN client on a real UDP socket.
type udpClient struct {
	t    *testing.T
	conn *net.UDPConn
}

func newUDPClient(t *testing.T, ip string) *udpClient {
	t.Helper()
	network := "udp4"
	if netip.MustParseAddr(ip).Is6() {
		network = "udp6"
	}
	c, err := net.ListenUDP(network, &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatalf("client socket: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &udpClient{t: t, conn: c}
}

func (c *udpClient) addr() netip.AddrPort {
	return c.conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

func (c *udpClient) send(to netip.AddrPort, b []byte) {
	c.t.Helper()
	if _, err := c.conn.WriteToUDPAddrPort(b, to); err != nil {
		c.t.Fatalf("send to %v: %v", to, err)
	}
}

// receive waits for the response to req and returns it with the address it
// came from. Other datagrams are skipped.
func (c *udpClient) receive(req *stun.Message) (*stun.Message, netip.AddrPort) {
	c.t.Helper()
	if err := c.conn.SetReadDeadline(time.Now().Add(ioTimeout)); err != nil {
		c.t.Fatal(err)
	}
	buf := make([]byte, 2048)
	for {
		n, from, err := c.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			c.t.Fatalf("waiting for the response to %x: %v", req.TransactionID, err)
		}
		m := new(stun.Message)
		if stun.Decode(buf[:n], m) != nil || m.TransactionID != req.TransactionID {
			continue
		}
		decoded(c.t, req, buf[:n])
		return m, netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	}
}

// roundTrip sends req to the server and waits for its response.
func (c *udpClient) roundTrip(to netip.AddrPort, req *stun.Message) (*stun.Message, netip.AddrPort) {
	c.t.Helper()
	c.send(to, req.Raw)
	return c.receive(req)
}

// isTimeout reports whether err is a deadline expiry.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
