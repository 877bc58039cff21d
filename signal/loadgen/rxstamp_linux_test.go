package loadgen

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// stampWait bounds the wait for the kernel to stamp a read.
const stampWait = 250 * time.Millisecond

// TestStampedReader: reads through the stamped reader return what was
// sent, with a kernel receive time between the write and the read, and
// end like the connection's own reads (deadline, EOF).
func TestStampedReader(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	defer server.Close()

	rx := newStampedReader(client)
	if rx == nil {
		t.Fatal("no receive timestamps on a TCP socket")
	}
	if !rx.arrived().IsZero() {
		t.Error("a receive time before any read")
	}
	// The kernel turns timestamping on for the stack a moment after the
	// first socket asks: exchange until a read is stamped.
	var before, after time.Time
	buf := make([]byte, 16)
	for deadline := time.Now().Add(stampWait); rx.arrived().IsZero(); {
		if time.Now().After(deadline) {
			t.Fatal("no read was stamped")
		}
		before = time.Now()
		if _, err := server.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		n, err := io.ReadFull(rx, buf[:5])
		after = time.Now()
		if err != nil || string(buf[:n]) != "hello" {
			t.Fatalf("Read = %q, %v", buf[:n], err)
		}
	}
	// The kernel's clock and time.Now are the same wall clock.
	if at := rx.arrived(); at.Before(before.Add(-time.Millisecond)) || at.After(after.Add(time.Millisecond)) {
		t.Errorf("arrived %v, not between the write at %v and the read at %v", at, before, after)
	}

	if err := client.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := rx.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Read past the deadline = %v, want a deadline error", err)
	}
	if err := client.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	server.Close()
	if _, err := rx.Read(buf); !errors.Is(err, io.EOF) {
		t.Errorf("Read after the peer closed = %v, want EOF", err)
	}
}

func TestStampedReaderNotTCP(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if rx := newStampedReader(a); rx != nil {
		t.Error("a stamped reader for a pipe")
	}
}

func TestParseTimestampNSGarbage(t *testing.T) {
	for _, oob := range [][]byte{nil, {1, 2, 3}, make([]byte, 64)} {
		if _, ok := parseTimestampNS(oob); ok {
			t.Errorf("parseTimestampNS(%v) found a time", oob)
		}
	}
}
