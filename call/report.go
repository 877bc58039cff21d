package call

import (
	"slices"
	"sync"
	"time"
)

// ReportSchema versions the JSON call report.
const ReportSchema = "rtckit.call/v1"

// Phase names of the call timeline, in the order they usually happen.
const (
	PhaseSignaling       = "signaling-connected"
	PhaseOffer           = "offer"
	PhaseAnswer          = "answer"
	PhaseLocalCandidate  = "first-local-candidate"
	PhaseRemoteCandidate = "first-remote-candidate"
	PhaseICEConnected    = "ice-connected"
	PhaseDTLSConnected   = "dtls-connected"
	PhaseFirstRTP        = "first-rtp"
	PhaseFirstKeyframe   = "first-keyframe"
	PhaseHangUp          = "hang-up"
)

// Report is what a call did, printed at its end (--json). Times are
// milliseconds since the command started.
type Report struct {
	Schema string `json:"schema"`
	// Mode is hub or token; Role caller or answerer.
	Mode string `json:"mode"`
	Role string `json:"role"`
	Self string `json:"self,omitempty"`
	Peer string `json:"peer,omitempty"`
	// OK is true when the call connected, ended normally and every check passed.
	OK bool `json:"ok"`
	// Error says why OK is false.
	Error string `json:"error,omitempty"`
	// EndReason is how the call ended: hung-up, peer-hung-up, duration,
	// transfers-done, interrupted, failed.
	EndReason string `json:"end_reason"`
	// Phases is the timeline, in time order; a phase that never happened
	// is absent.
	Phases []Phase `json:"phases"`
	// SetupMS is the time from the offer to the first received frame
	// (to ICE connected when nothing is received).
	SetupMS float64 `json:"setup_ms,omitempty"`
	// ConnectedMS is how long the call was connected.
	ConnectedMS float64 `json:"connected_ms,omitempty"`
	// Path is the selected candidate pair.
	Path *Path `json:"path,omitempty"`
	// ICERestarts counts restarts this side started.
	ICERestarts int `json:"ice_restarts"`
	// Tracks are the media streams, sent (out) and received (in).
	Tracks []TrackReport `json:"tracks"`
	// Files are the file transfers, both ways.
	Files []FileReport `json:"files,omitzero"`
	// Checks are the assertions evaluated at the end.
	Checks []Check `json:"checks,omitzero"`
}

// Phase is one moment of the call timeline.
type Phase struct {
	Name string  `json:"name"`
	AtMS float64 `json:"at_ms"`
}

// Path is the selected ICE candidate pair.
type Path struct {
	Local  Candidate `json:"local"`
	Remote Candidate `json:"remote"`
	// Relay is true when either side is a TURN relay candidate.
	Relay bool `json:"relay"`
	// RTTMS is the pair's latest round-trip time from ICE consent checks.
	RTTMS float64 `json:"rtt_ms,omitempty"`
}

// Candidate is one side of the selected pair.
type Candidate struct {
	Type     string `json:"type"`
	Protocol string `json:"protocol"`
	Address  string `json:"address"`
	Port     uint16 `json:"port"`
	// RelayProtocol is the transport to the TURN server of a relay candidate.
	RelayProtocol string `json:"relay_protocol,omitempty"`
}

// TrackReport is one media stream's statistics.
type TrackReport struct {
	// Direction is in (received) or out (sent).
	Direction string `json:"direction"`
	Kind      string `json:"kind"`
	Codec     string `json:"codec,omitempty"`
	SSRC      uint32 `json:"ssrc,omitempty"`
	Packets   uint64 `json:"packets"`
	Bytes     uint64 `json:"bytes"`
	// BitrateBPS is the average payload bitrate while connected.
	BitrateBPS float64 `json:"bitrate_bps"`
	// Lost and LossFraction are packets lost (in: seen by us; out: as the
	// peer reported in RTCP).
	Lost         int64   `json:"lost"`
	LossFraction float64 `json:"loss_fraction"`
	JitterMS     float64 `json:"jitter_ms,omitempty"`
	// NACKs and PLIs: sent by us for in, received from the peer for out.
	NACKs uint32 `json:"nacks"`
	PLIs  uint32 `json:"plis"`
	// RTTMS is the round-trip time from RTCP receiver reports (out).
	RTTMS float64 `json:"rtt_ms,omitempty"`
	// Frames are whole frames (in: reassembled; out: sent); Keyframes the
	// video keyframes among them.
	Frames    uint64 `json:"frames"`
	Keyframes uint64 `json:"keyframes,omitempty"`
	// Verified and Mismatched count received frames compared with the
	// embedded clip (--verify).
	Verified   uint64 `json:"verified,omitempty"`
	Mismatched uint64 `json:"mismatched,omitempty"`
	// Recording is the file the track was recorded to.
	Recording string `json:"recording,omitempty"`
	// Error is why receiving, sending or recording this track stopped early.
	Error string `json:"error,omitempty"`
}

// FileReport is one file transfer.
type FileReport struct {
	// Direction is in or out.
	Direction string `json:"direction"`
	Name      string `json:"name"`
	Path      string `json:"path,omitempty"`
	Size      int64  `json:"size"`
	SHA256    string `json:"sha256,omitempty"`
	OK        bool   `json:"ok"`
	// MBps is the transfer's throughput in megabytes (10^6) per second.
	MBps  float64 `json:"mbps,omitempty"`
	Error string  `json:"error,omitempty"`
}

// Check is one assertion's outcome.
type Check struct {
	Name string `json:"name"`
	OK   bool   `json:"ok"`
	// Want and Got describe the limit and the measured value.
	Want   string `json:"want"`
	Got    string `json:"got"`
	Reason string `json:"reason,omitempty"`
}

// timeline records the first time each phase happens.
type timeline struct {
	start time.Time
	mu    sync.Mutex
	at    map[string]time.Duration
}

func newTimeline(start time.Time) *timeline {
	return &timeline{start: start, at: map[string]time.Duration{}}
}

// mark records phase now unless it was recorded before; it tells whether
// this was the first time.
func (t *timeline) mark(phase string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.at[phase]; ok {
		return false
	}
	t.at[phase] = time.Since(t.start)
	return true
}

// setStart moves the time the phases are measured from; it is called
// before any phase is recorded.
func (t *timeline) setStart(start time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.start = start
}

// get returns when phase happened.
func (t *timeline) get(phase string) (time.Duration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	d, ok := t.at[phase]
	return d, ok
}

// phases lists the recorded phases in time order.
func (t *timeline) phases() []Phase {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Phase, 0, len(t.at))
	for name, d := range t.at {
		out = append(out, Phase{Name: name, AtMS: ms(d)})
	}
	slices.SortStableFunc(out, func(a, b Phase) int {
		switch {
		case a.AtMS < b.AtMS:
			return -1
		case a.AtMS > b.AtMS:
			return 1
		}
		return 0
	})
	return out
}

// ms converts d to milliseconds with microsecond precision.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// markAt records phase at t unless it was recorded before.
func (t *timeline) markAt(phase string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.at[phase]; !ok {
		t.at[phase] = at.Sub(t.start)
	}
}
