package call

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/rtckit/rtckit/signal"
	"github.com/rtckit/rtckit/signal/hubclient"
)

// HubSignaler carries one call's signals through a hub connection, in the
// message types of the hub protocol (video-offer, video-answer,
// new-ice-candidate, hang-up), so the browser page can be the peer.
type HubSignaler struct {
	client *hubclient.Client
	self   string
	peer   string
	out    chan Signal
	stop   chan struct{}
	once   sync.Once

	mu  sync.Mutex
	err error
}

// CallOnHub prepares a call from the registered client to peer. When peer
// is not online it waits up to wait for it to appear (zero: no waiting)
// and then fails with ErrPeerNotFound.
func CallOnHub(ctx context.Context, c *hubclient.Client, peer string, wait time.Duration) (*HubSignaler, Setup, error) {
	self := c.Name()
	if peer == self {
		return nil, Setup{}, fmt.Errorf("%w: cannot call yourself (%q)", ErrUsage, peer)
	}
	var early []signal.Message
	if !slices.Contains(c.Users(), peer) {
		wctx, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		for !slices.Contains(c.Users(), peer) {
			select {
			case <-wctx.Done():
				if errors.Is(ctx.Err(), context.Canceled) {
					return nil, Setup{}, ctx.Err()
				}
				return nil, Setup{}, fmt.Errorf("%w: %q is not registered on the hub (online: %s)", ErrPeerNotFound, peer, userList(c.Users(), self))
			case m, ok := <-c.Messages():
				if !ok {
					return nil, Setup{}, fmt.Errorf("%w before %q came online: %v", ErrSetup, peer, c.Err())
				}
				early = append(early, m)
			}
		}
	}
	s := newHubSignaler(c, peer)
	go s.pump(early)
	return s, Setup{Mode: "hub", Self: self, Peer: peer, Caller: true, Polite: self < peer, ICEServers: HubICEServers(c)}, nil
}

// AnswerOnHub waits up to wait (zero: until ctx ends) for a video-offer to
// the registered client, from one of from (empty: anyone), and prepares
// the call; the offer is the signaler's first signal. Offers from others
// are declined with a hang-up.
func AnswerOnHub(ctx context.Context, c *hubclient.Client, from []string, wait time.Duration) (*HubSignaler, Setup, error) {
	self := c.Name()
	wctx := ctx
	if wait > 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, wait)
		defer cancel()
	}
	for {
		select {
		case <-wctx.Done():
			if errors.Is(ctx.Err(), context.Canceled) {
				return nil, Setup{}, ctx.Err()
			}
			return nil, Setup{}, fmt.Errorf("%w: no call came in time", ErrNoAnswer)
		case m, ok := <-c.Messages():
			if !ok {
				return nil, Setup{}, fmt.Errorf("%w while waiting for a call: %v", ErrSetup, c.Err())
			}
			if m.Type != signal.TypeVideoOffer || m.Name == "" {
				continue
			}
			if len(from) > 0 && !slices.Contains(from, m.Name) {
				_ = c.Send(ctx, signal.Message{Type: signal.TypeHangUp, Name: self, Target: m.Name})
				continue
			}
			s := newHubSignaler(c, m.Name)
			go s.pump([]signal.Message{m})
			return s, Setup{Mode: "hub", Self: self, Peer: m.Name, Polite: self < m.Name, ICEServers: HubICEServers(c)}, nil
		}
	}
}

func newHubSignaler(c *hubclient.Client, peer string) *HubSignaler {
	return &HubSignaler{client: c, self: c.Name(), peer: peer, out: make(chan Signal, 64), stop: make(chan struct{})}
}

func userList(users []string, self string) string {
	others := slices.DeleteFunc(slices.Clone(users), func(u string) bool { return u == self })
	if len(others) == 0 {
		return "nobody else"
	}
	return fmt.Sprint(others)
}

// HubICEServers returns the ICE servers the hub announced to c.
func HubICEServers(c *hubclient.Client) []webrtc.ICEServer {
	var out []webrtc.ICEServer
	for _, s := range c.ICEServers() {
		out = append(out, webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	return out
}

// pump turns the peer's hub messages into signals until the connection ends.
func (s *HubSignaler) pump(early []signal.Message) {
	defer close(s.out)
	for _, m := range early {
		if !s.handle(m) {
			return
		}
	}
	for m := range s.client.Messages() {
		if !s.handle(m) {
			return
		}
	}
	s.setErr(s.client.Err())
}

// handle delivers m when it is a signal from the peer; false stops the pump.
func (s *HubSignaler) handle(m signal.Message) bool {
	switch m.Type {
	case signal.TypeVideoOffer, signal.TypeVideoAnswer:
		if m.Name != s.peer {
			if m.Type == signal.TypeVideoOffer && m.Name != "" {
				// Busy: decline a second caller, as the browser page does.
				_ = s.client.Send(context.Background(), signal.Message{Type: signal.TypeHangUp, Name: s.self, Target: m.Name})
			}
			return true
		}
		var d webrtc.SessionDescription
		if err := json.Unmarshal(m.SDP, &d); err != nil || d.SDP == "" {
			s.setErr(fmt.Errorf("%w: %s from %q has an invalid sdp: %v", ErrSetup, m.Type, m.Name, err))
			return false
		}
		return s.deliver(Signal{Description: &d})
	case signal.TypeNewICECandidate:
		if m.Name != s.peer || len(m.Candidate) == 0 || string(m.Candidate) == "null" {
			return true
		}
		var c webrtc.ICECandidateInit
		if err := json.Unmarshal(m.Candidate, &c); err != nil {
			return true // a candidate we cannot read is skipped, as browsers do
		}
		if c.Candidate == "" {
			return true // end of candidates
		}
		return s.deliver(Signal{Candidate: &c})
	case signal.TypeHangUp:
		if m.Name == s.peer || m.Name == "" {
			return s.deliver(Signal{HangUp: true})
		}
	case signal.TypeError:
		if m.Code == signal.CodeUnknownTarget && m.Target == s.peer {
			s.setErr(fmt.Errorf("%w: %q left the hub", ErrPeerNotFound, s.peer))
			return false
		}
	}
	return true
}

// deliver hands sig to the call; false once the signaler was closed.
func (s *HubSignaler) deliver(sig Signal) bool {
	select {
	case s.out <- sig:
		return true
	case <-s.stop:
		return false
	}
}

// Close stops delivering signals; the hub connection stays open.
func (s *HubSignaler) Close() { s.once.Do(func() { close(s.stop) }) }

func (s *HubSignaler) setErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
	}
}

// Send implements Signaler.
func (s *HubSignaler) Send(ctx context.Context, sig Signal) error {
	m := signal.Message{Name: s.self, Target: s.peer}
	switch {
	case sig.Description != nil:
		m.Type = signal.TypeVideoAnswer
		if sig.Description.Type == webrtc.SDPTypeOffer {
			m.Type = signal.TypeVideoOffer
		}
		data, err := json.Marshal(sig.Description)
		if err != nil {
			return err
		}
		m.SDP = data
	case sig.Candidate != nil:
		data, err := json.Marshal(sig.Candidate)
		if err != nil {
			return err
		}
		m.Type, m.Candidate = signal.TypeNewICECandidate, data
	case sig.HangUp:
		m.Type = signal.TypeHangUp
	default:
		return nil
	}
	return s.client.Send(ctx, m)
}

// Signals implements Signaler.
func (s *HubSignaler) Signals() <-chan Signal { return s.out }

// Err implements Signaler.
func (s *HubSignaler) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Trickle implements Signaler: the hub relays candidates one by one.
func (s *HubSignaler) Trickle() bool { return true }
