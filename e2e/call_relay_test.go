package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/rtckit/rtckit/call"
	"github.com/rtckit/rtckit/internal/coturn"
	"github.com/rtckit/rtckit/signal/hubclient"
)

// relayCall runs a verified call between two rtckit processes on hub with
// extra arguments for each side, and checks both went through a relay.
func relayCall(t *testing.T, hub string, aliceArgs, bobArgs []string) (*call.Report, *call.Report) {
	t.Helper()
	bob := startCall(t, append([]string{"--hub", hub, "--as", "bob", "--answer", "--wait", "20s", "--verify",
		"--expect-path", "relay"}, bobArgs...)...)
	alice := startCall(t, append([]string{"--hub", hub, "--as", "alice", "--to", "bob", "--wait", "10s",
		"--duration", "3s", "--verify", "--expect-path", "relay", "--min-frames", "30"}, aliceArgs...)...)
	code, rep := alice.wait(t)
	checkHealthyReport(t, "alice", code, rep, alice.stderr.String())
	bcode, brep := bob.wait(t)
	checkHealthyReport(t, "bob", bcode, brep, bob.stderr.String())
	for name, r := range map[string]*call.Report{"alice": rep, "bob": brep} {
		if r.Path == nil || !r.Path.Relay || r.Path.Local.Type != "relay" {
			t.Errorf("%s: path %+v, want a local relay candidate", name, r.Path)
		}
	}
	return rep, brep
}

// TestCallRelayOnlyThroughCoturn forces both sides onto coturn relays (UDP
// for one, TCP to the TURN server for the other); every frame still
// verifies and both reports name the relay.
func TestCallRelayOnlyThroughCoturn(t *testing.T) {
	addr := startCoturnWith(t, coturn.Config{Users: []string{"alice:wonderland"}})
	hub := startHub(t)
	udp := "turn:alice:wonderland@" + addr.String() + "?transport=udp"
	tcp := "turn:alice:wonderland@" + addr.String() + "?transport=tcp"
	rep, _ := relayCall(t, hub,
		[]string{"--ice-policy", "relay", "--turn", tcp},
		[]string{"--ice-policy", "relay", "--turn", udp})
	if rep.Path.Local.RelayProtocol != "tcp" {
		t.Errorf("alice: relay protocol %q, want tcp", rep.Path.Local.RelayProtocol)
	}
}

// TestCallRelayOnlyThroughEmbeddedTurn uses the TURN server that `signal
// serve --turn-embedded` runs and announces in its ice-servers message:
// the callers name no TURN server themselves.
func TestCallRelayOnlyThroughEmbeddedTurn(t *testing.T) {
	hub := startHub(t, "--turn-embedded", "--turn-listen", "127.0.0.1")
	relayCall(t, hub, []string{"--ice-policy", "relay"}, []string{"--ice-policy", "relay"})
}

// TestCallRelayOnlyThroughTurnServe forces both sides onto relays of a
// standalone `rtckit turn serve` (UDP for one, TCP for the other), named
// on the command line with long-term credentials.
func TestCallRelayOnlyThroughTurnServe(t *testing.T) {
	uris := startTurnServe(t, t.Context())
	var udp, tcp string
	for _, u := range uris {
		withCreds := strings.Replace(u, "turn:", "turn:alice:wonderland@", 1)
		switch {
		case strings.HasSuffix(u, "transport=udp"):
			udp = withCreds
		case strings.HasSuffix(u, "transport=tcp"):
			tcp = withCreds
		}
	}
	if udp == "" || tcp == "" {
		t.Fatalf("turn serve URIs %v, want UDP and TCP", uris)
	}
	hub := startHub(t)
	rep, _ := relayCall(t, hub,
		[]string{"--ice-policy", "relay", "--turn", tcp},
		[]string{"--ice-policy", "relay", "--turn", udp})
	if rep.Path.Local.RelayProtocol != "tcp" {
		t.Errorf("alice: relay protocol %q, want tcp", rep.Path.Local.RelayProtocol)
	}
}

// TestCallBadInput: every kind of bad input ends with a clear message and
// its documented exit code, quickly.
func TestCallBadInput(t *testing.T) {
	hub := startHub(t)
	// A registered user that never answers: a plain hub client.
	silent, err := hubclient.Dial(t.Context(), hub, hubclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	if _, _, err := silent.Register(t.Context(), "silent"); err != nil {
		t.Fatal(err)
	}
	go func() {
		for range silent.Messages() {
		}
	}()
	// A token that decodes but whose offer cannot apply (no mid, no
	// fingerprint that parses).
	foreign, err := call.EncodeToken(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: "v=0\r\n" +
		"o=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\n" +
		"a=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\na=fingerprint:sha-256 00:11\r\n" +
		"a=rtpmap:111 opus/48000/2\r\n"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no mode", []string{}, 2, "say how to reach the peer"},
		{"offer that does not apply", []string{"--accept", foreign}, 2, "not acceptable"},
		{"fps out of range", []string{"--offer", "--fps", "-1"}, 2, "--fps"},
		{"negative restarts", []string{"--offer", "--max-ice-restarts", "-5"}, 2, "--max-ice-restarts"},
		{"two modes", []string{"--offer", "--accept", "x"}, 2, "exclude each other"},
		{"http hub URL", []string{"--hub", "http://127.0.0.1:1/ws", "--as", "a", "--to", "b"}, 2, "use ws://"},
		{"hub down", []string{"--hub", "ws://127.0.0.1:1/ws", "--as", "a", "--to", "b"}, 4, "cannot connect to the hub"},
		{"unknown user", []string{"--hub", hub, "--as", "a", "--to", "nobody-here"}, 7, "peer not online"},
		{"never answers", []string{"--hub", hub, "--as", "b", "--to", "silent", "--setup-timeout", "2s"}, 7, "did not answer"},
		{"garbage token", []string{"--accept", "rtc1.AAAA!!"}, 2, "bad call token"},
		{"foreign token", []string{"--accept", "hello"}, 2, "must start with"},
		{"missing media file", []string{"--offer", "--video", "/nonexistent/clip.ivf"}, 2, "clip.ivf"},
		{"not a media file", []string{"--offer", "--video", "/etc/hostname"}, 2, "hostname"},
		{"answerer's bad media file", []string{"--hub", hub, "--as", "bad", "--answer", "--video", "/etc/hostname"}, 2, "hostname"},
		{"bad assertion", []string{"--offer", "--expect-path", "sideways"}, 2, "expect-path"},
		{"bad loss", []string{"--offer", "--max-loss", "120"}, 2, "percentage"},
		{"loss not a number", []string{"--offer", "--max-loss", "NaN"}, 2, "must be numbers"},
		{"bitrate not a number", []string{"--offer", "--min-bitrate", "NaN"}, 2, "must be numbers"},
		{"send a directory", []string{"--offer", "--send", "/tmp"}, 2, "not a regular file"},
		// Not even root may make files in /proc/self.
		{"receive into an unwritable directory", []string{"--offer", "--receive", "/proc/self"}, 2, "--receive"},
		{"record into an unwritable directory", []string{"--offer", "--record", "/proc/self"}, 2, "--record"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			r := startCall(t, tc.args...)
			code, _ := r.wait(t)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr %s", code, tc.code, r.stderr.String())
			}
			if !containsFold(r.stderr.String(), tc.want) {
				t.Errorf("stderr %q does not say %q", r.stderr.String(), tc.want)
			}
			if d := time.Since(start); d > 15*time.Second {
				t.Errorf("took %s", d)
			}
		})
	}
}
