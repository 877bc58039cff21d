// One connection of the event-loop transport as the hub sees it: Send
// appends a frame to the connection's send buffer and asks the loop to
// write it.

package signal

import (
	"encoding/binary"
	"errors"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rtckit/rtckit/internal/rawsys"
)

// pconn is a Conn served by a poller. Fields without a comment belong to
// the loop goroutine.
type pconn struct {
	p      *poller
	client *Client
	idx    int // in p.conns
	parser frameParser
	in     []byte // an incomplete frame carried to the next read

	lastPing time.Time

	mu              sync.Mutex // guards the fields below
	fd              int        // -1 once closed
	out             []byte     // frames waiting to be written
	queued          int        // messages in out not yet started
	partial         int        // bytes at the start of out left of a frame being written
	dirty           bool       // in p.dirty
	waitOut         bool       // watching for writability
	blockedSince    time.Time  // when out stopped draining
	closeSent       bool
	closeAfterFlush bool // close the socket once out is written
	closeDeadline   time.Time
	pingSent        time.Time
	pongQueued      bool // a pong waits in out: later pings get none until it is written
	left            bool // the client closed with 1000: it left (Client.Leave)
}

// newPconn returns a connection for socket fd; in holds bytes the client
// sent after its handshake.
func newPconn(p *poller, fd int, in []byte, limit int) *pconn {
	return &pconn{p: p, fd: fd, in: in, parser: frameParser{limit: limit, hard: limit * hardReadFactor}}
}

// Send queues msg as a text frame; false when the send queue is full or
// the connection is closing.
func (c *pconn) Send(msg []byte) bool {
	c.mu.Lock()
	if c.closeSent || c.fd < 0 {
		c.mu.Unlock()
		return false
	}
	if c.queued >= c.p.s.cfg.SendQueue && !c.waitOut {
		// The loop writes once per turn; a burst fanned in from many
		// senders within one turn fills the queue of a client that
		// reads all the time. Write it now: only a client whose socket
		// stops taking data is slow.
		if !c.writeOutLocked() {
			// The connection failed, which is no slowness: msg goes
			// nowhere, and the loop's next flush closes c.
			c.markDirtyLocked()
			return true
		}
	}
	if c.queued >= c.p.s.cfg.SendQueue {
		c.mu.Unlock()
		return false
	}
	c.queued++
	c.queueLocked(opText, msg)
	c.markDirtyLocked()
	return true
}

// sendCopies marks pconn as a copyingConn: Send copies msg into out.
func (c *pconn) sendCopies() {}

// Close queues a close frame after the queued messages; the socket closes
// when the client answers it or after closeHandshakeTimeout.
func (c *pconn) Close(code int, reason string) {
	c.mu.Lock()
	if c.closeSent || c.fd < 0 {
		c.mu.Unlock()
		return
	}
	c.closeSent = true
	c.out = appendClose(c.buffer(), code, reason)
	c.markDirtyLocked()
}

// closeNow sends a close frame and closes the socket once it is written,
// without waiting for the client's answer.
func (c *pconn) closeNow(code int, reason string) {
	c.mu.Lock()
	if c.fd < 0 {
		c.mu.Unlock()
		return
	}
	if !c.closeSent {
		c.closeSent = true
		c.out = appendClose(c.buffer(), code, reason)
	}
	c.closeAfterFlush = true
	c.markDirtyLocked()
}

// markDirtyLocked unlocks c.mu and has the loop flush c.
func (c *pconn) markDirtyLocked() {
	need := !c.dirty && c.fd >= 0
	c.dirty = true
	c.mu.Unlock()
	if need {
		c.p.markDirty(c)
	}
}

// buffer returns out, taking a pooled buffer when there is none.
func (c *pconn) buffer() []byte {
	if c.out == nil {
		c.out = (*sendBuffers.Get().(*[]byte))[:0]
	}
	return c.out
}

// queueLocked appends a frame to out.
func (c *pconn) queueLocked(op byte, payload []byte) {
	c.out = appendFrame(c.buffer(), op, payload)
}

// releaseOutLocked returns the drained send buffer to the pool.
func (c *pconn) releaseOutLocked() {
	if c.out != nil && cap(c.out) <= maxPooledBuffer {
		b := c.out[:0]
		sendBuffers.Put(&b)
	}
	c.out, c.queued, c.partial, c.pongQueued = nil, 0, 0, false
}

// writeOutLocked writes as much of out as the socket takes, and watches
// for writability when it took less; false when the write failed.
func (c *pconn) writeOutLocked() bool {
	n, err := rawsys.Write(c.fd, c.out)
	switch {
	case n == len(c.out):
		c.releaseOutLocked()
		c.blockedSince = time.Time{}
		if c.waitOut {
			c.waitOut = false
			c.p.watch(c, false)
		}
	case n >= 0 || errors.Is(err, unix.EAGAIN):
		c.wroteLocked(max(n, 0))
		if n > 0 || c.blockedSince.IsZero() {
			c.blockedSince = time.Now() // the write timeout counts from the last progress
		}
		if !c.waitOut {
			c.waitOut = true
			c.p.watch(c, true)
		}
	default:
		return false
	}
	return true
}

// wroteLocked drops the first n bytes of out, which the socket took. Like
// a writer taking a message from its queue, a message the socket started
// to take no longer counts as queued.
func (c *pconn) wroteLocked(n int) {
	pos := c.partial
	for pos < n {
		size, op := frameSize(c.out[pos:])
		if op == opText {
			c.queued--
		}
		pos += size
	}
	c.partial = pos - n
	c.out = c.out[:copy(c.out, c.out[n:])]
}

// clientID returns the hub's id of the connection, 0 before it has one.
func (c *pconn) clientID() int64 {
	if c.client == nil {
		return 0
	}
	return c.client.ID()
}

// message hands a client message to the hub, unless a close frame
// already went either way: what follows a close is not a message.
func (c *pconn) message(p []byte) {
	c.mu.Lock()
	closing := c.closeSent
	c.mu.Unlock()
	if c.client != nil && !closing {
		c.client.Handle(p)
	}
}

// tooLarge answers a message over the size limit.
func (c *pconn) tooLarge() {
	if c.client != nil {
		c.client.TooLarge(c.parser.limit)
	}
}

// control answers pings, notes pongs and completes close handshakes.
func (c *pconn) control(op byte, p []byte) {
	c.mu.Lock()
	switch op {
	case opPing:
		// RFC 6455 lets a pong answer several pings: one queued pong
		// at a time keeps a client that pings without reading from
		// growing out.
		if !c.closeSent && !c.pongQueued {
			c.queueLocked(opPong, p)
			c.pongQueued = true
		}
	case opPong:
		c.pingSent = time.Time{}
		c.mu.Unlock()
		return
	case opClose:
		if c.closeSent {
			// The client answered our close: the handshake is done.
			c.closeAfterFlush = true
			break
		}
		code := statusNoStatus
		if len(p) >= 2 {
			code = int(binary.BigEndian.Uint16(p))
		}
		if len(p) == 1 || (len(p) >= 2 && !validCloseCode(code)) {
			code = statusProtocolError // RFC 6455 7.4: not a code to echo
		}
		c.left = code == statusNormal
		c.closeSent, c.closeAfterFlush = true, true
		c.queueLocked(opClose, appendCloseCode(code))
	}
	c.markDirtyLocked()
}

// appendCloseCode is the payload of a close frame echoing code.
func appendCloseCode(code int) []byte {
	if code == statusNoStatus {
		return nil
	}
	return binary.BigEndian.AppendUint16(nil, uint16(code)) //nolint:gosec // G115: close codes fit in 16 bits.
}
