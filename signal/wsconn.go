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
	// queue holds the messages the writer has not taken yet; wake tells
	// the writer there are some. writingSince is when the write in
	// progress began (unix nanoseconds, 0 between writes).
	mu           sync.Mutex
	queue        [][]byte
	wake         chan struct{}
	writingSince atomic.Int64
	closing      chan struct{}
	once         sync.Once
	code         websocket.StatusCode
	reason       string
	cfg          *Config
	log          *slog.Logger
	wg           sync.WaitGroup
	pinging      atomic.Bool
}

// cut closes the network connection at once, without a close handshake.
func (c *wsConn) cut() {
	if c.netConn != nil {
		_ = c.netConn.Close() // the drain timed out; errors change nothing
		return
	}
	go func() { _ = c.ws.CloseNow() }() // CloseNow may wait; never under s.mu
}

// Sizes of the writer's queue.
const (
	// writeStall is how long the write in progress must have taken
	// before a full queue counts as a slow consumer's.
	writeStall = 50 * time.Millisecond
	// queueOverflow bounds the queue, in multiples of Config.SendQueue,
	// while the writer still keeps up: a burst fanned in from many
	// senders may pass the queue's size before the writer takes it.
	queueOverflow = 4
)

// Send queues msg without blocking. A full queue (Config.SendQueue
// messages) drops the client when its writer has been stuck in a write
// (the socket takes nothing) or the queue grew to queueOverflow times its
// size.
func (c *wsConn) Send(msg []byte) bool {
	select {
	case <-c.closing:
		return false
	default:
	}
	c.mu.Lock()
	if n := len(c.queue); n >= c.cfg.SendQueue {
		since := c.writingSince.Load()
		stalled := since != 0 && time.Since(time.Unix(0, since)) >= writeStall
		if stalled || n >= queueOverflow*c.cfg.SendQueue {
			c.mu.Unlock()
			return false
		}
	}
	c.queue = append(c.queue, msg)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default: // the writer has been woken already
	}
	return true
}

// take returns the queued messages and empties the queue.
func (c *wsConn) take() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	q := c.queue
	c.queue = nil
	return q
}

// isClosing reports whether Close was called.
func (c *wsConn) isClosing() bool {
	select {
	case <-c.closing:
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
		case <-c.wake:
			for _, msg := range c.take() {
				if err := c.write(ctx, msg); err != nil {
					_ = c.ws.CloseNow() // the write deadline passed or the peer is gone
					return
				}
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
		q := c.take()
		if len(q) == 0 {
			_ = c.ws.Close(c.code, c.reason) // the peer may already be gone
			return
		}
		for _, msg := range q {
			if err := c.write(ctx, msg); err != nil {
				_ = c.ws.CloseNow() // the peer is too slow or gone
				return
			}
		}
	}
}

func (c *wsConn) write(ctx context.Context, msg []byte) error {
	wctx, cancel := context.WithTimeout(ctx, c.cfg.WriteTimeout)
	defer cancel()
	c.writingSince.Store(time.Now().UnixNano())
	defer c.writingSince.Store(0)
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
