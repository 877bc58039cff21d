// The event-loop engine: one goroutine, on a thread of its own, sends the
// pairs' offers on schedule and reads every pair's socket through epoll
// with raw system calls. A goroutine per connection is read when Go's
// scheduler next looks at the network, which it does only once its run
// queue is empty, and its senders' timers fire together at the
// scheduler's millisecond granularity; this loop reads an offer as soon as
// the kernel wakes it and spreads the sends evenly.

package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rtckit/rtckit/internal/rawsys"
)

// loopSupported tells whether this platform has the event-loop engine.
const loopSupported = true

// loopProbe checks once that the kernel lets this process use
// epoll_pwait2 (Linux 5.11; a seccomp profile may refuse it).
var loopProbe = sync.OnceValue(func() error {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return fmt.Errorf("epoll_create1: %w", err)
	}
	defer func() { _ = unix.Close(epfd) }()
	if _, err := rawsys.EpollWait(epfd, make([]unix.EpollEvent, 1), 0); err != nil {
		return fmt.Errorf("epoll_pwait2: %w", err)
	}
	return nil
})

// Sizes and times of the event loop.
const (
	// loopReadBuffer is the loop's one read buffer.
	loopReadBuffer = 64 << 10
	// loopEvents bounds the events taken from one epoll wait.
	loopEvents = 256
	// loopMaxWait bounds one wait, so that the loop sees ctx end.
	loopMaxWait = time.Millisecond
	// loopBurst bounds the offers sent behind schedule before the loop
	// reads again.
	loopBurst = 64
	// loopYieldEvery is how often the loop lets the process's other
	// goroutines run.
	loopYieldEvery = time.Millisecond
	// loopMaxQueued bounds the bytes queued for a socket that does not
	// take them (a hub that stopped reading): further offers count as
	// send errors.
	loopMaxQueued = 4 << 20
	// loopTimerSlack is the loop thread's timer slack: how late the kernel
	// may end its waits (50 µs by default).
	loopTimerSlack = time.Microsecond
)

// loopConn is one pair connection in the loop.
type loopConn struct {
	c        *conn
	fd       int
	p        *pair
	i        int // the pair's place in the loop's senders
	receiver bool
	in       []byte // an incomplete frame
	msg      []byte // a fragmented message so far
	out      []byte // bytes the socket did not take yet
	gotClose bool   // the server's close frame came
	dead     bool   // the socket is closed
}

// eventLoop is the engine's state, owned by its goroutine.
type eventLoop struct {
	r       *run
	epfd    int
	byFD    map[int]*loopConn
	all     []*loopConn
	senders []*loopConn // by pair
	offers  [][]byte    // each pair's offer, its timestamp rewritten per send
	tsAt    []int       // where each offer's timestamp digits start
	events  []unix.EpollEvent
	rbuf    []byte
	oob     []byte
	frame   []byte
	topUp   []int // the pairs with deliveries this turn (window mode)
}

// newEventLoop takes over the pairs' connections, which have no reader.
func (r *run) newEventLoop(pairs []*pair) (*eventLoop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	el := &eventLoop{
		r: r, epfd: epfd, byFD: map[int]*loopConn{},
		events: make([]unix.EpollEvent, loopEvents), rbuf: make([]byte, loopReadBuffer),
		oob: make([]byte, unix.CmsgSpace(16)),
	}
	for i, p := range pairs {
		msg, at := r.offerTemplate(p.target)
		el.offers, el.tsAt = append(el.offers, msg), append(el.tsAt, at)
		_, err := el.add(p.receiver, p, i, true)
		if err == nil {
			var send *loopConn
			send, err = el.add(p.sender, p, i, false)
			el.senders = append(el.senders, send)
		}
		if err != nil {
			el.closeNow()
			return nil, err
		}
	}
	return el, nil
}

// add registers c with epoll, with what its setup read ahead.
func (el *eventLoop) add(c *conn, p *pair, i int, receiver bool) (*loopConn, error) {
	tc, ok := c.ws.nc.(*net.TCPConn)
	if !ok {
		return nil, errors.New("loadgen: the event loop needs plain TCP connections")
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return nil, err
	}
	fd := -1
	if err := raw.Control(func(f uintptr) { fd = int(f) }); err != nil { //nolint:gosec // G115: descriptors fit in int.
		return nil, err
	}
	lc := &loopConn{c: c, fd: fd, p: p, i: i, receiver: receiver}
	if n := c.ws.br.Buffered(); n > 0 {
		b, _ := c.ws.br.Peek(n) // Buffered bytes are always there
		lc.in = append([]byte(nil), b...)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(fd)} //nolint:gosec // G115: descriptors fit in int32.
	if err := unix.EpollCtl(el.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return nil, fmt.Errorf("epoll_ctl: %w", err)
	}
	el.byFD[fd] = lc
	el.all = append(el.all, lc)
	return lc, nil
}

// runLoop sends for the run's duration, then waits for the offers in
// flight (DrainTimeout at most), then closes every pair connection. It
// calls sent when sending stops.
func (el *eventLoop) runLoop(ctx context.Context, sent func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	// A thread's timer slack is its own; the default 50 µs would make
	// the paced sends late.
	_ = unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(loopTimerSlack.Nanoseconds()), 0, 0, 0)
	defer func() { _ = unix.Prctl(unix.PR_SET_TIMERSLACK, 0, 0, 0, 0) }() // 0: back to the default

	el.send(ctx)
	sent()
	el.drain(ctx)
}

// send runs the loop until Duration passes or ctx ends: paced, the k-th
// offer of the run goes to pair k mod n at start + k/Rate; otherwise each
// pair keeps Window offers in flight.
func (el *eventLoop) send(ctx context.Context) {
	n := len(el.senders)
	start := time.Now()
	end := start.Add(el.r.opts.Duration)
	rate := el.r.opts.Rate
	if rate > 0 && n == 0 {
		rate = 0 // nothing to send
	}
	if rate == 0 {
		for i := range el.senders {
			el.topUpWindow(i)
		}
	}
	var k int64
	lastYield := start
	for ctx.Err() == nil {
		now := time.Now()
		if !now.Before(end) {
			return
		}
		wait := end.Sub(now)
		if rate > 0 {
			for burst := 0; burst < loopBurst; burst++ {
				due := start.Add(time.Duration(float64(k) * float64(time.Second) / rate))
				if due.After(now) {
					wait = min(wait, due.Sub(now))
					break
				}
				el.sendOffer(int(k % int64(n)))
				k++
				wait = 0
			}
		}
		el.poll(min(wait, loopMaxWait))
		if rate == 0 {
			for _, i := range el.topUp {
				el.topUpWindow(i)
			}
		}
		el.topUp = el.topUp[:0]
		if now.Sub(lastYield) >= loopYieldEvery {
			runtime.Gosched() // the signal handler, the log
			lastYield = now
		}
	}
}

// topUpWindow sends to pair i until Window offers are in flight.
func (el *eventLoop) topUpWindow(i int) {
	s := el.senders[i]
	for s.p.sent.Load()-s.p.delivered.Load() < int64(el.r.opts.Window) && !s.dead {
		if !el.sendOffer(i) {
			return
		}
	}
}

// sendOffer stamps pair i's offer with the time now and writes it; false
// when it was not sent.
func (el *eventLoop) sendOffer(i int) bool {
	s := el.senders[i]
	if s.dead {
		el.r.sendErrs.Add(1) // the goroutine engine would fail its write too
		return false
	}
	msg, at := el.offers[i], el.tsAt[i]
	var digits [tsDigits]byte
	ts := strconv.AppendInt(digits[:0], int64(time.Since(el.r.base)), 10)
	pad := tsDigits - len(ts)
	copy(msg[at+pad:at+tsDigits], ts)
	for j := at; j < at+pad; j++ {
		msg[j] = '0'
	}
	if !el.write(s, opText, msg) {
		el.r.sendErrs.Add(1)
		return false
	}
	s.p.sent.Add(1)
	return true
}

// write sends one frame on lc, queueing what the socket does not take;
// false when the connection is gone or its queue is full.
func (el *eventLoop) write(lc *loopConn, op byte, payload []byte) bool {
	if lc.dead || len(lc.out) >= loopMaxQueued {
		return false
	}
	if len(lc.out) > 0 {
		lc.out = appendFrame(lc.out, op, payload)
		return true
	}
	el.frame = appendFrame(el.frame[:0], op, payload)
	b := el.frame
	for len(b) > 0 {
		n, err := rawsys.Write(lc.fd, b)
		if errors.Is(err, unix.EAGAIN) {
			lc.out = append(lc.out, b...)
			el.watchOut(lc, true)
			return true
		}
		if err != nil {
			el.lost(lc, err)
			return false
		}
		b = b[n:]
	}
	return true
}

// flush writes what lc's socket did not take before.
func (el *eventLoop) flush(lc *loopConn) {
	for len(lc.out) > 0 {
		n, err := rawsys.Write(lc.fd, lc.out)
		if errors.Is(err, unix.EAGAIN) {
			return
		}
		if err != nil {
			el.lost(lc, err)
			return
		}
		lc.out = lc.out[n:]
	}
	lc.out = nil
	el.watchOut(lc, false)
}

// watchOut turns the interest in lc's writability on or off.
func (el *eventLoop) watchOut(lc *loopConn, on bool) {
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(lc.fd)} //nolint:gosec // G115: descriptors fit in int32.
	if on {
		ev.Events |= unix.EPOLLOUT
	}
	_ = unix.EpollCtl(el.epfd, unix.EPOLL_CTL_MOD, lc.fd, &ev) // a closed socket is noticed on its next read
}

// closeConn closes lc's socket.
func (el *eventLoop) closeConn(lc *loopConn) {
	if lc.dead {
		return
	}
	lc.dead = true
	lc.c.closing.Store(true)
	_ = unix.EpollCtl(el.epfd, unix.EPOLL_CTL_DEL, lc.fd, nil) // closing removes it anyway
	_ = lc.c.ws.nc.Close()                                     // Go's descriptor: close it through Go
	el.r.open.Add(-1)
	close(lc.c.done)
}

// drain reads until every offer sent is delivered, DrainTimeout passes or
// ctx ends.
func (el *eventLoop) drain(ctx context.Context) {
	end := time.Now().Add(DrainTimeout)
	for ctx.Err() == nil && time.Now().Before(end) && !el.delivered() {
		el.poll(loopMaxWait)
	}
}

// delivered tells whether every pair's offers arrived.
func (el *eventLoop) delivered() bool {
	for _, s := range el.senders {
		if s.p.delivered.Load() < s.p.sent.Load() {
			return false
		}
	}
	return true
}

// close sends every open connection a close frame, waits for the hub's
// answers for CloseTimeout at most, and closes the sockets and epoll.
func (el *eventLoop) close() {
	for _, lc := range el.all {
		if !lc.dead && !lc.c.closing.Swap(true) {
			el.write(lc, opClose, []byte{statusNormal >> 8, statusNormal & 0xff})
		}
	}
	end := time.Now().Add(CloseTimeout)
	for time.Now().Before(end) && el.open() {
		el.poll(loopMaxWait)
	}
	el.closeNow()
}

// open tells whether a connection still waits for the hub's close.
func (el *eventLoop) open() bool {
	for _, lc := range el.all {
		if !lc.dead {
			return true
		}
	}
	return false
}

// closeNow closes every socket and epoll.
func (el *eventLoop) closeNow() {
	for _, lc := range el.all {
		el.closeConn(lc)
	}
	_ = unix.Close(el.epfd)
}
