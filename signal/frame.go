// The WebSocket wire format (RFC 6455) as the event-loop transport speaks
// it: the opening handshake's response, server frames (never masked) and a
// parser of client frames (always masked) that assembles fragmented
// messages and bounds their size.

package signal

import (
	"crypto/sha1" //nolint:gosec // G505: RFC 6455 fixes SHA-1 for the accept key.
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"strings"
)

// WebSocket opcodes.
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xa
)

// Close codes the transport sends on its own.
const (
	statusNormal         = 1000
	statusNoStatus       = 1005
	statusProtocolError  = 1002
	statusMessageTooBig  = 1009
	statusTryAgainLater  = 1013
	maxControlPayload    = 125
	maxCloseReasonLength = maxControlPayload - 2
)

// websocketGUID is the fixed suffix of the accept key.
const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// acceptKey returns Sec-WebSocket-Accept for a Sec-WebSocket-Key.
func acceptKey(key string) string {
	h := sha1.Sum([]byte(key + websocketGUID)) //nolint:gosec // G401: see the import.
	return base64.StdEncoding.EncodeToString(h[:])
}

// handshakeError is a refused upgrade: an HTTP status and a text.
type handshakeError struct {
	status int
	text   string
}

// checkHandshake checks an upgrade request as RFC 6455 section 4.2.1
// asks and returns the response's status line and headers, with the
// json subprotocol when the client offers it.
func checkHandshake(r *http.Request) (string, *handshakeError) {
	if r.Method != http.MethodGet {
		return "", &handshakeError{http.StatusMethodNotAllowed, "WebSocket upgrades use GET"}
	}
	if r.Header.Get("Sec-WebSocket-Version") != "13" {
		return "", &handshakeError{http.StatusUpgradeRequired, "unsupported WebSocket version"}
	}
	key := strings.TrimSpace(r.Header.Get("Sec-WebSocket-Key"))
	if b, err := base64.StdEncoding.DecodeString(key); err != nil || len(b) != 16 {
		return "", &handshakeError{http.StatusBadRequest, "invalid Sec-WebSocket-Key"}
	}
	var b strings.Builder
	b.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ")
	b.WriteString(acceptKey(key))
	b.WriteString("\r\n")
	if headerHas(r.Header, "Sec-WebSocket-Protocol", Subprotocol) {
		b.WriteString("Sec-WebSocket-Protocol: " + Subprotocol + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String(), nil
}

// appendFrame appends one unmasked, final frame.
func appendFrame(b []byte, op byte, payload []byte) []byte {
	n := len(payload)
	switch {
	case n <= 125:
		b = append(b, 0x80|op, byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|op, 126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|op, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, payload...)
}

// frameSize returns the length and opcode of the frame b starts with; out
// holds complete frames only.
func frameSize(b []byte) (int, byte) {
	op := b[0] & 0x0f
	switch n := int(b[1] & 0x7f); n {
	case 126:
		return 4 + int(binary.BigEndian.Uint16(b[2:])), op
	case 127:
		return 10 + int(binary.BigEndian.Uint64(b[2:])), op //nolint:gosec // G115: our frames are small.
	default:
		return 2 + n, op
	}
}

// appendClose appends a close frame with code and reason (cut to fit);
// statusNoStatus sends an empty close frame.
func appendClose(b []byte, code int, reason string) []byte {
	if code == statusNoStatus {
		return appendFrame(b, opClose, nil)
	}
	reason = truncate(reason, maxCloseReasonLength)
	p := make([]byte, 2, 2+len(reason))
	binary.BigEndian.PutUint16(p, uint16(code)) //nolint:gosec // G115: close codes are below 5000.
	p = append(p, reason...)
	return appendFrame(b, opClose, p)
}

// unmask XORs p with the masking key, starting at the key's first byte.
func unmask(p []byte, key [4]byte) {
	k32 := binary.LittleEndian.Uint32(key[:])
	k64 := uint64(k32) | uint64(k32)<<32
	i := 0
	for ; i+8 <= len(p); i += 8 {
		binary.LittleEndian.PutUint64(p[i:], binary.LittleEndian.Uint64(p[i:])^k64)
	}
	for ; i < len(p); i++ {
		p[i] ^= key[i&3]
	}
}

// frameSink receives what a frameParser finds.
type frameSink interface {
	// message is one complete data message; p is only valid during the
	// call.
	message(p []byte)
	// tooLarge is a message over the soft limit, skipped.
	tooLarge()
	// control is a ping, pong or close frame.
	control(op byte, p []byte)
}

// frameParser parses client frames. Its zero value is ready once limit
// (the soft message size limit) and hard (the size that closes the
// connection) are set.
type frameParser struct {
	limit, hard int
	msg         []byte // fragments of a message being assembled
	fragmented  bool   // a fragmented message is in progress
	size        int    // bytes of the message in progress
	skipping    bool   // the message in progress is over limit
}

// parseError is a frame that ends the connection with a close code.
type parseError struct {
	code   int
	reason string
}

// parse consumes the complete frames at the start of data, unmasking them
// in place and passing them to sink. It returns the bytes consumed (the
// rest is an incomplete frame) or the error that ends the connection.
func (f *frameParser) parse(data []byte, sink frameSink) (int, *parseError) {
	off := 0
	for {
		b := data[off:]
		if len(b) < 2 {
			return off, nil
		}
		fin, rsv, op := b[0]&0x80 != 0, b[0]&0x70, b[0]&0x0f
		masked, n, hl := b[1]&0x80 != 0, uint64(b[1]&0x7f), 2
		switch n {
		case 126:
			if len(b) < 4 {
				return off, nil
			}
			n, hl = uint64(binary.BigEndian.Uint16(b[2:])), 4
		case 127:
			if len(b) < 10 {
				return off, nil
			}
			n, hl = binary.BigEndian.Uint64(b[2:]), 10
		}
		if err := f.check(rsv, op, fin, masked, n); err != nil {
			return off, err
		}
		if uint64(len(b)) < uint64(hl)+4+n {
			return off, nil
		}
		var key [4]byte
		copy(key[:], b[hl:hl+4])
		p := b[hl+4 : hl+4+int(n)]
		off += hl + 4 + int(n)
		unmask(p, key)
		if op >= opClose {
			sink.control(op, p)
			continue
		}
		f.data(op, fin, p, sink)
	}
}

// check validates a frame header before its payload arrives.
func (f *frameParser) check(rsv, op byte, fin, masked bool, n uint64) *parseError {
	switch {
	case rsv != 0:
		return &parseError{statusProtocolError, "reserved bits set without an extension"}
	case !masked:
		return &parseError{statusProtocolError, "client frames must be masked"}
	case op >= opClose && (op > opPong || !fin || n > maxControlPayload):
		return &parseError{statusProtocolError, "invalid control frame"}
	case op > opBinary && op < opClose:
		return &parseError{statusProtocolError, "unknown opcode"}
	case op == opContinuation && !f.fragmented:
		return &parseError{statusProtocolError, "continuation without a message"}
	case (op == opText || op == opBinary) && f.fragmented:
		return &parseError{statusProtocolError, "new message inside a fragmented one"}
	case op < opClose && uint64(f.size)+n > uint64(f.hard):
		return &parseError{statusMessageTooBig, "message too big"}
	}
	return nil
}

// data handles one data frame: a whole message, or a fragment of one.
func (f *frameParser) data(op byte, fin bool, p []byte, sink frameSink) {
	if op != opContinuation && fin {
		if len(p) > f.limit {
			sink.tooLarge()
			return
		}
		sink.message(p)
		return
	}
	f.fragmented = true
	f.size += len(p)
	if f.size > f.limit {
		f.skipping, f.msg = true, nil
	}
	if !f.skipping {
		f.msg = append(f.msg, p...)
	}
	if !fin {
		return
	}
	msg, skipped := f.msg, f.skipping
	f.msg, f.fragmented, f.size, f.skipping = nil, false, 0, false
	if skipped {
		sink.tooLarge()
		return
	}
	sink.message(msg)
}

// validCloseCode reports whether a peer may send code in a close frame
// (RFC 6455 7.4): the defined codes other than those that must never be
// sent (1004–1006, 1015), and the ranges for libraries and applications.
func validCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	default:
		return code >= 3000 && code <= 4999
	}
}
