// The event-loop transport: one goroutine waits on epoll for every plain
// TCP WebSocket, reads and parses their frames into a shared buffer, and
// writes what the hub queued for them, one write per connection per turn
// of the loop. An idle connection holds no goroutine and no buffer.

package signal

import (
	"errors"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rtckit/rtckit/internal/rawsys"
)

// Sizes of the event loop.
const (
	// pollReadBuffer is the loop's one read buffer.
	pollReadBuffer = 64 << 10
	// pollEvents bounds the events taken from one epoll_wait.
	pollEvents = 256
	// closeHandshakeTimeout bounds the wait for the client's close frame
	// after the server sent its own.
	closeHandshakeTimeout = 5 * time.Second
	// maxPooledBuffer is the largest send buffer kept for reuse.
	maxPooledBuffer = 64 << 10
	// initialSendBuffer is the capacity of a new send buffer.
	initialSendBuffer = 2 << 10
)

// pollSupported tells whether this platform has the event-loop transport.
const pollSupported = true

// sendBuffers recycles connections' send buffers.
var sendBuffers = sync.Pool{New: func() any { b := make([]byte, 0, initialSendBuffer); return &b }}

// poller is one event loop. It starts with its first connection and ends
// when its last one closes; the Server then starts a new one as needed.
type poller struct {
	s     *Server
	epfd  int
	ep    *os.File        // epfd, for the Go scheduler to wait on
	raw   syscall.RawConn // of ep
	evfd  int
	sweep time.Duration

	mu      sync.Mutex // guards the fields below
	awake   bool       // the loop will look at dirty before it sleeps
	stopped bool
	cutAll  bool
	adds    []*pconn
	dirty   []*pconn

	// Owned by the loop goroutine.
	conns  []*pconn
	byFD   []*pconn
	rbuf   []byte
	events []unix.EpollEvent
	spare  []*pconn
}

// newPoller creates the epoll and wake-up descriptors and starts the loop.
func newPoller(s *Server) (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	evfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		_ = unix.Close(epfd) // nothing else to do with it
		return nil, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(evfd)} //nolint:gosec // G115: descriptors fit in int32.
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &ev); err != nil {
		_ = unix.Close(epfd) // nothing else to do with them
		_ = unix.Close(evfd)
		return nil, err
	}
	// The loop waits for the epoll descriptor to become readable in the
	// Go scheduler's own poller rather than blocking a thread in
	// epoll_wait.
	if err := unix.SetNonblock(epfd, true); err != nil {
		_ = unix.Close(epfd) // nothing else to do with them
		_ = unix.Close(evfd)
		return nil, err
	}
	ep := os.NewFile(uintptr(epfd), "epoll")
	raw, err := ep.SyscallConn()
	if err != nil {
		_ = ep.Close() // nothing else to do with them
		_ = unix.Close(evfd)
		return nil, err
	}
	p := &poller{
		s: s, epfd: epfd, ep: ep, raw: raw, evfd: evfd, awake: true, sweep: sweepInterval(&s.cfg),
		rbuf: make([]byte, pollReadBuffer), events: make([]unix.EpollEvent, pollEvents),
	}
	go p.loop()
	return p, nil
}

// sweepInterval is how often the loop checks pings and deadlines: a
// quarter of the shortest timer, between 1 ms and 1 s.
func sweepInterval(cfg *Config) time.Duration {
	d := min(cfg.PingInterval, cfg.IdleTimeout, cfg.WriteTimeout) / 4
	return min(max(d, time.Millisecond), time.Second)
}

// add hands a connection to the loop; false when the loop has stopped.
func (p *poller) add(c *pconn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return false
	}
	p.adds = append(p.adds, c)
	p.wakeLocked()
	return true
}

// markDirty asks the loop to write c's queued data.
func (p *poller) markDirty(c *pconn) {
	p.mu.Lock()
	p.dirty = append(p.dirty, c)
	p.wakeLocked()
	p.mu.Unlock()
}

// cut asks the loop to close every connection at once.
func (p *poller) cut() {
	p.mu.Lock()
	p.cutAll = true
	p.wakeLocked()
	p.mu.Unlock()
}

// wakeLocked interrupts epoll_wait unless the loop is awake already.
func (p *poller) wakeLocked() {
	if p.awake || p.stopped {
		return
	}
	p.awake = true
	var one = [8]byte{1}
	_, _ = unix.Write(p.evfd, one[:]) // a full counter wakes the loop all the same
}

// loop runs the event loop until it has no connection left.
func (p *poller) loop() {
	next := time.Now().Add(p.sweep)
	var deadline, woke time.Time
	for p.drain() {
		if !woke.IsZero() {
			// The turn ends once drain wrote what its events queued.
			p.s.metrics.loopTurn(time.Since(woke))
			woke = time.Time{}
		}
		if deadline != next {
			deadline = next
			_ = p.ep.SetReadDeadline(next) // an epoll descriptor takes deadlines
		}
		n := p.wait()
		if n > 0 {
			woke = time.Now()
		}
		p.mu.Lock()
		p.awake = true
		p.mu.Unlock()
		for _, ev := range p.events[:n] {
			fd := int(ev.Fd)
			if fd == p.evfd {
				var b [8]byte
				_, _ = unix.Read(p.evfd, b[:]) // resets the counter
				continue
			}
			if fd >= len(p.byFD) || p.byFD[fd] == nil {
				continue
			}
			c := p.byFD[fd]
			if ev.Events&unix.EPOLLOUT != 0 {
				p.flush(c)
			}
			if ev.Events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 && c.fd >= 0 {
				p.read(c)
			}
		}
		if now := time.Now(); !now.Before(next) {
			p.sweepConns(now)
			next = now.Add(p.sweep)
		}
	}
}

// drain opens the connections handed over and writes the ones marked
// dirty until none is left, then lets the loop sleep. It returns false,
// having released the loop's descriptors, once no connection is left.
func (p *poller) drain() bool {
	for {
		p.mu.Lock()
		if len(p.adds) == 0 && len(p.dirty) == 0 && !p.cutAll {
			if len(p.conns) == 0 {
				p.stopped = true
				p.mu.Unlock()
				_ = p.ep.Close() // nothing is registered any more
				_ = unix.Close(p.evfd)
				return false
			}
			p.awake = false // from now on a Send wakes the loop
			p.mu.Unlock()
			return true
		}
		adds, dirty, cutAll := p.adds, p.dirty, p.cutAll
		p.adds, p.dirty, p.cutAll = nil, p.spare[:0], false
		p.mu.Unlock()
		for _, c := range adds {
			p.open(c)
		}
		for i, c := range dirty {
			p.flush(c)
			dirty[i] = nil
		}
		p.spare = dirty
		if cutAll {
			for len(p.conns) > 0 {
				p.close(p.conns[len(p.conns)-1])
			}
		}
	}
}

// wait returns the number of events ready, waiting in the Go scheduler
// until one is or the read deadline (the next sweep) passes. It looks
// first: the scheduler forgets readiness it saw before the wait began.
func (p *poller) wait() int {
	var n int
	var err error
	rerr := p.raw.Read(func(fd uintptr) bool {
		n, err = rawsys.EpollPoll(int(fd), p.events)
		return n > 0 || (err != nil && !errors.Is(err, unix.EINTR))
	})
	if err != nil && !errors.Is(err, unix.EINTR) {
		p.s.log.Error("epoll_wait", "err", err)
	}
	if rerr != nil && !errors.Is(rerr, os.ErrDeadlineExceeded) {
		p.s.log.Error("waiting for epoll", "err", rerr)
	}
	return max(n, 0)
}

// open registers a new connection with epoll and the hub.
func (p *poller) open(c *pconn) {
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(c.fd)} //nolint:gosec // G115: descriptors fit in int32.
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, c.fd, &ev); err != nil {
		p.s.log.Debug("epoll_ctl", "err", err)
		_ = unix.Close(c.fd) // the client sees the connection end
		c.fd = -1
		p.s.untrackPoll()
		return
	}
	for c.fd >= len(p.byFD) {
		p.byFD = append(p.byFD, make([]*pconn, len(p.byFD)+1024)...)
	}
	p.byFD[c.fd] = c
	c.idx = len(p.conns)
	p.conns = append(p.conns, c)
	now := time.Now()
	c.lastPing = now
	client, err := p.s.hub.Connect(c)
	if err != nil {
		c.Close(statusTryAgainLater, err.Error())
		return
	}
	c.client = client
	if len(c.in) > 0 { // frames that came with the handshake
		in := c.in
		c.in = nil
		p.consume(c, in)
	}
}

// read reads what the client sent and handles its complete frames.
func (p *poller) read(c *pconn) {
	n, err := rawsys.Read(c.fd, p.rbuf)
	if n <= 0 {
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			return
		}
		p.s.log.Debug("connection ended", "id", c.clientID(), "err", err)
		p.close(c)
		return
	}
	data := p.rbuf[:n]
	if len(c.in) > 0 {
		c.in = append(c.in, data...)
		data = c.in
	}
	p.consume(c, data)
}

// consume parses data and keeps an incomplete frame at its end for later.
func (p *poller) consume(c *pconn, data []byte) {
	used, perr := c.parser.parse(data, c)
	if perr != nil {
		if perr.code == statusMessageTooBig {
			p.s.metrics.dropped(dropTooLarge)
		}
		c.in = nil
		c.closeNow(perr.code, perr.reason)
		return
	}
	rest := data[used:]
	switch {
	case len(rest) == 0:
		c.in = nil
	case len(c.in) > 0 && &rest[0] != &c.in[0]:
		c.in = c.in[:copy(c.in, rest)]
	case len(c.in) == 0:
		c.in = append([]byte(nil), rest...)
	}
}

// flush writes c's queued data, and closes c when it is done with.
func (p *poller) flush(c *pconn) {
	c.mu.Lock()
	c.dirty = false
	if c.fd < 0 {
		c.mu.Unlock()
		return
	}
	failed := len(c.out) > 0 && !c.writeOutLocked()
	done := failed || (len(c.out) == 0 && c.closeAfterFlush)
	if !done && len(c.out) == 0 && c.closeSent && c.closeDeadline.IsZero() {
		c.closeDeadline = time.Now().Add(closeHandshakeTimeout)
	}
	c.mu.Unlock()
	if done {
		p.close(c)
	}
}

// watch turns the interest in c's writability on or off.
func (p *poller) watch(c *pconn, out bool) {
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(c.fd)} //nolint:gosec // G115: descriptors fit in int32.
	if out {
		ev.Events |= unix.EPOLLOUT
	}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_MOD, c.fd, &ev); err != nil {
		p.s.log.Debug("epoll_ctl", "err", err)
	}
}

// close closes c's socket at once and tells the hub.
func (p *poller) close(c *pconn) {
	c.mu.Lock()
	fd := c.fd
	if fd < 0 {
		c.mu.Unlock()
		return
	}
	c.fd = -1
	c.releaseOutLocked()
	left := c.left
	c.mu.Unlock()
	_ = unix.Close(fd) // closing also leaves the epoll set
	p.byFD[fd] = nil
	last := p.conns[len(p.conns)-1]
	last.idx = c.idx
	p.conns[c.idx] = last
	p.conns[len(p.conns)-1] = nil
	p.conns = p.conns[:len(p.conns)-1]
	c.in, c.parser.msg = nil, nil
	switch {
	case c.client == nil:
	case left:
		c.client.Leave()
	default:
		c.client.Disconnect()
	}
	p.s.untrackPoll()
}

// sweepConns pings connections, and closes those whose ping, write or
// close handshake timed out.
func (p *poller) sweepConns(now time.Time) {
	cfg := &p.s.cfg
	for i := 0; i < len(p.conns); i++ {
		c := p.conns[i]
		c.mu.Lock()
		if !c.blockedSince.IsZero() && now.Sub(c.blockedSince) > cfg.WriteTimeout {
			// The loop may have been busy: try once more before giving up.
			c.mu.Unlock()
			p.flush(c)
			if c.mu.Lock(); c.fd < 0 {
				c.mu.Unlock()
				i--
				continue
			}
		}
		expired := (!c.blockedSince.IsZero() && now.Sub(c.blockedSince) > cfg.WriteTimeout) ||
			(!c.closeDeadline.IsZero() && now.After(c.closeDeadline)) ||
			(!c.pingSent.IsZero() && now.Sub(c.pingSent) > cfg.IdleTimeout)
		ping := !expired && !c.closeSent && c.pingSent.IsZero() && now.Sub(c.lastPing) >= cfg.PingInterval
		if ping {
			c.pingSent, c.lastPing = now, now
			c.queueLocked(opPing, nil)
		}
		c.mu.Unlock()
		switch {
		case expired:
			p.s.log.Debug("connection timed out; closing", "id", c.clientID())
			p.close(c)
			i-- // the last connection took its place
		case ping:
			p.flush(c)
		}
	}
}
