package call

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	rtpstats "github.com/pion/interceptor/pkg/stats"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"github.com/rtckit/rtckit/call/media"
)

// mediaSet runs the call's media: the local tracks it sends and the remote
// tracks it receives, records and verifies.
type mediaSet struct {
	s *session

	mu       sync.Mutex
	out      []*outTrack
	in       []*inTrack
	verifier *media.Verifier
	// echo maps a kind to the local track received media is sent back on.
	echo map[webrtc.RTPCodecType]*webrtc.TrackLocalStaticRTP
	// closed (guarded by mu) turns away tracks that arrive after close;
	// wg counts the received tracks' readers.
	closed bool
	wg     sync.WaitGroup
	// byes (guarded by mu) are the received sources the peer said
	// goodbye to (RTCP BYE).
	byes map[uint32]bool
	// captured are the senders of live capture tracks; stopCapture
	// releases the devices.
	captured    []capturedTrack
	stopCapture func()
	// lastSent is the latest reading of the sent tracks' RTP statistics.
	lastSent map[uint32]*rtpstats.Stats
}

// outTrack is one sent track.
type outTrack struct {
	src    media.Source
	track  *webrtc.TrackLocalStaticSample
	sender *webrtc.RTPSender
	stats  media.SendStats
	err    error
	// rttNanos is the latest round-trip time from a receiver report.
	rttNanos atomic.Int64
}

func newMediaSet(s *session) *mediaSet { return &mediaSet{s: s} }

// openSources opens the configured sources: files, or the embedded clip.
func openSources(o MediaOptions) (video, audio media.Source, err error) {
	if o.VideoFile == "" && o.AudioFile == "" {
		video, audio, err = media.Clip()
		if err != nil {
			return nil, nil, err
		}
	}
	openFile := func(path string) (media.Source, error) {
		opts := media.OpenOptions{FrameRate: float64(o.FPS)}
		if o.NoLoop {
			return media.Open(path, opts)
		}
		return media.Loop(func() (media.Source, error) { return media.Open(path, opts) })
	}
	if o.VideoFile != "" {
		if video, err = openFile(o.VideoFile); err != nil {
			return nil, nil, err
		}
		if video.Kind() != webrtc.RTPCodecTypeVideo {
			_ = video.Close()
			return nil, nil, fmt.Errorf("%w: %s is not a video file", media.ErrUnsupported, o.VideoFile)
		}
	}
	if o.AudioFile != "" {
		if audio, err = openFile(o.AudioFile); err != nil {
			return nil, nil, errors.Join(err, closeSource(video))
		}
		if audio.Kind() != webrtc.RTPCodecTypeAudio {
			return nil, nil, errors.Join(fmt.Errorf("%w: %s is not an audio file", media.ErrUnsupported, o.AudioFile), closeSource(video), audio.Close())
		}
	}
	if o.NoVideo && video != nil {
		_ = video.Close()
		video = nil
	}
	if o.NoAudio && audio != nil {
		_ = audio.Close()
		audio = nil
	}
	return video, audio, nil
}

// CheckMedia opens the media files (or the embedded clip) that o names
// and closes them again, so that a file that cannot be sent is reported
// before any signaling rather than when a call arrives. Live capture is
// not checked.
func CheckMedia(o MediaOptions) error {
	if o.Capture != "" {
		return nil
	}
	video, audio, err := openSources(o)
	if err != nil {
		return err
	}
	return errors.Join(closeSource(video), closeSource(audio))
}

func closeSource(src media.Source) error {
	if src == nil {
		return nil
	}
	return src.Close()
}

// addLocal adds the tracks we send: the sources, or echo tracks.
func (m *mediaSet) addLocal(context.Context) error {
	s := m.s
	if s.opts.Verify {
		v, err := media.ClipVerifier()
		if err != nil {
			return err
		}
		m.verifier = v
	}
	if s.opts.Echo {
		return m.addEcho()
	}
	if s.opts.Media.Capture != "" {
		return m.addCapture()
	}
	video, audio, err := openSources(s.opts.Media)
	if err != nil {
		return err
	}
	srcs := []media.Source{video, audio}
	// closeFrom closes the sources not handed to the set (which closes
	// its own), when adding one fails.
	closeFrom := func(i int) {
		for _, src := range srcs[i:] {
			if src != nil {
				_ = src.Close()
			}
		}
	}
	for i, src := range srcs {
		if src == nil {
			continue
		}
		track, err := webrtc.NewTrackLocalStaticSample(src.Codec(), src.Kind().String(), "rtckit")
		if err != nil {
			closeFrom(i)
			return err
		}
		sender, err := s.pc.AddTrack(track)
		if err != nil {
			closeFrom(i)
			return fmt.Errorf("%w: adding the %s track: %v", ErrSetup, src.Kind(), err)
		}
		t := &outTrack{src: src, track: track, sender: sender}
		m.mu.Lock()
		m.out = append(m.out, t)
		m.mu.Unlock()
		go t.readRTCP(m.senderGoodbye)
	}
	return nil
}

// addEcho adds one VP8 and one Opus track that carry received media back.
func (m *mediaSet) addEcho() error {
	m.echo = map[webrtc.RTPCodecType]*webrtc.TrackLocalStaticRTP{}
	kinds := []struct {
		kind  webrtc.RTPCodecType
		codec webrtc.RTPCodecCapability
		skip  bool
	}{
		{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, m.s.opts.Media.NoVideo},
		{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, m.s.opts.Media.NoAudio},
	}
	for _, k := range kinds {
		if k.skip {
			continue
		}
		track, err := webrtc.NewTrackLocalStaticRTP(k.codec, k.kind.String(), "rtckit-echo")
		if err != nil {
			return err
		}
		sender, err := m.s.pc.AddTrack(track)
		if err != nil {
			return fmt.Errorf("%w: adding the echo %s track: %v", ErrSetup, k.kind, err)
		}
		m.echo[k.kind] = track
		go m.forwardPLI(sender, k.kind)
	}
	return nil
}

// addCapture adds live capture tracks (camera and microphone, or test
// generators), encoded by the capture build.
func (m *mediaSet) addCapture() error {
	o := m.s.opts.Media
	tracks, stop, err := Capture(o.Capture, !o.NoVideo, !o.NoAudio)
	if err != nil {
		return fmt.Errorf("capture: %w", err)
	}
	m.stopCapture = stop
	for _, t := range tracks {
		sender, err := m.s.pc.AddTrack(t)
		if err != nil {
			return fmt.Errorf("%w: adding the captured %s track: %v", ErrSetup, t.Kind(), err)
		}
		// The capture track reads its sender's RTCP itself (keyframe
		// requests reach the encoder); a second reader would steal them.
		// It passes the peer's BYE on, which ends the call.
		if g, ok := t.(goodbyeNotifier); ok {
			g.OnGoodbye(m.senderGoodbye)
		}
		m.mu.Lock()
		m.captured = append(m.captured, capturedTrack{sender: sender, kind: t.Kind().String(), codec: codecOf(sender)})
		m.mu.Unlock()
	}
	return nil
}

// goodbyeNotifier is a track that reads its sender's RTCP itself and
// reports the peer's BYE (the capture build's tracks).
type goodbyeNotifier interface {
	OnGoodbye(f func())
}

// capturedTrack is a sent live capture track.
type capturedTrack struct {
	sender      *webrtc.RTPSender
	kind, codec string
}

// codecOf is the MIME type a sender sends, once negotiated ("" before).
func codecOf(s *webrtc.RTPSender) string {
	if p := s.GetParameters(); len(p.Codecs) > 0 {
		return p.Codecs[0].MimeType
	}
	return ""
}

// readRTCP reads the sender's RTCP, so that interceptors (NACK, reports)
// run, takes the round-trip time from the peer's receiver reports and
// passes BYEs to onBye.
func (t *outTrack) readRTCP(onBye func()) {
	for {
		pkts, _, err := t.sender.ReadRTCP()
		if err != nil {
			return
		}
		now := time.Now()
		for _, p := range pkts {
			var reports []rtcp.ReceptionReport
			switch r := p.(type) {
			case *rtcp.ReceiverReport:
				reports = r.Reports
			case *rtcp.SenderReport:
				reports = r.Reports
			case *rtcp.Goodbye:
				onBye()
			}
			for _, rr := range reports {
				if rtt, ok := rttFromReport(rr, now); ok {
					t.rttNanos.Store(int64(rtt))
				}
			}
		}
	}
}

// rttFromReport is the round-trip time a reception report gives (RFC 3550
// 6.4.1): now − LSR − DLSR, in the middle 32 bits of NTP time.
func rttFromReport(rr rtcp.ReceptionReport, now time.Time) (time.Duration, bool) {
	if rr.LastSenderReport == 0 {
		return 0, false
	}
	mid := uint32(ntpTime(now) >> 16)
	units := mid - rr.LastSenderReport - rr.Delay
	if int32(units) < 0 {
		return 0, false
	}
	return time.Duration(uint64(units) * uint64(time.Second) >> 16), true
}

// ntpTime is t as a 64-bit NTP timestamp.
func ntpTime(t time.Time) uint64 {
	const ntpEpochOffset = 2_208_988_800 // seconds from 1900 to 1970
	secs := uint64(t.Unix()) + ntpEpochOffset
	frac := uint64(t.Nanosecond()) << 32 / uint64(time.Second)
	return secs<<32 | frac
}

// startSending paces every source onto its track once connected.
func (m *mediaSet) startSending(ctx context.Context) {
	go m.keepSentStats(ctx)
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, t := range m.out {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			err := media.Send(ctx, t.src, t.track, &t.stats)
			if err != nil && ctx.Err() == nil {
				m.mu.Lock()
				t.err = err
				m.mu.Unlock()
				m.s.log.Warn("call: sending stopped", "kind", t.src.Kind(), "err", err)
			}
		}()
	}
}

// close stops everything and releases the sources.
func (m *mediaSet) close() {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.wg.Wait()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, t := range m.out {
		_ = t.src.Close()
	}
	if m.stopCapture != nil {
		m.stopCapture()
	}
}
