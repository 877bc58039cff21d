package firefox

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// writeTimeout bounds sending one command. It is separate from the
// caller's context on purpose: a WebSocket write cut short by a cancelled
// context closes the connection, and with it the whole session.
const writeTimeout = 10 * time.Second

// conn is a WebDriver BiDi connection: commands are JSON objects with an
// id, answered by a message with the same id ("success" or "error");
// "event" messages arrive in between. One goroutine reads all messages.
type conn struct {
	ws  *websocket.Conn
	log *slog.Logger
	// onEvent, if not nil, receives every event, on the reading goroutine.
	onEvent func(method string, params json.RawMessage)

	mu      sync.Mutex
	nextID  int64
	pending map[int64]chan message
	err     error // why the connection ended; set once done is closed

	done     chan struct{} // closed when the reader stops
	stopRead context.CancelFunc
}

// message is any message from the remote end.
type message struct {
	Type    string          `json:"type"` // success, error or event
	ID      *int64          `json:"id"`
	Result  json.RawMessage `json:"result"`
	Error   string          `json:"error"`
	Message string          `json:"message"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
}

// CommandError is Firefox's error answer to a WebDriver BiDi command. It
// wraps ErrProtocol.
type CommandError struct {
	Method  string // the command, such as script.evaluate
	Code    string // the error code, such as "no such frame"
	Message string
}

func (e *CommandError) Error() string {
	return fmt.Sprintf("%s: %s: %s", e.Method, e.Code, e.Message)
}

// Unwrap returns ErrProtocol.
func (e *CommandError) Unwrap() error { return ErrProtocol }

// dial connects to a WebDriver BiDi WebSocket endpoint; onEvent may be nil.
func dial(ctx context.Context, url string, log *slog.Logger, onEvent func(string, json.RawMessage)) (*conn, error) {
	ws, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", url, err)
	}
	// Evaluate results are whole JSON documents of the page's state.
	ws.SetReadLimit(64 << 20)
	rctx, stop := context.WithCancel(context.Background())
	c := &conn{ws: ws, log: log, onEvent: onEvent, pending: make(map[int64]chan message), done: make(chan struct{}), stopRead: stop}
	go c.read(rctx)
	return c, nil
}

// read dispatches messages until the connection ends.
func (c *conn) read(ctx context.Context) {
	var err error
	defer func() {
		c.mu.Lock()
		c.err = fmt.Errorf("%w: %w", ErrClosed, err)
		c.pending = nil
		c.mu.Unlock()
		close(c.done)
	}()
	for {
		var data []byte
		if _, data, err = c.ws.Read(ctx); err != nil {
			return
		}
		var m message
		if err := json.Unmarshal(data, &m); err != nil {
			c.log.Warn("webdriver bidi: undecodable message", "err", err)
			continue
		}
		switch {
		case m.Type == "event":
			if c.onEvent != nil {
				c.onEvent(m.Method, m.Params)
			}
		case m.ID != nil:
			c.mu.Lock()
			ch := c.pending[*m.ID]
			delete(c.pending, *m.ID)
			c.mu.Unlock()
			if ch != nil {
				ch <- m
			}
		default:
			c.log.Warn("webdriver bidi: error without a command", "error", m.Error, "message", m.Message)
		}
	}
}

// call sends the command method with params and decodes its result into
// result (unless nil). It returns when the answer arrives, ctx ends or the
// connection closes.
func (c *conn) call(ctx context.Context, method string, params any, result any) error {
	c.mu.Lock()
	if c.pending == nil {
		err := c.err
		c.mu.Unlock()
		return err
	}
	c.nextID++
	id := c.nextID
	ch := make(chan message, 1)
	c.pending[id] = ch
	c.mu.Unlock()
	forget := func() {
		c.mu.Lock()
		if c.pending != nil {
			delete(c.pending, id)
		}
		c.mu.Unlock()
	}

	data, err := json.Marshal(map[string]any{"id": id, "method": method, "params": params})
	if err != nil {
		forget()
		return fmt.Errorf("%s: %w", method, err)
	}
	wctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	err = c.ws.Write(wctx, websocket.MessageText, data)
	cancel()
	if err != nil {
		forget()
		<-c.done // a failed write closes the connection
		return fmt.Errorf("%s: %w", method, c.err)
	}
	select {
	case m := <-ch:
		if m.Type == "error" {
			return &CommandError{Method: method, Code: m.Error, Message: m.Message}
		}
		if result == nil {
			return nil
		}
		if err := json.Unmarshal(m.Result, result); err != nil {
			return fmt.Errorf("%s: %w: result: %w", method, ErrProtocol, err)
		}
		return nil
	case <-ctx.Done():
		forget()
		return fmt.Errorf("%s: %w", method, ctx.Err())
	case <-c.done:
		return fmt.Errorf("%s: %w", method, c.err)
	}
}

// close closes the connection and waits for the reader to stop.
func (c *conn) close() {
	_ = c.ws.CloseNow()
	c.stopRead()
	<-c.done
}
