package rawsys

import (
	"errors"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// watchedPair returns a non-blocking socket pair and an epoll descriptor
// that watches the second socket for reading; all are closed when the test
// ends, except a socket the test closed and set to -1.
func watchedPair(t *testing.T) (*[2]int, int) {
	t.Helper()
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	fds := &pair
	t.Cleanup(func() {
		for _, fd := range fds {
			if fd >= 0 {
				_ = unix.Close(fd)
			}
		}
	})
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Close(epfd) })
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, fds[1], &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fds[1])}); err != nil {
		t.Fatal(err)
	}
	return fds, epfd
}

// TestRawSyscalls: the loop's raw read, write and epoll poll behave like
// their scheduler-aware forms on a non-blocking socket pair.
func TestRawSyscalls(t *testing.T) {
	fds, epfd := watchedPair(t)
	events := make([]unix.EpollEvent, 4)
	buf := make([]byte, 16)

	if n, err := EpollPoll(epfd, events); n != 0 || err != nil {
		t.Fatalf("poll of an idle socket: %d, %v; want 0 events", n, err)
	}
	if n, err := Read(fds[1], buf); n != -1 || !errors.Is(err, unix.EAGAIN) {
		t.Fatalf("read of an empty socket: %d, %v; want EAGAIN", n, err)
	}
	if n, err := Write(fds[0], []byte("hello")); n != 5 || err != nil {
		t.Fatalf("write: %d, %v", n, err)
	}
	if n, err := EpollPoll(epfd, events); n != 1 || err != nil || events[0].Fd != int32(fds[1]) {
		t.Fatalf("poll after a write: %d, %v, fd %d; want the reading end", n, err, events[0].Fd)
	}
	if n, err := Read(fds[1], buf); n != 5 || err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("read: %d %q, %v", n, buf[:max(n, 0)], err)
	}
	if n, err := Write(fds[0], nil); n != 0 || err != nil {
		t.Fatalf("empty write: %d, %v", n, err)
	}
	_ = unix.Close(fds[0])
	fds[0] = -1
	if n, err := Read(fds[1], buf); n != 0 || err != nil {
		t.Fatalf("read after the peer closed: %d, %v; want end of stream", n, err)
	}
	if n, err := Write(fds[1], []byte("x")); n != -1 || !errors.Is(err, unix.EPIPE) {
		t.Fatalf("write to a closed peer: %d, %v; want EPIPE", n, err)
	}
	if _, err := EpollPoll(-1, events); !errors.Is(err, unix.EBADF) {
		t.Fatalf("poll of a bad descriptor: %v; want EBADF", err)
	}
}

// TestEpollWaitAndRecvmsg: the timed wait reports readiness like the
// poll, and recvmsg reads what was written, with no control message on a
// socket that asked for none.
func TestEpollWaitAndRecvmsg(t *testing.T) {
	fds, epfd := watchedPair(t)
	events := make([]unix.EpollEvent, 4)
	if n, err := EpollWait(epfd, events, time.Millisecond); n != 0 || err != nil {
		t.Fatalf("wait on an idle socket: %d, %v; want 0 events", n, err)
	}
	buf, oob := make([]byte, 16), make([]byte, 64)
	if _, _, err := Recvmsg(fds[1], buf, oob); !errors.Is(err, unix.EAGAIN) {
		t.Fatalf("recvmsg of an empty socket: %v; want EAGAIN", err)
	}
	if _, err := Write(fds[0], []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if n, err := EpollWait(epfd, events, time.Second); n != 1 || err != nil || events[0].Fd != int32(fds[1]) {
		t.Fatalf("wait after a write: %d, %v; want the reading end", n, err)
	}
	if n, oobn, err := Recvmsg(fds[1], buf, oob); n != 2 || oobn != 0 || err != nil || string(buf[:n]) != "hi" {
		t.Fatalf("recvmsg: %d %q, %d control bytes, %v", n, buf[:max(n, 0)], oobn, err)
	}
	if _, _, err := Recvmsg(fds[1], nil, oob); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("recvmsg into no buffer: %v; want EINVAL", err)
	}
}
