// Opening, registering and closing the generator's WebSocket clients.

package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// dialers returns one dialer per source address (one default dialer when
// there are none).
func dialers(ips []netip.Addr) []*net.Dialer {
	if len(ips) == 0 {
		return []*net.Dialer{{}}
	}
	out := make([]*net.Dialer, 0, len(ips))
	for _, ip := range ips {
		out = append(out, &net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, 0))})
	}
	return out
}

// handler takes a message and the kernel's receive time of it (zero when
// unknown); data is valid until it returns.
type handler func(data []byte, arrived time.Time)

// dialClient opens one WebSocket for name from the next source address.
func (r *run) dialClient(ctx context.Context, name string) (*wsClient, error) {
	d := r.dialers[int(r.next.Add(1)%uint64(len(r.dialers)))]
	return dialWS(ctx, d, r.clientURL(name), r.opts.Token)
}

// dial opens one connection and starts its reader, which hands every
// message to onMsg until the connection ends.
func (r *run) dial(ctx, rctx context.Context, name string, onMsg handler) (*conn, error) {
	dctx, cancel := context.WithTimeout(ctx, DialTimeout)
	defer cancel()
	ws, err := r.dialClient(dctx, name)
	if err != nil {
		return nil, err
	}
	c := &conn{ws: ws, done: make(chan struct{})}
	r.open.Add(1)
	r.readers.Add(1)
	stop := context.AfterFunc(rctx, func() { _ = ws.CloseNow() }) // the run is over
	go func() {
		defer r.readers.Done()
		defer close(c.done)
		defer r.open.Add(-1)
		defer stop()
		defer ws.done()
		for {
			data, err := ws.read()
			if err != nil {
				if !c.closing.Load() && rctx.Err() == nil {
					r.disconnects.Add(1)
					r.log.Info("connection lost", "name", c.name, "err", err)
				}
				_ = ws.CloseNow() // the connection is over either way
				return
			}
			if code, ok := errorCode(data); ok {
				r.serverError(code)
				continue
			}
			if onMsg != nil {
				onMsg(data, ws.arrived())
			}
		}
	}()
	return c, nil
}

// serverError counts an error message of the hub by code.
func (r *run) serverError(code string) {
	r.mu.Lock()
	r.server[code]++
	r.mu.Unlock()
}

// register asks for name and returns the name the hub registered
// (registration and registered tell how).
func (r *run) register(ctx context.Context, name string, replies <-chan []byte, c *conn) (string, error) {
	rctx, cancel := context.WithTimeout(ctx, DialTimeout)
	defer cancel()
	return r.registerWith(c.ws, name, func() ([]byte, error) {
		select {
		case data := <-replies:
			return data, nil
		case <-c.done:
			return nil, errors.New("connection closed while registering")
		case <-rctx.Done():
			return nil, rctx.Err()
		}
	})
}

// registerWith sends name's registration on ws and reads the hub's
// replies from next until it registered the name, which it returns.
func (r *run) registerWith(ws *wsClient, name string, next func() ([]byte, error)) (string, error) {
	for _, msg := range r.registration(name) {
		if err := ws.WriteText(msg); err != nil {
			return "", err
		}
	}
	for {
		data, err := next()
		if err != nil {
			return "", err
		}
		done, rename, err := registered(data)
		switch {
		case err != nil:
			return "", err
		case rename != "":
			name = rename
		case done:
			return name, nil
		}
	}
}

// setupReplies returns a message handler that passes messages to the
// registration until it is done, then to after.
type setupReplies struct {
	ch     chan []byte
	ready  atomic.Bool
	failed chan struct{} // closed when the registration gave up
	after  handler
}

func newSetupReplies(after handler) *setupReplies {
	return &setupReplies{ch: make(chan []byte, 64), failed: make(chan struct{}), after: after}
}

func (s *setupReplies) handle(data []byte, arrived time.Time) {
	if s.ready.Load() {
		if s.after != nil {
			s.after(data, arrived)
		}
		return
	}
	select {
	case s.ch <- append([]byte(nil), data...): // data is the reader's buffer
	default: // a userlist flood during setup; only pong and rejectusername matter
		if done, rename, err := registered(data); done || rename != "" || err != nil {
			select {
			case s.ch <- append([]byte(nil), data...):
			case <-s.failed:
			}
		}
	}
}

// client opens a connection and registers name on it.
func (r *run) client(ctx, rctx context.Context, name string, after handler) (*conn, error) {
	sr := newSetupReplies(after)
	c, err := r.dial(ctx, rctx, name, sr.handle)
	if err != nil {
		return nil, err
	}
	got, err := r.register(ctx, name, sr.ch, c)
	if err != nil {
		close(sr.failed)
		c.closing.Store(true)
		_ = c.ws.CloseNow()
		return nil, err
	}
	c.name = got
	sr.ready.Store(true)
	return c, nil
}

// clientDirect opens a connection and registers name on it, reading the
// hub's replies itself; it starts no reader, for the event loop.
func (r *run) clientDirect(ctx context.Context, name string) (*conn, error) {
	dctx, cancel := context.WithTimeout(ctx, DialTimeout)
	defer cancel()
	ws, err := r.dialClient(dctx, name)
	if err != nil {
		return nil, err
	}
	got, err := r.registerDirect(dctx, ws, name)
	if err != nil {
		_ = ws.CloseNow() // the registration failed
		return nil, err
	}
	r.open.Add(1)
	return &conn{ws: ws, name: got, done: make(chan struct{}), direct: true}, nil
}

// registerDirect is register for a connection without a reader.
func (r *run) registerDirect(ctx context.Context, ws *wsClient, name string) (string, error) {
	dl, _ := ctx.Deadline() // dctx has one
	_ = ws.nc.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { _ = ws.nc.SetDeadline(time.Now()) }) // cancelled
	defer stop()
	got, err := r.registerWith(ws, name, func() ([]byte, error) {
		for {
			data, err := ws.read()
			if err != nil {
				return nil, err
			}
			code, isError := errorCode(data)
			if !isError {
				return data, nil
			}
			r.serverError(code)
		}
	})
	if err == nil {
		_ = ws.nc.SetDeadline(time.Time{})
	}
	return got, err
}

// pairClient opens and registers one of a pair's connections, without a
// reader when the event loop is to read it.
func (r *run) pairClient(ctx, rctx context.Context, name string, after handler) (*conn, error) {
	if r.loop {
		return r.clientDirect(ctx, name)
	}
	return r.client(ctx, rctx, name, after)
}

// connectPairs opens and registers the pairs; pairs that fail are
// counted and left out.
func (r *run) connectPairs(ctx, rctx context.Context) []*pair {
	var (
		mu  sync.Mutex
		out []*pair
		wg  sync.WaitGroup
	)
	sem := make(chan struct{}, dialConcurrency)
	for i := range r.opts.Pairs {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			p := &pair{idx: i, window: make(chan struct{}, r.opts.Window), churn: make(chan struct{}, 1)}
			recv, err := r.pairClient(ctx, rctx, fmt.Sprintf("b%s-r%d", r.id, i), p.receive(r))
			if err != nil {
				r.dialErrs.Add(1)
				r.log.Debug("receiver", "pair", i, "err", err)
				return
			}
			send, err := r.pairClient(ctx, rctx, fmt.Sprintf("b%s-s%d", r.id, i), nil)
			if err != nil {
				r.dialErrs.Add(1)
				recv.closing.Store(true)
				r.abandon(recv)
				r.log.Debug("sender", "pair", i, "err", err)
				return
			}
			p.receiver, p.sender, p.target = recv, send, recv.name
			mu.Lock()
			out = append(out, p)
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.SortFunc(out, func(a, b *pair) int { return a.idx - b.idx })
	return out
}

// connectIdle opens the idle connections; they never register.
func (r *run) connectIdle(ctx, rctx context.Context) []*conn {
	var (
		mu  sync.Mutex
		out []*conn
		wg  sync.WaitGroup
	)
	sem := make(chan struct{}, dialConcurrency)
	for i := range r.opts.Idle {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c, err := r.dial(ctx, rctx, fmt.Sprintf("b%s-i%d", r.id, i), nil)
			if err != nil {
				r.dialErrs.Add(1)
				r.log.Debug("idle", "err", err)
				return
			}
			mu.Lock()
			out = append(out, c)
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// abandon closes c at once, without a close handshake. A reader notes the
// end itself; for a connection without one (direct) it is done here.
func (r *run) abandon(c *conn) {
	_ = c.ws.CloseNow() // the connection is given up either way
	if c.direct {
		r.open.Add(-1)
		close(c.done)
	}
}

// closeAll closes every connection, a few at a time; it is safe to call
// twice.
func (r *run) closeAll(pairs []*pair, idle []*conn) {
	var all []*conn
	for _, p := range pairs {
		all = append(all, p.sender, p.receiver)
	}
	all = append(all, idle...)
	sem := make(chan struct{}, dialConcurrency)
	var wg sync.WaitGroup
	for _, c := range all {
		if c.closing.Swap(true) {
			continue
		}
		if c.direct { // no reader sees the hub's close frame
			r.abandon(c)
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			// Close waits for the hub's close frame, which the reader
			// sees; CloseNow after CloseTimeout.
			done := make(chan struct{})
			go func() { _ = c.ws.Close(statusNormal, "bench done"); close(done) }()
			select {
			case <-done:
			case <-time.After(CloseTimeout):
				_ = c.ws.CloseNow()
				<-done
			}
		})
	}
	wg.Wait()
}
