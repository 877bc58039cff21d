package call

import (
	"context"
	"time"

	"github.com/pion/webrtc/v4"
)

// Signal is one signaling message between the two peers of a call: a
// session description, a trickled ICE candidate, or a hang-up.
type Signal struct {
	// Description is an offer or an answer.
	Description *webrtc.SessionDescription
	// Candidate is a trickled ICE candidate.
	Candidate *webrtc.ICECandidateInit
	// HangUp ends the call.
	HangUp bool
}

// Signaler carries the signals of one call between the two peers: through
// a hub (HubSignaler) or as pasted tokens (TokenSignaler).
type Signaler interface {
	// Send delivers s to the peer.
	Send(ctx context.Context, s Signal) error
	// Signals delivers the peer's signals in order; it is closed when
	// signaling ends, and Err then says why.
	Signals() <-chan Signal
	// Err is why signaling ended (nil while it works or after a normal end).
	Err() error
	// Trickle tells whether candidates travel one by one. Without trickle
	// a description is sent only once gathering completed, with every
	// candidate in it, and no renegotiation is possible.
	Trickle() bool
	// Close stops delivering signals.
	Close()
}

// Setup says who is calling whom.
type Setup struct {
	// Mode is "hub" or "token", for the report.
	Mode string
	// Self and Peer are the two names (empty in token mode).
	Self, Peer string
	// Caller makes the first offer; the other side answers it.
	Caller bool
	// Polite yields when offers collide (perfect negotiation); the browser
	// page's rule is that the name sorting first is polite.
	Polite bool
	// Start is when the command started (zero: when Run starts); report
	// times count from it. SignalingAt is when the hub connection was up.
	Start, SignalingAt time.Time
	// ICEServers come from the hub and are added to Options.ICE's servers.
	ICEServers []webrtc.ICEServer
}
