package signal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ProtocolVersion is the version of rtckit's extensions to the classic
// chat-server protocol, sent in the ice-servers message.
const ProtocolVersion = 1

// Message types of the classic chat-server protocol.
const (
	// TypeID is sent by the server on connect with the connection's id.
	TypeID = "id"
	// TypeUsername registers (or changes) the sender's name.
	TypeUsername = "username"
	// TypeRejectUsername tells a client the name it was given instead of
	// the one it asked for.
	TypeRejectUsername = "rejectusername"
	// TypeUserList lists the registered names; sent on every change.
	TypeUserList = "userlist"
	// TypeMessage is a chat message.
	TypeMessage = "message"
	// TypeVideoOffer carries an SDP offer to a target.
	TypeVideoOffer = "video-offer"
	// TypeVideoAnswer carries an SDP answer to a target.
	TypeVideoAnswer = "video-answer"
	// TypeNewICECandidate carries a trickled ICE candidate to a target.
	TypeNewICECandidate = "new-ice-candidate"
	// TypeHangUp ends a call with a target.
	TypeHangUp = "hang-up"
)

// Message types of rtckit's extensions (version 1).
const (
	// TypeICEServers gives the client its RTCIceServer list.
	TypeICEServers = "ice-servers"
	// TypePing asks the server for a pong echoing ts.
	TypePing = "ping"
	// TypePong answers a ping.
	TypePong = "pong"
	// TypeError reports a problem with a message the client sent, or a
	// server event such as shutdown.
	TypeError = "error"
	// TypeSession gives a registered client its resume token.
	TypeSession = "session"
	// TypeResume, as a connection's first message, reclaims a session.
	TypeResume = "resume"
)

// Error codes of the error message.
const (
	CodeInvalidJSON   = "invalid-json"
	CodeInvalidField  = "invalid-field"
	CodeUnknownType   = "unknown-type"
	CodeTooLarge      = "too-large"
	CodeRateLimited   = "rate-limited"
	CodeNotRegistered = "not-registered"
	CodeUnknownTarget = "unknown-target"
	CodeMissingTarget = "missing-target"
	CodeQueueFull     = "queue-full"
	CodeExpired       = "expired"
	CodeInvalidToken  = "invalid-token"
	CodeResumeLate    = "resume-not-first"
	CodeServerOnly    = "server-only"
	CodeShutdown      = "shutdown"
)

// Name limits.
const (
	// MaxNameLen is the longest name in runes; longer names are cut.
	MaxNameLen = 32
	// defaultName replaces a name with no allowed character left.
	defaultName = "user"
)

// ICEServer is an RTCIceServer dictionary as browsers take it.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"` //nolint:gosec // G117: a credential field, not a hard-coded secret.
}

// Message is the one envelope of the protocol: every message, in both
// directions, is a JSON object with a type and the fields of that type.
// Fields that a type does not use are omitted.
type Message struct {
	Type string `json:"type"`
	// ID is the connection id (id, username, message, rejectusername).
	ID int64 `json:"id,omitempty"`
	// Name is a user name; on relayed messages the server sets it to the
	// sender's registered name.
	Name string `json:"name,omitempty"`
	// Date is the client's timestamp (milliseconds since the epoch), any
	// JSON number, passed through.
	Date json.Number `json:"date,omitempty"`
	// Text is a chat message, HTML-escaped by the server.
	Text string `json:"text,omitempty"`
	// Target is the name of the recipient; empty means broadcast.
	Target string `json:"target,omitempty"`
	// SDP is an RTCSessionDescriptionInit {type, sdp}.
	SDP json.RawMessage `json:"sdp,omitempty"`
	// Candidate is an RTCIceCandidateInit.
	Candidate json.RawMessage `json:"candidate,omitempty"`
	// Users lists registered names (userlist).
	Users []string `json:"users,omitzero"`

	// Version is the extension protocol version (ice-servers).
	Version int `json:"version,omitempty"`
	// ICEServers is the RTCIceServer list (ice-servers).
	ICEServers []ICEServer `json:"iceServers,omitzero"`
	// TS is echoed from ping to pong.
	TS int64 `json:"ts,omitempty"`
	// Code, Message and Ref describe an error: its code, a text for
	// people, and the type of the offending message.
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
	Ref     string `json:"ref,omitempty"`
	// Token is a resume token (session, resume).
	Token string `json:"token,omitempty"`
	// ResumeMS is how long a session stays resumable after a disconnect.
	ResumeMS int64 `json:"resume_ms,omitempty"`
}

// ProtocolError is a message the server cannot accept; Code is the error
// code sent back and Ref the type of the message when it was known.
type ProtocolError struct {
	Code   string
	Ref    string
	Reason string
}

func (e *ProtocolError) Error() string { return "signal: " + e.Code + ": " + e.Reason }

// Is makes every ProtocolError match ErrProtocol.
func (e *ProtocolError) Is(target error) bool { return target == ErrProtocol }

// reply returns the error message answering e.
func (e *ProtocolError) reply() Message {
	return Message{Type: TypeError, Code: e.Code, Message: e.Reason, Ref: e.Ref}
}

// clientTypes are the types a client may send.
var clientTypes = map[string]bool{
	TypeUsername: true, TypeMessage: true, TypeVideoOffer: true, TypeVideoAnswer: true,
	TypeNewICECandidate: true, TypeHangUp: true, TypePing: true, TypeResume: true,
}

// serverTypes are the types only the server sends.
var serverTypes = map[string]bool{
	TypeID: true, TypeRejectUsername: true, TypeUserList: true, TypeICEServers: true,
	TypePong: true, TypeError: true, TypeSession: true,
}

// Decode parses one client message of at most maxSize bytes (0: no limit)
// and checks the fields its type needs. Unknown fields are ignored so
// that clients can carry their own; unknown types, server-only types,
// fields of the wrong JSON type, trailing data and oversize input are
// *ProtocolError values.
func Decode(data []byte, maxSize int) (Message, error) {
	var m Message
	if maxSize > 0 && len(data) > maxSize {
		return m, &ProtocolError{Code: CodeTooLarge, Reason: fmt.Sprintf("message of %d bytes exceeds %d", len(data), maxSize)}
	}
	if !utf8.Valid(data) {
		return m, &ProtocolError{Code: CodeInvalidJSON, Reason: "message is not UTF-8"}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&m); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return Message{}, &ProtocolError{Code: CodeInvalidField, Ref: peekType(data),
				Reason: fmt.Sprintf("field %q must be a JSON %s", te.Field, jsonKind(te.Type.Kind().String()))}
		}
		if json.Valid(data) && bytes.HasPrefix(bytes.TrimSpace(data), []byte("{")) {
			return Message{}, &ProtocolError{Code: CodeInvalidField, Ref: peekType(data), Reason: err.Error()}
		}
		return Message{}, &ProtocolError{Code: CodeInvalidJSON, Reason: "message is not a JSON object: " + err.Error()}
	}
	if dec.More() {
		return Message{}, &ProtocolError{Code: CodeInvalidJSON, Reason: "trailing data after the JSON object"}
	}
	if m.Type == "" {
		return Message{}, &ProtocolError{Code: CodeInvalidJSON, Reason: `message has no "type"`}
	}
	if serverTypes[m.Type] {
		return Message{}, &ProtocolError{Code: CodeServerOnly, Ref: m.Type, Reason: fmt.Sprintf("%q is sent by the server only", m.Type)}
	}
	if !clientTypes[m.Type] {
		return Message{}, &ProtocolError{Code: CodeUnknownType, Ref: truncate(m.Type, 64), Reason: "unknown message type"}
	}
	return m, checkFields(m)
}

// checkFields checks the fields each client type needs.
func checkFields(m Message) error {
	bad := func(reason string) error {
		return &ProtocolError{Code: CodeInvalidField, Ref: m.Type, Reason: reason}
	}
	switch m.Type {
	case TypeVideoOffer, TypeVideoAnswer:
		var d struct {
			Type string `json:"type"`
			SDP  string `json:"sdp"`
		}
		if len(m.SDP) == 0 || m.SDP[0] != '{' || json.Unmarshal(m.SDP, &d) != nil || d.Type == "" {
			return bad(`"sdp" must be a session description object {type, sdp}`)
		}
	case TypeNewICECandidate:
		if len(m.Candidate) == 0 || (m.Candidate[0] != '{' && string(m.Candidate) != "null") {
			return bad(`"candidate" must be an RTCIceCandidateInit object or null`)
		}
	case TypeResume:
		if m.Token == "" {
			return bad(`"token" is required`)
		}
	}
	return nil
}

// peekType returns the type of a message that failed to decode, if any.
func peekType(data []byte) string {
	var t struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(data, &t) // best effort: the error is already reported
	return truncate(t.Type, 64)
}

func jsonKind(goKind string) string {
	switch goKind {
	case "int64", "int", "float64":
		return "number"
	case "slice":
		return "array"
	case "struct", "map":
		return "object"
	}
	return goKind
}

// nameKey is what makes two names the same name: letters compared
// without case (Unicode simple folding) and full-width ASCII forms as
// their ASCII letters, so that "Alice" or "ａｌｉｃｅ" cannot pose as
// "alice".
func nameKey(name string) string {
	return strings.Map(func(r rune) rune {
		if r >= 0xFF01 && r <= 0xFF5E { // full-width forms of ASCII 0x21–0x7E
			r -= 0xFEE0
		}
		folded := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			folded = min(folded, f)
		}
		return folded
	}, name)
}

// truncateRunes returns s cut to at most n runes.
func truncateRunes(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Encode marshals m; Message always marshals, so the error is only
// returned for completeness.
func Encode(m Message) ([]byte, error) { return json.Marshal(m) }

// escapeText escapes chat text for classic clients that insert it as HTML.
func escapeText(s string) string { return html.EscapeString(s) }

// SanitizeName returns the name the server registers for a requested one:
// letters, digits, marks, spaces and "-_.@" are kept, other characters
// dropped, runs of spaces collapsed, the result trimmed and cut to
// MaxNameLen runes; an empty result becomes "user".
func SanitizeName(name string) string {
	var b strings.Builder
	n := 0
	space := false
	for _, r := range name {
		if n >= MaxNameLen {
			break
		}
		switch {
		case unicode.IsSpace(r):
			space = b.Len() > 0
			continue
		case unicode.IsLetter(r), unicode.IsDigit(r), unicode.IsMark(r), strings.ContainsRune("-_.@", r):
		default:
			continue
		}
		if space {
			if n+1 >= MaxNameLen {
				break
			}
			b.WriteByte(' ')
			n++
			space = false
		}
		b.WriteRune(r)
		n++
	}
	if b.Len() == 0 {
		return defaultName
	}
	return b.String()
}
