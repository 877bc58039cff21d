package media

import (
	"context"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
)

// fakeTrack is a packetReader fed from a channel; closing the channel ends
// the track, and SetReadDeadline interrupts a blocked read.
type fakeTrack struct {
	packets  chan *rtp.Packet
	once     sync.Once
	deadline chan struct{}
}

func newFakeTrack(buffer int) *fakeTrack {
	return &fakeTrack{packets: make(chan *rtp.Packet, buffer), deadline: make(chan struct{})}
}

func (f *fakeTrack) ReadRTP() (*rtp.Packet, interceptor.Attributes, error) {
	select {
	case p, ok := <-f.packets:
		if !ok {
			return nil, nil, io.EOF
		}
		return p, nil, nil
	case <-f.deadline:
		return nil, nil, os.ErrDeadlineExceeded
	}
}

func (f *fakeTrack) SetReadDeadline(time.Time) error {
	f.once.Do(func() { close(f.deadline) })
	return nil
}

// packetize turns the first n frames of src into RTP packets as pion's
// TrackLocalStaticSample would.
func packetize(t testing.TB, src Source, n int) [][]*rtp.Packet {
	t.Helper()
	var payloader rtp.Payloader
	clock := uint32(90000)
	switch src.Codec().MimeType {
	case webrtc.MimeTypeVP8:
		payloader = &codecs.VP8Payloader{EnablePictureID: true}
	case webrtc.MimeTypeVP9:
		payloader = &codecs.VP9Payloader{}
	case webrtc.MimeTypeAV1:
		payloader = &codecs.AV1Payloader{}
	case webrtc.MimeTypeH264:
		payloader = &codecs.H264Payloader{}
	case webrtc.MimeTypeOpus:
		payloader, clock = &codecs.OpusPayloader{}, 48000
	default:
		t.Fatalf("no payloader for %s", src.Codec().MimeType)
	}
	p := rtp.NewPacketizer(1200, 96, 0x1234, payloader, rtp.NewFixedSequencer(65500), clock)
	var frames [][]*rtp.Packet
	var remainder float64 // of RTP ticks, carried like TrackLocalStaticSample does
	for range n {
		s, err := src.Next()
		if err != nil {
			t.Fatal(err)
		}
		ticks := s.Duration.Seconds()*float64(clock) + remainder
		remainder = ticks - math.Floor(ticks)
		frames = append(frames, p.Packetize(s.Data, uint32(ticks)))
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	return frames
}

// clipPackets returns the packets of the clip's first n video frames or
// audio packets.
func clipPackets(t testing.TB, video bool, n int) [][]*rtp.Packet {
	t.Helper()
	v, a, err := Clip()
	if err != nil {
		t.Fatal(err)
	}
	if video {
		_ = a.Close()
		return packetize(t, v, n)
	}
	_ = v.Close()
	return packetize(t, a, n)
}

// runReceiver feeds packets to a new Receiver until they run out and
// returns its stats and Run's error.
func runReceiver(t testing.TB, video bool, packets []*rtp.Packet, opts ReceiveOptions) (ReceiveStats, error) {
	t.Helper()
	kind, codec := webrtc.RTPCodecTypeAudio, webrtc.RTPCodecParameters{RTPCodecCapability: codecOpus}
	if video {
		kind, codec = webrtc.RTPCodecTypeVideo, webrtc.RTPCodecParameters{RTPCodecCapability: codecVP8}
	}
	track := newFakeTrack(len(packets))
	for _, p := range packets {
		track.packets <- p
	}
	close(track.packets)
	r, err := newReceiver(track, kind, codec, "clip {1}", 0x1234, opts)
	if err != nil {
		t.Fatal(err)
	}
	err = r.Run(context.Background())
	return r.Stats(), err
}

// flatten joins per-frame packet lists.
func flatten(frames [][]*rtp.Packet) []*rtp.Packet {
	var out []*rtp.Packet
	for _, f := range frames {
		out = append(out, f...)
	}
	return out
}

func TestReceiverReassemblesVerifiesAndRecords(t *testing.T) {
	v, err := ClipVerifier()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	frames := clipPackets(t, true, ClipFrames)
	packets := flatten(frames)
	// Swap neighbours and repeat a few packets: reordering and duplicates
	// must not change the frames.
	for i := 10; i+1 < len(packets); i += 17 {
		packets[i], packets[i+1] = packets[i+1], packets[i]
	}
	packets = append(packets[:50:50], append([]*rtp.Packet{packets[40], packets[49]}, packets[50:]...)...)
	var requests int
	stats, err := runReceiver(t, true, packets, ReceiveOptions{RecordDir: dir, Verify: v, RequestKeyframe: func() { requests++ }})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Frames != ClipFrames || stats.Keyframes != 3 || stats.Duplicates != 2 || stats.Lost != 0 || stats.DroppedPackets != 0 {
		t.Errorf("stats %+v", stats)
	}
	if stats.Packets != uint64(len(packets)-2) || stats.FirstKeyframe.IsZero() || stats.FirstFrame.After(stats.LastPacket) {
		t.Errorf("stats %+v", stats)
	}
	if *stats.Verify != (VerifyStats{Verified: ClipFrames}) {
		t.Errorf("verify %+v", *stats.Verify)
	}
	if requests != 0 {
		t.Errorf("%d keyframe requests for a clean stream", requests)
	}
	rec := stats.Recording
	if want := filepath.Join(dir, "video-clip__1_-4660.ivf"); rec.Path != want || rec.Frames != ClipFrames || rec.Error != "" {
		t.Fatalf("recording %+v, want %s", rec, want)
	}
	if fi, err := os.Stat(rec.Path); err != nil || fi.Size() != rec.Bytes {
		t.Errorf("recording is %v bytes (%v), stats say %d", fi.Size(), err, rec.Bytes)
	}
	// The recording holds the clip's frames with the clip's timing, and
	// ffmpeg decodes all of it without a complaint.
	src, err := Open(rec.Path, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, durs := readAll(t, src, 1000)
	if len(got) != ClipFrames {
		t.Fatalf("recording has %d frames", len(got))
	}
	for i := range got {
		if !v.Contains(got[i]) {
			t.Errorf("recorded frame %d is not a clip frame", i)
		}
		// RTP timestamps are whole 1/90000 s ticks.
		if d := durs[i] - time.Second/30; d < -12*time.Microsecond || d > 12*time.Microsecond {
			t.Errorf("recorded frame %d lasts %v", i, durs[i])
		}
	}
	if n := ffprobeInt(t, rec.Path, "nb_read_frames", "-count_frames"); n != ClipFrames {
		t.Errorf("ffprobe decodes %d frames, want %d", n, ClipFrames)
	}
	if wh := ffprobe(t, rec.Path, "-show_entries", "stream=width,height", "-of", "csv=p=0"); strings.TrimSpace(wh) != "320,240" {
		t.Errorf("ffprobe size %q", wh)
	}
}

func TestReceiverRecordsOpus(t *testing.T) {
	v, err := ClipVerifier()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	stats, err := runReceiver(t, false, flatten(clipPackets(t, false, ClipPackets)), ReceiveOptions{RecordDir: dir, Verify: v})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Frames != ClipPackets || stats.Keyframes != 0 || *stats.Verify != (VerifyStats{Verified: ClipPackets}) {
		t.Errorf("stats %+v verify %+v", stats, *stats.Verify)
	}
	path := stats.Recording.Path
	if filepath.Ext(path) != ".ogg" || stats.Recording.Frames != ClipPackets {
		t.Fatalf("recording %+v", stats.Recording)
	}
	// Decoders skip the first 80 ms (pion's Ogg pre-skip); count packets.
	if n := ffprobeInt(t, path, "nb_read_packets", "-count_packets"); n != ClipPackets {
		t.Errorf("ffprobe reads %d packets, want %d", n, ClipPackets)
	}
	ffprobe(t, path, "-count_frames") // and decodes them without a complaint
	src, err := Open(path, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := readAll(t, src, 1000)
	if len(got) != ClipPackets {
		t.Errorf("recording has %d packets", len(got))
	}
}

func TestReceiverLossAndLateJoin(t *testing.T) {
	v, err := ClipVerifier()
	if err != nil {
		t.Fatal(err)
	}
	frames := clipPackets(t, true, 2*ClipKeyframeInterval+5)
	if len(frames[ClipKeyframeInterval]) < 2 {
		t.Fatal("keyframe fits one packet; the test needs more")
	}
	// Join at frame 5 (no keyframe), and lose one packet of the second
	// keyframe: frames 5..29 arrive but cannot start a recording, the
	// keyframe at 30 is incomplete, and 60 starts the recording.
	frames = frames[5:]
	lostFrame := ClipKeyframeInterval - 5
	frames[lostFrame] = frames[lostFrame][1:]
	dir := t.TempDir()
	var requests int
	opts := ReceiveOptions{RecordDir: dir, Verify: v, RequestKeyframe: func() { requests++ }}
	stats, err := runReceiver(t, true, flatten(frames), opts)
	if err != nil {
		t.Fatal(err)
	}
	// pion's sample builder gives up the broken keyframe and, with it, the
	// first packet of the next frame.
	if lo, hi := uint64(len(frames)-2), uint64(len(frames)-1); stats.Frames < lo || stats.Frames > hi {
		t.Errorf("frames %d, want %d to %d", stats.Frames, lo, hi)
	}
	if stats.Keyframes != 1 || stats.Lost != 1 || stats.DroppedPackets == 0 || stats.Verify.Mismatched != 0 {
		t.Errorf("stats %+v verify %+v", stats, *stats.Verify)
	}
	// Requests are rate limited by wall time; packets here arrive at once.
	if requests != 1 || stats.KeyframeRequests != 1 {
		t.Errorf("%d keyframe requests (stats %d), want 1", requests, stats.KeyframeRequests)
	}
	if stats.Recording.Frames != 5 {
		t.Errorf("recorded %d frames, want the 5 from the keyframe on", stats.Recording.Frames)
	}
	if n := ffprobeInt(t, stats.Recording.Path, "nb_read_frames", "-count_frames"); n != 5 {
		t.Errorf("ffprobe decodes %d frames, want 5", n)
	}
}

func TestReceiverCancelFinishesRecording(t *testing.T) {
	dir := t.TempDir()
	packets := flatten(clipPackets(t, true, 20))
	track := newFakeTrack(len(packets))
	for _, p := range packets {
		track.packets <- p
	}
	r, err := newReceiver(track, webrtc.RTPCodecTypeVideo, webrtc.RTPCodecParameters{RTPCodecCapability: codecVP8}, "v", 1, ReceiveOptions{RecordDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	// The channel stays open: Run blocks in ReadRTP once it has read all
	// packets, like a call whose peer went quiet, until the context ends.
	deadline := time.After(5 * time.Second)
	for r.Stats().Packets < uint64(len(packets)) {
		select {
		case <-deadline:
			t.Fatal("the receiver did not read the packets")
		case <-time.After(time.Millisecond):
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v, want context.Canceled", err)
	}
	stats := r.Stats()
	if stats.Frames != 20 || stats.Recording.Frames != 20 {
		t.Errorf("frames %d, recorded %d; want 20 (the last one flushed)", stats.Frames, stats.Recording.Frames)
	}
	if n := ffprobeInt(t, stats.Recording.Path, "nb_read_frames", "-count_frames"); n != 20 {
		t.Errorf("ffprobe decodes %d frames, want 20", n)
	}
}

func TestReceiverOtherCodecsAndBadDirectory(t *testing.T) {
	track := newFakeTrack(3)
	for i := range 3 {
		track.packets <- &rtp.Packet{Header: rtp.Header{SequenceNumber: uint16(i), Timestamp: uint32(160 * i)}, Payload: make([]byte, 160)} //nolint:gosec // small
	}
	close(track.packets)
	pcmu := webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}}
	r, err := newReceiver(track, webrtc.RTPCodecTypeAudio, pcmu, "a", 1, ReceiveOptions{RecordDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	stats := r.Stats()
	if stats.Packets != 3 || stats.Bytes != 480 || stats.Frames != 0 || stats.Recording.Path != "" || !strings.Contains(stats.Recording.Error, "PCMU") {
		t.Errorf("stats %+v recording %+v", stats, stats.Recording)
	}

	_, err = newReceiver(newFakeTrack(0), webrtc.RTPCodecTypeAudio, pcmu, "a", 1, ReceiveOptions{RecordDir: filepath.Join(t.TempDir(), "missing")})
	if !errors.Is(err, ErrRecord) {
		t.Errorf("missing directory: got %v, want ErrRecord", err)
	}
}

func TestSeqTracker(t *testing.T) {
	tests := []struct {
		name string
		seqs []uint16
		dups int
		lost int64
	}{
		{"in order", []uint16{1, 2, 3}, 0, 0},
		{"wraps", []uint16{65534, 65535, 0, 1}, 0, 0},
		{"gap", []uint16{65535, 2}, 0, 2},
		{"reordered", []uint16{1, 3, 2}, 0, 0},
		{"late before the first", []uint16{5, 6, 4}, 0, 0},
		{"duplicate", []uint16{1, 2, 2, 1}, 2, 0},
		{"duplicate across the wrap", []uint16{65535, 0, 65535}, 1, 0},
		{"too old", []uint16{0, 2000, 1}, 1, 1999},
		{"jump clears old marks", []uint16{0, 1, 1 + seqWindow, 1 + seqWindow - 2}, 0, seqWindow - 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s seqTracker
			dups := 0
			for _, q := range tt.seqs {
				if s.push(q) {
					dups++
				}
			}
			if dups != tt.dups || s.lost() != tt.lost {
				t.Errorf("dups %d lost %d; want %d, %d", dups, s.lost(), tt.dups, tt.lost)
			}
		})
	}
}
