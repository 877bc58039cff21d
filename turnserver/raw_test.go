package turnserver

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v4"
)

// rawAttr adds an attribute with arbitrary type and value.
type rawAttr struct {
	t stun.AttrType
	v []byte
}

func (a rawAttr) AddTo(m *stun.Message) error {
	m.Add(a.t, a.v)
	return nil
}

// peerAddr is an XOR-PEER-ADDRESS.
func peerAddr(ap netip.AddrPort) stun.Setter {
	return setterFunc(func(m *stun.Message) error {
		return (&stun.XORMappedAddress{IP: ap.Addr().AsSlice(), Port: int(ap.Port())}).AddToAs(m, stun.AttrXORPeerAddress)
	})
}

type setterFunc func(*stun.Message) error

func (f setterFunc) AddTo(m *stun.Message) error { return f(m) }

// requestedUDP is REQUESTED-TRANSPORT for a UDP relay.
var requestedUDP = rawAttr{stun.AttrRequestedTransport, []byte{17, 0, 0, 0}}

// rawClient speaks TURN over UDP message by message, to reach the requests
// pion's client does not expose (ChannelBind, Send indications).
type rawClient struct {
	t         *testing.T
	conn      *net.UDPConn
	server    netip.AddrPort
	user      stun.Username
	realm     stun.Realm
	nonce     stun.Nonce
	integrity stun.MessageIntegrity
}

func newRawClient(t *testing.T, server netip.AddrPort, user, pass string) *rawClient {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: loopback.AsSlice()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	rc := &rawClient{t: t, conn: c, server: server, user: stun.NewUsername(user)}
	// The first, unauthenticated Allocate learns the realm and nonce.
	res := rc.roundTrip(stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest),
		requestedUDP, stun.Fingerprint))
	if code := errorCode(res); code != stun.CodeUnauthorized {
		t.Fatalf("unauthenticated Allocate: code %d, want 401", code)
	}
	if err := rc.realm.GetFrom(res); err != nil {
		t.Fatal(err)
	}
	if err := rc.nonce.GetFrom(res); err != nil {
		t.Fatal(err)
	}
	rc.integrity = stun.NewLongTermIntegrity(user, rc.realm.String(), pass)
	return rc
}

// send writes one message to the server.
func (c *rawClient) send(m *stun.Message) {
	c.t.Helper()
	if _, err := c.conn.WriteToUDPAddrPort(m.Raw, c.server); err != nil {
		c.t.Fatal(err)
	}
}

// roundTrip sends a request and waits for its response.
func (c *rawClient) roundTrip(req *stun.Message) *stun.Message {
	c.t.Helper()
	c.send(req)
	if err := c.conn.SetReadDeadline(time.Now().Add(ioTimeout)); err != nil {
		c.t.Fatal(err)
	}
	buf := make([]byte, 2048)
	for {
		n, err := c.conn.Read(buf)
		if err != nil {
			c.t.Fatalf("waiting for the response to %v: %v", req.Type, err)
		}
		m := new(stun.Message)
		if stun.Decode(buf[:n], m) == nil && m.TransactionID == req.TransactionID {
			return m
		}
	}
}

// request makes an authenticated request.
func (c *rawClient) request(method stun.Method, attrs ...stun.Setter) *stun.Message {
	c.t.Helper()
	setters := append([]stun.Setter{stun.TransactionID, stun.NewType(method, stun.ClassRequest)}, attrs...)
	setters = append(setters, &c.user, &c.realm, &c.nonce, c.integrity, stun.Fingerprint)
	return c.roundTrip(stun.MustBuild(setters...))
}

// errorCode returns a response's error code, or 0 for a success response.
func errorCode(m *stun.Message) stun.ErrorCode {
	if m.Type.Class != stun.ClassErrorResponse {
		return 0
	}
	var ec stun.ErrorCodeAttribute
	if err := ec.GetFrom(m); err != nil {
		return -1
	}
	return ec.Code
}

// TestRawPeerRefusal checks every way a client can reach a peer:
// CreatePermission, ChannelBind, Send indications and ChannelData.
func TestRawPeerRefusal(t *testing.T) {
	for _, allow := range []bool{false, true} {
		name := map[bool]string{false: "loopback refused", true: "loopback allowed"}[allow]
		t.Run(name, func(t *testing.T) {
			cfg := labConfig()
			cfg.AllowLoopbackPeers = allow
			s := startServer(t, cfg)
			peer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: loopback.AsSlice()})
			if err != nil {
				t.Fatal(err)
			}
			defer peer.Close()
			peerAP := peer.LocalAddr().(*net.UDPAddr).AddrPort()

			c := newRawClient(t, s.Addrs().UDP, "alice", "wonderland")
			if res := c.request(stun.MethodAllocate, requestedUDP); errorCode(res) != 0 {
				t.Fatalf("Allocate: code %d", errorCode(res))
			}
			// A Send indication before any permission is never relayed.
			c.send(stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodSend, stun.ClassIndication),
				peerAddr(peerAP), rawAttr{stun.AttrData, []byte("early")}, stun.Fingerprint))

			channel := rawAttr{stun.AttrChannelNumber, []byte{0x40, 0x00, 0, 0}}
			bind := c.request(stun.MethodChannelBind, channel, peerAddr(peerAP))
			perm := c.request(stun.MethodCreatePermission, peerAddr(peerAP))
			c.send(stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodSend, stun.ClassIndication),
				peerAddr(peerAP), rawAttr{stun.AttrData, []byte("send")}, stun.Fingerprint))
			chanData := make([]byte, 4, 8)
			binary.BigEndian.PutUint16(chanData, 0x4000)
			binary.BigEndian.PutUint16(chanData[2:], 4)
			chanData = append(chanData, "chan"...)
			if _, err := c.conn.WriteToUDPAddrPort(chanData, c.server); err != nil {
				t.Fatal(err)
			}
			// The server handles one client's datagrams in order: after this
			// response, whatever it relayed has been sent to the peer.
			c.request(stun.MethodRefresh)
			got := readPeer(t, peer, allow)
			st := s.Stats()
			if allow {
				if errorCode(bind) != 0 || errorCode(perm) != 0 {
					t.Errorf("ChannelBind code %d, CreatePermission code %d, want success", errorCode(bind), errorCode(perm))
				}
				if len(got) != 2 || got[0] != "send" || got[1] != "chan" {
					t.Errorf("peer received %q, want [send chan]", got)
				}
				if st.PeerDenials != 0 || st.Channels != 1 || st.PacketsToPeers != 2 {
					t.Errorf("stats %+v", st)
				}
				return
			}
			// pion answers a refused ChannelBind with 401 rather than 403.
			if errorCode(bind) == 0 || errorCode(perm) != stun.CodeForbidden {
				t.Errorf("ChannelBind code %d, CreatePermission code %d, want errors (403 for CreatePermission)",
					errorCode(bind), errorCode(perm))
			}
			if len(got) != 0 {
				t.Errorf("peer received %q, want nothing", got)
			}
			if st.PeerDenials != 2 || st.Channels != 0 || st.Permissions != 0 || st.PacketsToPeers != 0 {
				t.Errorf("stats %+v, want 2 peer denials and nothing relayed", st)
			}
		})
	}
}

// readPeer returns what the peer received. When want is true it waits for
// the two relayed datagrams; otherwise it sends the peer a marker of its own
// and returns what arrived before it, so that nothing is waited for in vain.
func readPeer(t *testing.T, peer *net.UDPConn, want bool) []string {
	t.Helper()
	const marker = "marker"
	if !want {
		c, err := net.DialUDP("udp4", nil, peer.LocalAddr().(*net.UDPAddr))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte(marker)); err != nil {
			t.Fatal(err)
		}
	}
	if err := peer.SetReadDeadline(time.Now().Add(ioTimeout)); err != nil {
		t.Fatal(err)
	}
	var got []string
	buf := make([]byte, 2048)
	for len(got) < 2 {
		n, err := peer.Read(buf)
		if err != nil {
			t.Fatalf("peer read: %v (got %q)", err, got)
		}
		if !want && string(buf[:n]) == marker {
			break
		}
		got = append(got, string(buf[:n]))
	}
	return got
}
