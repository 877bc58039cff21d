package call

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor/pkg/stats"
	"github.com/pion/webrtc/v4"
	"github.com/rtckit/rtckit/peer"
)

// End reasons of a call (Report.EndReason).
const (
	EndHungUp        = "hung-up"
	EndPeerHungUp    = "peer-hung-up"
	EndDuration      = "duration"
	EndTransfersDone = "transfers-done"
	EndInterrupted   = "interrupted"
	EndTimeout       = "timeout" // the command's --timeout ran out
	EndFailed        = "failed"
)

// UDPSocketBuffer is the kernel receive and send buffer size of a call's
// UDP sockets on the host network (Linux caps it at net.core.rmem_max and
// wmem_max).
const UDPSocketBuffer = 4 << 20

// politeRestartWait is how long the polite side waits for the peer's ICE
// restart after a failure.
const politeRestartWait = 10 * time.Second

// controlLabel is the data channel of serverless calls, which have no hub
// to carry the hang-up: the text "bye" on it ends the call.
const controlLabel = "rtckit-control"

// IO are the streams and logger of a call.
type IO struct {
	// In is the chat input (stdin); Out receives chat and is where tokens go.
	In  io.Reader
	Out io.Writer
	// Status, when set, gets a live status line every second (a TTY).
	Status io.Writer
	// Logger receives progress logs; nil discards them.
	Logger *slog.Logger
	// API is the base pion configuration (a vnet in tests, timeouts);
	// its ICE and Logger are replaced by the call's.
	API peer.APIConfig
}

// session is one call in progress. Its negotiation state is touched only
// by the loop in run, one event at a time, so it needs no lock.
type session struct {
	opts  Options
	setup Setup
	sig   Signaler
	io    IO
	log   *slog.Logger
	tl    *timeline
	pc    *webrtc.PeerConnection
	// trickle is whether candidates travel on their own (a hub) rather
	// than inside the descriptions (tokens).
	trickle bool
	// ctx ends when the call ends.
	ctx context.Context

	// Events from pion's callbacks, handled by the loop.
	negotiationNeeded chan struct{}
	iceStates         chan webrtc.ICEConnectionState
	connStates        chan webrtc.PeerConnectionState
	ended             chan endEvent

	// Negotiation state (loop only).
	remoteSet      bool
	ignoreOffer    bool
	pending        []webrtc.ICECandidateInit
	mediaAdded     bool
	failedRestarts int
	restarts       int
	signalingDone  bool
	connectedAt    time.Time

	// connected is closed once ICE and DTLS are connected.
	connected     chan struct{}
	connectedOnce sync.Once
	// sctpEnded is set when the SCTP association has ended before the
	// call closes it: the peer aborted it, or it failed.
	sctpEnded atomic.Bool

	media *mediaSet
	data  *dataSet

	statsMu sync.Mutex
	rtp     stats.Getter // per-SSRC RTP statistics of pc
}

// endEvent asks the loop to end the call.
type endEvent struct {
	reason string
	err    error
}

// Run holds one call through sig until it ends, and returns its report.
// The error wraps one of the package's sentinel errors (or ctx's), and the
// report is filled as far as the call got, also on error.
func Run(ctx context.Context, opts Options, setup Setup, sig Signaler, stdio IO) (*Report, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	s := newSession(opts, stdio, sig.Trickle())
	if err := s.newPeerConnection(setup.ICEServers); err != nil {
		s.setup, s.sig = setup, sig
		sig.Close()
		return s.report(EndFailed, err, 0), err
	}
	return s.run(ctx, setup, sig)
}

// Prepared is the peer connection of a call made before the call: an
// answerer waiting on a hub makes it while it waits, so that its
// certificate, ICE agent and host candidates are ready when an offer
// arrives instead of being made after it.
type Prepared struct {
	s    *session
	once sync.Once
}

// Prepare makes the peer connection of a call that will signal with
// trickle ICE (a hub), with iceServers besides those of opts (the hub's).
// Without a TURN server its ICE candidates are gathered at once. The call
// starts with Run or is released with Close.
func Prepare(opts Options, iceServers []webrtc.ICEServer, stdio IO) (*Prepared, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	s := newSession(opts, stdio, true)
	if err := s.newPeerConnection(iceServers); err != nil {
		return nil, err
	}
	return &Prepared{s: s}, nil
}

// Run holds the prepared call through sig, a trickle signaler, until it
// ends, like the package's Run; setup.ICEServers is not used (the
// connection has its servers). A Prepared runs once.
func (p *Prepared) Run(ctx context.Context, setup Setup, sig Signaler) (*Report, error) {
	first := false
	p.once.Do(func() { first = true })
	if !first || !sig.Trickle() {
		sig.Close()
		return nil, fmt.Errorf("%w: a prepared call runs once, with trickle signaling", ErrUsage)
	}
	return p.s.run(ctx, setup, sig)
}

// Close releases a prepared call that did not run.
func (p *Prepared) Close() error {
	closed := false
	p.once.Do(func() { closed = true })
	if !closed {
		return nil
	}
	return p.s.pc.Close()
}

// newSession makes a session without its peer connection.
func newSession(opts Options, stdio IO, trickle bool) *session {
	s := &session{
		opts: opts, io: stdio, log: stdio.Logger, trickle: trickle, tl: newTimeline(time.Now()),
		negotiationNeeded: make(chan struct{}, 1),
		iceStates:         make(chan webrtc.ICEConnectionState, 16),
		connStates:        make(chan webrtc.PeerConnectionState, 16),
		ended:             make(chan endEvent, 4),
		connected:         make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.media = newMediaSet(s)
	s.data = newDataSet(s)
	return s
}

// run holds the call of a session whose peer connection is made.
func (s *session) run(ctx context.Context, setup Setup, sig Signaler) (*Report, error) {
	s.setup, s.sig = setup, sig
	if !setup.Start.IsZero() {
		s.tl.setStart(setup.Start)
	}
	if !setup.SignalingAt.IsZero() {
		s.tl.markAt(PhaseSignaling, setup.SignalingAt)
	}
	defer sig.Close()
	callCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.ctx = callCtx
	s.pc.OnICECandidate(s.localCandidate)
	if err := s.prepare(callCtx); err != nil {
		_ = s.pc.Close()
		s.media.close() // the sources opened so far, a capture started
		return s.report(EndFailed, err, 0), err
	}
	go s.runStatus(callCtx)
	reason, err := s.loop(ctx, callCtx)
	return s.finish(reason, err, cancel)
}

// prepare adds what the caller offers: media and data channels.
func (s *session) prepare(ctx context.Context) error {
	if !s.setup.Caller {
		return nil
	}
	if err := s.addLocalMedia(ctx); err != nil {
		return err
	}
	if err := s.data.open(ctx); err != nil {
		return err
	}
	if len(s.pc.GetTransceivers()) == 0 && !s.data.hasChannels() {
		// A caller that sends nothing (--no-video --no-audio) receives:
		// the offer asks for the peer's audio and video.
		for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
			if _, err := s.pc.AddTransceiverFromKind(kind, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
				return fmt.Errorf("%w: receiving %s: %v", ErrSetup, kind, err)
			}
		}
	}
	return nil
}

// addLocalMedia adds the local tracks once.
func (s *session) addLocalMedia(ctx context.Context) error {
	if s.mediaAdded {
		return nil
	}
	s.mediaAdded = true
	return s.media.addLocal(ctx)
}

// loop handles events until the call ends; it returns the end reason.
func (s *session) loop(ctx, callCtx context.Context) (string, error) {
	setup := time.NewTimer(s.opts.setupTimeout())
	defer setup.Stop()
	var duration <-chan time.Time
	sigs := s.sig.Signals()
	for {
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return EndTimeout, nil
			}
			return EndInterrupted, nil
		case <-setup.C:
			if _, ok := s.tl.get(PhaseAnswer); !ok && s.setup.Caller {
				return EndFailed, fmt.Errorf("%w: %s did not answer within %s", ErrNoAnswer, s.peerName(), s.opts.setupTimeout())
			}
			return EndFailed, fmt.Errorf("%w: not connected within %s (ICE state %s, connection %s)",
				ErrSetup, s.opts.setupTimeout(), s.pc.ICEConnectionState(), s.pc.ConnectionState())
		case <-duration:
			return EndDuration, nil
		case ev := <-s.ended:
			return ev.reason, ev.err
		case <-s.negotiationNeeded:
			if !s.sig.Trickle() && (s.pc.LocalDescription() != nil || s.pc.RemoteDescription() != nil) {
				// A token call negotiates once: what the offer left no
				// room for (a track of a kind it did not offer) is not sent.
				s.log.Warn("call: the token call's offer has no room for some of our media, which is not sent")
				continue
			}
			if err := s.offer(callCtx, false); err != nil {
				return EndFailed, err
			}
		case sg, ok := <-sigs:
			if !ok {
				sigs = nil
				s.signalingDone = true
				if end, err := s.signalingEnded(); end != "" {
					return end, err
				}
				continue
			}
			if sg.HangUp {
				if s.isConnected() {
					return EndPeerHungUp, nil
				}
				return EndFailed, fmt.Errorf("%w by %s", ErrDeclined, s.peerName())
			}
			if err := s.handleSignal(callCtx, sg); err != nil {
				return EndFailed, err
			}
		case st := <-s.iceStates:
			if end, err := s.iceState(callCtx, st); end != "" {
				return end, err
			}
		case st := <-s.connStates:
			switch st {
			case webrtc.PeerConnectionStateConnected:
				s.tl.mark(PhaseDTLSConnected)
				if s.markConnected() {
					setup.Stop()
					if s.opts.Duration > 0 {
						duration = time.After(s.opts.Duration)
					}
					s.media.startSending(callCtx)
					s.data.connected(callCtx)
				}
			case webrtc.PeerConnectionStateFailed:
				if !s.isConnected() {
					return EndFailed, fmt.Errorf("%w: DTLS or ICE failed", ErrSetup)
				}
			case webrtc.PeerConnectionStateClosed:
				// Not closed from outside while KeepOpenOnPeerClose holds;
				// treated as the peer's close should pion do so anyway.
				if s.isConnected() {
					return EndPeerHungUp, nil
				}
				return EndFailed, fmt.Errorf("%w: the peer closed the connection", ErrSetup)
			}
		}
	}
}

// signalingEnded decides what losing signaling means: nothing once the call
// is connected (media flows peer to peer), a failed setup before.
func (s *session) signalingEnded() (string, error) {
	err := s.sig.Err()
	if s.isConnected() {
		if err != nil {
			s.log.Warn("call: signaling ended; the call goes on without it", "err", err)
		}
		return "", nil
	}
	if err == nil {
		err = errors.New("signaling ended")
	}
	if errors.Is(err, ErrPeerNotFound) || errors.Is(err, ErrBadToken) || errors.Is(err, ErrNoAnswer) {
		return EndFailed, err
	}
	return EndFailed, fmt.Errorf("%w: %w", ErrSetup, err)
}

func (s *session) peerName() string {
	if s.setup.Peer != "" {
		return fmt.Sprintf("%q", s.setup.Peer)
	}
	return "the peer"
}

// markConnected closes connected once; it tells whether this was the first time.
func (s *session) markConnected() bool {
	first := false
	s.connectedOnce.Do(func() {
		first = true
		s.connectedAt = time.Now()
		close(s.connected)
	})
	return first
}

func (s *session) isConnected() bool {
	select {
	case <-s.connected:
		return true
	default:
		return false
	}
}

// endCall asks the loop to end the call (from any goroutine).
func (s *session) endCall(reason string, err error) {
	select {
	case s.ended <- endEvent{reason: reason, err: err}:
	default:
	}
}

// iceState reacts to an ICE connection state: marks connected, restarts
// ICE after a failure (with trickle signaling), gives up after
// MaxICERestarts failed restarts in a row.
func (s *session) iceState(ctx context.Context, st webrtc.ICEConnectionState) (string, error) {
	s.log.Debug("call: ICE state", "state", st)
	switch st {
	case webrtc.ICEConnectionStateConnected, webrtc.ICEConnectionStateCompleted:
		s.tl.mark(PhaseICEConnected)
		s.failedRestarts = 0
	case webrtc.ICEConnectionStateFailed:
		canRestart := s.sig.Trickle() && !s.signalingDone && s.opts.MaxICERestarts >= 0 &&
			s.failedRestarts < s.maxRestarts()
		if canRestart && s.setup.Polite {
			// The impolite side restarts (the page does too); wait for its
			// offer rather than make a colliding one.
			s.failedRestarts++
			s.log.Info("call: ICE failed, waiting for the peer's restart")
			time.AfterFunc(politeRestartWait, func() {
				if s.pc.ICEConnectionState() == webrtc.ICEConnectionStateFailed {
					s.endCall(EndFailed, fmt.Errorf("%w: ICE failed and the peer did not restart it within %s", ErrDropped, politeRestartWait))
				}
			})
			return "", nil
		}
		if !canRestart {
			if s.isConnected() {
				return EndFailed, fmt.Errorf("%w: ICE failed after %d restarts", ErrDropped, s.restarts)
			}
			return EndFailed, fmt.Errorf("%w: ICE failed: no candidate pair worked", ErrSetup)
		}
		s.failedRestarts++
		s.restarts++
		s.log.Info("call: ICE failed, restarting", "attempt", s.failedRestarts)
		if err := s.offer(ctx, true); err != nil {
			return EndFailed, err
		}
	}
	return "", nil
}

func (s *session) maxRestarts() int {
	if s.opts.MaxICERestarts == 0 {
		return DefaultMaxICERestarts
	}
	return s.opts.MaxICERestarts
}

// rtpStats returns the RTP statistics of one SSRC, or nil.
func (s *session) rtpStats(ssrc uint32) *stats.Stats {
	s.statsMu.Lock()
	g := s.rtp
	s.statsMu.Unlock()
	if g == nil {
		return nil
	}
	return g.Get(ssrc)
}
