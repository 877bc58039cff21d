package call

import (
	"context"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// newTestSession is a session with a PeerConnection and no loop.
func newTestSession(t *testing.T, polite bool) *session {
	t.Helper()
	_, b := newPipe(true)
	s := newSession(loopbackOptions(), IO{}, true)
	s.setup, s.sig, s.ctx = Setup{Polite: polite}, b, t.Context()
	if err := s.newPeerConnection(nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.pc.Close() })
	return s
}

// TestGlareIgnored: an offer that collides with ours leaves our offer
// pending on either side (pion cannot roll a local offer back), and an
// offer in the stable state is answered.
func TestGlareIgnored(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	other, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.CreateDataChannel("y", nil); err != nil {
		t.Fatal(err)
	}
	offer, err := other.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, polite := range []bool{false, true} {
		s := newTestSession(t, polite)
		if _, err := s.pc.CreateDataChannel("x", nil); err != nil {
			t.Fatal(err)
		}
		if err := s.offer(ctx, false); err != nil {
			t.Fatal(err)
		}
		if err := s.handleDescription(ctx, offer); err != nil {
			t.Fatalf("polite=%v: %v", polite, err)
		}
		if st := s.pc.SignalingState(); st != webrtc.SignalingStateHaveLocalOffer || !s.ignoreOffer {
			t.Errorf("polite=%v: state %s ignore %v, want our offer kept", polite, st, s.ignoreOffer)
		}
	}
	s := newTestSession(t, true)
	if err := s.handleDescription(ctx, offer); err != nil {
		t.Fatal(err)
	}
	if st := s.pc.SignalingState(); st != webrtc.SignalingStateStable {
		t.Errorf("stable side in %s after answering, want stable", st)
	}
}
