package media

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"go.uber.org/goleak"
)

// loopbackTimeout bounds each wait of the loopback call test.
const loopbackTimeout = 15 * time.Second

// limitSource ends src after n frames.
type limitSource struct {
	Source
	n int
}

func (l *limitSource) Next() (media.Sample, error) {
	if l.n == 0 {
		return media.Sample{}, io.EOF
	}
	l.n--
	return l.Source.Next()
}

// loopbackAPI is a pion API that connects over loopback addresses only,
// with pion's default codecs and interceptors (NACK, RTCP reports, TWCC).
func loopbackAPI(t *testing.T) *webrtc.API {
	t.Helper()
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(me, ir); err != nil {
		t.Fatal(err)
	}
	return webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir))
}

// connect runs offer/answer between two PeerConnections with complete ICE
// gathering and waits until the offerer is connected.
func connect(t *testing.T, offerer, answerer *webrtc.PeerConnection) {
	t.Helper()
	connected := make(chan struct{})
	var once sync.Once
	offerer.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(connected) })
		}
	})
	describe := func(pc *webrtc.PeerConnection, sd webrtc.SessionDescription) {
		gathered := webrtc.GatheringCompletePromise(pc)
		if err := pc.SetLocalDescription(sd); err != nil {
			t.Fatal(err)
		}
		select {
		case <-gathered:
		case <-time.After(loopbackTimeout):
			t.Fatal("ICE gathering did not complete")
		}
	}
	offer, err := offerer.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	describe(offerer, offer)
	if err := answerer.SetRemoteDescription(*offerer.LocalDescription()); err != nil {
		t.Fatal(err)
	}
	answer, err := answerer.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	describe(answerer, answer)
	if err := offerer.SetRemoteDescription(*answerer.LocalDescription()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-connected:
	case <-time.After(loopbackTimeout):
		t.Fatal("the peers did not connect")
	}
}

// waitFor polls cond until it holds, failing the test after loopbackTimeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(loopbackTimeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// TestLoopbackCall sends the clip from one pion PeerConnection to another
// over loopback and checks that every frame arrives intact, then ends the
// video receiver as SIGINT would (context cancelled) and the audio one as a
// dropped connection would (PeerConnection closed); both recordings must
// satisfy ffprobe.
func TestLoopbackCall(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const videoFrames, audioPackets = 40, 60 // 1.33 s and 1.2 s
	verifier, err := ClipVerifier()
	if err != nil {
		t.Fatal(err)
	}
	api := loopbackAPI(t)
	sender, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sender.Close() }()
	receiver, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = receiver.Close() }()

	video, audio, err := Clip()
	if err != nil {
		t.Fatal(err)
	}
	sources := map[string]Source{"video": &limitSource{video, videoFrames}, "audio": &limitSource{audio, audioPackets}}
	tracks := map[string]*webrtc.TrackLocalStaticSample{}
	for kind, src := range sources {
		track, err := webrtc.NewTrackLocalStaticSample(src.Codec(), kind, "rtckit")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sender.AddTrack(track); err != nil {
			t.Fatal(err)
		}
		tracks[kind] = track
	}

	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	videoCtx, cancelVideo := context.WithCancel(ctx)
	defer cancelVideo()
	type running struct {
		rx   *Receiver
		done chan error
	}
	var mu sync.Mutex
	receivers := map[string]running{}
	receiver.OnTrack(func(track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		rx, err := NewReceiver(track, ReceiveOptions{
			RecordDir: dir, Verify: verifier,
			RequestKeyframe: func() {
				_ = receiver.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(track.SSRC())}})
			},
		})
		if err != nil {
			t.Error(err)
			return
		}
		runCtx := ctx
		if track.Kind() == webrtc.RTPCodecTypeVideo {
			runCtx = videoCtx
		}
		r := running{rx: rx, done: make(chan error, 1)}
		mu.Lock()
		receivers[track.Kind().String()] = r
		mu.Unlock()
		go func() { r.done <- rx.Run(runCtx) }()
	})
	get := func(kind string) (running, bool) {
		mu.Lock()
		defer mu.Unlock()
		r, ok := receivers[kind]
		return r, ok
	}

	connect(t, sender, receiver)
	stats := map[string]*SendStats{"video": {}, "audio": {}}
	var wg sync.WaitGroup
	for kind, src := range sources {
		wg.Go(func() {
			if err := Send(ctx, src, tracks[kind], stats[kind]); err != nil {
				t.Errorf("sending %s: %v", kind, err)
			}
		})
	}
	wg.Wait()
	if v, a := stats["video"].Snapshot().Frames, stats["audio"].Snapshot().Frames; v != videoFrames || a != audioPackets {
		t.Fatalf("sent %d video frames and %d audio packets", v, a)
	}

	// The last frame waits in the sample builder for a packet after it;
	// ending the receiver flushes it.
	for kind, want := range map[string]uint64{"video": videoFrames - 1, "audio": audioPackets - 1} {
		waitFor(t, kind+" frames", func() bool {
			r, ok := get(kind)
			return ok && r.rx.Stats().Frames >= want
		})
	}
	v, _ := get("video")
	cancelVideo()
	if err := <-v.done; !errors.Is(err, context.Canceled) {
		t.Errorf("video receiver returned %v, want context.Canceled", err)
	}
	if err := receiver.Close(); err != nil {
		t.Fatal(err)
	}
	a, _ := get("audio")
	select {
	case err := <-a.done:
		if err != nil {
			t.Errorf("audio receiver returned %v after the connection closed, want nil", err)
		}
	case <-time.After(loopbackTimeout):
		t.Fatal("the audio receiver did not end with the connection")
	}

	for kind, want := range map[string]uint64{"video": videoFrames, "audio": audioPackets} {
		r, _ := get(kind)
		s := r.rx.Stats()
		t.Logf("%s: %+v verify %+v recording %+v", kind, s, *s.Verify, *s.Recording)
		if s.Frames != want || s.Verify.Verified != want || s.Verify.Mismatched != 0 || s.Lost != 0 {
			t.Errorf("%s: %d frames, %d verified, %d mismatched, %d lost; want %d verified", kind, s.Frames, s.Verify.Verified, s.Verify.Mismatched, s.Lost, want)
		}
		if s.Recording.Frames != want || s.Recording.Error != "" || filepath.Dir(s.Recording.Path) != dir {
			t.Errorf("%s recording %+v", kind, *s.Recording)
		}
		if _, err := os.Stat(s.Recording.Path); err != nil {
			t.Fatal(err)
		}
		entry, flag := "nb_read_frames", "-count_frames"
		if kind == "audio" {
			entry, flag = "nb_read_packets", "-count_packets"
		}
		if n := ffprobeInt(t, s.Recording.Path, entry, flag); uint64(n) != want { //nolint:gosec // small
			t.Errorf("%s: ffprobe reads %d frames, want %d", kind, n, want)
		}
	}
	if r, _ := get("video"); r.rx.Stats().Keyframes != 2 {
		t.Errorf("video keyframes %d, want 2 (frames 0 and 30)", r.rx.Stats().Keyframes)
	}
	if err := sender.Close(); err != nil {
		t.Fatal(err)
	}
}
