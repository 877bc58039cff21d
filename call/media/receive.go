package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/samplebuilder"
)

// KeyframeRequestInterval is the least time between two calls of
// ReceiveOptions.RequestKeyframe.
const KeyframeRequestInterval = 500 * time.Millisecond

// Sample builder limits: how many packets, and how much media time, a
// frame may wait for a missing packet before it is given up. Video frames
// (keyframes especially) span many packets.
const (
	videoMaxLatePackets = 1024
	audioMaxLatePackets = 64
	maxLateTime         = time.Second
)

// ReceiveOptions configures a Receiver. The zero value counts only.
type ReceiveOptions struct {
	// RecordDir, when set, is the directory to record the track into:
	// VP8, VP9 and AV1 to IVF, H.264 to an Annex-B .h264 file, Opus to Ogg.
	// The file is named kind-trackID-SSRC (a number is added when taken)
	// and appears with the first keyframe (video) or packet (audio).
	RecordDir string
	// Verify, when set, checks each received frame against known frames.
	Verify *Verifier
	// RequestKeyframe, when set, is called (at most once per
	// KeyframeRequestInterval) when video arrives before any keyframe, or
	// after packets were lost; it should send a PLI to the sender.
	RequestKeyframe func()
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger
}

// ReceiveStats is a snapshot of what a Receiver has received.
type ReceiveStats struct {
	// Kind is "video" or "audio".
	Kind string `json:"kind"`
	// Codec is the codec's MIME type.
	Codec string `json:"codec"`
	// TrackID is the sender's track ID.
	TrackID string `json:"track_id"`
	// SSRC is the RTP stream's synchronization source.
	SSRC uint32 `json:"ssrc"`
	// Packets counts RTP packets, without duplicates.
	Packets uint64 `json:"packets"`
	// Bytes counts RTP payload bytes of those packets.
	Bytes uint64 `json:"bytes"`
	// Duplicates counts packets received more than once.
	Duplicates uint64 `json:"duplicates"`
	// Lost is the number of packets expected (from sequence numbers) but
	// not received (RFC 3550 A.3); late packets can make it negative.
	Lost int64 `json:"lost"`
	// HighestSeq is the extended highest sequence number received: the
	// count of sequence number cycles in the high 16 bits (RFC 3550 6.4.1).
	HighestSeq uint32 `json:"highest_seq"`
	// Frames counts reassembled frames (video pictures, Opus packets); it
	// stays 0 for codecs rtckit does not reassemble.
	Frames uint64 `json:"frames"`
	// FrameBytes counts the bytes of those frames.
	FrameBytes uint64 `json:"frame_bytes"`
	// Keyframes counts video keyframes.
	Keyframes uint64 `json:"keyframes"`
	// DroppedPackets counts packets discarded because their frame could
	// not be completed.
	DroppedPackets uint64 `json:"dropped_packets"`
	// KeyframeRequests counts calls of ReceiveOptions.RequestKeyframe.
	KeyframeRequests uint64 `json:"keyframe_requests"`
	// FirstPacket, FirstFrame and FirstKeyframe are when the first packet,
	// frame and keyframe arrived; LastPacket when the latest packet did.
	FirstPacket   time.Time `json:"first_packet,omitzero"`
	FirstFrame    time.Time `json:"first_frame,omitzero"`
	FirstKeyframe time.Time `json:"first_keyframe,omitzero"`
	LastPacket    time.Time `json:"last_packet,omitzero"`
	// Verify is nil when frames are not verified.
	Verify *VerifyStats `json:"verify,omitempty"`
	// Recording is nil when the track is not recorded.
	Recording *RecordingStats `json:"recording,omitempty"`
}

// VerifyStats counts verified frames.
type VerifyStats struct {
	// Verified counts frames equal to a known frame.
	Verified uint64 `json:"verified"`
	// Mismatched counts frames that are not.
	Mismatched uint64 `json:"mismatched"`
}

// RecordingStats describes a track's recording.
type RecordingStats struct {
	// Path is the file; empty until the first frame is written, and again
	// when a failed recording was removed.
	Path string `json:"path,omitempty"`
	// Frames counts the frames written.
	Frames uint64 `json:"frames"`
	// Bytes is the file's length.
	Bytes int64 `json:"bytes"`
	// Error says why the recording stopped or did not happen.
	Error string `json:"error,omitempty"`
}

// packetReader is what a Receiver needs of a webrtc.TrackRemote.
type packetReader interface {
	ReadRTP() (*rtp.Packet, interceptor.Attributes, error)
	SetReadDeadline(t time.Time) error
}

// Receiver reads one remote track: it counts packets, reassembles frames
// with pion's sample builder (VP8, VP9, AV1, H.264, Opus), and optionally
// verifies and records them. Run does the work; Stats may be called from
// any goroutine.
type Receiver struct {
	track    packetReader
	opts     ReceiveOptions
	log      *slog.Logger
	now      func() time.Time
	video    bool
	mime     string
	sb       *samplebuilder.SampleBuilder // nil for codecs not reassembled
	rec      *recorder
	seq      seqTracker
	lastPLI  time.Time
	keyframe bool // a keyframe has arrived
	// completed maps the RTP timestamps of frames whose last packet has
	// arrived to its arrival time (markComplete).
	completed map[uint32]time.Time

	mu    sync.Mutex
	stats ReceiveStats
}

// NewReceiver returns a Receiver for track. It fails, wrapping ErrRecord,
// when opts.RecordDir is set but is not a directory.
func NewReceiver(track *webrtc.TrackRemote, opts ReceiveOptions) (*Receiver, error) {
	return newReceiver(track, track.Kind(), track.Codec(), track.ID(), uint32(track.SSRC()), opts)
}

// newReceiver is NewReceiver for any packetReader.
func newReceiver(track packetReader, kind webrtc.RTPCodecType, codec webrtc.RTPCodecParameters, id string, ssrc uint32, opts ReceiveOptions) (*Receiver, error) {
	r := &Receiver{
		track: track, opts: opts, log: opts.Logger, now: time.Now,
		video: kind == webrtc.RTPCodecTypeVideo, mime: codec.MimeType,
		stats: ReceiveStats{Kind: kind.String(), Codec: codec.MimeType, TrackID: id, SSRC: ssrc},
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if opts.Verify != nil {
		r.stats.Verify = &VerifyStats{}
	}
	if d, meta, ok := depacketizerFor(codec.MimeType); ok {
		maxLate := uint16(audioMaxLatePackets)
		if r.video {
			maxLate = videoMaxLatePackets
		}
		r.sb = samplebuilder.New(maxLate, d, codec.ClockRate,
			samplebuilder.WithMaxTimeDelay(maxLateTime), samplebuilder.WithPacketHeadHandler(meta))
	}
	if opts.RecordDir == "" {
		return r, nil
	}
	r.stats.Recording = &RecordingStats{}
	if fi, err := os.Stat(opts.RecordDir); err != nil || !fi.IsDir() {
		if err == nil {
			err = errors.New("not a directory")
		}
		return nil, fmt.Errorf("%w: %s: %w", ErrRecord, opts.RecordDir, err)
	}
	format, ok := recordFormatFor(codec.MimeType)
	if !ok || r.sb == nil {
		r.stats.Recording.Error = fmt.Sprintf("%s is not recorded: no container for it", codec.MimeType)
		return r, nil
	}
	channels := codec.Channels
	if channels == 0 || channels > 2 {
		channels = 2
	}
	r.rec = &recorder{dir: opts.RecordDir, base: recordBase(kind.String(), id, ssrc), format: format, channels: channels}
	return r, nil
}

// Stats returns a snapshot of the counts so far.
func (r *Receiver) Stats() ReceiveStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stats
	if s.Verify != nil {
		v := *s.Verify
		s.Verify = &v
	}
	if s.Recording != nil {
		rec := *s.Recording
		s.Recording = &rec
	}
	return s
}

// Run reads the track until ctx is done (it returns ctx.Err()) or the track
// ends (nil). A recording error stops Run with an error wrapping ErrRecord;
// otherwise the recording is finished when Run returns, whatever the reason,
// so it is complete after a cancelled context or a dropped connection. Run
// must be called once.
func (r *Receiver) Run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { _ = r.track.SetReadDeadline(time.Now()) })
	defer stop()
	err := r.loop(ctx)
	// What is left in the sample builder is kept, and a recording error
	// while writing it or closing the file outweighs a cancelled context.
	ferr := r.flush()
	if r.rec != nil {
		ferr = errors.Join(ferr, r.rec.close())
		r.updateRecording(ferr)
	}
	if ferr != nil && (err == nil || ctx.Err() != nil) {
		return ferr
	}
	return err
}

// loop reads packets until an error; it returns nil when the track ended.
func (r *Receiver) loop(ctx context.Context) error {
	for {
		pkt, _, err := r.track.ReadRTP()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe) {
				return nil
			}
			return fmt.Errorf("reading track %s: %w", r.stats.TrackID, err)
		}
		if err := r.packet(pkt); err != nil {
			return err
		}
	}
}

// packet handles one RTP packet.
func (r *Receiver) packet(pkt *rtp.Packet) error {
	now := r.now()
	dup := r.seq.push(pkt.SequenceNumber)
	r.mu.Lock()
	if dup {
		r.stats.Duplicates++
	} else {
		r.stats.Packets++
		r.stats.Bytes += uint64(len(pkt.Payload))
		r.stats.Lost = r.seq.lost()
		r.stats.HighestSeq = uint32(max(r.seq.highest, 0)) //nolint:gosec // RFC 3550 wraps it to 32 bits
	}
	if r.stats.FirstPacket.IsZero() {
		r.stats.FirstPacket = now
	}
	r.stats.LastPacket = now
	r.mu.Unlock()
	if dup || r.sb == nil {
		return nil
	}
	if pkt.Marker {
		r.markComplete(pkt.Timestamp, now)
	}
	r.sb.Push(pkt)
	for s := r.sb.Pop(); s != nil; s = r.sb.Pop() {
		if err := r.frame(s, r.completedAt(s.PacketTimestamp, now)); err != nil {
			return err
		}
	}
	return nil
}

// maxPendingFrames bounds the completion times kept for frames the sample
// builder has not handed over yet.
const maxPendingFrames = 256

// markComplete records when the packet that completes the frame with RTP
// timestamp ts (the one with the marker bit) arrived. The sample builder
// hands a frame over only when the next one starts, a frame interval
// later; frame times are taken from here instead.
func (r *Receiver) markComplete(ts uint32, at time.Time) {
	if r.completed == nil || len(r.completed) >= maxPendingFrames {
		r.completed = make(map[uint32]time.Time, 8)
	}
	r.completed[ts] = at
}

// completedAt is when the frame with RTP timestamp ts was complete, or
// fallback when unknown.
func (r *Receiver) completedAt(ts uint32, fallback time.Time) time.Time {
	at, ok := r.completed[ts]
	if !ok {
		return fallback
	}
	delete(r.completed, ts)
	return at
}

// flush hands the frames still in the sample builder to frame.
func (r *Receiver) flush() error {
	if r.sb == nil {
		return nil
	}
	r.sb.Flush()
	now := r.now()
	for s := r.sb.Pop(); s != nil; s = r.sb.Pop() {
		if err := r.frame(s, now); err != nil {
			return err
		}
	}
	return nil
}

// frame handles one reassembled frame.
func (r *Receiver) frame(s *media.Sample, now time.Time) error {
	key := r.video && isKeyframe(r.mime, s.Data, s.Metadata)
	verified := r.opts.Verify != nil && r.opts.Verify.Contains(s.Data)
	r.mu.Lock()
	r.stats.Frames++
	r.stats.FrameBytes += uint64(len(s.Data))
	r.stats.DroppedPackets += uint64(s.PrevDroppedPackets)
	if r.stats.FirstFrame.IsZero() {
		r.stats.FirstFrame = now
	}
	if key {
		r.stats.Keyframes++
		if r.stats.FirstKeyframe.IsZero() {
			r.stats.FirstKeyframe = now
		}
	}
	if v := r.stats.Verify; v != nil {
		if verified {
			v.Verified++
		} else {
			v.Mismatched++
		}
	}
	r.mu.Unlock()
	r.keyframe = r.keyframe || key
	if r.video && (!r.keyframe || s.PrevDroppedPackets > 0) {
		r.requestKeyframe(now)
	}
	if r.rec == nil {
		return nil
	}
	err := r.rec.write(s.Data, s.PacketTimestamp, key, r.video)
	r.updateRecording(err)
	return err
}

// requestKeyframe calls RequestKeyframe unless it was called recently.
func (r *Receiver) requestKeyframe(now time.Time) {
	if r.opts.RequestKeyframe == nil || now.Sub(r.lastPLI) < KeyframeRequestInterval {
		return
	}
	r.lastPLI = now
	r.mu.Lock()
	r.stats.KeyframeRequests++
	r.mu.Unlock()
	r.opts.RequestKeyframe()
}

// updateRecording copies the recorder's state into the stats.
func (r *Receiver) updateRecording(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rs := r.stats.Recording
	rs.Path, rs.Frames = r.rec.path, r.rec.frames
	if r.rec.path != "" {
		rs.Bytes = r.rec.good
	} else {
		rs.Bytes = 0
	}
	if err != nil {
		rs.Error = err.Error()
	}
}
