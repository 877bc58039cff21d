// The session's PeerConnection: how it is configured, and the callbacks
// that feed the session's loop.

package call

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/pion/interceptor/pkg/stats"
	"github.com/pion/webrtc/v4"
	"github.com/rtckit/rtckit/peer"
)

// newPeerConnection makes the PeerConnection, with iceServers besides the
// options' own, and hooks its callbacks. With trickle signaling and no
// TURN server its ICE candidates are gathered as soon as it exists (a
// candidate pool of one).
func (s *session) newPeerConnection(iceServers []webrtc.ICEServer) error {
	cfg := s.io.API
	cfg.ICE = s.opts.ICE
	cfg.Logger = s.log
	cfg.NoRelayWait = s.opts.ICE.Policy == peer.PolicyRelay
	// The session closes its connection itself, after collecting the
	// statistics; the peer's close is seen on SCTP (watchPeerClose).
	cfg.KeepOpenOnPeerClose = true
	// One codec per format: shorter descriptions, and pion applies an
	// offer in about a quarter of the time it takes with its full list
	// (BenchmarkAnswer in peer).
	cfg.CompactCodecs = true
	if cfg.Net == nil {
		// Bulk data (file transfers) overflows the kernel's default UDP
		// buffers, and one system call per 1.2 KB SCTP packet costs more
		// CPU than the rest of the stack: large buffers and batched I/O.
		if cfg.UDPSocketBuffer == 0 {
			cfg.UDPSocketBuffer = UDPSocketBuffer
		}
		cfg.BatchUDP = true
	}
	cfg.OnStats = func(g stats.Getter) {
		s.statsMu.Lock()
		s.rtp = g
		s.statsMu.Unlock()
	}
	api, err := peer.NewAPI(cfg)
	if err != nil {
		return err
	}
	servers, err := s.opts.ICE.Servers(time.Now())
	if err != nil {
		return err
	}
	pcfg := s.opts.ICE.Configuration(servers)
	for _, srv := range iceServers {
		for _, raw := range srv.URLs {
			// The hub's servers come as they are: say which of them the
			// ICE agent would skip without a word.
			if u, err := peer.ParseICEServerURI(raw); err == nil {
				if err := peer.CheckICEUsable(u); err != nil {
					s.log.Warn("call: a server from the hub is skipped", "err", err)
				}
			}
		}
	}
	pcfg.ICEServers = append(pcfg.ICEServers, iceServers...)
	if s.trickle && !hasTURN(pcfg.ICEServers) {
		pcfg.ICECandidatePoolSize = 1
	}
	pc, err := api.NewPeerConnection(pcfg)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrSetup, err)
	}
	s.pc = pc
	pc.OnNegotiationNeeded(func() {
		select {
		case s.negotiationNeeded <- struct{}{}:
		default:
		}
	})
	pc.OnICEConnectionStateChange(func(st webrtc.ICEConnectionState) { s.iceStates <- st })
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) { s.connStates <- st })
	pc.OnTrack(func(t *webrtc.TrackRemote, r *webrtc.RTPReceiver) { s.media.receive(t, r) })
	pc.OnDataChannel(func(dc *webrtc.DataChannel) { s.data.incoming(dc) })
	s.watchPeerClose()
	return nil
}

// watchPeerClose ends the call when the peer closes its connection
// (the association ends on the peer's SCTP ABORT), which may come before
// its hang-up through the hub. Calls without data channels have no SCTP:
// for them the hang-up message is the signal.
func (s *session) watchPeerClose() {
	s.pc.SCTP().OnClose(func(err error) {
		s.sctpEnded.Store(true)
		switch {
		case !s.isConnected():
		case err != nil:
			// pion reports the peer's ABORT and a closed DTLS connection
			// as a clean end; an error is a failure of the association.
			s.endCall(EndFailed, fmt.Errorf("%w: the data channels' SCTP association failed: %v", ErrDropped, err))
		default:
			s.endCall(EndPeerHungUp, nil)
		}
	})
}

// hasTURN tells whether servers include a TURN server. Relay candidates
// are gathered only after the local description is set: TURN allocations
// made ahead from the candidate pool left relay-only calls stuck in
// "checking" in about one call in eight (coturn and pion's own server).
func hasTURN(servers []webrtc.ICEServer) bool {
	for _, s := range servers {
		for _, u := range s.URLs {
			scheme, _, _ := strings.Cut(u, ":")
			if peer.Scheme(strings.ToLower(scheme)).IsTURN() {
				return true
			}
		}
	}
	return false
}

// localCandidate marks and, with trickle signaling, sends a local candidate.
func (s *session) localCandidate(c *webrtc.ICECandidate) {
	if c == nil {
		return
	}
	s.tl.mark(PhaseLocalCandidate)
	if s.trickle {
		init := c.ToJSON()
		if err := s.sig.Send(context.Background(), Signal{Candidate: &init}); err != nil {
			s.log.Debug("call: sending a candidate", "err", err)
		}
	}
}
