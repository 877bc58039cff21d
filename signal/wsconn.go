// One WebSocket connection as the hub sees it: a bounded send queue and the
// single writer goroutine that drains it with write deadlines and pings.

package signal

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// hijackRecorder keeps the connection the WebSocket library hijacks, so
// that a shutdown can cut it even during a close handshake.
type hijackRecorder struct {
	http.ResponseWriter
	conn net.Conn
}

// Hijack hijacks the underlying connection and records it.
func (h *hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := h.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("signal: the HTTP server cannot hijack connections")
	}
	c, rw, err := hj.Hijack()
	h.conn = c
	return c, rw, err
}

// wsConn is a Conn over a coder/websocket connection, with one writer
// goroutine.
type wsConn struct {
	ws      *websocket.Conn
	netConn net.Conn // the hijacked connection under ws
	queue   chan []byte
	closing chan struct{}
	once    sync.Once
	code    websocket.StatusCode
	reason  string
	cfg     *Config
	log     *slog.Logger
	wg      sync.WaitGroup
	pinging atomic.Bool
}

// cut closes the network connection at once, without a close handshake.
func (c *wsConn) cut() {
	if c.netConn != nil {
		_ = c.netConn.Close() // the drain timed out; errors change nothing
		return
	}
	go func() { _ = c.ws.CloseNow() }() // CloseNow may wait; never under s.mu
}

// Send queues msg without blocking.
func (c *wsConn) Send(msg []byte) bool {
	select {
	case <-c.closing:
		return false
	default:
	}
	select {
	case c.queue <- msg:
		return true
	default:
		return false
	}
}

// Close makes the writer send what is queued, then close with code.
func (c *wsConn) Close(code int, reason string) {
	c.once.Do(func() {
		c.code, c.reason = websocket.StatusCode(code), reason
		close(c.closing)
	})
}

// writer writes queued messages with a deadline each, pings the client
// and closes the connection when asked.
func (c *wsConn) writer(ctx context.Context) {
	defer c.wg.Done()
	tick := time.NewTicker(c.cfg.PingInterval)
	defer tick.Stop()
	for {
		select {
		case msg := <-c.queue:
			if err := c.write(ctx, msg); err != nil {
				_ = c.ws.CloseNow() // the write deadline passed or the peer is gone
				return
			}
		case <-tick.C:
			c.ping(ctx)
		case <-c.closing:
			c.drain(ctx)
			return
		case <-ctx.Done():
			_ = c.ws.CloseNow()
			return
		}
	}
}

// drain writes what is queued, then closes the connection with the code
// given to Close.
func (c *wsConn) drain(ctx context.Context) {
	for {
		select {
		case msg := <-c.queue:
			if err := c.write(ctx, msg); err != nil {
				_ = c.ws.CloseNow() // the peer is too slow or gone
				return
			}
		default:
			_ = c.ws.Close(c.code, c.reason) // the peer may already be gone
			return
		}
	}
}

func (c *wsConn) write(ctx context.Context, msg []byte) error {
	wctx, cancel := context.WithTimeout(ctx, c.cfg.WriteTimeout)
	defer cancel()
	return c.ws.Write(wctx, websocket.MessageText, msg)
}

// ping sends a WebSocket ping in the background unless one is pending; a
// ping unanswered within IdleTimeout closes the connection.
func (c *wsConn) ping(ctx context.Context) {
	if !c.pinging.CompareAndSwap(false, true) {
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer c.pinging.Store(false)
		pctx, cancel := context.WithTimeout(ctx, c.cfg.IdleTimeout)
		defer cancel()
		if err := c.ws.Ping(pctx); err != nil {
			c.log.Debug("ping failed; closing", "err", err)
			_ = c.ws.CloseNow()
		}
	}()
}
