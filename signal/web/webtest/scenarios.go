package webtest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// RunCall runs the call scenario: alice and bob open their pages (in their
// browsers, from their hubs), register, see each other and chat, bob
// declines a first call from alice and answers a second, both see the
// other's video playing, alice toggles her microphone and camera, alice
// sends bob a file that arrives with a matching SHA-256, and bob hangs up,
// which ends the call on both sides.
func RunCall(t *testing.T, alicePeer, bobPeer Peer) {
	alice := OpenIn(t, alicePeer.Browser, alicePeer.URL, "alice")
	bob := OpenIn(t, bobPeer.Browser, bobPeer.URL, "bob")
	alice.Register()
	bob.Register()
	for _, p := range []*Page{alice, bob} {
		p.WaitState("both online", func(s State) bool {
			return slices.Contains(s.Users, "alice") && slices.Contains(s.Users, "bob")
		})
	}

	// chat
	t.Log("step: chat")
	{
		const text = `hi <b>bob</b> & "co"`
		if !Eval[bool](alice, fmt.Sprintf("rtckit.sendChat(%q)", text)) {
			t.Fatal("alice could not send a chat message")
		}
		for _, p := range []*Page{alice, bob} {
			p.WaitState("chat message", func(s State) bool {
				return slices.Contains(s.Messages, Message{Name: "alice", Text: text})
			})
		}
	}

	// decline
	t.Log("step: decline")
	{
		// Through the page's controls this time, as a person would.
		alice.Do(`document.querySelector('#users button[aria-label="Call bob"]').click()`)
		bob.WaitState("incoming call", func(s State) bool { return s.Call != nil && s.Call.Phase == "incoming" && s.Call.Peer == "alice" })
		WaitFor(bob, "incoming call shown", `(() => { const d = document.getElementById("incoming"); return !d.hidden && d.textContent.includes("alice") })()`,
			func(shown bool) bool { return shown })
		bob.Do(`document.getElementById("decline").click()`)
		alice.WaitState("call declined", func(s State) bool { return s.Call == nil && strings.Contains(s.LastHangup, "bob") })
		bob.WaitState("call gone", func(s State) bool { return s.Call == nil })
	}

	// call
	t.Log("step: call")
	{
		alice.Do(`rtckit.call("bob")`)
		bob.WaitState("incoming call", func(s State) bool { return s.Call != nil && s.Call.Phase == "incoming" })
		bob.Do("rtckit.answer()")
		for _, p := range []*Page{alice, bob} {
			st := p.WaitState("call connected", func(s State) bool {
				return s.Call != nil && s.Call.ConnectionState == "connected" && s.Call.LocalCandidateType != ""
			})
			switch st.Call.LocalCandidateType {
			case "host", "srflx", "prflx", "relay":
			default:
				t.Errorf("%s: local candidate type %q", p.label(), st.Call.LocalCandidateType)
			}
			if want := p.Name < st.Call.Peer; st.Call.Polite == nil || *st.Call.Polite != want {
				t.Errorf("%s: polite = %v, want %v", p.label(), st.Call.Polite, want)
			}
		}
		alice.WaitPlaying()
		bob.WaitPlaying()

		type track struct {
			Kind    string `json:"kind"`
			Enabled bool   `json:"enabled"`
		}
		for _, off := range []bool{true, false} {
			alice.Do(fmt.Sprintf("rtckit.setMuted(%t)", off))
			alice.Do(`document.getElementById("camera").click()`)
			tracks := Eval[[]track](alice, "rtckit.localTracks()")
			if len(tracks) != 2 {
				t.Fatalf("alice's local tracks %+v, want audio and video", tracks)
			}
			for _, tr := range tracks {
				if tr.Enabled == off {
					t.Errorf("muted/camera off %t: %s track enabled %t", off, tr.Kind, tr.Enabled)
				}
			}
			pressed := Eval[[]string](alice, `["mute", "camera"].map((id) => document.getElementById(id).getAttribute("aria-pressed"))`)
			if want := fmt.Sprint(off); pressed[0] != want || pressed[1] != want {
				t.Errorf("aria-pressed %q, want %s", pressed, want)
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// file
	t.Log("step: file")
	{
		sum := sha256.Sum256(fileBytes(FileSize))
		want := hex.EncodeToString(sum[:])
		type result struct {
			OK     bool   `json:"ok"`
			SHA256 string `json:"sha256"`
			Error  string `json:"error"`
			Pauses int    `json:"pauses"`
		}
		start := time.Now()
		res := EvalWithin[result](alice, FileTimeout, fmt.Sprintf(`rtckit.sendFile("data.bin", `+fileJS+`)`, FileSize))
		if !res.OK || res.SHA256 != want {
			t.Fatalf("send: %+v, want ok with sha256 %s", res, want)
		}
		t.Logf("%d bytes sent in %s; alice paused %d times for the channel's buffer to drain",
			FileSize, time.Since(start).Round(time.Millisecond), res.Pauses)
		files := WaitFor(bob, "file received", "rtckit.receivedFiles()", func(fs []File) bool {
			return len(fs) == 1 && fs[0].Done
		})
		f := files[0]
		if f.OK == nil || !*f.OK || f.SHA256 != want || f.Expected != want || f.Size != FileSize || f.Name != "data.bin" {
			t.Fatalf("received %+v, want data.bin, %d bytes, sha256 %s", f, FileSize, want)
		}
	}

	// hangup
	t.Log("step: hangup")
	{
		bob.Do("rtckit.hangup()")
		bob.WaitState("call ended", func(s State) bool { return s.Call == nil })
		alice.WaitState("peer hung up", func(s State) bool { return s.Call == nil && strings.Contains(s.LastHangup, "bob hung up") })
	}
}

// RunResilience runs the recovery scenario: a duplicate of carol's name
// (in carol's browser) is made unique by the hub, carol calls dave, both
// sides restart ICE at once (colliding offers that perfect negotiation
// settles) and the call recovers, and dave's dropped hub connection is
// resumed under the same name while the call goes on.
func RunResilience(t *testing.T, carolPeer, davePeer Peer) {
	carol := OpenIn(t, carolPeer.Browser, carolPeer.URL, "carol")
	dave := OpenIn(t, davePeer.Browser, davePeer.URL, "dave")
	carol.Register()
	dave.Register()

	t.Log("step: duplicate name")
	{
		twin := OpenIn(t, carolPeer.Browser, carolPeer.URL, "carol")
		twin.Do(`rtckit.register("carol")`)
		st := twin.WaitState("unique name", func(s State) bool { return s.Name != "" })
		if st.Name == "carol" {
			t.Fatalf("second carol was accepted as %q", st.Name)
		}
		carol.WaitState("twin online", func(s State) bool { return slices.Contains(s.Users, st.Name) })
		twin.Tab.Close()
	}

	t.Log("step: call")
	carol.Do(`rtckit.call("dave")`)
	dave.WaitState("incoming call", func(s State) bool { return s.Call != nil && s.Call.Phase == "incoming" })
	dave.Do("rtckit.answer()")
	for _, p := range []*Page{carol, dave} {
		p.WaitState("call connected", func(s State) bool { return s.Call != nil && s.Call.ConnectionState == "connected" })
	}

	t.Log("step: simultaneous ICE restarts")
	{
		type restarts struct {
			Restarts       int    `json:"restarts"`
			Collisions     int    `json:"collisions"`
			IgnoredOffers  int    `json:"ignoredOffers"`
			Stale          int    `json:"staleCandidates"`
			SignalingState string `json:"signalingState"`
			Connection     string `json:"connectionState"`
		}
		// Both offers are sent before either arrives: a collision.
		carol.Do("rtckit.restartIce()")
		dave.Do("rtckit.restartIce()")
		for _, p := range []*Page{carol, dave} {
			s := WaitFor(p, "ICE restarted and settled", "rtckit.stats()", func(s restarts) bool {
				return s.Restarts >= 1 && s.SignalingState == "stable" && s.Connection == "connected"
			})
			t.Logf("%s: %d offer collisions, %d ignored, %d stale candidates dropped", p.label(), s.Collisions, s.IgnoredOffers, s.Stale)
		}
		for _, p := range []*Page{carol, dave} {
			p.WaitPlaying()
			if errs := p.State().Errors; len(errs) > 0 {
				t.Errorf("%s: errors after the ICE restart: %q", p.label(), errs)
			}
		}
	}

	t.Log("step: hub connection dropped and resumed")
	{
		dave.WaitState("session token", func(s State) bool { return s.HasSession })
		dave.Do("rtckit.dropSignaling()")
		dave.WaitState("reconnected", func(s State) bool {
			return s.Reconnects >= 1 && s.Signaling == "open" && s.Name == "dave" && s.HasSession
		})
		const text = "back again"
		if !Eval[bool](dave, fmt.Sprintf("rtckit.sendChat(%q)", text)) {
			t.Fatal("dave could not chat after the reconnect")
		}
		carol.WaitState("message from the resumed dave", func(s State) bool {
			return slices.Contains(s.Messages, Message{Name: "dave", Text: text})
		})
		if st := carol.State(); st.Call == nil || st.Call.ConnectionState != "connected" {
			t.Errorf("carol's call after dave's reconnect: %+v", st.Call)
		}
	}

	t.Log("step: hangup")
	carol.Do("rtckit.hangup()")
	dave.WaitState("peer hung up", func(s State) bool { return s.Call == nil })
}
