package peer

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/transport/v5"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Sizes of the batches a batchConn moves per system call.
const (
	// batchSize is how many datagrams one read or write call moves at most.
	batchSize = 64
	// batchReadBuffer is the room for one received datagram: pion's ICE
	// accepts datagrams up to 8 KiB.
	batchReadBuffer = 8192
	// batchQueueMax is how many datagrams may wait for the flusher; a
	// writer finding the queue full waits for room.
	batchQueueMax = 256
	// batchSlot is the capacity of a pooled write buffer: a full SCTP
	// packet in DTLS, an RTP packet in SRTP or a STUN message fits.
	batchSlot = 1500
)

// errBatchClosed is returned by writes after Close.
var errBatchClosed = net.ErrClosed

// batchIO is the recvmmsg/sendmmsg pair of golang.org/x/net's ipv4 and
// ipv6 packet connections (one call per batch on Linux, one per datagram
// elsewhere).
type batchIO interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// batchConn is a UDP socket that moves datagrams in batches, so that a
// bulk data-channel transfer costs a few system calls per window instead
// of one per 1.2 KB SCTP packet:
//
//   - reads take every datagram waiting in the socket, up to batchSize,
//     with one recvmmsg, and hand them out one per ReadFromAddrPort;
//   - writes copy the datagram into a queue and return; a flusher
//     goroutine sends everything queued with one sendmmsg per batch. A
//     lone datagram leaves at once (the flusher is woken for it), so
//     latency grows only by a goroutine wake-up; datagrams written while
//     the flusher is busy share its next call.
//
// ICE uses it through AddrPortReaderWriter; it has one reader (the ICE
// candidate's read loop) and any number of writers. Write errors of queued
// datagrams are not reported (as for a datagram lost in the network); the
// first one is returned by later writes.
type batchConn struct {
	*net.UDPConn
	io batchIO

	// Read side, used by the single reader.
	rmu   sync.Mutex
	rmsgs []ipv4.Message
	rnext int
	rn    int

	// Write side.
	wmu      sync.Mutex
	room     *sync.Cond // signalled when the queue shrinks or the conn closes
	queue    []ipv4.Message
	closed   bool
	werr     error
	wake     chan struct{}
	flushed  chan struct{} // closed when the flusher has ended
	addrs    map[netip.AddrPort]*net.UDPAddr
	freeBufs [][]byte
}

// newBatchConn wraps c; network is the one c was opened on.
func newBatchConn(c *net.UDPConn, network string) *batchConn {
	b := &batchConn{UDPConn: c, wake: make(chan struct{}, 1), flushed: make(chan struct{}), addrs: map[netip.AddrPort]*net.UDPAddr{}}
	if network == "udp4" {
		b.io = ipv4.NewPacketConn(c)
	} else {
		b.io = ipv6Batch{ipv6.NewPacketConn(c)}
	}
	b.room = sync.NewCond(&b.wmu)
	go b.flushLoop()
	return b
}

// ipv6Batch adapts ipv6.PacketConn (whose Message is the same type as
// ipv4's) to batchIO.
type ipv6Batch struct{ *ipv6.PacketConn }

func (p ipv6Batch) ReadBatch(ms []ipv4.Message, flags int) (int, error) {
	return p.PacketConn.ReadBatch(ms, flags)
}

func (p ipv6Batch) WriteBatch(ms []ipv4.Message, flags int) (int, error) {
	return p.PacketConn.WriteBatch(ms, flags)
}

// ReadFromAddrPort returns the next received datagram, reading a new
// batch when the last one is used up.
func (b *batchConn) ReadFromAddrPort(p []byte) (int, netip.AddrPort, error) {
	b.rmu.Lock()
	defer b.rmu.Unlock()
	for b.rnext >= b.rn {
		if b.rmsgs == nil {
			b.rmsgs = make([]ipv4.Message, batchSize)
			for i := range b.rmsgs {
				b.rmsgs[i].Buffers = [][]byte{make([]byte, batchReadBuffer)}
			}
		}
		n, err := b.io.ReadBatch(b.rmsgs, 0)
		if err != nil {
			return 0, netip.AddrPort{}, err
		}
		b.rnext, b.rn = 0, n
	}
	m := &b.rmsgs[b.rnext]
	b.rnext++
	n := copy(p, m.Buffers[0][:m.N])
	var addr netip.AddrPort
	if ua, ok := m.Addr.(*net.UDPAddr); ok {
		addr = ua.AddrPort()
	}
	return n, addr, nil
}

// ReadFrom implements net.PacketConn through ReadFromAddrPort.
func (b *batchConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, addr, err := b.ReadFromAddrPort(p)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(addr), nil
}

// ReadFromUDP implements transport.UDPConn through ReadFromAddrPort.
func (b *batchConn) ReadFromUDP(p []byte) (int, *net.UDPAddr, error) {
	n, addr, err := b.ReadFromAddrPort(p)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(addr), nil
}

// WriteToAddrPort queues p for addr and returns at once; the flusher sends it.
func (b *batchConn) WriteToAddrPort(p []byte, addr netip.AddrPort) (int, error) {
	b.wmu.Lock()
	defer b.wmu.Unlock()
	for len(b.queue) >= batchQueueMax && !b.closed {
		b.room.Wait()
	}
	if b.closed {
		return 0, errBatchClosed
	}
	if err := b.werr; err != nil {
		b.werr = nil
		return 0, err
	}
	ua := b.addrs[addr]
	if ua == nil {
		if len(b.addrs) > 64 {
			clear(b.addrs)
		}
		ua = net.UDPAddrFromAddrPort(addr)
		b.addrs[addr] = ua
	}
	var buf []byte
	if n := len(b.freeBufs); n > 0 && len(p) <= batchSlot {
		buf = b.freeBufs[n-1][:len(p)]
		b.freeBufs = b.freeBufs[:n-1]
	} else {
		buf = make([]byte, len(p), max(len(p), batchSlot))
	}
	copy(buf, p)
	b.queue = append(b.queue, ipv4.Message{Buffers: [][]byte{buf}, Addr: ua})
	if len(b.queue) == 1 {
		select {
		case b.wake <- struct{}{}:
		default:
		}
	}
	return len(p), nil
}

// WriteTo implements net.PacketConn through WriteToAddrPort.
func (b *batchConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, &net.OpError{Op: "write", Net: "udp", Addr: addr, Err: errors.New("not a UDP address")}
	}
	return b.WriteToAddrPort(p, ua.AddrPort())
}

// WriteToUDP implements transport.UDPConn through WriteToAddrPort.
func (b *batchConn) WriteToUDP(p []byte, addr *net.UDPAddr) (int, error) {
	return b.WriteTo(p, addr)
}

// flushLoop sends the queue whenever it is not empty, until Close.
func (b *batchConn) flushLoop() {
	defer close(b.flushed)
	var batch []ipv4.Message
	for range b.wake {
		for {
			b.wmu.Lock()
			if len(b.queue) == 0 {
				b.wmu.Unlock()
				break
			}
			batch, b.queue = b.queue, batch[:0]
			b.room.Broadcast()
			b.wmu.Unlock()
			err := b.send(batch)
			b.wmu.Lock()
			for i := range batch {
				if buf := batch[i].Buffers[0]; cap(buf) == batchSlot && len(b.freeBufs) < batchQueueMax {
					b.freeBufs = append(b.freeBufs, buf[:0])
				}
				batch[i] = ipv4.Message{}
			}
			if err != nil && b.werr == nil && !errors.Is(err, net.ErrClosed) {
				b.werr = err
			}
			b.wmu.Unlock()
		}
	}
}

// send writes every datagram of batch, batchSize per call. A datagram the
// kernel refuses is skipped (as if lost); the first error is returned.
func (b *batchConn) send(batch []ipv4.Message) error {
	var first error
	for len(batch) > 0 {
		n, err := b.io.WriteBatch(batch[:min(len(batch), batchSize)], 0)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			if first == nil {
				first = err
			}
			n = max(n, 1) // skip the datagram that failed
		}
		batch = batch[n:]
	}
	return first
}

// Close closes the socket and stops the flusher after it sent what was
// queued.
func (b *batchConn) Close() error {
	b.wmu.Lock()
	if b.closed {
		b.wmu.Unlock()
		return b.UDPConn.Close()
	}
	b.closed = true
	b.room.Broadcast()
	close(b.wake)
	b.wmu.Unlock()
	select {
	case <-b.flushed:
	case <-time.After(time.Second):
	}
	return b.UDPConn.Close()
}

// batchNet is the host network with batching UDP sockets (and optionally
// larger socket buffers).
type batchNet struct {
	transport.Net
	buffer int
}

// ListenUDP opens a UDP socket wrapped in a batchConn.
func (n batchNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := n.Net.ListenUDP(network, laddr)
	if err != nil {
		return c, err
	}
	uc, ok := c.(*net.UDPConn)
	if !ok {
		return c, nil
	}
	if n.buffer > 0 {
		_ = uc.SetReadBuffer(n.buffer)
		_ = uc.SetWriteBuffer(n.buffer)
	}
	return newBatchConn(uc, network), nil
}
