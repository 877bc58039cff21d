package signal

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The event loop's system calls never block (non-blocking sockets, epoll
// with a zero timeout), so they are made without telling the Go scheduler
// (raw). A scheduler-aware call checks whether the runtime's monitor
// thread (sysmon) sleeps because every processor was idle, and wakes it;
// a hub that idles between messages did that on almost every message:
// a futex wake, the monitor's 20 µs naps on the loop's core, its futex
// sleep again — about an eighth of the hub's CPU at 45,000 messages/s.

// rawRead is read(2) on a non-blocking descriptor.
func rawRead(fd int, p []byte) (int, error) { return rawIO(unix.SYS_READ, fd, p) }

// rawWrite is write(2) on a non-blocking descriptor.
func rawWrite(fd int, p []byte) (int, error) { return rawIO(unix.SYS_WRITE, fd, p) }

// rawIO makes the read or write system call trap on fd with p, again when
// a signal interrupts it.
func rawIO(trap uintptr, fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		n, _, errno := unix.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p))) //nolint:gosec // G103: the buffer outlives the call.
		if errno != unix.EINTR {
			return rawResult(n, errno)
		}
	}
}

// rawEpollPoll is epoll_pwait(2) with a zero timeout and no signal mask
// (epoll_wait, which arm64 lacks): the events ready now.
func rawEpollPoll(epfd int, events []unix.EpollEvent) (int, error) {
	if len(events) == 0 {
		return 0, nil
	}
	n, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0) //nolint:gosec // G103: the slice outlives the call.
	return rawResult(n, errno)
}

// rawResult turns a raw system call's return values into Go's.
func rawResult(r uintptr, errno unix.Errno) (int, error) {
	if errno != 0 {
		return -1, errno
	}
	return int(r), nil //nolint:gosec // G115: byte and event counts fit in int.
}
