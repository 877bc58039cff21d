package stunprobe

import (
	"fmt"
	"time"
)

// SchemaVersion names the JSON layout of Report.
const SchemaVersion = "rtckit.stun.probe/v1"

// Behavior is an RFC 4787 mapping or filtering behaviour, or why none was found.
type Behavior string

// Behaviours of RFC 4787 sections 4.1 (mapping) and 5 (filtering).
const (
	// EndpointIndependent: the same mapping (or an open filter) for every destination.
	EndpointIndependent Behavior = "endpoint-independent"
	// AddressDependent: depends on the remote IP address only.
	AddressDependent Behavior = "address-dependent"
	// AddressPortDependent: depends on the remote IP address and port.
	AddressPortDependent Behavior = "address-and-port-dependent"
	// EndpointDependent: varies with the destination, but the tests could
	// not tell address-dependent from address-and-port-dependent.
	EndpointDependent Behavior = "endpoint-dependent"
	// Inconclusive: the tests ran but their evidence does not decide; the
	// Classification's Reason says why.
	Inconclusive Behavior = "inconclusive"
	// NotTested: no test could be run (for example no UDP reply at all).
	NotTested Behavior = "not-tested"
)

// Known reports whether b names an actual behaviour.
func (b Behavior) Known() bool {
	switch b {
	case EndpointIndependent, AddressDependent, AddressPortDependent, EndpointDependent:
		return true
	}
	return false
}

// Classification is a behaviour with the reason and the tests behind it.
type Classification struct {
	Behavior Behavior `json:"behavior"`
	// Method is "rfc5780" or "multi-server".
	Method string `json:"method,omitempty"`
	// Server is the server whose tests decided it.
	Server string `json:"server,omitempty"`
	// Reason explains the result in a sentence, always set when inconclusive.
	Reason string `json:"reason,omitempty"`
}

// Report is the result of a probe. Its JSON form is versioned by Schema.
type Report struct {
	Schema     string    `json:"schema"`
	StartedAt  time.Time `json:"started_at"`
	DurationMS float64   `json:"duration_ms"`
	// UDP is true when a server answered over UDP; nil when UDP was not tested.
	UDP *bool `json:"udp"`
	// TCP is true when a server answered over TCP or TLS; nil when not tested.
	TCP *bool `json:"tcp"`
	// Servers holds every binding attempt, per server.
	Servers []ServerReport `json:"servers"`
	// Families holds the NAT analysis per address family that had a route
	// and a server of that family.
	Families []FamilyReport `json:"families"`
	// Outcome summarises the report: "ok", "no-udp", "unreachable",
	// "inconclusive" or "interrupted" (the probe was cancelled before it
	// finished: the bindings and tests are what came in until then).
	Outcome string `json:"outcome"`
}

// Outcomes of a Report.
const (
	OutcomeOK           = "ok"
	OutcomeNoUDP        = "no-udp"
	OutcomeUnreachable  = "unreachable"
	OutcomeInconclusive = "inconclusive"
	OutcomeInterrupted  = "interrupted"
)

// Err returns nil for a conclusive report and ErrNoUDP, ErrUnreachable,
// ErrInconclusive or ErrInterrupted otherwise, so callers can map outcomes
// to exit codes.
func (r *Report) Err() error {
	switch r.Outcome {
	case OutcomeInterrupted:
		return ErrInterrupted
	case OutcomeNoUDP:
		return ErrNoUDP
	case OutcomeUnreachable:
		return ErrUnreachable
	case OutcomeInconclusive:
		if len(r.Families) > 0 {
			return fmt.Errorf("%w: %s", ErrInconclusive, r.Families[0].Verdict.WebRTC)
		}
		if answered(r) {
			return fmt.Errorf("%w: servers answered, but only with errors or unusable replies (see each binding)", ErrInconclusive)
		}
		return ErrInconclusive
	}
	return nil
}

// ServerReport holds the binding attempts made against one server.
type ServerReport struct {
	URI  string `json:"uri"`
	Host string `json:"host"`
	Port int    `json:"port"`
	// RFC5780 is true when the server returned OTHER-ADDRESS; nil when it never answered.
	RFC5780  *bool     `json:"rfc5780"`
	Software string    `json:"software,omitempty"`
	Bindings []Binding `json:"bindings"`
}

// Binding statuses.
const (
	StatusOK         = "ok"
	StatusTimeout    = "timeout"
	StatusNoRoute    = "no-route"
	StatusDNS        = "dns-error"
	StatusRejected   = "rejected"
	StatusError      = "error"
	StatusNoAddress  = "no-address"
	StatusTLS        = "tls-error"
	StatusRefused    = "refused"
	StatusSkipped    = "skipped"
	StatusBadReply   = "bad-reply"
	StatusWrongReply = "wrong-source"
)

// Binding is one Binding transaction with a server's primary address.
type Binding struct {
	Transport string `json:"transport"`
	Family    string `json:"family"`
	Status    string `json:"status"`
	Server    string `json:"server,omitempty"`
	Local     string `json:"local,omitempty"`
	// Mapped is the XOR-MAPPED-ADDRESS: the public address the server saw.
	Mapped string `json:"mapped,omitempty"`
	// MappedPlain is the plain MAPPED-ADDRESS, when the server sent one.
	MappedPlain    string  `json:"mapped_plain,omitempty"`
	OtherAddress   string  `json:"other_address,omitempty"`
	ResponseOrigin string  `json:"response_origin,omitempty"`
	RTTMS          float64 `json:"rtt_ms,omitempty"`
	Sent           int     `json:"sent,omitempty"`
	Error          string  `json:"error,omitempty"`
}

// FamilyReport is the NAT analysis for one address family over UDP (plus
// the TCP port check).
type FamilyReport struct {
	Family string `json:"family"`
	// Local is this host's address towards the servers.
	Local string `json:"local,omitempty"`
	// Status is "ok", "no-route" (no route for this family: a result, not
	// an error), "no-reply" (no UDP server answered) or "skipped".
	Status string `json:"status"`
	// Public lists the distinct public (mapped) UDP addresses seen.
	Public []string `json:"public,omitempty"`
	// BehindNAT is true when the mapped address differs from the local one.
	BehindNAT *bool          `json:"behind_nat"`
	Mapping   Classification `json:"mapping"`
	Filtering Classification `json:"filtering"`
	// MappingVariesByDestination compares the mapped address seen by
	// different servers from one socket; nil with fewer than two servers.
	MappingVariesByDestination *bool `json:"mapping_varies_by_destination"`
	// PortPreserved is true when the NAT kept the local UDP port.
	PortPreserved *bool `json:"port_preserved"`
	// Hairpinning is nil unless the hairpin test ran.
	Hairpinning *bool `json:"hairpinning"`
	// ALG is true when MAPPED-ADDRESS and XOR-MAPPED-ADDRESS differ, a sign
	// of a middlebox rewriting addresses in payloads; nil when no server
	// sent both.
	ALG       *bool           `json:"alg"`
	Lifetime  *LifetimeResult `json:"lifetime,omitempty"`
	Conflicts []string        `json:"conflicts,omitempty"`
	Verdict   Verdict         `json:"verdict"`
	// Tests holds the evidence of every test behind the classification.
	Tests []Evidence `json:"tests"`
}

// Evidence outcomes.
const (
	OutcomeReply       = "reply"
	OutcomeNoReply     = "no-reply"
	OutcomeWrongSource = "wrong-source"
	OutcomeRejectedReq = "rejected"
	OutcomeFailed      = "error"
)

// Evidence records one test: what was sent where, and what came back.
type Evidence struct {
	// Test names the test: mapping-1, mapping-2, mapping-3, filtering-2,
	// filtering-3, hairpin, lifetime.
	Test   string `json:"test"`
	Server string `json:"server,omitempty"`
	Local  string `json:"local,omitempty"`
	To     string `json:"to,omitempty"`
	// Expect is the source address a valid reply must come from.
	Expect string `json:"expect,omitempty"`
	// Outcome is reply, no-reply, wrong-source, rejected or error.
	Outcome        string  `json:"outcome"`
	From           string  `json:"from,omitempty"`
	ResponseOrigin string  `json:"response_origin,omitempty"`
	Mapped         string  `json:"mapped,omitempty"`
	Sent           int     `json:"sent,omitempty"`
	RTTMS          float64 `json:"rtt_ms,omitempty"`
	Note           string  `json:"note,omitempty"`
}

// LifetimeResult bounds how long an idle UDP binding survives.
type LifetimeResult struct {
	// Status is "measured", "longer-than-max" or "inconclusive".
	Status string `json:"status"`
	// AliveAfterS is the longest idle time after which the binding still worked.
	AliveAfterS float64 `json:"alive_after_s"`
	// ExpiredAfterS is the shortest idle time after which it had expired.
	ExpiredAfterS *float64 `json:"expired_after_s"`
	MaxS          float64  `json:"max_s"`
	Reason        string   `json:"reason,omitempty"`
}

// Verdict states the result in RFC 4787 terms, by its classic name and by
// what it means for WebRTC.
type Verdict struct {
	RFC4787 string `json:"rfc4787"`
	Classic string `json:"classic"`
	WebRTC  string `json:"webrtc"`
}
