package call

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/rtckit/rtckit/peer"
)

// abruptAnswerer answers the caller's offer with a bare pion connection
// and closes it, without a hang-up or a "bye", once the caller's control
// channel is open: a peer that goes away (a closed browser tab).
func abruptAnswerer(t *testing.T) answerFunc {
	return func(ctx context.Context, _ Setup, sig Signaler) (*Report, error) {
		api, err := peer.NewAPI(peer.APIConfig{ICE: loopbackOptions().ICE, BatchUDP: true}) // as rtckit calls do
		if err != nil {
			return nil, err
		}
		pc, err := api.NewPeerConnection(webrtc.Configuration{})
		if err != nil {
			return nil, err
		}
		defer func() { _ = pc.Close() }()
		opened := make(chan struct{}, 1)
		pc.OnDataChannel(func(dc *webrtc.DataChannel) {
			dc.OnOpen(func() {
				select {
				case opened <- struct{}{}:
				default:
				}
			})
		})
		pc.OnICECandidate(func(c *webrtc.ICECandidate) {
			if c != nil {
				init := c.ToJSON()
				_ = sig.Send(ctx, Signal{Candidate: &init})
			}
		})
		for {
			select {
			case s, ok := <-sig.Signals():
				if !ok {
					return nil, errors.New("signaling ended")
				}
				switch {
				case s.Description != nil:
					if err := pc.SetRemoteDescription(*s.Description); err != nil {
						return nil, err
					}
					answer, err := pc.CreateAnswer(nil)
					if err != nil {
						return nil, err
					}
					if err := pc.SetLocalDescription(answer); err != nil {
						return nil, err
					}
					if err := sig.Send(ctx, Signal{Description: pc.LocalDescription()}); err != nil {
						return nil, err
					}
				case s.Candidate != nil:
					_ = pc.AddICECandidate(*s.Candidate)
				}
			case <-opened:
				t.Log("answerer: channel open, closing without a hang-up")
				return nil, pc.Close()
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
}

// TestPeerCloseEndsCall: a peer that closes its connection without
// hanging up ends the call at once as a hang-up, not after ICE gives up.
func TestPeerCloseEndsCall(t *testing.T) {
	caller := loopbackOptions()
	caller.ReceiveDir = t.TempDir() // data channels: SCTP carries the close
	caller.Media.NoAudio, caller.Media.NoVideo = true, true
	start := time.Now()
	crep, _, cerr, aerr := runPairWith(t, caller, IO{}, abruptAnswerer(t))
	if aerr != nil {
		t.Fatalf("answerer: %v", aerr)
	}
	if cerr != nil {
		t.Fatalf("caller: %v", cerr)
	}
	if crep.EndReason != EndPeerHungUp {
		t.Errorf("caller ended %q, want %q", crep.EndReason, EndPeerHungUp)
	}
	t.Logf("the call ended %v after it began", time.Since(start))
}
