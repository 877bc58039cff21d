package peer

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

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
	// groBatchSize and groReadBuffer replace batchSize and batchReadBuffer
	// for reads when the kernel coalesces datagrams (UDP GRO): fewer,
	// larger buffers, each holding up to a whole coalesced datagram.
	groBatchSize  = 8
	groReadBuffer = 65535
	// gsoMaxSegments and gsoMaxBytes bound one segmented send (UDP GSO).
	gsoMaxSegments = 64
	gsoMaxBytes    = 60000
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
//     with one recvmmsg; where the kernel coalesces a flow's datagrams
//     (UDP GRO, Linux) one message may hold many, split again here by the
//     segment size the kernel reports. ReadFromAddrPort hands them out one
//     at a time, and yields the processor before it reads the next batch
//     (see ReadFromAddrPort);
//   - writes copy the datagram into a queue and return; a flusher
//     goroutine, woken by the first one, yields twice to let a burst
//     gather, then sends everything queued with one sendmmsg per batch,
//     runs of equal datagrams to one address as one buffer the kernel
//     segments (UDP GSO, Linux; switched off for good the first time the
//     path refuses it). A lone datagram waits only for the flusher's
//     wake-up.
//
// ICE uses it through AddrPortReaderWriter; it has one reader (the ICE
// candidate's read loop) and any number of writers. Write errors of queued
// datagrams are not reported (as for a datagram lost in the network); the
// first one is returned by later writes. A peer without GRO receives the
// segments of a GSO send as the separate datagrams they are.
type batchConn struct {
	*net.UDPConn
	io batchIO

	// Read side, used by the single reader. With GRO a message may hold
	// several datagrams of rseg bytes (the last may be shorter); roff is
	// the next one's offset in message rnext.
	rmu   sync.Mutex
	gro   bool
	rmsgs []ipv4.Message
	rnext int
	rn    int
	roff  int
	rseg  int
	// handed counts the datagrams returned since the reader last yielded.
	handed int

	// Write side.
	wmu    sync.Mutex
	room   *sync.Cond // signalled when the queue shrinks or the conn closes
	queue  []ipv4.Message
	closed bool
	werr   error
	// wdeadline bounds a writer's wait for room in the queue (see
	// SetWriteDeadline).
	wdeadline time.Time
	wake      chan struct{}
	flushed   chan struct{} // closed when the flusher has ended
	addrs     map[netip.AddrPort]*net.UDPAddr
	freeBufs  [][]byte
	// gso is whether runs of equal datagrams to one address are sent as
	// one segmented buffer (UDP GSO); it is switched off for good the
	// first time the kernel refuses.
	gso bool
	// gsoCmsg caches the UDP_SEGMENT control message per segment size.
	gsoCmsg map[int][]byte
	// planMsgs and planBufs are plan's output, reused by the flusher from
	// one system call to the next.
	planMsgs []ipv4.Message
	planBufs [][]byte

	// Counts of segmented sends and coalesced reads, for tests.
	gsoSends, groReads atomic.Uint64
}

// newBatchConn wraps c; network is the one c was opened on.
func newBatchConn(c *net.UDPConn, network string) *batchConn {
	b := &batchConn{UDPConn: c, wake: make(chan struct{}, 1), flushed: make(chan struct{}), addrs: map[netip.AddrPort]*net.UDPAddr{},
		gso: offloadSupported, gsoCmsg: map[int][]byte{}}
	b.gro = enableGRO(c)
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
//
// Before it reads a new batch after handing out several datagrams, it
// yields the processor. The caller (ICE's read loop) passes each datagram
// into pion's bounded queues (ICE's and the DTLS endpoint's, 1 MB each),
// which drop what does not fit; a read loop that never waits, because the
// socket still holds more, would fill them faster than DTLS and SCTP drain
// them when the process has one processor, and SCTP would take the drops
// for congestion. Yielding lets those consumers run first and leaves the
// backlog in the socket's own buffer.
func (b *batchConn) ReadFromAddrPort(p []byte) (int, netip.AddrPort, error) {
	b.rmu.Lock()
	defer b.rmu.Unlock()
	for b.rnext >= b.rn {
		if b.handed > 1 {
			b.handed = 0
			runtime.Gosched()
		}
		if b.rmsgs == nil {
			b.rmsgs = newReadMessages(b.gro)
		}
		n, err := b.io.ReadBatch(b.rmsgs, 0)
		if err != nil {
			return 0, netip.AddrPort{}, err
		}
		b.rnext, b.rn, b.roff = 0, n, 0
		b.rseg = b.segmentSize(0)
		for i := range n {
			if b.segmentSize(i) > 0 {
				b.groReads.Add(1)
			}
		}
	}
	m := &b.rmsgs[b.rnext]
	end := m.N
	if b.rseg > 0 {
		end = min(b.roff+b.rseg, m.N)
	}
	n := copy(p, m.Buffers[0][b.roff:end])
	var addr netip.AddrPort
	if ua, ok := m.Addr.(*net.UDPAddr); ok {
		addr = ua.AddrPort()
	}
	b.roff = end
	b.handed++
	if b.roff >= m.N {
		b.rnext++
		b.roff = 0
		b.rseg = b.segmentSize(b.rnext)
	}
	return n, addr, nil
}

// segmentSize is the datagram size within read message i when the kernel
// coalesced several (0: one datagram, or no such message).
func (b *batchConn) segmentSize(i int) int {
	if !b.gro || i >= b.rn {
		return 0
	}
	m := &b.rmsgs[i]
	seg := groSegmentSize(m.OOB[:m.NN])
	if seg <= 0 || seg >= m.N {
		return 0
	}
	return seg
}

// newReadMessages allocates the buffers of batch reads.
func newReadMessages(gro bool) []ipv4.Message {
	count, size := batchSize, batchReadBuffer
	if gro {
		count, size = groBatchSize, groReadBuffer
	}
	ms := make([]ipv4.Message, count)
	for i := range ms {
		ms[i].Buffers = [][]byte{make([]byte, size)}
		if gro {
			ms[i].OOB = make([]byte, 64)
		}
	}
	return ms
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
		if !b.wdeadline.IsZero() && !time.Now().Before(b.wdeadline) {
			return 0, os.ErrDeadlineExceeded
		}
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

// SetWriteDeadline applies to writers that find the queue full: past it
// they fail with os.ErrDeadlineExceeded (a waiting writer checks it each
// time the flusher takes the queue). It does not reach the socket: a queued datagram counts as written and
// is sent whatever the deadline. pion pushes deadlines down to its
// sockets, and ICE sets one in the past just before it closes them; on
// the socket it failed the flusher's last send, which held the datagrams
// a closing connection writes last (SCTP's ABORT, DTLS's close alert), so
// the peer never learnt of the close.
func (b *batchConn) SetWriteDeadline(t time.Time) error {
	b.wmu.Lock()
	b.wdeadline = t
	b.room.Broadcast()
	b.wmu.Unlock()
	return nil
}

// SetDeadline sets the socket's read deadline and the queue's write
// deadline (SetWriteDeadline).
func (b *batchConn) SetDeadline(t time.Time) error {
	if err := b.UDPConn.SetReadDeadline(t); err != nil {
		return err
	}
	return b.SetWriteDeadline(t)
}

// flushLoop sends the queue whenever it is not empty, until Close.
func (b *batchConn) flushLoop() {
	defer close(b.flushed)
	var batch []ipv4.Message
	for range b.wake {
		b.gather()
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

// gather gives writers a moment to add to a short queue before it is sent.
func (b *batchConn) gather() {
	for range 2 {
		b.wmu.Lock()
		n := len(b.queue)
		b.wmu.Unlock()
		if n >= 8 {
			return
		}
		runtime.Gosched()
	}
}

// send writes every datagram of batch, in runs segmented by the kernel
// where it can (UDP GSO), batchSize messages per call. A datagram the
// kernel refuses is skipped (as if lost); the first error is returned.
func (b *batchConn) send(batch []ipv4.Message) error {
	var first error
	for len(batch) > 0 {
		msgs := b.plan(batch)
		n, err := b.io.WriteBatch(msgs, 0)
		if err != nil && errors.Is(err, net.ErrClosed) {
			return err
		}
		if err != nil && n < len(msgs) && len(msgs[n].Buffers) > 1 && isGSOUnsupported(err) {
			// The path cannot segment: send this run and all later
			// datagrams one by one.
			b.gso = false
			batch = batch[b.consumed(msgs[:n]):]
			continue
		}
		if err != nil {
			if first == nil {
				first = err
			}
			n++ // skip the message that failed
		}
		batch = batch[b.consumed(msgs[:min(n, len(msgs))]):]
	}
	return first
}

// plan turns the head of batch into at most batchSize messages: runs of
// datagrams of one size (the last may be shorter) to one address become
// one segmented message when GSO is on. The messages share batch's
// buffers, and stay valid until the next call (only the flusher calls it).
func (b *batchConn) plan(batch []ipv4.Message) []ipv4.Message {
	if !b.gso {
		return batch[:min(len(batch), batchSize)]
	}
	clear(b.planMsgs)
	clear(b.planBufs)
	msgs, slab := b.planMsgs[:0], b.planBufs[:0]
	i := 0
	for i < len(batch) && len(msgs) < batchSize {
		first := batch[i]
		size := len(first.Buffers[0])
		j, total := i+1, size
		for j < len(batch) && j-i < gsoMaxSegments && batch[j].Addr == first.Addr {
			l := len(batch[j].Buffers[0])
			if l > size || total+l > gsoMaxBytes {
				break
			}
			total += l
			j++
			if l < size {
				break // a shorter datagram ends a run
			}
		}
		if j-i == 1 {
			msgs = append(msgs, first)
		} else {
			start := len(slab)
			for _, m := range batch[i:j] {
				slab = append(slab, m.Buffers[0])
			}
			// A full slice expression, so that a later run appended to
			// the slab (reallocated or not) leaves this one as it is.
			bufs := slab[start:len(slab):len(slab)]
			cm := b.gsoCmsg[size]
			if cm == nil {
				cm = gsoControl(size)
				b.gsoCmsg[size] = cm
			}
			msgs = append(msgs, ipv4.Message{Buffers: bufs, OOB: cm, Addr: first.Addr})
			b.gsoSends.Add(1)
		}
		i = j
	}
	b.planMsgs, b.planBufs = msgs, slab
	return msgs
}

// consumed counts the datagrams in msgs.
func (b *batchConn) consumed(msgs []ipv4.Message) int {
	n := 0
	for _, m := range msgs {
		n += len(m.Buffers)
	}
	return n
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
