// What differs between the hubs the generator can load: rtckit's classic
// chat-server protocol and the PeerJS server's, so that both are measured
// by the same clients in the same run.

package loadgen

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Protocol is a hub's signaling protocol.
type Protocol string

// Protocols.
const (
	// ProtocolClassic is the classic chat-server protocol of rtckit's hub
	// (docs/protocol.md): username registration, video-offer with target.
	ProtocolClassic Protocol = "classic"
	// ProtocolPeerJS is the PeerJS server's: the id in the connection's
	// query, an OPEN message once registered, OFFER with dst.
	ProtocolPeerJS Protocol = "peerjs"
)

// peerJSKey is the PeerJS server's default API key.
const peerJSKey = "peerjs"

// clientURL returns the URL a client named name dials.
func (r *run) clientURL(name string) *url.URL {
	if r.opts.Protocol != ProtocolPeerJS {
		return r.url
	}
	var tok [8]byte
	_, _ = rand.Read(tok[:]) // crypto/rand.Read never fails
	u := *r.url
	q := u.Query()
	q.Set("key", peerJSKey)
	q.Set("id", name)
	q.Set("token", hex.EncodeToString(tok[:]))
	u.RawQuery = q.Encode()
	return &u
}

// registration returns the messages that register name once connected:
// under the classic protocol the username and a ping, whose pong marks the
// registration as done; PeerJS registers the id of the URL by itself.
func (r *run) registration(name string) [][]byte {
	if r.opts.Protocol == ProtocolPeerJS {
		return nil
	}
	return [][]byte{fmt.Appendf(nil, `{"type":"username","name":%q}`, name), []byte(`{"type":"ping","ts":1}`)}
}

// registered reads a reply during registration: whether it completes it,
// the name the hub gave instead of the one asked for (classic: a duplicate
// name made unique), and an error when the hub refused the name (PeerJS:
// the id is taken). Error messages are counted before they get here.
func registered(data []byte) (done bool, rename string, err error) {
	var m struct {
		Type string `json:"type"`
		Name string `json:"name"`
	}
	if json.Unmarshal(data, &m) != nil {
		return false, "", nil
	}
	switch m.Type {
	case "pong", "OPEN":
		return true, "", nil
	case "rejectusername":
		return false, m.Name, nil
	case "ID-TAKEN":
		return false, "", errors.New("loadgen: the hub says the id is taken")
	}
	return false, "", nil
}

// offerTemplate builds the pair's offer in the run's protocol and returns
// it with the offset of its timestamp digits.
func (r *run) offerTemplate(target string) ([]byte, int) {
	if r.opts.Protocol != ProtocolPeerJS {
		return offer(target, r.opts.PayloadBytes)
	}
	sdp := offerSDP(r.opts.PayloadBytes)
	msg, _ := json.Marshal(struct { // strings always marshal
		Type    string          `json:"type"`
		Dst     string          `json:"dst"`
		Payload json.RawMessage `json:"payload"`
	}{"OFFER", target, json.RawMessage(`{"sdp":` + string(sdp) + `,"type":"media","connectionId":"mc_bench"}`)})
	return msg, bytes.Index(msg, marker) + len(marker)
}

// errorCode tells whether data is an error message of the hub, and its
// code (PeerJS: its text).
func errorCode(data []byte) (string, bool) {
	var m struct {
		Code    string `json:"code"`
		Payload struct {
			Msg string `json:"msg"`
		} `json:"payload"`
	}
	switch {
	case bytes.HasPrefix(data, []byte(`{"type":"error"`)):
		_ = json.Unmarshal(data, &m) // an undecodable error still counts, as ""
		return m.Code, true
	case bytes.HasPrefix(data, []byte(`{"type":"ERROR"`)):
		_ = json.Unmarshal(data, &m)
		return strings.ToLower(strings.ReplaceAll(m.Payload.Msg, " ", "-")), true
	}
	return "", false
}
