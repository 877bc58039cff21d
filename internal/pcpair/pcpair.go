// Package pcpair connects two pion PeerConnections in one process on
// loopback, for tests of what runs over a call: data channels and media.
package pcpair

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/rtckit/rtckit/peer"
)

// Timeout bounds connecting a pair.
const Timeout = 20 * time.Second

// Pair is two PeerConnections connected on loopback with an SCTP
// association up, so new data channels open without renegotiation.
type Pair struct {
	// A is the offerer, B the answerer.
	A, B *webrtc.PeerConnection

	mu sync.Mutex
	// onChannel is called, on pion's goroutine, with every data channel B
	// accepts from A, so that it can set handlers before any message.
	onChannel func(*webrtc.DataChannel)
}

// Handle sets the handler of B's incoming channels: f runs in B's
// OnDataChannel, before any message of the channel arrives.
func (p *Pair) Handle(f func(*webrtc.DataChannel)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.onChannel = f
}

// New connects two pion PeerConnections made from cfg on loopback (UDP over
// "lo" only); they are closed when the test ends.
func New(tb testing.TB, cfg peer.APIConfig) *Pair {
	tb.Helper()
	cfg.ICE.IncludeLoopback = true
	cfg.ICE.Interfaces = []string{"lo"}
	cfg.ICE.Networks = []string{"udp4"}
	api, err := peer.NewAPI(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return NewAPI(tb, api)
}

// NewAPI connects two PeerConnections made from api; api must allow
// loopback host candidates.
func NewAPI(tb testing.TB, api *webrtc.API) *Pair {
	tb.Helper()
	var err error
	p := &Pair{}
	if p.A, err = api.NewPeerConnection(webrtc.Configuration{}); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = p.A.Close() })
	if p.B, err = api.NewPeerConnection(webrtc.Configuration{}); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = p.B.Close() })
	setupOpen := make(chan struct{})
	p.B.OnDataChannel(func(dc *webrtc.DataChannel) {
		if dc.Label() == "setup" {
			dc.OnOpen(func() { close(setupOpen) })
			return
		}
		p.mu.Lock()
		f := p.onChannel
		p.mu.Unlock()
		if f != nil {
			f(dc)
		}
	})
	if _, err := p.A.CreateDataChannel("setup", nil); err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	offer := signal(ctx, tb, p.A, nil)
	answer := signal(ctx, tb, p.B, &offer)
	if err := p.A.SetRemoteDescription(answer); err != nil {
		tb.Fatal(err)
	}
	select {
	case <-setupOpen:
	case <-ctx.Done():
		tb.Fatal("the test pair did not connect")
	}
	return p
}

// signal makes pc's offer (remote nil) or answer to remote, with every
// candidate gathered.
func signal(ctx context.Context, tb testing.TB, pc *webrtc.PeerConnection, remote *webrtc.SessionDescription) webrtc.SessionDescription {
	tb.Helper()
	var sd webrtc.SessionDescription
	var err error
	if remote == nil {
		sd, err = pc.CreateOffer(nil)
	} else {
		if err = pc.SetRemoteDescription(*remote); err != nil {
			tb.Fatal(err)
		}
		sd, err = pc.CreateAnswer(nil)
	}
	if err != nil {
		tb.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(sd); err != nil {
		tb.Fatal(err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		tb.Fatal("gathering did not complete")
	}
	return *pc.LocalDescription()
}
