package signal

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// rawClient is a WebSocket client that writes frames as raw bytes, so that
// a test controls how they fall into TCP segments and what it reads.
type rawClient struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

// dialRaw opens a WebSocket to ts's root with a hand-written handshake.
// readBuffer, when positive, is the socket's receive buffer.
func dialRaw(t *testing.T, ts *httptest.Server, readBuffer int) *rawClient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(ts.URL, "http://"), waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if readBuffer > 0 {
		if err := conn.(*net.TCPConn).SetReadBuffer(readBuffer); err != nil {
			t.Fatal(err)
		}
	}
	_ = conn.SetDeadline(time.Now().Add(waitTimeout))
	req := "GET / HTTP/1.1\r\nHost: " + conn.RemoteAddr().String() + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	c := &rawClient{t: t, conn: conn, r: bufio.NewReader(conn)}
	status, err := c.r.ReadString('\n')
	if err != nil || !strings.Contains(status, " 101 ") {
		t.Fatalf("handshake: %q %v", status, err)
	}
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "\r\n" {
			return c
		}
	}
}

// write sends bytes, several frames at once if the caller joined them.
func (c *rawClient) write(b []byte) {
	c.t.Helper()
	_ = c.conn.SetWriteDeadline(time.Now().Add(waitTimeout))
	if _, err := c.conn.Write(b); err != nil {
		c.t.Fatal(err)
	}
}

// next reads one server frame (servers never mask) before the deadline.
func (c *rawClient) next(deadline time.Time) (op byte, payload []byte, err error) {
	_ = c.conn.SetReadDeadline(deadline)
	var h [2]byte
	if _, err := io.ReadFull(c.r, h[:]); err != nil {
		return 0, nil, err
	}
	n := int(h[1] & 0x7f)
	switch n {
	case 126:
		var ext [2]byte
		if _, err := io.ReadFull(c.r, ext[:]); err != nil {
			return 0, nil, err
		}
		n = int(binary.BigEndian.Uint16(ext[:]))
	case 127:
		var ext [8]byte
		if _, err := io.ReadFull(c.r, ext[:]); err != nil {
			return 0, nil, err
		}
		n = int(binary.BigEndian.Uint64(ext[:])) //nolint:gosec // G115: test frames are small.
	}
	payload = make([]byte, n)
	_, err = io.ReadFull(c.r, payload)
	return h[0] & 0x0f, payload, err
}

// textFrames joins one masked text frame per message.
func textFrames(msgs ...string) []byte {
	var b []byte
	for _, m := range msgs {
		b = append(b, clientFrame(true, opText, []byte(m))...)
	}
	return b
}

// TestBurstFanInKeepsReaders: five clients each send a burst of chat
// within their rate limit in one write; every connection receives all of
// it, more than its send queue holds if the loop wrote only once per
// turn. Only a client that stops reading may be dropped.
func TestBurstFanInKeepsReaders(t *testing.T) {
	for _, transport := range []string{TransportAuto, TransportGoroutines} {
		t.Run(transport, func(t *testing.T) { burstFanIn(t, transport) })
	}
}

func burstFanIn(t *testing.T, transport string) {
	const senders, burst = 5, 90 // 450 messages against a queue of 256
	_, ts := startServer(t, Config{Transport: transport, Hub: HubConfig{Rate: 10, Burst: burst + 1}})
	reader := classic(t, wsURL(ts, "/"), "reader", nil)
	reader.userlist("reader")
	var raws []*rawClient
	for i := range senders {
		c := dialRaw(t, ts, 0)
		c.write(textFrames(`{"type":"username","name":"s` + string(rune('0'+i)) + `"}`))
		raws = append(raws, c)
	}
	reader.userlist("reader", "s0", "s1", "s2", "s3", "s4")
	msgs := make([]string, burst)
	for i := range msgs {
		msgs[i] = `{"type":"message","text":"burst"}`
	}
	frames := textFrames(msgs...)
	for _, c := range raws {
		c.write(frames)
	}
	for got := 0; got < senders*burst; {
		switch m := reader.recv(); m.Type {
		case TypeMessage:
			got++
		case TypeError:
			t.Fatalf("after %d messages: %+v", got, m)
		}
	}
}

// TestPingFloodBounded: a client that pings without reading gets one
// queued pong at a time, not one per ping held in the server's memory.
func TestPingFloodBounded(t *testing.T) {
	_, ts := startServerOn(t, Config{}, withSmallBuffers)
	c := dialRaw(t, ts, 4<<10)
	const pings = 20000 // 2.6 MB of pings, 2.6 MB of pongs if each were queued
	ping := clientFrame(true, opPing, bytes.Repeat([]byte("p"), 125))
	burst := bytes.Repeat(ping, 500)
	for range pings / 500 {
		c.write(burst)
	}
	// What the socket buffers held, then the queued pong, then nothing.
	pongs := 0
	for {
		op, _, err := c.next(time.Now().Add(500 * time.Millisecond))
		if err != nil {
			break
		}
		if op == opPong {
			pongs++
		}
	}
	if pongs == 0 || pongs > pings/4 {
		t.Fatalf("%d pongs for %d pings: want some, and far fewer than the pings", pongs, pings)
	}
	t.Logf("%d pongs for %d pings", pongs, pings)
}

// TestCloseFrame: a close frame with a code no peer may send is answered
// with 1002, and a message after a client's close frame is not handled.
func TestCloseFrame(t *testing.T) {
	_, ts := startServer(t, Config{})
	watcher := classic(t, wsURL(ts, "/"), "watcher", nil)
	watcher.userlist("watcher")

	bad := dialRaw(t, ts, 0)
	bad.write(clientFrame(true, opClose, binary.BigEndian.AppendUint16(nil, 1005)))
	checkCloseReply(t, bad, statusProtocolError)

	c := dialRaw(t, ts, 0)
	c.write(textFrames(`{"type":"username","name":"leaver"}`))
	watcher.userlist("leaver", "watcher")
	closeThenChat := append(clientFrame(true, opClose, binary.BigEndian.AppendUint16(nil, 1000)),
		textFrames(`{"type":"message","text":"after close"}`)...)
	c.write(closeThenChat)
	checkCloseReply(t, c, 1000)
	for {
		m := watcher.recv()
		if m.Type == TypeMessage {
			t.Fatalf("a message after the close frame was relayed: %+v", m)
		}
		if m.Type == TypeUserList && len(m.Users) == 1 {
			break // leaver is gone, and nothing came before
		}
	}
}

// checkCloseReply reads up to the server's close frame and checks its code.
func checkCloseReply(t *testing.T, c *rawClient, want int) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		op, p, err := c.next(deadline)
		if err != nil {
			t.Fatalf("no close frame: %v", err)
		}
		if op != opClose {
			continue
		}
		if len(p) < 2 || int(binary.BigEndian.Uint16(p)) != want {
			t.Fatalf("close frame % x, want code %d", p, want)
		}
		return
	}
}
