package stunserver

import (
	"encoding/binary"
	"net/netip"

	"github.com/pion/stun/v4"
)

// STUN header layout (RFC 8489 §5).
const (
	headerSize  = 20
	magicCookie = 0x2112A442
	// maxMessageSize is the largest message the 16-bit length field allows.
	maxMessageSize = headerSize + 0xFFFF
	// maxUnknownAttrs caps the UNKNOWN-ATTRIBUTES list of a 420 response.
	maxUnknownAttrs = 16
)

// CHANGE-REQUEST flags (RFC 5780 §7.2).
const (
	changeIPFlag   = 0x04
	changePortFlag = 0x02
)

// socket names one of the server's UDP sockets. Bit 0 selects the
// alternate port and bit 1 the alternate IP, so a CHANGE-REQUEST is an XOR.
type socket uint8

const (
	sockPrimary      socket = 0 // PrimaryIP:Port
	sockAltPort      socket = 1 // PrimaryIP:AltPort
	sockAltIP        socket = 2 // AlternateIP:Port
	sockAltIPAltPort socket = 3 // AlternateIP:AltPort
	numSockets              = 4
)

// changed returns the socket whose IP and/or port differ from s as asked.
func (s socket) changed(changeIP, changePort bool) socket {
	if changeIP {
		s ^= sockAltIP
	}
	if changePort {
		s ^= sockAltPort
	}
	return s
}

func (s socket) String() string {
	switch s {
	case sockPrimary:
		return "primary"
	case sockAltPort:
		return "alt-port"
	case sockAltIP:
		return "alt-ip"
	case sockAltIPAltPort:
		return "alt-ip-alt-port"
	}
	return "invalid"
}

// proto is the transport a request arrived on.
type proto uint8

const (
	protoUDP proto = iota
	protoTCP
)

// request is one received message and where it came from.
type request struct {
	data  []byte
	src   netip.AddrPort
	via   socket // the UDP socket it arrived on; sockPrimary for TCP
	proto proto
}

// verdict is what the handler decided to do with a request.
type verdict uint8

const (
	// verdictDrop: not a request the server answers (garbage, a response,
	// an indication, a bad fingerprint). Counted as malformed.
	verdictDrop verdict = iota
	// verdictSuccess: a Binding success response.
	verdictSuccess
	// verdictError: an error response (400 or 420).
	verdictError
	// verdictFailed: the response could not be built; a server bug.
	verdictFailed
)

// reply is the handler's decision: which bytes to send, from which socket,
// to which address.
type reply struct {
	verdict verdict
	data    []byte
	from    socket
	to      netip.AddrPort
	// code is the ERROR-CODE of an error response.
	code stun.ErrorCode
	// changed is set when CHANGE-REQUEST moved the response to another socket.
	changed bool
	// redirected is set when RESPONSE-PORT moved the response to another port.
	redirected bool
	// reason says why a request was dropped, for debug logs.
	reason string
}

// handler turns requests into replies. It has no state besides its
// configuration and does no I/O, so it is safe for concurrent use and can be
// table-tested and fuzzed.
type handler struct {
	addrs         Addrs
	changeRequest bool // honour CHANGE-REQUEST (needs the alternate sockets)
	software      stun.Software
}

func newHandler(addrs Addrs, changeRequest bool, software string) *handler {
	hasAlt := addrs.AltIPAltPort.IsValid() && addrs.AltIP.IsValid() && addrs.AltPort.IsValid()
	return &handler{
		addrs:         addrs,
		changeRequest: changeRequest && hasAlt,
		software:      stun.NewSoftware(software),
	}
}

// origin is the local address a reply leaves from.
func (h *handler) origin(p proto, s socket) netip.AddrPort {
	if p == protoTCP {
		return h.addrs.TCP
	}
	return h.addrs.socket(s)
}

// looksLikeRequest is a header-only check, cheap enough to run before the
// rate limiter: a STUN request has its top two bits clear, the magic cookie,
// and class bits 0b00.
func looksLikeRequest(b []byte) bool {
	if len(b) < headerSize || b[0]&0xC0 != 0 || binary.BigEndian.Uint32(b[4:8]) != magicCookie {
		return false
	}
	t := binary.BigEndian.Uint16(b[0:2])
	return t&0x0110 == 0 // C1 (bit 8) and C0 (bit 4) clear
}

// handle decides how to answer one message. It never panics, whatever the
// bytes.
func (h *handler) handle(req request) reply {
	drop := func(reason string) reply { return reply{verdict: verdictDrop, reason: reason} }

	b := req.data
	if !looksLikeRequest(b) {
		return drop("not a STUN request")
	}
	length := int(binary.BigEndian.Uint16(b[2:4]))
	if length%4 != 0 || headerSize+length != len(b) {
		return drop("bad length")
	}
	src := netip.AddrPortFrom(req.src.Addr().Unmap(), req.src.Port())
	if !validPeer(src) {
		return drop("bad source address")
	}
	if req.proto == protoTCP {
		req.via = sockPrimary // TCP is served on one listener only
	}
	if req.via >= numSockets || !h.origin(req.proto, req.via).IsValid() {
		return drop("unknown receiving socket")
	}
	m := new(stun.Message)
	if err := stun.Decode(b, m); err != nil {
		return drop("undecodable")
	}
	if m.Contains(stun.AttrFingerprint) {
		if err := stun.Fingerprint.Check(m); err != nil {
			return drop("bad fingerprint")
		}
	}

	errReply := func(code stun.ErrorCode, unknown stun.UnknownAttributes) reply {
		return h.errorReply(m, req, src, code, unknown)
	}
	if m.Type.Method != stun.MethodBinding {
		return errReply(stun.CodeBadRequest, nil)
	}

	var (
		unknown          stun.UnknownAttributes
		changeValue      []byte
		hasChange        bool
		portValue        []byte
		hasRespPort      bool
		udp              = req.proto == protoUDP
		changeUnderstood = udp && h.changeRequest
	)
	for _, a := range m.Attributes {
		switch {
		case a.Type == stun.AttrChangeRequest && changeUnderstood:
			if !hasChange {
				changeValue, hasChange = a.Value, true
			}
		case a.Type == stun.AttrResponsePort && udp:
			if !hasRespPort {
				portValue, hasRespPort = a.Value, true
			}
		case a.Type.Required() && !understood(a.Type):
			unknown = appendUnknown(unknown, a.Type)
		}
	}
	if len(unknown) > 0 {
		return errReply(stun.CodeUnknownAttribute, unknown)
	}

	from, to := req.via, src
	var changed, redirected bool
	if hasChange {
		if len(changeValue) != 4 {
			return errReply(stun.CodeBadRequest, nil)
		}
		flags := changeValue[3]
		from = req.via.changed(flags&changeIPFlag != 0, flags&changePortFlag != 0)
		changed = from != req.via
	}
	if hasRespPort {
		if len(portValue) != 2 && len(portValue) != 4 {
			return errReply(stun.CodeBadRequest, nil)
		}
		port := binary.BigEndian.Uint16(portValue[0:2])
		if port == 0 {
			return errReply(stun.CodeBadRequest, nil)
		}
		to = netip.AddrPortFrom(src.Addr(), port)
		redirected = port != src.Port()
	}

	origin := h.origin(req.proto, from)
	if !origin.IsValid() {
		return reply{verdict: verdictFailed, reason: "no socket for " + from.String()}
	}
	setters := []stun.Setter{
		stun.NewTransactionIDSetter(m.TransactionID),
		stun.NewType(stun.MethodBinding, stun.ClassSuccessResponse),
		&stun.XORMappedAddress{IP: src.Addr().AsSlice(), Port: int(src.Port())},
		&stun.MappedAddress{IP: src.Addr().AsSlice(), Port: int(src.Port())},
		&stun.ResponseOrigin{IP: origin.Addr().AsSlice(), Port: int(origin.Port())},
	}
	if other := h.addrs.AltIPAltPort; other.IsValid() {
		setters = append(setters, &stun.OtherAddress{IP: other.Addr().AsSlice(), Port: int(other.Port())})
	}
	setters = append(setters, h.software, stun.Fingerprint)
	resp := new(stun.Message)
	if err := resp.Build(setters...); err != nil {
		return reply{verdict: verdictFailed, reason: "building response: " + err.Error()}
	}
	return reply{
		verdict:    verdictSuccess,
		data:       resp.Raw,
		from:       from,
		to:         to,
		changed:    changed,
		redirected: redirected,
	}
}

// errorReply builds an error response sent back from the receiving socket
// to the request's source.
func (h *handler) errorReply(m *stun.Message, req request, src netip.AddrPort, code stun.ErrorCode, unknown stun.UnknownAttributes) reply {
	setters := []stun.Setter{
		stun.NewTransactionIDSetter(m.TransactionID),
		stun.NewType(m.Type.Method, stun.ClassErrorResponse),
		code,
	}
	if len(unknown) > 0 {
		setters = append(setters, unknown)
	}
	setters = append(setters, h.software, stun.Fingerprint)
	resp := new(stun.Message)
	if err := resp.Build(setters...); err != nil {
		return reply{verdict: verdictFailed, reason: "building error response: " + err.Error()}
	}
	return reply{verdict: verdictError, data: resp.Raw, from: req.via, to: src, code: code}
}

// understood reports whether the server knows a comprehension-required
// attribute well enough to ignore it. CHANGE-REQUEST and RESPONSE-PORT are
// handled by the caller because whether they are understood depends on the
// configuration and the transport. Authentication attributes are accepted
// and ignored: the server does not authenticate, so a client that sends
// credentials still gets its address.
func understood(t stun.AttrType) bool {
	switch t {
	case stun.AttrMappedAddress,
		stun.AttrUsername,
		stun.AttrMessageIntegrity,
		stun.AttrErrorCode,
		stun.AttrUnknownAttributes,
		stun.AttrRealm,
		stun.AttrNonce,
		stun.AttrMessageIntegritySHA256,
		stun.AttrPasswordAlgorithm,
		stun.AttrUserhash,
		stun.AttrXORMappedAddress:
		return true
	}
	return false
}

func appendUnknown(list stun.UnknownAttributes, t stun.AttrType) stun.UnknownAttributes {
	if len(list) >= maxUnknownAttrs {
		return list
	}
	for _, u := range list {
		if u == t {
			return list
		}
	}
	return append(list, t)
}

// validPeer reports whether a response may be sent to a.
func validPeer(a netip.AddrPort) bool {
	ip := a.Addr()
	return ip.IsValid() && a.Port() != 0 && !ip.IsUnspecified() && !ip.IsMulticast() &&
		ip != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}
