package e2e

import (
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/rtckit/rtckit/call"
	"github.com/rtckit/rtckit/internal/natlab"
	"github.com/rtckit/rtckit/internal/udpimpair"
)

// labHub runs `rtckit signal serve` in the lab's internet namespace on a
// server address and returns its WebSocket URL.
func labHub(t *testing.T, lab *natlab.Lab) string {
	t.Helper()
	var ev signalListening
	listen := netip.AddrPortFrom(lab.ServerIPs[0], 0).String()
	startJSONChild(t, lab.Command(t.Context(), lab.Internet, rtckitBin, "--json", "signal", "serve", "--listen", listen), &ev)
	if ev.Event != "listening" || ev.Addr == "" {
		t.Fatalf("first event %+v, want listening with addr", ev)
	}
	return "ws://" + ev.Addr + "/ws"
}

// labCall starts `rtckit --json call ARGS` in a site's client namespace.
func labCall(t *testing.T, lab *natlab.Lab, site *natlab.Site, args ...string) *callRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), callTimeout)
	return startCallCmd(t, lab.Command(ctx, site.Client, rtckitBin, append([]string{"--json", "call"}, args...)...), cancel)
}

// labSTUN is the lab's STUN server (coturn).
func labSTUN(lab *natlab.Lab) string {
	return "stun:" + netip.AddrPortFrom(lab.ServerIPs[0], natlab.CoturnPort).String()
}

// newCallLab builds a lab with one site per NAT kind, coturn and a hub.
func newCallLab(t *testing.T, kinds ...natlab.NATKind) (*natlab.Lab, string) {
	t.Helper()
	var sites []natlab.SiteConfig
	for _, k := range kinds {
		sites = append(sites, natlab.SiteConfig{NAT: k})
	}
	lab := natlab.NewForTest(t, natlab.Config{Sites: sites, Require: []string{natlab.TurnServer}})
	if _, err := natlab.StartCoturn(t.Context(), lab); err != nil {
		t.Fatal(err)
	}
	return lab, labHub(t, lab)
}

// logReport logs the numbers a lab call is judged on.
func logReport(t *testing.T, who string, rep *call.Report) {
	t.Helper()
	b, _ := json.Marshal(struct {
		End    string
		Setup  float64
		Conn   float64
		Path   *call.Path
		Phases []call.Phase
		Tracks []call.TrackReport
	}{rep.EndReason, rep.SetupMS, rep.ConnectedMS, rep.Path, rep.Phases, rep.Tracks})
	t.Logf("%s: %s", who, b)
}

// labTurnServe runs `rtckit turn serve` in the lab's internet namespace on
// the second server address and returns its UDP URI with credentials.
func labTurnServe(t *testing.T, lab *natlab.Lab) string {
	t.Helper()
	var ev struct {
		URIs []string `json:"uris"`
	}
	startJSONChild(t, lab.Command(t.Context(), lab.Internet, rtckitBin, "--json", "turn", "serve",
		"--listen", lab.ServerIPs[1].String(), "--port", "3480", "--user", "lab:secret", "--allow-private-peers"), &ev)
	for _, u := range ev.URIs {
		if strings.HasSuffix(u, "transport=udp") {
			return strings.Replace(u, "turn:", "turn:lab:secret@", 1)
		}
	}
	t.Fatalf("turn serve URIs %v, want a UDP one", ev.URIs)
	return ""
}

// TestCallNATLabSymmetricRelay: with both peers behind symmetric NATs no
// direct path exists, and ICE (policy all) must find that out by itself
// and settle on the TURN relay (`rtckit turn serve`); every frame still
// verifies.
func TestCallNATLabSymmetricRelay(t *testing.T) {
	lab, hub := newCallLab(t, natlab.NATSymmetric, natlab.NATSymmetric)
	ice := []string{"--stun", labSTUN(lab), "--turn", labTurnServe(t, lab), "--verify", "--expect-path", "relay"}
	bob := labCall(t, lab, lab.Sites[1], append([]string{"--hub", hub, "--as", "bob", "--answer", "--wait", "30s"}, ice...)...)
	alice := labCall(t, lab, lab.Sites[0], append([]string{"--hub", hub, "--as", "alice", "--to", "bob", "--wait", "15s",
		"--duration", "4s", "--min-frames", "30"}, ice...)...)
	code, rep := alice.wait(t)
	checkHealthyReport(t, "alice", code, rep, alice.stderr.String())
	bcode, brep := bob.wait(t)
	checkHealthyReport(t, "bob", bcode, brep, bob.stderr.String())
	for name, r := range map[string]*call.Report{"alice": rep, "bob": brep} {
		logReport(t, name, r)
		if r.Path == nil || !r.Path.Relay {
			t.Errorf("%s: path %+v, want a relay", name, r.Path)
			continue
		}
		// Neither NAT lets a peer's packets through to the other's
		// reflexive address: at least one end of the pair is the relay.
		if r.Path.Local.Type != "relay" && r.Path.Remote.Type != "relay" {
			t.Errorf("%s: path %+v has no relay candidate", name, r.Path)
		}
	}
	if rep.EndReason != call.EndDuration {
		t.Errorf("alice: end %q, want %q", rep.EndReason, call.EndDuration)
	}
}

const (
	// impairedDelay is the proxy's delay each way on the impaired path.
	impairedDelay = 100 * time.Millisecond
	// impairedLoss is the WAN loss, in percent, on the impaired site.
	impairedLoss = 5
	// impairedDuration is how long the impaired call lasts.
	impairedDuration = 8 * time.Second
	// impairedMinFrames is the floor of received video frames on each side
	// of the impaired call: 240 are sent, and 233 to 238 arrived in
	// measured runs.
	impairedMinFrames = 180
)

// startTURNProxy starts an impairing proxy in the lab's internet namespace
// in front of coturn's UDP port and returns its address.
func startTURNProxy(t *testing.T, lab *natlab.Lab, imp udpimpair.Impairment) (*udpimpair.Proxy, netip.AddrPort) {
	t.Helper()
	pc, err := lab.ListenPacket(lab.Internet, "udp4", netip.AddrPortFrom(lab.ServerIPs[1], 0).String())
	if err != nil {
		t.Fatal(err)
	}
	p, err := udpimpair.New(pc, udpimpair.Config{
		Target: netip.AddrPortFrom(lab.ServerIPs[0], natlab.CoturnPort),
		Up:     imp, Down: imp,
		Dial: func() (net.PacketConn, error) { return lab.ListenPacket(lab.Internet, "udp4", ":0") },
	})
	if err != nil {
		_ = pc.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p, pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

// TestCallNATLabImpaired: alice's site loses 5% of its WAN packets and all
// her media crosses a proxy that delays it 100 ms each way on its way to
// the TURN relay. The call stays up for its whole duration, NACKs recover
// lost packets (or whole frames are skipped: every frame shown still
// verifies), and both reports show the loss and the long round trip.
//
// Bob is relay-only too. With all his candidates, alice's TURN client binds
// a channel to each of his two server-reflexive addresses; coturn has
// answered one such ChannelBind with 400, and pion's TURN client then
// closes the whole allocation, leaving relay-only alice without a path.
func TestCallNATLabImpaired(t *testing.T) {
	lab, hub := newCallLab(t, natlab.NATPortRestricted, natlab.NATPortRestricted)
	proxy, proxyAddr := startTURNProxy(t, lab, udpimpair.Impairment{Delay: impairedDelay})
	if err := lab.Sites[0].Impair(t.Context(), natlab.Impairment{Loss: impairedLoss}); err != nil {
		t.Fatal(err)
	}
	aliceTURN := "turn:" + natlab.CoturnUser + ":" + natlab.CoturnPassword + "@" + proxyAddr.String() + "?transport=udp"
	bob := labCall(t, lab, lab.Sites[1], "--hub", hub, "--as", "bob", "--answer", "--wait", "30s",
		"--turn", labTURN(lab, "udp"), "--ice-policy", "relay", "--verify")
	start := time.Now()
	alice := labCall(t, lab, lab.Sites[0], "--hub", hub, "--as", "alice", "--to", "bob", "--wait", "15s",
		"--turn", aliceTURN, "--ice-policy", "relay", "--verify", "--expect-path", "relay",
		"--duration", impairedDuration.String())
	code, rep := alice.wait(t)
	t.Logf("alice's call took %v", time.Since(start))
	bcode, brep := bob.wait(t)
	t.Logf("proxy: %+v", proxy.Stats())
	for name, r := range map[string]*call.Report{"alice": rep, "bob": brep} {
		if r != nil {
			logReport(t, name, r)
		}
	}
	checkImpairedReport(t, "alice", code, rep, alice.stderr.String())
	checkImpairedReport(t, "bob", bcode, brep, bob.stderr.String())
	if rep.EndReason != call.EndDuration {
		t.Errorf("alice: end %q, want %q: the call must last its whole duration", rep.EndReason, call.EndDuration)
	}
	if floor := 0.9 * float64(impairedDuration.Milliseconds()); rep.ConnectedMS < floor {
		t.Errorf("alice: connected %.0f ms, want at least %.0f", rep.ConnectedMS, floor)
	}
	if rep.Path.Local.Type != "relay" {
		t.Errorf("alice: path %+v, want her own relay", rep.Path)
	}
	var sent uint64
	for _, tr := range rep.Tracks {
		if tr.Direction == "out" {
			sent += tr.Packets
		}
	}
	// Apart from what the lossy WAN drops, all of it goes through the proxy.
	if st := proxy.Stats(); st.Up.Received < sent*8/10 || st.Down.Sent == 0 {
		t.Errorf("proxy %+v: alice's %d RTP packets did not all cross it", st, sent)
	}

	// Loss: seen on some direction by the receiver or reported back to the sender.
	var lost bool
	var nacks uint32
	for _, r := range []*call.Report{rep, brep} {
		for _, tr := range r.Tracks {
			lost = lost || tr.Lost > 0 || tr.LossFraction > 0
			nacks += tr.NACKs
		}
	}
	if !lost {
		t.Error("no track reports any loss")
	}
	if nacks == 0 {
		t.Error("no track reports NACKs")
	}
	// Every round trip of alice's crosses the proxy both ways. Her relay
	// candidate needs two (an unauthenticated Allocate, then one with
	// credentials) after the offer starts gathering.
	offer, _ := phase(rep, call.PhaseOffer)
	cand, ok := phase(rep, call.PhaseLocalCandidate)
	if floor := 0.9 * 4 * float64(impairedDelay.Milliseconds()); !ok || cand-offer < floor {
		t.Errorf("alice: relay candidate %.0f ms after the offer, want at least %.0f ms: %+v", cand-offer, floor, rep.Phases)
	}
	// RTCP round-trip times, when reported, cross the proxy twice too.
	minRTT := 2 * 0.75 * float64(impairedDelay.Milliseconds())
	for name, r := range map[string]*call.Report{"alice": rep, "bob": brep} {
		for _, tr := range r.Tracks {
			if tr.Direction == "out" && tr.RTTMS != 0 && tr.RTTMS < minRTT {
				t.Errorf("%s: %s track rtt %.1f ms, want at least %.0f", name, tr.Kind, tr.RTTMS, minRTT)
			}
		}
	}
}

// checkImpairedReport asserts a call that ended normally in spite of loss:
// enough video arrived and every received frame verified.
func checkImpairedReport(t *testing.T, who string, code int, rep *call.Report, stderr string) {
	t.Helper()
	if rep == nil {
		t.Fatalf("%s: exit %d, no report; stderr: %s", who, code, stderr)
	}
	if code != 0 || !rep.OK {
		t.Fatalf("%s: exit %d, ok=%v, error %q; stderr: %s", who, code, rep.OK, rep.Error, stderr)
	}
	if rep.Path == nil || !rep.Path.Relay {
		t.Errorf("%s: path %+v, want a relay", who, rep.Path)
	}
	v, ok := track(rep, "in", "video")
	if !ok || v.Frames < impairedMinFrames || v.Verified == 0 || v.Mismatched != 0 {
		t.Errorf("%s: received video %+v, want at least %d frames, all verified", who, v, impairedMinFrames)
	}
	a, ok := track(rep, "in", "audio")
	if !ok || a.Frames == 0 || a.Mismatched != 0 {
		t.Errorf("%s: received audio %+v, want frames, none mismatched", who, a)
	}
}
