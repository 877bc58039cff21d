// Package hubclient is a Go client of the signaling protocol that
// `rtckit signal serve` speaks (docs/protocol.md): it connects, registers a
// name and exchanges signal.Message values with the hub.
package hubclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/rtckit/rtckit/signal"
)

// Errors of the client; every error wraps one of them.
var (
	// ErrBadURL is a hub URL that is not ws:// or wss://.
	ErrBadURL = errors.New("bad hub URL")
	// ErrConnect is a failure to reach the hub or to upgrade the connection.
	ErrConnect = errors.New("cannot connect to the hub")
	// ErrClosed means the connection to the hub ended.
	ErrClosed = errors.New("hub connection closed")
	// ErrRefused is an error message from the hub answering a request.
	ErrRefused = errors.New("hub refused")
)

// DefaultTimeout bounds connecting and registering when the context has
// no earlier deadline.
const DefaultTimeout = 10 * time.Second

// Options configure a connection to a hub.
type Options struct {
	// Token is the hub's access token (--token), sent as a bearer token.
	Token string
	// HTTPClient is used for the upgrade; nil is a default client.
	HTTPClient *http.Client
}

// Client is one connection to a hub. Receive messages with Messages; send
// with Send. It is safe for concurrent use.
type Client struct {
	conn    *websocket.Conn
	msgs    chan signal.Message
	done    chan struct{}
	closing chan struct{}
	once    sync.Once

	mu         sync.Mutex
	id         int64
	name       string
	iceServers []signal.ICEServer
	users      []string
	readErr    error
}

// ParseURL checks a hub URL: ws:// or wss:// with a host; a URL without a
// path gets /ws.
func ParseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrBadURL, raw, err)
	}
	switch u.Scheme {
	case "ws", "wss":
	case "http", "https":
		return nil, fmt.Errorf("%w %q: use ws:// or wss:// (the hub's WebSocket URL, e.g. ws://host:8080/ws)", ErrBadURL, raw)
	default:
		return nil, fmt.Errorf("%w %q: scheme must be ws or wss", ErrBadURL, raw)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%w %q: no host", ErrBadURL, raw)
	}
	if u.Path == "" {
		u.Path = "/ws"
	}
	return u, nil
}

// Dial connects to the hub at rawURL and waits for its id message (and the
// ice-servers message that follows it, when the hub sends one).
func Dial(ctx context.Context, rawURL string, opts Options) (*Client, error) {
	u, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	hdr := http.Header{}
	if opts.Token != "" {
		hdr.Set("Authorization", "Bearer "+opts.Token)
	}
	conn, resp, err := websocket.Dial(ctx, u.String(), &websocket.DialOptions{
		HTTPClient: opts.HTTPClient, HTTPHeader: hdr, Subprotocols: []string{"json"},
	})
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("%w %s: HTTP %s", ErrConnect, u.Redacted(), resp.Status)
		}
		return nil, fmt.Errorf("%w %s: %v", ErrConnect, u.Redacted(), err)
	}
	conn.SetReadLimit(1 << 20)
	c := &Client{conn: conn, msgs: make(chan signal.Message, 64), done: make(chan struct{}), closing: make(chan struct{})}
	first, err := c.readOne(ctx)
	if err != nil {
		_ = conn.CloseNow()
		return nil, fmt.Errorf("%w %s: %v", ErrConnect, u.Redacted(), err)
	}
	if first.Type != signal.TypeID {
		_ = conn.CloseNow()
		return nil, fmt.Errorf("%w %s: first message is %q, not \"id\" (not an rtckit hub?)", ErrConnect, u.Redacted(), first.Type)
	}
	c.id = first.ID
	go c.readLoop()
	return c, nil
}

// withDefaultTimeout bounds ctx by DefaultTimeout unless it has a deadline.
func withDefaultTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, DefaultTimeout)
}

func (c *Client) readOne(ctx context.Context) (signal.Message, error) {
	var m signal.Message
	_, data, err := c.conn.Read(ctx)
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("hub sent invalid JSON: %v", err)
	}
	return m, nil
}

// readLoop delivers messages until the connection ends; ice-servers and
// session bookkeeping is kept and the messages are delivered too.
func (c *Client) readLoop() {
	defer close(c.msgs)
	defer close(c.done)
	for {
		m, err := c.readOne(context.Background())
		if err != nil {
			c.mu.Lock()
			c.readErr = err
			c.mu.Unlock()
			return
		}
		c.mu.Lock()
		switch m.Type {
		case signal.TypeICEServers:
			c.iceServers = m.ICEServers
		case signal.TypeRejectUsername:
			c.name = m.Name
		case signal.TypeUserList:
			c.users = m.Users
		}
		c.mu.Unlock()
		select {
		case c.msgs <- m:
		case <-c.closing:
			return
		}
	}
}

// ID is the connection id the hub gave.
func (c *Client) ID() int64 { return c.id }

// Name is the registered name ("" before Register).
func (c *Client) Name() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.name
}

// ICEServers is the hub's ice-servers list (nil until it arrived).
func (c *Client) ICEServers() []signal.ICEServer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.iceServers
}

// Users is the latest user list from the hub.
func (c *Client) Users() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.users
}

// Messages delivers every message from the hub, in order; it is closed when
// the connection ends (Err then says why). Register consumes messages
// until its answer; read Messages after it.
func (c *Client) Messages() <-chan signal.Message { return c.msgs }

// Done is closed when the connection has ended.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err is why the connection ended, or nil while it is open.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.readErr == nil {
		return nil
	}
	return fmt.Errorf("%w: %v", ErrClosed, c.readErr)
}

// Send writes one message to the hub.
func (c *Client) Send(ctx context.Context, m signal.Message) error {
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	if err := c.conn.Write(ctx, websocket.MessageText, data); err != nil {
		return fmt.Errorf("%w: %v", ErrClosed, err)
	}
	return nil
}

// Register asks for name and waits for the hub's userlist that follows
// registration; it returns the registered name, which differs from name
// when the name was taken. Messages that arrive meanwhile other than the
// registration's own are returned too, in order, so none is lost.
func (c *Client) Register(ctx context.Context, name string) (string, []signal.Message, error) {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	c.mu.Lock()
	c.name = name
	c.mu.Unlock()
	err := c.Send(ctx, signal.Message{Type: signal.TypeUsername, Name: name, ID: c.id, Date: json.Number(fmt.Sprint(time.Now().UnixMilli()))})
	if err != nil {
		return "", nil, err
	}
	var other []signal.Message
	for {
		select {
		case <-ctx.Done():
			return "", other, fmt.Errorf("registering %q: %w", name, ctx.Err())
		case m, ok := <-c.msgs:
			if !ok {
				return "", other, c.Err()
			}
			switch m.Type {
			case signal.TypeRejectUsername, signal.TypeSession, signal.TypeICEServers:
			case signal.TypeError:
				if m.Ref == signal.TypeUsername {
					return "", other, fmt.Errorf("%w registering %q: %s: %s", ErrRefused, name, m.Code, m.Message)
				}
				other = append(other, m)
			case signal.TypeUserList:
				return c.Name(), other, nil
			default:
				other = append(other, m)
			}
		}
	}
}

// Close ends the connection normally.
func (c *Client) Close() error {
	c.once.Do(func() { close(c.closing) })
	err := c.conn.Close(websocket.StatusNormalClosure, "bye")
	select {
	case <-c.done:
	case <-time.After(time.Second):
		_ = c.conn.CloseNow()
	}
	return err
}
