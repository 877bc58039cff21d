// A small WebSocket client for the generator's hot path: one masked write
// per message and reads into a reused buffer, so that one core can drive
// a hub at tens of thousands of messages a second.

package loadgen

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // G505: RFC 6455 fixes SHA-1 for the accept key.
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// WebSocket opcodes and close codes the client uses.
const (
	opText        = 0x1
	opClose       = 0x8
	opPing        = 0x9
	opPong        = 0xa
	statusNormal  = 1000
	readBufSize   = 4 << 10
	maxServerSize = 64 << 20
)

// errClosed is returned by read once the close handshake is over.
var errClosed = errors.New("loadgen: connection closed")

// wsClient is one client connection. Writes are serialized; reads belong
// to one goroutine.
type wsClient struct {
	nc  net.Conn
	br  *bufio.Reader
	rx  stampedReader // under br when receive times are known, else nil
	msg []byte        // the last message read

	wmu       sync.Mutex
	wbuf      []byte
	closeSent bool
	gotClose  chan struct{} // closed when the reader ends
	once      sync.Once
}

// dialWS opens a WebSocket to u with the json subprotocol.
func dialWS(ctx context.Context, d *net.Dialer, u *url.URL, token string) (*wsClient, error) {
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), map[string]string{"ws": "80", "wss": "443"}[u.Scheme])
	}
	nc, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, err
	}
	var rx stampedReader
	if u.Scheme == "ws" {
		rx = newStampedReader(nc)
	}
	if u.Scheme == "wss" {
		tc := tls.Client(nc, &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12})
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = nc.Close() // the handshake failed
			return nil, err
		}
		nc = tc
	}
	c, err := handshake(ctx, nc, rx, u, token)
	if err != nil {
		_ = nc.Close() // the handshake failed
		return nil, err
	}
	return c, nil
}

// handshake sends the upgrade request and checks the response; the
// client reads through rx when it is not nil.
func handshake(ctx context.Context, nc net.Conn, rx stampedReader, u *url.URL, token string) (*wsClient, error) {
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
		defer func() { _ = nc.SetDeadline(time.Time{}) }()
	}
	var k [16]byte
	_, _ = rand.Read(k[:]) // crypto/rand.Read never fails
	key := base64.StdEncoding.EncodeToString(k[:])
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key +
		"\r\nSec-WebSocket-Protocol: json\r\n"
	if token != "" {
		req += "Authorization: Bearer " + token + "\r\n"
	}
	if _, err := io.WriteString(nc, req+"\r\n"); err != nil {
		return nil, err
	}
	var src io.Reader = nc
	if rx != nil {
		src = rx
	}
	br := bufio.NewReaderSize(src, readBufSize)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		return nil, err
	}
	_ = resp.Body.Close()                                                 // a 101 has no body
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")) //nolint:gosec // G401: see the import.
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
		return nil, fmt.Errorf("loadgen: upgrade refused: %s", resp.Status)
	}
	return &wsClient{nc: nc, br: br, rx: rx, gotClose: make(chan struct{})}, nil
}

// write sends one masked frame with a write deadline.
func (c *wsClient) write(op byte, payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent {
		return errClosed
	}
	if op == opClose {
		c.closeSent = true
	}
	b := appendFrame(c.wbuf[:0], op, payload)
	c.wbuf = b
	_ = c.nc.SetWriteDeadline(time.Now().Add(WriteTimeout))
	_, err := c.nc.Write(b)
	return err
}

// errInvalidFrame is a masked frame from the server, or one over
// maxServerSize.
var errInvalidFrame = errors.New("loadgen: invalid frame from the server")

// frameHeader reads the header of the server frame at the start of b: its
// length hlen and, once b holds all of it (len(b) >= hlen), the payload's
// size. A masked frame or one over maxServerSize is errInvalidFrame.
func frameHeader(b []byte) (hlen int, size uint64, err error) {
	if len(b) < 2 {
		return 2, 0, nil
	}
	switch n := b[1] & 0x7f; n {
	case 126:
		hlen = 4
	case 127:
		hlen = 10
	default:
		hlen, size = 2, uint64(n)
	}
	if len(b) < hlen {
		return hlen, 0, nil
	}
	switch hlen {
	case 4:
		size = uint64(binary.BigEndian.Uint16(b[2:4]))
	case 10:
		size = binary.BigEndian.Uint64(b[2:10])
	}
	if b[1]&0x80 != 0 || size > maxServerSize {
		return hlen, 0, errInvalidFrame
	}
	return hlen, size, nil
}

// serverFrame parses the server frame at the start of b: its first byte
// (FIN and opcode), its payload (within b) and its length in b; n is 0
// while b holds only part of it. A masked frame or one over maxServerSize
// is an error.
func serverFrame(b []byte) (h0 byte, payload []byte, n int, err error) {
	hlen, size, err := frameHeader(b)
	if err != nil || len(b) < hlen || uint64(len(b)-hlen) < size {
		return 0, nil, 0, err
	}
	end := hlen + int(size) //nolint:gosec // G115: size ≤ maxServerSize.
	return b[0], b[hlen:end], end, nil
}

// appendFrame appends to b one final, masked client frame of op with
// payload.
func appendFrame(b []byte, op byte, payload []byte) []byte {
	b = append(b, 0x80|op)
	switch n := len(payload); {
	case n <= 125:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = binary.BigEndian.AppendUint64(append(b, 0x80|127), uint64(n))
	}
	var key [4]byte
	_, _ = rand.Read(key[:]) // crypto/rand.Read never fails
	b = append(b, key[:]...)
	start := len(b)
	b = append(b, payload...)
	mask(b[start:], key)
	return b
}

// mask XORs p with the repeated key, eight bytes at a time.
func mask(p []byte, key [4]byte) {
	k32 := uint64(binary.LittleEndian.Uint32(key[:]))
	k64 := k32 | k32<<32
	i := 0
	for ; i+8 <= len(p); i += 8 {
		binary.LittleEndian.PutUint64(p[i:], binary.LittleEndian.Uint64(p[i:])^k64)
	}
	for ; i < len(p); i++ {
		p[i] ^= key[i&3]
	}
}

// WriteText sends one text message.
func (c *wsClient) WriteText(msg []byte) error { return c.write(opText, msg) }

// read returns the next data message, valid until the next read; it
// answers pings and ends with errClosed after the server's close frame.
func (c *wsClient) read() ([]byte, error) {
	c.msg = c.msg[:0]
	for {
		// The header's first two bytes tell its length.
		hdr, err := c.br.Peek(2)
		if err != nil {
			return nil, err
		}
		hlen, _, _ := frameHeader(hdr)
		if hdr, err = c.br.Peek(hlen); err != nil {
			return nil, err
		}
		hlen, n, err := frameHeader(hdr)
		if err != nil {
			return nil, err
		}
		h0 := hdr[0]
		if _, err := c.br.Discard(hlen); err != nil {
			return nil, err
		}
		start := len(c.msg)
		c.msg = append(c.msg, make([]byte, n)...)
		if _, err := io.ReadFull(c.br, c.msg[start:]); err != nil {
			return nil, err
		}
		switch op := h0 & 0x0f; {
		case op == opPing:
			p := append([]byte(nil), c.msg[start:]...)
			c.msg = c.msg[:start]
			_ = c.write(opPong, p) // a failed pong shows as a failed read later
		case op == opClose:
			p := append([]byte(nil), c.msg[start:min(start+2, len(c.msg))]...)
			_ = c.write(opClose, p) // echo the close; the server may be gone
			return nil, errClosed
		case op >= opClose:
			c.msg = c.msg[:start]
		case h0&0x80 != 0:
			return c.msg, nil
		}
	}
}

// arrived is the kernel's receive time of the message read last: the
// newest segment of the read that completed it; zero when unknown.
func (c *wsClient) arrived() time.Time {
	if c.rx == nil {
		return time.Time{}
	}
	return c.rx.arrived()
}

// done marks the reader as ended.
func (c *wsClient) done() { c.once.Do(func() { close(c.gotClose) }) }

// Close starts the close handshake and waits for the server's answer (as
// seen by the reader) for CloseTimeout at most, then closes the socket.
func (c *wsClient) Close(code int, reason string) error {
	p := binary.BigEndian.AppendUint16(nil, uint16(code)) //nolint:gosec // G115: close codes fit in 16 bits.
	err := c.write(opClose, append(p, reason...))
	if err == nil {
		select {
		case <-c.gotClose:
		case <-time.After(CloseTimeout):
		}
	}
	return errors.Join(err, c.nc.Close())
}

// CloseNow closes the socket at once.
func (c *wsClient) CloseNow() error { return c.nc.Close() }
