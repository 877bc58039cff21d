package peer

import (
	"encoding/binary"
	"errors"
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// offloadSupported tells that this platform can send with UDP GSO and
// receive with UDP GRO.
const offloadSupported = true

// enableGRO asks the kernel to hand over coalesced datagrams of one flow
// (UDP_GRO), which a read then splits by the segment size it reports.
func enableGRO(c *net.UDPConn) bool {
	sc, err := c.SyscallConn()
	if err != nil {
		return false
	}
	var serr error
	if err := sc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_GRO, 1) //nolint:gosec // a file descriptor fits in int
	}); err != nil {
		return false
	}
	return serr == nil
}

// gsoControl is the control message that sends one buffer as datagrams of
// size bytes each (the last may be shorter): UDP_SEGMENT.
func gsoControl(size int) []byte {
	b := make([]byte, unix.CmsgSpace(2))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level = unix.SOL_UDP
	h.Type = unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(b[unix.CmsgLen(0):], uint16(size)) //nolint:gosec // size is at most batchSlot
	return b
}

// groSegmentSize returns the segment size of a coalesced datagram from its
// control messages, or 0 when it is a single datagram.
func groSegmentSize(oob []byte) int {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_UDP && m.Header.Type == unix.UDP_GRO && len(m.Data) >= 2 {
			if len(m.Data) >= 4 {
				return int(binary.NativeEndian.Uint32(m.Data))
			}
			return int(binary.NativeEndian.Uint16(m.Data))
		}
	}
	return 0
}

// isGSOUnsupported tells whether err says the path cannot segment (no
// checksum offload on the device, or an old kernel).
func isGSOUnsupported(err error) bool {
	return errors.Is(err, syscall.EIO) || errors.Is(err, syscall.EINVAL) ||
		errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOPROTOOPT)
}
