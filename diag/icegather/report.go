// Package icegather gathers ICE candidates with pion, per STUN and TURN
// server, times each server, explains each server failure (TURN error codes,
// timeouts, DNS, TLS) and can prove that data flows through each relay.
package icegather

import (
	"errors"
	"time"
)

// SchemaVersion names the JSON layout of Report and Event.
const SchemaVersion = "rtckit.ice.gather/v1"

var (
	// ErrNoTURN is returned when relay checks are asked for without a TURN server.
	ErrNoTURN = errors.New("--relay-check needs a TURN server")
	// ErrInterrupted is the outcome of a report whose run was cancelled
	// before it was over: its results are partial.
	ErrInterrupted = errors.New("interrupted before gathering finished")
	// ErrMissingTypes is the outcome of a report lacking a required candidate type.
	ErrMissingTypes = errors.New("required candidate types missing")
	// ErrRelayCheckFailed is the outcome of a report whose relay check failed.
	ErrRelayCheckFailed = errors.New("relay check failed")
)

// Candidate types, as in the ICE candidate attribute (RFC 8445).
const (
	TypeHost  = "host"
	TypeSrflx = "srflx"
	TypePrflx = "prflx"
	TypeRelay = "relay"
)

// Candidate is one gathered candidate with its details.
type Candidate struct {
	// ElapsedMS is the time since gathering started.
	ElapsedMS  float64 `json:"elapsed_ms"`
	Type       string  `json:"type"`
	Foundation string  `json:"foundation"`
	Component  uint16  `json:"component"`
	Protocol   string  `json:"protocol"`
	Address    string  `json:"address"`
	Port       uint16  `json:"port"`
	Priority   uint32  `json:"priority"`
	// TypePreference, LocalPreference and ComponentPreference are the
	// parts of Priority (RFC 8445 section 5.1.2.1).
	TypePreference      uint32 `json:"type_preference"`
	LocalPreference     uint32 `json:"local_preference"`
	ComponentPreference uint32 `json:"component_preference"`
	RelatedAddress      string `json:"related_address,omitempty"`
	RelatedPort         uint16 `json:"related_port,omitempty"`
	TCPType             string `json:"tcp_type,omitempty"`
	// Server is the STUN or TURN server that produced it; empty for host candidates.
	Server string `json:"server,omitempty"`
	// RelayProtocol is how the relay is reached (udp, tcp or tls), for relay candidates.
	RelayProtocol string `json:"relay_protocol,omitempty"`
}

// Server statuses.
const (
	StatusOK      = "ok"
	StatusFailed  = "failed"
	StatusSkipped = "skipped"
	// StatusInterrupted: the run was interrupted before the server
	// produced a candidate; nothing is known about the server.
	StatusInterrupted = "interrupted"
)

// Error kinds of a failed server.
const (
	KindUnauthorized    = "unauthorized"          // TURN 401: bad credentials
	KindWrongCredential = "wrong-credentials"     // TURN 441
	KindQuota           = "allocation-quota"      // TURN 486
	KindCapacity        = "insufficient-capacity" // TURN 508
	KindTURNError       = "turn-error"            // another TURN error code
	KindTimeout         = "timeout"
	KindDNS             = "dns"
	KindUnreachable     = "unreachable"
	KindRefused         = "refused"
	KindTLS             = "tls"
	KindNoCandidate     = "no-candidate"
	KindError           = "error"
)

// ServerResult is how one server did.
type ServerResult struct {
	URI       string `json:"uri"`
	Kind      string `json:"kind"` // stun or turn
	Transport string `json:"transport"`
	// Expected is the candidate type this server should produce.
	Expected   string `json:"expected"`
	Status     string `json:"status"`
	Candidates int    `json:"candidates"`
	// FirstCandidateMS is the time to this server's first candidate; nil when none came.
	FirstCandidateMS *float64 `json:"first_candidate_ms"`
	// DoneMS is when this server's gathering finished.
	DoneMS    float64 `json:"done_ms"`
	ErrorKind string  `json:"error_kind,omitempty"`
	// ErrorCode is the STUN/TURN error code, when the server sent one.
	ErrorCode int    `json:"error_code,omitempty"`
	Error     string `json:"error,omitempty"`
	// Credentials says where TURN credentials came from: uri, flags or rest.
	Credentials string `json:"credentials,omitempty"`
}

// Finding is something a person would likely miss.
type Finding struct {
	// Code is stable for scripts: relay-private-address, srflx-equals-host,
	// no-ipv6, no-srflx, no-relay.
	Code    string `json:"code"`
	Message string `json:"message"`
}

// RelayCheck is the result of sending data through one TURN relay.
type RelayCheck struct {
	Server string `json:"server"`
	Passed bool   `json:"passed"`
	// ConnectedMS is the time until the relayed connection was up.
	ConnectedMS float64 `json:"connected_ms,omitempty"`
	// LocalCandidate and RemoteCandidate describe the selected pair.
	LocalCandidate  string  `json:"local_candidate,omitempty"`
	RemoteCandidate string  `json:"remote_candidate,omitempty"`
	Sent            int     `json:"sent"`
	Received        int     `json:"received"`
	LossPercent     float64 `json:"loss_percent"`
	RTTP50MS        float64 `json:"rtt_p50_ms,omitempty"`
	RTTP90MS        float64 `json:"rtt_p90_ms,omitempty"`
	RTTP99MS        float64 `json:"rtt_p99_ms,omitempty"`
	RTTMaxMS        float64 `json:"rtt_max_ms,omitempty"`
	Error           string  `json:"error,omitempty"`
}

// Report is the result of a gathering run.
type Report struct {
	Schema     string         `json:"schema"`
	StartedAt  time.Time      `json:"started_at"`
	DurationMS float64        `json:"duration_ms"`
	Candidates []Candidate    `json:"candidates"`
	Servers    []ServerResult `json:"servers"`
	// Counts holds the number of candidates per type.
	Counts      map[string]int `json:"counts"`
	Findings    []Finding      `json:"findings"`
	RelayChecks []RelayCheck   `json:"relay_checks,omitempty"`
	// Missing lists required candidate types that did not appear.
	Missing []string `json:"missing,omitempty"`
	// Interrupted is true when the run was interrupted (SIGINT, SIGTERM)
	// before it was over: the report holds what was gathered until then.
	// Missing is then left empty (a type may only have been late), and
	// relay checks that did not finish say they were interrupted.
	Interrupted bool `json:"interrupted,omitempty"`
}

// Err returns nil for a healthy report, or why it is not: interrupted,
// required types missing or a failed relay check.
func (r *Report) Err() error {
	if r.Interrupted {
		return ErrInterrupted
	}
	if len(r.Missing) > 0 {
		return ErrMissingTypes
	}
	for _, c := range r.RelayChecks {
		if !c.Passed {
			return ErrRelayCheckFailed
		}
	}
	return nil
}

// Event kinds of the event stream.
const (
	EventCandidate = "candidate"
	EventServer    = "server"
	EventRelay     = "relay-check"
	EventDone      = "done"
)

// Event is one line of the --ndjson stream: a candidate as it arrives, a
// server's result when it finishes, a relay check, and the final report.
type Event struct {
	Schema     string        `json:"schema"`
	Event      string        `json:"event"`
	Candidate  *Candidate    `json:"candidate,omitempty"`
	Server     *ServerResult `json:"server,omitempty"`
	RelayCheck *RelayCheck   `json:"relay_check,omitempty"`
	Report     *Report       `json:"report,omitempty"`
}
