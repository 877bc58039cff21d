package transfer

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/rtckit/rtckit/peer"
)

// pairTimeout bounds connecting a test pair.
const pairTimeout = 20 * time.Second

// pair is two PeerConnections connected on loopback with an SCTP
// association up, so new data channels open without renegotiation.
type pair struct {
	a, b *webrtc.PeerConnection

	mu sync.Mutex
	// onChannel is called, on pion's goroutine, with every data channel b
	// accepts from a, so that it can set handlers before any message.
	onChannel func(*webrtc.DataChannel)
}

// handle sets the handler of b's incoming channels.
func (p *pair) handle(f func(*webrtc.DataChannel)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.onChannel = f
}

// newPair connects two pion PeerConnections on loopback.
func newPair(tb testing.TB, cfg peer.APIConfig) *pair {
	tb.Helper()
	cfg.ICE.IncludeLoopback = true
	cfg.ICE.Interfaces = []string{"lo"}
	cfg.ICE.Networks = []string{"udp4"}
	api, err := peer.NewAPI(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return newPairAPI(tb, api)
}

// newPairAPI connects two PeerConnections of api on loopback.
func newPairAPI(tb testing.TB, api *webrtc.API) *pair {
	tb.Helper()
	var err error
	p := &pair{}
	if p.a, err = api.NewPeerConnection(webrtc.Configuration{}); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = p.a.Close() })
	if p.b, err = api.NewPeerConnection(webrtc.Configuration{}); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = p.b.Close() })
	setupOpen := make(chan struct{})
	p.b.OnDataChannel(func(dc *webrtc.DataChannel) {
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
	if _, err := p.a.CreateDataChannel("setup", nil); err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), pairTimeout)
	defer cancel()
	offer := signal(ctx, tb, p.a, nil)
	answer := signal(ctx, tb, p.b, &offer)
	if err := p.a.SetRemoteDescription(answer); err != nil {
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
