package signal

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		wantType string
		wantCode string
		wantRef  string
	}{
		{"username", `{"type":"username","name":"alice","date":1700000000000,"id":1}`, TypeUsername, "", ""},
		{"chat", `{"type":"message","text":"hi","id":1,"date":1}`, TypeMessage, "", ""},
		{"offer", `{"type":"video-offer","name":"a","target":"b","sdp":{"type":"offer","sdp":"v=0"}}`, TypeVideoOffer, "", ""},
		{"answer", `{"type":"video-answer","name":"a","target":"b","sdp":{"type":"answer","sdp":"v=0"}}`, TypeVideoAnswer, "", ""},
		{"candidate", `{"type":"new-ice-candidate","target":"b","candidate":{"candidate":"candidate:1 1 udp 1 1.2.3.4 5 typ host","sdpMid":"0"}}`, TypeNewICECandidate, "", ""},
		{"end of candidates", `{"type":"new-ice-candidate","target":"b","candidate":null}`, TypeNewICECandidate, "", ""},
		{"hang-up", `{"type":"hang-up","name":"a","target":"b"}`, TypeHangUp, "", ""},
		{"ping", `{"type":"ping","ts":42}`, TypePing, "", ""},
		{"resume", `{"type":"resume","token":"abc"}`, TypeResume, "", ""},
		{"unknown fields ignored", `{"type":"ping","extra":{"x":[1,2]}}`, TypePing, "", ""},
		{"not JSON", `hello`, "", CodeInvalidJSON, ""},
		{"array", `[1,2]`, "", CodeInvalidJSON, ""},
		{"no type", `{"name":"x"}`, "", CodeInvalidJSON, ""},
		{"trailing data", `{"type":"ping"} {"type":"ping"}`, "", CodeInvalidJSON, ""},
		{"truncated", `{"type":"ping"`, "", CodeInvalidJSON, ""},
		{"unknown type", `{"type":"launch-missiles"}`, "", CodeUnknownType, "launch-missiles"},
		{"server-only type", `{"type":"userlist","users":["x"]}`, "", CodeServerOnly, TypeUserList},
		{"wrong field type", `{"type":"username","name":42}`, "", CodeInvalidField, TypeUsername},
		{"date as string", `{"type":"message","text":"x","date":"today"}`, "", CodeInvalidField, TypeMessage},
		{"fractional date", `{"type":"message","text":"x","date":1700000000.5}`, TypeMessage, "", ""},
		{"sdp as string", `{"type":"video-offer","target":"b","sdp":"v=0"}`, "", CodeInvalidField, TypeVideoOffer},
		{"sdp without type", `{"type":"video-offer","target":"b","sdp":{"sdp":"v=0"}}`, "", CodeInvalidField, TypeVideoOffer},
		{"candidate missing", `{"type":"new-ice-candidate","target":"b"}`, "", CodeInvalidField, TypeNewICECandidate},
		{"resume without token", `{"type":"resume"}`, "", CodeInvalidField, TypeResume},
		{"not UTF-8", "{\"type\":\"ping\",\"x\":\"\xff\"}", "", CodeInvalidJSON, ""},
		{"too large", `{"type":"message","text":"` + strings.Repeat("x", 200) + `"}`, "", CodeTooLarge, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Decode([]byte(tt.in), 128)
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if m.Type != tt.wantType {
					t.Errorf("type = %q, want %q", m.Type, tt.wantType)
				}
				return
			}
			var pe *ProtocolError
			if !errors.As(err, &pe) || !errors.Is(err, ErrProtocol) {
				t.Fatalf("Decode error = %v, want a ProtocolError", err)
			}
			if pe.Code != tt.wantCode || pe.Ref != tt.wantRef {
				t.Errorf("code, ref = %q, %q; want %q, %q (%v)", pe.Code, pe.Ref, tt.wantCode, tt.wantRef, err)
			}
		})
	}
}

func TestEncodeOmitsUnusedFields(t *testing.T) {
	tests := []struct {
		m    Message
		want string
	}{
		{Message{Type: TypeID, ID: 3}, `{"type":"id","id":3}`},
		{Message{Type: TypeUserList, Users: []string{}}, `{"type":"userlist","users":[]}`},
		{Message{Type: TypeICEServers, Version: 1, ICEServers: []ICEServer{}}, `{"type":"ice-servers","version":1,"iceServers":[]}`},
		{Message{Type: TypeICEServers, Version: 1, ICEServers: []ICEServer{{URLs: []string{"turn:h:3478?transport=udp"}, Username: "u", Credential: "p"}}},
			`{"type":"ice-servers","version":1,"iceServers":[{"urls":["turn:h:3478?transport=udp"],"username":"u","credential":"p"}]}`},
		{Message{Type: TypeError, Code: CodeUnknownTarget, Message: "m", Ref: TypeVideoOffer, Target: "bob"},
			`{"type":"error","target":"bob","code":"unknown-target","message":"m","ref":"video-offer"}`},
		{Message{Type: TypeSession, Token: "t", ResumeMS: 30000}, `{"type":"session","token":"t","resume_ms":30000}`},
		{Message{Type: TypeVideoOffer, Name: "a", Target: "b", SDP: json.RawMessage(`{"type":"offer","sdp":"v=0"}`)},
			`{"type":"video-offer","name":"a","target":"b","sdp":{"type":"offer","sdp":"v=0"}}`},
	}
	for _, tt := range tests {
		got, err := Encode(tt.m)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tt.want {
			t.Errorf("Encode(%s)\n got %s\nwant %s", tt.m.Type, got, tt.want)
		}
	}
}

func TestSanitizeName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"alice", "alice"},
		{"  Jean   Dupont ", "Jean Dupont"},
		{"<script>x</script>", "scriptxscript"},
		{"José_1.2-3@x", "José_1.2-3@x"},
		{"", "user"},
		{"<>", "user"},
		{strings.Repeat("a", 40), strings.Repeat("a", MaxNameLen)},
		{"tab\tname\nnl", "tab name nl"},
	}
	for _, tt := range tests {
		if got := SanitizeName(tt.in); got != tt.want {
			t.Errorf("SanitizeName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"type":"username","name":"alice","date":1,"id":1}`,
		`{"type":"message","text":"<b>hi</b>","id":1,"date":1}`,
		`{"type":"video-offer","name":"a","target":"b","sdp":{"type":"offer","sdp":"v=0"}}`,
		`{"type":"new-ice-candidate","target":"b","candidate":{"candidate":"c","sdpMid":"0","sdpMLineIndex":0}}`,
		`{"type":"new-ice-candidate","target":"b","candidate":null}`,
		`{"type":"hang-up","name":"a","target":"b"}`,
		`{"type":"ping","ts":1}`,
		`{"type":"resume","token":"x"}`,
		`{"type":"userlist"}`,
		`{"type":"x"}`,
		`{"type":1}`,
		`[]`, `null`, `{}`, `{"type":"ping"}{}`, "\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data, DefaultMaxMessageSize)
		if err != nil {
			var pe *ProtocolError
			if !errors.As(err, &pe) || pe.Code == "" {
				t.Fatalf("Decode returned a non-protocol error: %v", err)
			}
			return
		}
		if !clientTypes[m.Type] {
			t.Fatalf("Decode accepted type %q", m.Type)
		}
		if _, err := Encode(m); err != nil {
			t.Fatalf("Encode of a decoded message: %v", err)
		}
	})
}
