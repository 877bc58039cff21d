// The event loop's reading side: epoll's events, the server's frames and
// what they carry (offers, pings, close frames, errors).

package loadgen

import (
	"errors"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rtckit/rtckit/internal/rawsys"
)

// poll waits up to d for events and handles them.
func (el *eventLoop) poll(d time.Duration) {
	n, err := rawsys.EpollWait(el.epfd, el.events, d)
	if err != nil {
		if !errors.Is(err, unix.EINTR) {
			el.r.log.Error("epoll_pwait2", "err", err)
		}
		return
	}
	for _, ev := range el.events[:n] {
		lc := el.byFD[int(ev.Fd)]
		if lc == nil || lc.dead {
			continue
		}
		if ev.Events&unix.EPOLLOUT != 0 {
			el.flush(lc)
		}
		if ev.Events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 && !lc.dead {
			el.read(lc)
		}
	}
}

// read reads what lc's socket holds, with the kernel's receive time, and
// handles the complete frames.
func (el *eventLoop) read(lc *loopConn) {
	n, oobn, err := rawsys.Recvmsg(lc.fd, el.rbuf, el.oob)
	switch {
	case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR):
		return
	case err != nil:
		el.lost(lc, err)
		return
	case n == 0:
		el.lost(lc, errors.New("EOF"))
		return
	}
	var arrived time.Time
	if ns, ok := parseTimestampNS(el.oob[:oobn]); ok {
		arrived = time.Unix(0, ns)
	}
	data := el.rbuf[:n]
	if len(lc.in) > 0 {
		lc.in = append(lc.in, data...)
		data = lc.in
	}
	used, perr := el.frames(lc, data, arrived)
	if perr != nil {
		el.lost(lc, perr)
		return
	}
	lc.in = append(lc.in[:0], data[used:]...)
}

// frames handles the complete server frames at the start of data and
// returns how many bytes they took.
func (el *eventLoop) frames(lc *loopConn, data []byte, arrived time.Time) (int, error) {
	used := 0
	for !lc.dead {
		h0, payload, n, err := serverFrame(data[used:])
		if err != nil || n == 0 {
			return used, err
		}
		used += n
		el.frame0(lc, h0, payload, arrived)
	}
	return used, nil
}

// frame0 handles one server frame whose first byte is h0.
func (el *eventLoop) frame0(lc *loopConn, h0 byte, payload []byte, arrived time.Time) {
	switch op := h0 & 0x0f; {
	case op == opPing:
		el.write(lc, opPong, payload)
		return
	case op == opClose:
		if !lc.c.closing.Load() {
			el.r.disconnects.Add(1)
			el.r.log.Info("connection lost", "name", lc.c.name, "err", "closed by the hub")
			lc.c.closing.Store(true)
			el.write(lc, opClose, payload[:min(2, len(payload))])
		}
		lc.gotClose = true
		el.closeConn(lc)
		return
	case op > opClose: // pong, reserved
		return
	}
	msg := payload
	if h0&0x80 == 0 || len(lc.msg) > 0 {
		lc.msg = append(lc.msg, payload...)
		if h0&0x80 == 0 {
			return
		}
		msg = lc.msg
	}
	el.message(lc, msg, arrived)
	lc.msg = lc.msg[:0]
}

// message handles one whole data message.
func (el *eventLoop) message(lc *loopConn, data []byte, arrived time.Time) {
	if code, ok := errorCode(data); ok {
		el.r.serverError(code)
		return
	}
	if !lc.receiver {
		return
	}
	before := lc.p.delivered.Load()
	lc.p.onOffer(el.r, data, arrived)
	if lc.p.delivered.Load() != before {
		el.topUp = append(el.topUp, lc.i)
	}
}

// lost ends a connection that failed.
func (el *eventLoop) lost(lc *loopConn, err error) {
	if !lc.c.closing.Load() {
		el.r.disconnects.Add(1)
		el.r.log.Info("connection lost", "name", lc.c.name, "err", err)
		lc.c.closing.Store(true)
	}
	el.closeConn(lc)
}
