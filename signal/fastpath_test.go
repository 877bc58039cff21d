package signal

import (
	"bytes"
	"strings"
	"testing"
)

// slowRelay is what the decoder and encoder make of data for a sender
// called name, as relay does it; ok is false when Decode refuses data or
// it is not a relayed call message.
func slowRelay(data []byte, name string) ([]byte, bool) {
	m, err := Decode(data, 0)
	if err != nil {
		return nil, false
	}
	out := Message{Type: m.Type, Name: name, Target: m.Target}
	switch m.Type {
	case TypeVideoOffer, TypeVideoAnswer:
		out.SDP = m.SDP
	case TypeNewICECandidate:
		out.Candidate = m.Candidate
	case TypeHangUp:
	default:
		return nil, false
	}
	b, err := Encode(out)
	return b, err == nil
}

// checkFast fails when the fast path accepts data but the full decoder
// would answer it differently.
func checkFast(t *testing.T, data []byte) bool {
	t.Helper()
	m, ok := scanFast(data)
	if !ok {
		return false
	}
	for _, name := range []string{"alice", "bob <&> ", "ünï\u2028"} {
		want, ok := slowRelay(data, name)
		if !ok || m.target == nil || len(m.target) == 0 {
			t.Fatalf("fast path took %q, which the decoder refuses", data)
		}
		if got := appendFast(nil, m, name); !bytes.Equal(got, want) {
			t.Fatalf("fast path for %q:\n got %s\nwant %s", data, got, want)
		}
	}
	return true
}

var fastSeeds = []struct {
	in   string
	fast bool
}{
	{`{"type":"video-offer","target":"bob","sdp":{"type":"offer","sdp":"v=0\r\n"}}`, true},
	{` {"name":"alice","target":"bob","type":"video-answer","sdp":{"sdp":"v=0","type":"answer"}} `, true},
	{`{"type":"new-ice-candidate","target":"bob","candidate":{"candidate":"c","sdpMid":"0","sdpMLineIndex":0}}`, true},
	{`{"type":"new-ice-candidate","target":"bob","candidate":null}`, true},
	{`{"type":"hang-up","target":"bob","extra":[1,-2.5e3,true,false,null,{"a":"\u00e9\n"}]}`, true},
	{`{"type":"video-offer","target":"bób","sdp":{"type":"offer","sdp":"é","x":{}}}`, true},
	{`{"type":"video-offer","target":"bob","sdp":{"type":"offer","sdp":"a<b"}}`, false},                        // HTML escaping
	{`{"type":"video-offer","target":"bob","sdp":{"type": "offer","sdp":"v"}}`, false},                         // whitespace to compact
	{`{"type":"video-offer","target":"bob","sdp":{"Type":"offer","type":"offer"}}`, false},                     // case-folded key
	{`{"type":"video-offer","target":"bob","sdp":{"sdp":"v"}}`, false},                                         // no sdp type
	{`{"type":"video-offer","target":"bob","sdp":{"type":""}}`, false},                                         // empty sdp type
	{`{"type":"video-offer","target":"bob","sdp":"v=0"}`, false},                                               // not an object
	{`{"type":"video-offer","target":"b\u006fb","sdp":{"type":"offer"}}`, false},                               // escaped target
	{`{"type":"video-offer","target":"","sdp":{"type":"offer"}}`, false},                                       // broadcast
	{`{"type":"video-offer","Target":"bob","sdp":{"type":"offer"}}`, false},                                    // case-folded key
	{`{"type":"video-offer","target":"bob","target":"eve","sdp":{"type":"offer"}}`, false},                     // duplicate key
	{`{"type":"video-offer","target":"bob","id":"x","sdp":{"type":"offer"}}`, false},                           // a field of the wrong type
	{`{"type":"video-offer","target":"bob","name":1,"sdp":{"type":"offer"}}`, false},                           // a field of the wrong type
	{`{"type":"video-offer","target":"bob","sdp":{"type":"offer"}}x`, false},                                   // trailing data
	{`{"type":"video-offer","target":"bob","sdp":{"type":"offer"},}`, false},                                   // invalid JSON
	{`{"type":"message","target":"bob","text":"hi"}`, false},                                                   // chat
	{`{"type":"new-ice-candidate","target":"bob","candidate":"c"}`, false},                                     // not an object
	{"{\"type\":\"hang-up\",\"target\":\"bob\",\"x\":\"\xff\"}", false},                                        // not UTF-8
	{`{"type":"hang-up","target":"bob","x":"` + "\u2028" + `"}`, true},                                         // only the payload must be clean
	{`{"type":"hang-up","target":"bob","sdp":[1, 2]}`, false},                                                  // unclean unused payload
	{`{"type":"hang-up","target":"bob","x":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, false}, // deep
}

func TestScanFast(t *testing.T) {
	for _, tc := range fastSeeds {
		if got := checkFast(t, []byte(tc.in)); got != tc.fast {
			t.Errorf("scanFast(%q) took the fast path: %v, want %v", tc.in, got, tc.fast)
		}
	}
	msg, _ := offerForTest("bob", 512)
	if !checkFast(t, msg) {
		t.Errorf("the load generator's offer does not take the fast path")
	}
}

// offerForTest is an offer shaped like the load generator's.
func offerForTest(target string, n int) ([]byte, error) {
	sdp := "v=0\r\no=rtckit-bench 00000000000000000001 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=x-pad:" + strings.Repeat("x", n) + "\r\n"
	return Encode(Message{Type: TypeVideoOffer, Target: target, SDP: []byte(`{"type":"offer","sdp":` + string(mustJSON(sdp)) + `}`)})
}

func mustJSON(s string) []byte {
	b, _ := Encode(Message{Type: s})
	return b[len(`{"type":`) : len(b)-1]
}

func FuzzScanFast(f *testing.F) {
	for _, tc := range fastSeeds {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkFast(t, data) })
}

func BenchmarkRelayEncode(b *testing.B) {
	msg, _ := offerForTest("bob", 512)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m, _ := scanFast(msg)
			_ = appendFast(make([]byte, 0, 700), m, "alice")
		}
	})
	b.Run("decoder", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = slowRelay(msg, "alice")
		}
	})
}
