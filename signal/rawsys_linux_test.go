package signal

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRawSyscalls: the loop's raw read, write and epoll poll behave like
// their scheduler-aware forms on a non-blocking socket pair.
func TestRawSyscalls(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if fds[0] >= 0 { // closed early by the test
			_ = unix.Close(fds[0])
		}
		_ = unix.Close(fds[1])
	}()
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(epfd)
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, fds[1], &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fds[1])}); err != nil {
		t.Fatal(err)
	}
	events := make([]unix.EpollEvent, 4)
	buf := make([]byte, 16)

	if n, err := rawEpollPoll(epfd, events); n != 0 || err != nil {
		t.Fatalf("poll of an idle socket: %d, %v; want 0 events", n, err)
	}
	if n, err := rawRead(fds[1], buf); n != -1 || !errors.Is(err, unix.EAGAIN) {
		t.Fatalf("read of an empty socket: %d, %v; want EAGAIN", n, err)
	}
	if n, err := rawWrite(fds[0], []byte("hello")); n != 5 || err != nil {
		t.Fatalf("write: %d, %v", n, err)
	}
	if n, err := rawEpollPoll(epfd, events); n != 1 || err != nil || events[0].Fd != int32(fds[1]) {
		t.Fatalf("poll after a write: %d, %v, fd %d; want the reading end", n, err, events[0].Fd)
	}
	if n, err := rawRead(fds[1], buf); n != 5 || err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("read: %d %q, %v", n, buf[:max(n, 0)], err)
	}
	if n, err := rawWrite(fds[0], nil); n != 0 || err != nil {
		t.Fatalf("empty write: %d, %v", n, err)
	}
	_ = unix.Close(fds[0])
	fds[0] = -1
	if n, err := rawRead(fds[1], buf); n != 0 || err != nil {
		t.Fatalf("read after the peer closed: %d, %v; want end of stream", n, err)
	}
	if n, err := rawWrite(fds[1], []byte("x")); n != -1 || !errors.Is(err, unix.EPIPE) {
		t.Fatalf("write to a closed peer: %d, %v; want EPIPE", n, err)
	}
	if _, err := rawEpollPoll(-1, events); !errors.Is(err, unix.EBADF) {
		t.Fatalf("poll of a bad descriptor: %v; want EBADF", err)
	}
}
