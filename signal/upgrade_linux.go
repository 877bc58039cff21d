// Handing an upgraded plain-TCP connection to the event loop.

package signal

import (
	"errors"
	"net/http"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// servePoll answers the handshake itself and hands the connection's socket
// to the event loop; the HTTP handler returns at once.
func (s *Server) servePoll(w http.ResponseWriter, r *http.Request) {
	resp, herr := checkHandshake(r)
	if herr != nil {
		if herr.status == http.StatusUpgradeRequired {
			w.Header().Set("Sec-WebSocket-Version", "13")
		}
		http.Error(w, herr.text, herr.status)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "the HTTP server cannot hijack connections", http.StatusInternalServerError)
		return
	}
	conn, rw, err := hj.Hijack()
	if err != nil {
		s.log.Debug("websocket upgrade failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	defer func() { _ = conn.Close() }() // the loop has its own descriptor
	_ = conn.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	fd, err := dupSocket(conn)
	if err != nil {
		s.log.Error("websocket: taking the socket for the event loop (serve it with goroutines: Config.Transport)",
			"remote", r.RemoteAddr, "err", err)
		_, _ = conn.Write([]byte("HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"))
		return
	}
	if _, err := conn.Write([]byte(resp)); err != nil {
		_ = unix.Close(fd) // the client is gone
		s.log.Debug("websocket upgrade failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	var in []byte
	if n := rw.Reader.Buffered(); n > 0 {
		b, _ := rw.Reader.Peek(n) // buffered bytes never fail to peek
		in = append([]byte(nil), b...)
	}
	if err := s.addPoll(fd, in); err != nil {
		_ = unix.Close(fd) // the client sees the connection end
		s.log.Debug("websocket refused", "remote", r.RemoteAddr, "err", err)
	}
}

// dupSocket returns a duplicate of conn's socket descriptor; like the
// original it is non-blocking.
func dupSocket(conn any) (int, error) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return -1, errors.New("not a socket")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd, derr := -1, error(nil)
	if err := raw.Control(func(f uintptr) { fd, derr = unix.FcntlInt(f, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, derr
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		_ = unix.Close(fd) // unusable without non-blocking mode
		return -1, err
	}
	return fd, nil
}

// addPoll hands socket fd to the running event loop, starting one when
// there is none.
func (s *Server) addPoll(fd int, in []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping.Load() {
		return ErrClosed
	}
	for {
		if s.poll == nil {
			p, err := newPoller(s)
			if err != nil {
				return err
			}
			s.poll = p
		}
		s.wg.Add(1)
		if s.poll.add(newPconn(s.poll, fd, in, s.hub.MaxMessageSize())) {
			return nil
		}
		s.wg.Done()
		s.poll = nil // it stopped after its last connection; start another
	}
}

// untrackPoll ends the drain's wait for one event-loop connection.
func (s *Server) untrackPoll() { s.wg.Done() }

// cutPoll closes every event-loop connection at once.
func (s *Server) cutPoll() {
	if s.poll != nil {
		s.poll.cut()
	}
}
