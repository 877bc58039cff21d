package rawsys

import (
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Read is read(2) on a non-blocking descriptor.
func Read(fd int, p []byte) (int, error) { return rawIO(unix.SYS_READ, fd, p) }

// Write is write(2) on a non-blocking descriptor.
func Write(fd int, p []byte) (int, error) { return rawIO(unix.SYS_WRITE, fd, p) }

// rawIO makes the read or write system call trap on fd with p, again when
// a signal interrupts it.
func rawIO(trap uintptr, fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		n, _, errno := unix.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p))) //nolint:gosec // G103: the buffer outlives the call.
		if errno != unix.EINTR {
			return result(n, errno)
		}
	}
}

// EpollPoll is epoll_pwait(2) with a zero timeout and no signal mask
// (epoll_wait, which arm64 lacks): the events ready now.
func EpollPoll(epfd int, events []unix.EpollEvent) (int, error) {
	if len(events) == 0 {
		return 0, nil
	}
	n, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0) //nolint:gosec // G103: the slice outlives the call.
	return result(n, errno)
}

// EpollWait is epoll_pwait2(2) (Linux 5.11): it waits up to d, to the
// nanosecond, for events. It holds the calling goroutine's processor, so
// only a loop on a thread of its own should wait long.
func EpollWait(epfd int, events []unix.EpollEvent, d time.Duration) (int, error) {
	if len(events) == 0 {
		return 0, nil
	}
	ts := unix.NsecToTimespec(max(d, 0).Nanoseconds())
	n, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT2, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), uintptr(unsafe.Pointer(&ts)), 0, 0) //nolint:gosec // G103: both outlive the call.
	return result(n, errno)
}

// Recvmsg is recvmsg(2) on a non-blocking socket, into p with control
// messages into oob; it returns the bytes and control bytes received.
func Recvmsg(fd int, p, oob []byte) (n, oobn int, err error) {
	if len(p) == 0 || len(oob) == 0 {
		return 0, 0, unix.EINVAL
	}
	iov := unix.Iovec{Base: &p[0]}
	iov.SetLen(len(p))
	msg := unix.Msghdr{Iov: &iov, Iovlen: 1, Control: &oob[0]}
	msg.SetControllen(len(oob))
	r, _, errno := unix.RawSyscall(unix.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)), unix.MSG_DONTWAIT) //nolint:gosec // G103: msg outlives the call.
	if n, err = result(r, errno); err != nil {
		return n, 0, err
	}
	return n, int(msg.Controllen), nil //nolint:gosec // G115: a control length.
}

// result turns a raw system call's return values into Go's.
func result(r uintptr, errno unix.Errno) (int, error) {
	if errno != 0 {
		return -1, errno
	}
	return int(r), nil //nolint:gosec // G115: byte and event counts fit in int.
}
