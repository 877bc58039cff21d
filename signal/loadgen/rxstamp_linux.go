// Kernel receive timestamps on the generator's sockets: the time a message
// reached the receiving socket, before the generator's own scheduling got
// round to reading it.

package loadgen

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// stampedConn reads a TCP socket with recvmsg and keeps the kernel's
// receive time (SO_TIMESTAMPNS) of the newest segment of each read.
type stampedConn struct {
	raw  syscall.RawConn
	oob  []byte       // owned by the reader
	last atomic.Int64 // Unix ns of the last read's newest segment; 0: none
}

// newStampedReader turns on receive timestamps on nc and returns a reader
// of nc that keeps them; nil when nc is not a TCP connection or the kernel
// refuses the option.
func newStampedReader(nc net.Conn) stampedReader {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return nil
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
	}); err != nil || serr != nil {
		return nil
	}
	return &stampedConn{raw: raw, oob: make([]byte, unix.CmsgSpace(16))}
}

// Read reads like the connection's Read (deadlines included) and notes the
// receive time of what it read.
func (s *stampedConn) Read(p []byte) (int, error) {
	var n, oobn int
	var rerr error
	err := s.raw.Read(func(fd uintptr) bool {
		for {
			n, oobn, _, _, rerr = unix.Recvmsg(int(fd), p, s.oob, 0)
			if !errors.Is(rerr, unix.EINTR) {
				return !errors.Is(rerr, unix.EAGAIN)
			}
		}
	})
	switch {
	case err != nil:
		return 0, err
	case rerr != nil:
		return 0, rerr
	case n == 0 && len(p) > 0:
		return 0, io.EOF
	}
	// The kernel stamps segments only once timestamping is on for the
	// whole stack, a moment after the first socket asks: an unstamped
	// read leaves the time unknown rather than that of an earlier read.
	ns, _ := parseTimestampNS(s.oob[:oobn])
	s.last.Store(ns)
	return n, nil
}

// arrived returns the receive time of the last read, zero when the kernel
// did not stamp it.
func (s *stampedConn) arrived() time.Time {
	if ns := s.last.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// parseTimestampNS returns the SCM_TIMESTAMPNS time in control messages,
// in Unix nanoseconds.
func parseTimestampNS(oob []byte) (int64, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0, false
	}
	for _, m := range msgs {
		if m.Header.Level != unix.SOL_SOCKET || m.Header.Type != unix.SCM_TIMESTAMPNS {
			continue
		}
		switch len(m.Data) {
		case 16: // struct timespec with 64-bit fields
			sec := int64(binary.NativeEndian.Uint64(m.Data))      //nolint:gosec // G115: a time in seconds.
			nsec := int64(binary.NativeEndian.Uint64(m.Data[8:])) //nolint:gosec // G115: below 1e9.
			return sec*1e9 + nsec, true
		case 8: // 32-bit fields
			sec := int64(int32(binary.NativeEndian.Uint32(m.Data)))      //nolint:gosec // G115: a time in seconds.
			nsec := int64(int32(binary.NativeEndian.Uint32(m.Data[4:]))) //nolint:gosec // G115: below 1e9.
			return sec*1e9 + nsec, true
		}
	}
	return 0, false
}
