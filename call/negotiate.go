package call

import (
	"context"
	"fmt"
	"time"

	"github.com/pion/webrtc/v4"
)

// gatherTimeout bounds the wait for complete gathering without trickle.
const gatherTimeout = 15 * time.Second

// offer makes and sends an offer (with new ICE credentials when restart).
// A collision with the peer's offer is settled when that offer arrives
// (perfect negotiation, as the browser page does).
func (s *session) offer(ctx context.Context, restart bool) error {
	if s.pc.SignalingState() != webrtc.SignalingStateStable {
		if !restart {
			return nil // negotiationneeded fires again once stable
		}
	}
	offer, err := s.pc.CreateOffer(&webrtc.OfferOptions{ICERestart: restart})
	if err != nil {
		return fmt.Errorf("%w: creating the offer: %v", s.negotiationFailure(), err)
	}
	if err := s.pc.SetLocalDescription(offer); err != nil {
		return fmt.Errorf("%w: applying our offer: %v", s.negotiationFailure(), err)
	}
	return s.sendLocalDescription(ctx, PhaseOffer)
}

// negotiationFailure classes a failed negotiation: ErrSetup before the
// call connected; ErrDropped for a renegotiation or an ICE restart of a
// call that had connected.
func (s *session) negotiationFailure() error {
	if s.isConnected() {
		return ErrDropped
	}
	return ErrSetup
}

// sendLocalDescription sends the local description, after gathering
// completed when the signaler does not trickle.
func (s *session) sendLocalDescription(ctx context.Context, phase string) error {
	if !s.sig.Trickle() {
		done := webrtc.GatheringCompletePromise(s.pc)
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(gatherTimeout):
			s.log.Warn("call: gathering did not complete; sending the candidates found so far", "after", gatherTimeout)
		}
	}
	desc := s.pc.LocalDescription()
	if desc == nil {
		return fmt.Errorf("%w: no local description", s.negotiationFailure())
	}
	if err := s.sig.Send(ctx, Signal{Description: desc}); err != nil {
		return fmt.Errorf("%w: sending the %s: %v", s.negotiationFailure(), desc.Type, err)
	}
	s.tl.mark(phase)
	return nil
}

// handleSignal applies a description or candidate from the peer.
func (s *session) handleSignal(ctx context.Context, sg Signal) error {
	switch {
	case sg.Description != nil:
		return s.handleDescription(ctx, *sg.Description)
	case sg.Candidate != nil:
		s.tl.mark(PhaseRemoteCandidate)
		if !s.remoteSet {
			s.pending = append(s.pending, *sg.Candidate)
			return nil
		}
		if err := s.pc.AddICECandidate(*sg.Candidate); err != nil && !s.ignoreOffer {
			s.log.Debug("call: ignoring a remote candidate", "candidate", sg.Candidate.Candidate, "err", err)
		}
	}
	return nil
}

// stopUnsentTransceivers makes inactive the transceivers pion made for
// the peer's receive-only media sections of a kind we do not send (they
// have no sender). Left as they are, pion finds negotiation needed after
// every answer, and a side that sends no media offered again and again:
// 1,455 offers in 30 s between two rtckit calls without media.
func (s *session) stopUnsentTransceivers() {
	for _, tr := range s.pc.GetTransceivers() {
		if tr.Direction() == webrtc.RTPTransceiverDirectionSendonly && tr.Sender() == nil {
			if err := tr.Stop(); err != nil {
				s.log.Debug("call: stopping an unused transceiver", "mid", tr.Mid(), "err", err)
			}
		}
	}
}

// handleDescription is perfect negotiation: an offer that collides with
// ours is ignored by the impolite side. The polite side would roll its own
// offer back, but pion cannot roll back a local offer, so rtckit avoids
// making colliding offers instead: it restarts ICE only when impolite
// (iceState), and a polite side that still meets a collision (both sides
// opened a first data channel at the same moment) ignores the peer's
// offer too and logs it.
func (s *session) handleDescription(ctx context.Context, d webrtc.SessionDescription) error {
	collision := d.Type == webrtc.SDPTypeOffer && s.pc.SignalingState() != webrtc.SignalingStateStable
	s.ignoreOffer = collision
	if collision {
		if s.setup.Polite {
			s.log.Warn("call: the peer's offer collided with ours and cannot be rolled back; ignoring it")
		} else {
			s.log.Debug("call: ignoring a colliding offer (impolite side)")
		}
		return nil
	}
	switch d.Type {
	case webrtc.SDPTypeOffer:
		s.tl.mark(PhaseOffer)
	case webrtc.SDPTypeAnswer:
		s.tl.mark(PhaseAnswer)
	}
	if err := s.pc.SetRemoteDescription(d); err != nil {
		if !s.sig.Trickle() {
			// A token's description that decodes but does not apply
			// is as foreign as one that does not decode.
			return fmt.Errorf("%w: its %s is not acceptable: %v", ErrBadToken, d.Type, err)
		}
		return fmt.Errorf("%w: the peer's %s is not acceptable: %v", s.negotiationFailure(), d.Type, err)
	}
	s.remoteSet = true
	for _, c := range s.pending {
		if err := s.pc.AddICECandidate(c); err != nil {
			s.log.Debug("call: ignoring a remote candidate", "candidate", c.Candidate, "err", err)
		}
	}
	s.pending = nil
	if d.Type == webrtc.SDPTypeAnswer {
		return s.data.needControl(d)
	}
	if d.Type != webrtc.SDPTypeOffer {
		return nil
	}
	if err := s.addLocalMedia(ctx); err != nil {
		return err
	}
	s.stopUnsentTransceivers()
	answer, err := s.pc.CreateAnswer(nil)
	if err != nil {
		if !s.sig.Trickle() {
			return fmt.Errorf("%w: no answer to its offer: %v", ErrBadToken, err)
		}
		return fmt.Errorf("%w: creating the answer: %v", s.negotiationFailure(), err)
	}
	if err := s.pc.SetLocalDescription(answer); err != nil {
		return fmt.Errorf("%w: applying our answer: %v", s.negotiationFailure(), err)
	}
	return s.sendLocalDescription(ctx, PhaseAnswer)
}
