package stunprobe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/transport/v5"

	"github.com/rtckit/rtckit/internal/netaddr"
	"github.com/rtckit/rtckit/internal/untrusted"
)

// maxDatagram is the largest UDP payload read; STUN replies are far smaller.
const maxDatagram = 1500

// inbound is a STUN message received on one of the probe's sockets.
type inbound struct {
	msg  *stun.Message
	from netip.AddrPort
	sock *udpSocket
	at   time.Time
}

// engine owns the probe's UDP sockets and routes every received message to
// the transaction waiting for its ID, whichever socket it arrived on (the
// hairpin and lifetime tests receive on a socket other than the sender).
type engine struct {
	net  transport.Net
	log  *slog.Logger
	now  func() time.Time
	rto  time.Duration
	wg   sync.WaitGroup
	mu   sync.Mutex
	wait map[[stun.TransactionIDSize]byte]chan inbound
	// socks are closed by close.
	socks []*udpSocket
	// stray counts messages for unknown transactions; garbage counts
	// datagrams that are not STUN.
	stray, garbage atomic.Int64
}

type udpSocket struct {
	conn  net.PacketConn
	local netip.AddrPort
}

func newEngine(n transport.Net, log *slog.Logger, now func() time.Time, rto time.Duration) *engine {
	return &engine{net: n, log: log, now: now, rto: rto, wait: map[[stun.TransactionIDSize]byte]chan inbound{}}
}

// listen opens a UDP socket on localIP with an ephemeral port and starts its reader.
func (e *engine) listen(network string, localIP netip.Addr) (*udpSocket, error) {
	conn, err := e.net.ListenPacket(network, netip.AddrPortFrom(localIP, 0).String())
	if err != nil {
		return nil, err
	}
	local, ok := netaddr.AddrPortOf(conn.LocalAddr())
	if !ok {
		_ = conn.Close()
		return nil, fmt.Errorf("unexpected local address %v", conn.LocalAddr())
	}
	s := &udpSocket{conn: conn, local: local}
	e.mu.Lock()
	e.socks = append(e.socks, s)
	e.mu.Unlock()
	e.wg.Add(1)
	go e.read(s)
	return s, nil
}

func (e *engine) read(s *udpSocket) {
	defer e.wg.Done()
	buf := make([]byte, maxDatagram)
	for {
		n, addr, err := s.conn.ReadFrom(buf)
		if err != nil {
			// Closing the socket ends the reader; any other read error
			// leaves the socket useless too.
			if !errors.Is(err, net.ErrClosed) {
				e.log.Debug("stun probe: read stopped", "local", s.local, "err", err)
			}
			return
		}
		from, ok := netaddr.AddrPortOf(addr)
		if !ok {
			continue
		}
		e.deliver(buf[:n], from, s)
	}
}

// deliver decodes one datagram and hands it to its waiting transaction.
func (e *engine) deliver(data []byte, from netip.AddrPort, s *udpSocket) {
	msg, err := decodeMessage(data)
	if err != nil {
		e.garbage.Add(1)
		e.log.Debug("stun probe: ignored non-STUN datagram", "from", from, "len", len(data), "err", err)
		return
	}
	e.mu.Lock()
	ch := e.wait[msg.TransactionID]
	e.mu.Unlock()
	if ch == nil {
		e.stray.Add(1)
		e.log.Debug("stun probe: ignored message for an unknown transaction", "from", from, "type", msg.Type)
		return
	}
	select {
	case ch <- inbound{msg: msg, from: from, sock: s, at: e.now()}:
	default:
	}
}

// decodeMessage parses a datagram as a STUN message, copying the bytes.
func decodeMessage(data []byte) (*stun.Message, error) {
	if !stun.IsMessage(data) {
		return nil, errors.New("not a STUN message")
	}
	m := &stun.Message{Raw: append([]byte(nil), data...)}
	if err := m.Decode(); err != nil {
		return nil, err
	}
	return m, nil
}

// register reserves a transaction ID and returns the channel its messages arrive on.
func (e *engine) register(id [stun.TransactionIDSize]byte) chan inbound {
	ch := make(chan inbound, 4)
	e.registerOn(id, ch)
	return ch
}

// registerOn routes the messages of transaction id to ch.
func (e *engine) registerOn(id [stun.TransactionIDSize]byte, ch chan inbound) {
	e.mu.Lock()
	e.wait[id] = ch
	e.mu.Unlock()
}

func (e *engine) unregister(id [stun.TransactionIDSize]byte) {
	e.mu.Lock()
	delete(e.wait, id)
	e.mu.Unlock()
}

// close closes every socket and waits for the readers to stop.
func (e *engine) close() {
	e.mu.Lock()
	socks := e.socks
	e.socks = nil
	e.mu.Unlock()
	for _, s := range socks {
		_ = s.conn.Close()
	}
	e.wg.Wait()
}

// request describes one transaction.
type request struct {
	sock *udpSocket
	to   netip.AddrPort
	// change holds CHANGE-REQUEST flags (0 for none).
	change uint32
	// responsePort asks for the reply at this port (RFC 5780 RESPONSE-PORT); 0 for none.
	responsePort int
	// deadline bounds the wait for a reply.
	deadline time.Time
	id       [stun.TransactionIDSize]byte
	// ch, when set, is a channel already registered for id.
	ch chan inbound
}

// CHANGE-REQUEST flags (RFC 5780 section 7.2).
const (
	changeIP   uint32 = 0x04
	changePort uint32 = 0x02
)

// newRequest allocates a transaction ID and registers it.
func (e *engine) newRequest(sock *udpSocket, to netip.AddrPort) request {
	r := request{sock: sock, to: to, id: stun.NewTransactionID()}
	r.ch = e.register(r.id)
	return r
}

func buildBinding(r request) ([]byte, error) {
	setters := []stun.Setter{stun.BindingRequest, stun.NewTransactionIDSetter(r.id)}
	if r.change != 0 {
		setters = append(setters, changeRequest(r.change))
	}
	if r.responsePort != 0 {
		setters = append(setters, responsePort(r.responsePort))
	}
	setters = append(setters, stun.Fingerprint)
	m, err := stun.Build(setters...)
	if err != nil {
		return nil, err
	}
	return m.Raw, nil
}

type changeRequest uint32

func (c changeRequest) AddTo(m *stun.Message) error {
	v := uint32(c)
	m.Add(stun.AttrChangeRequest, []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	return nil
}

type responsePort int

func (p responsePort) AddTo(m *stun.Message) error {
	// RESPONSE-PORT is a 16-bit port followed by 16 bits of padding.
	m.Add(stun.AttrResponsePort, []byte{byte(p >> 8), byte(p), 0, 0})
	return nil
}

// roundTrip sends r's Binding request, retransmitting on a doubling
// schedule, until a reply arrives, r.deadline passes or ctx ends. It returns
// the observation with outcome reply, no-reply, rejected or error; the
// caller checks the reply's source.
func (e *engine) roundTrip(ctx context.Context, r request, test, server string) observation {
	defer e.unregister(r.id)
	o := observation{test: test, server: server, local: r.sock.local, to: r.to, outcome: OutcomeNoReply}
	raw, err := buildBinding(r)
	if err != nil {
		o.outcome, o.note = OutcomeFailed, err.Error()
		return o
	}
	dst := net.UDPAddrFromAddrPort(r.to)
	deadline := time.NewTimer(time.Until(r.deadline))
	defer deadline.Stop()
	rto := e.rto
	var first, last time.Time
	retransmit := time.NewTimer(0)
	defer retransmit.Stop()
	for {
		select {
		case <-ctx.Done():
			return o
		case <-deadline.C:
			return o
		case <-retransmit.C:
			last = e.now()
			if first.IsZero() {
				first = last
			}
			if _, err := r.sock.conn.WriteTo(raw, dst); err != nil {
				o.outcome, o.note = OutcomeFailed, err.Error()
				return o
			}
			o.sent++
			retransmit.Reset(rto)
			rto = min(rto*2, MaxRTO)
		case in := <-r.ch:
			if in.msg.Type.Method != stun.MethodBinding || in.msg.Type.Class == stun.ClassRequest || in.msg.Type.Class == stun.ClassIndication {
				continue
			}
			o.from, o.recvOn = in.from, in.sock.local
			// Karn: with retransmissions the RTT is measured from the last send.
			if o.sent == 1 {
				o.rtt = in.at.Sub(first)
			} else {
				o.rtt = in.at.Sub(last)
			}
			return parseReply(in.msg, o)
		}
	}
}

// parseReply fills o from a Binding response. It never fails on hostile
// input: a malformed reply becomes an error outcome.
func parseReply(m *stun.Message, o observation) observation {
	if m.Type.Class == stun.ClassErrorResponse {
		var ec stun.ErrorCodeAttribute
		if err := ec.GetFrom(m); err != nil {
			o.outcome, o.note = OutcomeFailed, "error response without a valid ERROR-CODE"
			return o
		}
		o.outcome, o.errCode = OutcomeRejectedReq, int(ec.Code)
		o.note = fmt.Sprintf("error %d %s", ec.Code, untrusted.Text(string(ec.Reason)))
		return o
	}
	var xor stun.XORMappedAddress
	if err := xor.GetFrom(m); err != nil {
		o.outcome, o.note = OutcomeFailed, "success response without a valid XOR-MAPPED-ADDRESS"
		return o
	}
	o.software = software(m)
	o.mapped = toAddrPort(xor.IP, xor.Port)
	if note := badMapped(m, o); note != "" {
		o.outcome, o.note = OutcomeFailed, note
		return o
	}
	o.outcome = OutcomeReply
	var plain stun.MappedAddress
	if plain.GetFrom(m) == nil {
		o.plain = toAddrPort(plain.IP, plain.Port)
	}
	var other stun.OtherAddress
	if other.GetFrom(m) == nil {
		o.other = toAddrPort(other.IP, other.Port)
	}
	var origin stun.ResponseOrigin
	if origin.GetFrom(m) == nil {
		o.origin = toAddrPort(origin.IP, origin.Port)
	}
	return o
}

// badMapped explains what is wrong with the XOR-MAPPED-ADDRESS of m, a
// reply to a request o sent: a family that disagrees with the value's
// length (pion reads the address anyway), a family other than the
// request's, or no address at all. "" when it is sound.
func badMapped(m *stun.Message, o observation) string {
	raw, err := m.Get(stun.AttrXORMappedAddress)
	if err != nil || len(raw) < 4 {
		return "success response without a valid XOR-MAPPED-ADDRESS"
	}
	switch family := raw[1]; {
	case family == 0x01 && len(raw) == 8, family == 0x02 && len(raw) == 20:
	default:
		return fmt.Sprintf("XOR-MAPPED-ADDRESS of family %d is %d bytes long", family, len(raw))
	}
	a := o.mapped.Addr().Unmap()
	switch {
	case !o.mapped.IsValid() || a.IsUnspecified() || o.mapped.Port() == 0:
		return fmt.Sprintf("XOR-MAPPED-ADDRESS %s is no address", o.mapped)
	case o.to.IsValid() && a.Is4() != o.to.Addr().Unmap().Is4():
		return fmt.Sprintf("XOR-MAPPED-ADDRESS %s is not of the request's family (sent to %s)", o.mapped, o.to)
	}
	return ""
}

// software returns the SOFTWARE attribute of m, sanitised for display.
func software(m *stun.Message) string {
	var s stun.Software
	if s.GetFrom(m) != nil {
		return ""
	}
	return untrusted.Text(s.String())
}

func toAddrPort(ip net.IP, port int) netip.AddrPort {
	a, ok := netip.AddrFromSlice(ip)
	if !ok || port < 0 || port > 0xffff {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(port))
}
