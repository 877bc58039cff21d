package call

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pion/webrtc/v4"
)

// finishTimeout bounds the hang-up and the wait for transfers at the end.
const finishTimeout = 3 * time.Second

// endedCloseWait bounds the wait for the peer connection to close once
// its SCTP association has already ended (see closePeerConnection).
const endedCloseWait = 50 * time.Millisecond

// finish hangs up, collects the statistics, evaluates the checks and
// closes everything; it returns the report and the call's error.
func (s *session) finish(reason string, err error, cancel context.CancelFunc) (*Report, error) {
	s.tl.mark(PhaseHangUp)
	// The call's connected time ends here, not after the hang-up's work.
	connected := s.connectedFor()
	s.data.end()
	if reason == EndPeerHungUp {
		s.log.Info("call: the peer hung up")
	}
	if s.opts.ReceiveDir != "" && reason != EndInterrupted {
		// A file still arriving gets a moment to finish (the peer's bye
		// travels on another SCTP stream and may overtake its last
		// chunks); an interrupted call does not wait.
		s.data.waitTransfers(finishTimeout)
	}
	stats := s.pc.GetStats()
	sent := s.media.sentStats()
	path := s.selectedPath(stats)
	if reason != EndPeerHungUp {
		if s.isConnected() {
			s.media.sayGoodbye()
		}
		s.data.sayBye()
		ctx, stop := context.WithTimeout(context.Background(), finishTimeout)
		sendErr := s.sig.Send(ctx, Signal{HangUp: true})
		stop()
		if sendErr != nil {
			s.log.Debug("call: sending hang-up", "err", sendErr)
		}
	}
	cancel()
	closeErr := s.closePeerConnection()
	s.media.close()
	if closeErr != nil {
		s.log.Debug("call: closing the peer connection", "err", closeErr)
	}
	// Transfers cut short by the end of the call report their failure
	// (and an incoming one removes its temporary file) once the call's
	// context is done and its channels closed.
	s.data.settle(finishTimeout)
	rep := s.report(reason, err, connected)
	rep.Path = path
	rep.Tracks = s.media.reports(stats, sent, connected)
	rep.Files = s.data.fileReports()
	if err == nil && !s.isConnected() {
		switch reason {
		case EndTimeout:
			err = fmt.Errorf("%w: --timeout ran out before the call connected", ErrSetup)
		case EndInterrupted:
			err = fmt.Errorf("%w: interrupted before the call connected", ErrSetup)
		default:
			err = fmt.Errorf("%w: the call ended before it connected", ErrSetup)
		}
	}
	if err == nil {
		rep.Checks = s.checks(rep)
		if failed := failedChecks(rep.Checks); failed != nil {
			err = fmt.Errorf("%w: %w", ErrCheckFailed, failed)
		}
	}
	if err == nil {
		err = s.media.err()
	}
	rep.OK = err == nil
	if err != nil {
		rep.Error = err.Error()
	}
	return rep, err
}

// closePeerConnection closes the peer connection. When the SCTP
// association has already ended (usually on the peer's ABORT as it hung
// up), pion's Close still asks the association to send an ABORT of its
// own and waits twice 200 ms for a writer that has already stopped
// (pion/sctp's Association.Abort). The call then waits only
// endedCloseWait: by then pion has stopped the transceivers, which it
// does first, so the tracks end and recordings can be closed; the rest
// (SCTP, DTLS, ICE, towards a peer that has gone) finishes in the
// background, or with the process.
func (s *session) closePeerConnection() error {
	if !s.sctpEnded.Load() {
		return s.pc.Close()
	}
	done := make(chan error, 1)
	go func() { done <- s.pc.Close() }()
	t := time.NewTimer(endedCloseWait)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		s.log.Debug("call: the peer connection closes in the background (its SCTP association had ended)")
		return nil
	}
}

// report starts a report with what is known without statistics;
// connected is how long the call was connected.
func (s *session) report(reason string, err error, connected time.Duration) *Report {
	rep := &Report{
		Schema: ReportSchema, Mode: s.setup.Mode, Role: "answerer", Self: s.setup.Self, Peer: s.setup.Peer,
		EndReason: reason, Phases: s.tl.phases(), ICERestarts: s.restarts, Tracks: []TrackReport{},
	}
	if s.setup.Caller {
		rep.Role = "caller"
	}
	if err != nil {
		rep.Error = err.Error()
	}
	if connected > 0 {
		rep.ConnectedMS = ms(connected)
	}
	offer, okOffer := s.tl.get(PhaseOffer)
	end, okEnd := s.tl.get(PhaseFirstRTP)
	if !okEnd {
		end, okEnd = s.tl.get(PhaseICEConnected)
	}
	if okOffer && okEnd && end >= offer {
		rep.SetupMS = ms(end - offer)
	}
	return rep
}

// connectedFor is how long the call has been connected.
func (s *session) connectedFor() time.Duration {
	if !s.isConnected() {
		return 0
	}
	return time.Since(s.connectedAt)
}

// selectedPath reads the selected candidate pair.
func (s *session) selectedPath(stats webrtc.StatsReport) *Path {
	var ice *webrtc.ICETransport
	if sctp := s.pc.SCTP(); sctp != nil && sctp.Transport() != nil {
		ice = sctp.Transport().ICETransport()
	}
	if ice == nil {
		for _, t := range s.pc.GetTransceivers() {
			if snd := t.Sender(); snd != nil && snd.Transport() != nil {
				ice = snd.Transport().ICETransport()
				break
			}
			if rcv := t.Receiver(); rcv != nil && rcv.Transport() != nil {
				ice = rcv.Transport().ICETransport()
				break
			}
		}
	}
	if ice == nil {
		return nil
	}
	pair, err := ice.GetSelectedCandidatePair()
	if err != nil || pair == nil || pair.Local == nil || pair.Remote == nil {
		return nil
	}
	p := &Path{Local: candidate(pair.Local), Remote: candidate(pair.Remote)}
	p.Relay = pair.Local.Typ == webrtc.ICECandidateTypeRelay || pair.Remote.Typ == webrtc.ICECandidateTypeRelay
	var bytes uint64
	for _, st := range stats {
		if c, ok := st.(webrtc.ICECandidatePairStats); ok && c.Nominated && c.BytesSent+c.BytesReceived >= bytes {
			bytes = c.BytesSent + c.BytesReceived
			p.RTTMS = c.CurrentRoundTripTime * 1000
		}
	}
	if pair.Local.Typ == webrtc.ICECandidateTypeRelay {
		for _, st := range stats {
			if c, ok := st.(webrtc.ICECandidateStats); ok && c.Type == webrtc.StatsTypeLocalCandidate &&
				c.IP == pair.Local.Address && c.Port == int32(pair.Local.Port) {
				p.Local.RelayProtocol = c.RelayProtocol
			}
		}
	}
	return p
}

func candidate(c *webrtc.ICECandidate) Candidate {
	return Candidate{Type: c.Typ.String(), Protocol: c.Protocol.String(), Address: c.Address, Port: c.Port}
}

// failedChecks joins the reasons of the failed checks, or returns nil.
func failedChecks(checks []Check) error {
	var errs []error
	for _, c := range checks {
		if !c.OK {
			errs = append(errs, fmt.Errorf("%s: want %s, got %s", c.Name, c.Want, c.Got))
		}
	}
	return errors.Join(errs...)
}
