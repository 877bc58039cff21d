package transfer

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Label is the label of every data channel that carries one file.
const Label = "file"

// ChunkSize is the size of every binary message of a transfer but the last.
const ChunkSize = 16 * 1024

// maxSafeInteger is the largest size a JavaScript peer can represent
// exactly (Number.MAX_SAFE_INTEGER).
const maxSafeInteger = 1<<53 - 1

// Message types on a transfer channel.
const (
	typeFile = "file"
	typeEOF  = "eof"
	typeAck  = "file-ack"
)

// Error strings a receiver puts in a failed file-ack; the browser page
// uses the same ones.
const (
	ackBadHeader    = "bad header"
	ackBadMessage   = "bad message"
	ackDataFirst    = "data before header"
	ackTooLarge     = "too large"
	ackHashMismatch = "sha256 mismatch"
	ackCancelled    = "cancelled"
	ackCannotSave   = "cannot save"
)

// Header is the first message of a transfer: what the sender announces.
type Header struct {
	// Name is the sender's display name for the file; never a path.
	Name string `json:"name"`
	// Size is the exact number of bytes that follow.
	Size int64 `json:"size"`
	// SHA256 is the SHA-256 of the whole file in lowercase hex.
	SHA256 string `json:"sha256"`
	// MIME is the media type; it may be empty.
	MIME string `json:"mime"`
}

// Ack is the receiver's answer to a transfer.
type Ack struct {
	// SHA256 is the SHA-256 the receiver computed in lowercase hex, or
	// empty when it computed none (null on the wire).
	SHA256 string
	// OK is true when the size and SHA-256 matched the header.
	OK bool
	// Error says why the transfer failed when OK is false.
	Error string
}

// messageKind is the kind of one text message on a transfer channel.
type messageKind int

const (
	kindOther  messageKind = iota // a JSON object of another type, ignored
	kindHeader                    // {"type":"file",...}
	kindEOF                       // {"type":"eof"}
	kindAck                       // {"type":"file-ack",...}
)

// message is one parsed text message.
type message struct {
	kind   messageKind
	header Header
	ack    Ack
}

// headerWire and ackWire are the JSON forms; pointers tell missing or null
// fields from zero values.
type headerWire struct {
	Type   string          `json:"type"`
	Name   *string         `json:"name"`
	Size   json.RawMessage `json:"size"`
	SHA256 *string         `json:"sha256"`
	MIME   *string         `json:"mime"`
}

type ackWire struct {
	Type   string  `json:"type"`
	SHA256 *string `json:"sha256"`
	OK     bool    `json:"ok"`
	Error  string  `json:"error,omitempty"`
}

// parseMessage parses one text message of a transfer channel. A header is
// validated as the browser page does (integral size from 0 to 2^53-1, a
// SHA-256 of 64 hex digits, string name and mime); an invalid one is an
// error wrapping ErrBadHeader. Any other malformed message is an error
// wrapping ErrProtocol. Unknown fields and unknown types are ignored.
func parseMessage(data []byte) (message, error) {
	var env struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(data, &env); err != nil {
		return message{}, fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	switch env.Type {
	case typeFile:
		h, err := parseHeader(data)
		if err != nil {
			return message{}, err
		}
		return message{kind: kindHeader, header: h}, nil
	case typeEOF:
		return message{kind: kindEOF}, nil
	case typeAck:
		var w ackWire
		if err := json.Unmarshal(data, &w); err != nil {
			return message{}, fmt.Errorf("%w: bad file-ack: %v", ErrProtocol, err)
		}
		a := Ack{OK: w.OK, Error: w.Error}
		if w.SHA256 != nil {
			a.SHA256 = strings.ToLower(*w.SHA256)
		}
		return message{kind: kindAck, ack: a}, nil
	default:
		return message{kind: kindOther}, nil
	}
}

// parseHeader decodes and validates a {"type":"file"} message.
func parseHeader(data []byte) (Header, error) {
	var w headerWire
	if err := json.Unmarshal(data, &w); err != nil {
		return Header{}, fmt.Errorf("%w: %v", ErrBadHeader, err)
	}
	size, err := parseSize(string(w.Size))
	if err != nil {
		return Header{}, fmt.Errorf("%w: %v", ErrBadHeader, err)
	}
	if w.SHA256 == nil || !validSHA256(*w.SHA256) {
		return Header{}, fmt.Errorf("%w: sha256 is not 64 hex digits", ErrBadHeader)
	}
	h := Header{Name: "file", Size: size, SHA256: strings.ToLower(*w.SHA256)}
	if w.Name != nil {
		h.Name = *w.Name
	}
	if w.MIME != nil {
		h.MIME = *w.MIME
	}
	return h, nil
}

// parseSize accepts the JSON numbers JavaScript's Number.isSafeInteger
// accepts that are not negative, including forms like 1e3 and 5.0; not
// strings, not null.
func parseSize(n string) (int64, error) {
	if n == "" {
		return 0, fmt.Errorf("size missing")
	}
	if c := n[0]; c != '-' && (c < '0' || c > '9') {
		return 0, fmt.Errorf("size %s is not a number", n)
	}
	if v, err := strconv.ParseInt(n, 10, 64); err == nil {
		if v < 0 || v > maxSafeInteger {
			return 0, fmt.Errorf("size %d out of range", v)
		}
		return v, nil
	}
	f, err := strconv.ParseFloat(n, 64)
	if err != nil || f < 0 || f > maxSafeInteger || f != float64(int64(f)) {
		return 0, fmt.Errorf("size %s is not an integer from 0 to 2^53-1", n)
	}
	return int64(f), nil
}

// validSHA256 reports whether s is 64 hex digits of either case.
func validSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// encodeHeader returns the wire form of h.
func encodeHeader(h Header) ([]byte, error) {
	return json.Marshal(struct {
		Type string `json:"type"`
		Header
	}{typeFile, h})
}

// eofMessage is the wire form of the end message.
const eofMessage = `{"type":"eof"}`

// encodeAck returns the wire form of a.
func encodeAck(a Ack) ([]byte, error) {
	w := ackWire{Type: typeAck, OK: a.OK, Error: a.Error}
	if a.SHA256 != "" {
		w.SHA256 = &a.SHA256
	}
	return json.Marshal(w)
}
