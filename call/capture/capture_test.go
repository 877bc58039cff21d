//go:build mediadevices

package capture

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"

	"github.com/rtckit/rtckit/call"
	"github.com/rtckit/rtckit/peer"
)

// The capture build plugs Open into the call package as is.
var _ call.CaptureFunc = Open

// testTimeout bounds connecting a pair and receiving its first media.
const testTimeout = 20 * time.Second

// Enough media to show the encoders run: a second of video frames and of
// 20 ms Opus packets. The receiver asks for a keyframe after
// pliAfterFrames frames and wants one within keyFrameWithin frames, far
// fewer than the encoder's keyframe interval.
const (
	wantVideoFrames  = 30
	wantAudioPackets = 50
	pliAfterFrames   = 5
	keyFrameWithin   = 15
)

func TestSourcesMatchCall(t *testing.T) {
	if SourceDevices != call.CaptureDevices || SourceTest != call.CaptureTest {
		t.Fatalf("sources %q, %q; call has %q, %q", SourceDevices, SourceTest, call.CaptureDevices, call.CaptureTest)
	}
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name         string
		source       string
		video, audio bool
		want         error
	}{
		{"unknown source", "screen", true, true, ErrSource},
		{"nothing wanted", SourceTest, false, false, ErrSource},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tracks, stop, err := Open(tt.source, tt.video, tt.audio)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open = %d tracks, %v; want %v", len(tracks), err, tt.want)
			}
			if stop != nil || tracks != nil {
				t.Fatal("Open returned tracks or stop with an error")
			}
		})
	}
}

// TestOpenDevices checks the error on a machine without a camera or
// microphone, and that a device, where there is one, opens.
func TestOpenDevices(t *testing.T) {
	tests := []struct {
		kind   webrtc.RTPCodecType
		device string
	}{
		{webrtc.RTPCodecTypeVideo, "camera"},
		{webrtc.RTPCodecTypeAudio, "microphone"},
	}
	for _, tt := range tests {
		t.Run(tt.device, func(t *testing.T) {
			ids, err := driverIDs(SourceDevices, tt.kind)
			video := tt.kind == webrtc.RTPCodecTypeVideo
			tracks, stop, openErr := Open(SourceDevices, video, !video)
			if len(ids) == 0 {
				if !errors.Is(err, ErrNoDevice) || !errors.Is(openErr, ErrNoDevice) || !strings.Contains(openErr.Error(), "no "+tt.device) {
					t.Fatalf("without a %s: Open = %v; want ErrNoDevice naming it", tt.device, openErr)
				}
				return
			}
			if openErr != nil {
				t.Fatalf("%ss %v: Open = %v", tt.device, ids, openErr)
			}
			defer stop()
			if len(tracks) != 1 || tracks[0].Kind() != tt.kind {
				t.Fatalf("Open(devices, %s) = %v; want one %s track", tt.device, tracks, tt.kind)
			}
		})
	}
}

func TestOpenTracks(t *testing.T) {
	tests := []struct {
		video, audio bool
		want         []webrtc.RTPCodecType
	}{
		{true, true, []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio}},
		{true, false, []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo}},
		{false, true, []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio}},
	}
	for _, tt := range tests {
		tracks, stop, err := Open(SourceTest, tt.video, tt.audio)
		if err != nil {
			t.Fatalf("Open(test, %v, %v): %v", tt.video, tt.audio, err)
		}
		var got []webrtc.RTPCodecType
		for _, tr := range tracks {
			got = append(got, tr.Kind())
			if tr.ID() != tr.Kind().String() || tr.StreamID() != streamID {
				t.Errorf("track ID %q stream %q; want %q, %q", tr.ID(), tr.StreamID(), tr.Kind(), streamID)
			}
		}
		stop()
		if len(got) != len(tt.want) || (len(got) > 0 && got[0] != tt.want[0]) || (len(got) > 1 && got[1] != tt.want[1]) {
			t.Errorf("Open(test, %v, %v) kinds %v; want %v", tt.video, tt.audio, got, tt.want)
		}
	}
}

// TestOpenTwice checks that the process-wide drivers open once at a time.
func TestOpenTwice(t *testing.T) {
	_, stop, err := Open(SourceTest, true, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, stop2, err := Open(SourceTest, true, true); err == nil {
		stop2()
		stop()
		t.Fatal("the test source opened twice at once")
	}
	stop()
	stop() // a second stop does nothing
	_, stop, err = Open(SourceTest, true, true)
	if err != nil {
		t.Fatalf("after stop: %v", err)
	}
	stop()
}

// TestOpenSendsOverPeerConnection sends the test source from a
// PeerConnection of peer.NewAPI (the one rtckit call uses) to a receiver
// that offers VP8 and Opus with the given payload types, and checks that
// whole VP8 frames, a keyframe among them, and Opus packets arrive with
// the negotiated payload types.
func TestOpenSendsOverPeerConnection(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	tests := []struct {
		name             string
		videoPT, audioPT webrtc.PayloadType
	}{
		{"pion default payload types", 96, 111},
		{"Firefox payload types", 120, 109},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sender, receiver := newPair(t, tt.videoPT, tt.audioPT)
			tracks, stop, err := Open(SourceTest, true, true)
			if err != nil {
				t.Fatal(err)
			}
			defer stop()

			got := make(chan received, 2)
			receiver.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
				got <- receive(tr, func() error {
					return receiver.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(tr.SSRC())}})
				})
			})
			for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
				if _, err := receiver.AddTransceiverFromKind(kind, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
			defer cancel()
			offer := describe(ctx, t, receiver, nil)
			if err := sender.SetRemoteDescription(offer); err != nil {
				t.Fatal(err)
			}
			byes := make(chan string, 2*len(tracks))
			for _, tr := range tracks {
				// No reading of the sender's RTCP here: the track reads it.
				if _, err := sender.AddTrack(tr); err != nil {
					t.Fatal(err)
				}
				tr.(interface{ OnGoodbye(func()) }).OnGoodbye(func() { byes <- tr.ID() })
			}
			answer := describe(ctx, t, sender, &offer)
			if err := receiver.SetRemoteDescription(answer); err != nil {
				t.Fatal(err)
			}

			want := map[string]webrtc.PayloadType{webrtc.MimeTypeVP8: tt.videoPT, webrtc.MimeTypeOpus: tt.audioPT}
			for range 2 {
				var r received
				select {
				case r = <-got:
				case <-ctx.Done():
					t.Fatal("the captured tracks did not arrive")
				}
				if r.err != nil {
					t.Fatalf("%s: %v", r.mime, r.err)
				}
				pt, ok := want[r.mime]
				if !ok {
					t.Fatalf("received codec %s", r.mime)
				}
				delete(want, r.mime)
				if r.negotiatedPT != pt || r.packetPT != pt {
					t.Errorf("%s: negotiated payload type %d, packets %d; want %d", r.mime, r.negotiatedPT, r.packetPT, pt)
				}
				if r.mime == webrtc.MimeTypeVP8 && (r.frames < wantVideoFrames || r.keyFrameAfterPLI == 0 || r.keyFrameAfterPLI > keyFrameWithin) {
					t.Errorf("VP8: %d frames; keyframe %d frames after the PLI, want 1–%d", r.frames, r.keyFrameAfterPLI, keyFrameWithin)
				}
				if r.mime == webrtc.MimeTypeOpus && r.packets < wantAudioPackets {
					t.Errorf("Opus: %d packets", r.packets)
				}
			}
			// A BYE that names no source after a report on what arrived,
			// as rtckit's receive-only side sends when it hangs up,
			// reaches every captured track.
			rr := &rtcp.ReceiverReport{SSRC: 1}
			for _, r := range receiver.GetReceivers() {
				if tr := r.Track(); tr != nil {
					rr.Reports = append(rr.Reports, rtcp.ReceptionReport{SSRC: uint32(tr.SSRC())})
				}
			}
			if err := receiver.WriteRTCP([]rtcp.Packet{rr, &rtcp.Goodbye{}}); err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			for len(seen) < len(tracks) {
				select {
				case id := <-byes:
					seen[id] = true
				case <-ctx.Done():
					t.Fatalf("BYE seen by %v of %d tracks", seen, len(tracks))
				}
			}
			_ = sender.Close()
			_ = receiver.Close()
		})
	}
}

// received is what a receiver saw of one track.
type received struct {
	mime                   string
	negotiatedPT, packetPT webrtc.PayloadType
	packets, frames        int
	// keyFrameAfterPLI counts the frames from the PLI to the first
	// keyframe after it, that keyframe included; 0 means none came.
	keyFrameAfterPLI int
	err              error
}

// receive reads a track until it has enough media: wantVideoFrames whole
// VP8 frames and a keyframe after the PLI it sends with pli after
// pliAfterFrames frames, or wantAudioPackets Opus packets.
func receive(tr *webrtc.TrackRemote, pli func() error) received {
	r := received{mime: tr.Codec().MimeType, negotiatedPT: tr.PayloadType()}
	var vp8 codecs.VP8Packet
	pliAt := -1
	for {
		pkt, _, err := tr.ReadRTP()
		if err != nil {
			r.err = err
			return r
		}
		r.packets++
		r.packetPT = webrtc.PayloadType(pkt.PayloadType)
		if r.mime != webrtc.MimeTypeVP8 {
			if r.packets >= wantAudioPackets {
				return r
			}
			continue
		}
		payload, err := vp8.Unmarshal(pkt.Payload)
		if err != nil {
			r.err = err
			return r
		}
		// The first partition of a frame starts with its header, whose
		// lowest bit is 0 in a keyframe.
		if vp8.S == 1 && vp8.PID == 0 && len(payload) > 0 && payload[0]&1 == 0 && pliAt >= 0 && r.keyFrameAfterPLI == 0 {
			r.keyFrameAfterPLI = r.frames - pliAt + 1
		}
		if pkt.Marker {
			r.frames++
			if r.frames == pliAfterFrames {
				if r.err = pli(); r.err != nil {
					return r
				}
				pliAt = r.frames
			}
			if r.frames >= wantVideoFrames && (r.keyFrameAfterPLI > 0 || r.frames-pliAt > keyFrameWithin) {
				return r
			}
		}
	}
}

// newPair returns a sender made from peer.NewAPI and a receiver whose
// MediaEngine numbers VP8 and Opus with the given payload types, both on
// loopback; they are closed when the test ends.
func newPair(t *testing.T, videoPT, audioPT webrtc.PayloadType) (sender, receiver *webrtc.PeerConnection) {
	t.Helper()
	ice := peer.ICEConfig{IncludeLoopback: true, Interfaces: []string{"lo"}, Networks: []string{"udp4"}}
	sendAPI, err := peer.NewAPI(peer.APIConfig{ICE: ice})
	if err != nil {
		t.Fatal(err)
	}
	me := &webrtc.MediaEngine{}
	for _, c := range []struct {
		codec webrtc.RTPCodecParameters
		kind  webrtc.RTPCodecType
	}{
		{webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, PayloadType: videoPT}, webrtc.RTPCodecTypeVideo},
		{webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}, PayloadType: audioPT}, webrtc.RTPCodecTypeAudio},
	} {
		if err := me.RegisterCodec(c.codec, c.kind); err != nil {
			t.Fatal(err)
		}
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(me, ir); err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	recvAPI := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))

	if sender, err = sendAPI.NewPeerConnection(webrtc.Configuration{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sender.Close() })
	if receiver, err = recvAPI.NewPeerConnection(webrtc.Configuration{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = receiver.Close() })
	return sender, receiver
}

// describe makes pc's offer (remote nil) or answer, with every candidate
// gathered.
func describe(ctx context.Context, t *testing.T, pc *webrtc.PeerConnection, remote *webrtc.SessionDescription) webrtc.SessionDescription {
	t.Helper()
	var sd webrtc.SessionDescription
	var err error
	if remote == nil {
		sd, err = pc.CreateOffer(nil)
	} else {
		sd, err = pc.CreateAnswer(nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(sd); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		t.Fatal("gathering did not complete")
	}
	return *pc.LocalDescription()
}
