//go:build mediadevices

package capture

import (
	"io"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/pion/interceptor"
	"github.com/pion/mediadevices"
	"github.com/pion/mediadevices/pkg/codec"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// streamID groups the captured tracks into one media stream, like the
// call's other tracks.
const streamID = "rtckit"

// track is a mediadevices track as a webrtc.TrackLocal with a stable ID and
// stream ID that sends with the negotiated payload type and reads its own
// RTCP.
//
// mediadevices picks its encoder from the negotiated codecs but packetizes
// with the encoder's fixed payload type (VP8 96, Opus 111): right for
// pion's default codecs, wrong for a peer whose offer numbers them
// differently (Firefox offers VP8 as 120 and Opus as 109). It also reads
// RTCP (for keyframe requests) only for video, and keeps reading after
// errors other than io.EOF; track reads it for both kinds instead, which
// runs the sender's interceptors (NACK, receiver reports) and turns PLI and
// FIR into keyframes. A second reader of the same sender's RTCP would take
// packets away from it.
type track struct {
	mediadevices.Track

	// goodbye is called on an RTCP BYE from the peer (nil: none).
	goodbye atomic.Pointer[func()]

	mu sync.Mutex
	// unbound are the bindings' channels closed by Unbind, by ID.
	unbound map[string]chan struct{}
}

func newTrack(t mediadevices.Track) *track {
	return &track{Track: t, unbound: map[string]chan struct{}{}}
}

// ID returns the kind ("video" or "audio"), as for the call's other
// tracks.
func (t *track) ID() string { return t.Kind().String() }

// StreamID returns the stream shared by the captured tracks.
func (t *track) StreamID() string { return streamID }

// Bind starts encoding for a PeerConnection, rewriting the payload type of
// every packet to the negotiated one, and reading the RTCP the peer sends
// about the track.
func (t *track) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	w := &payloadTypeWriter{next: ctx.WriteStream()}
	// mediadevices starts writing before Bind returns: store the payload
	// type of the codec it will pick (the first negotiated codec of our
	// encoder's kind) first, and the one it reports once Bind returns.
	if pt, ok := encodedPayloadType(t.Kind(), ctx.CodecParameters()); ok {
		w.pt.Store(uint32(pt))
	}
	unbound := make(chan struct{})
	c, err := t.Track.Bind(&bindContext{TrackLocalContext: ctx, w: w, rtcp: idleRTCPReader(unbound)})
	if err != nil {
		close(unbound)
		return c, err
	}
	w.pt.Store(uint32(c.PayloadType))
	t.mu.Lock()
	t.unbound[ctx.ID()] = unbound
	t.mu.Unlock()
	go t.readRTCP(ctx.RTCPReader(), unbound)
	return c, nil
}

// OnGoodbye sets f to be called when the peer's RTCP about the track
// holds a BYE (the peer hung up): this track reads the sender's RTCP, so
// the call's own reader, which ends the call on a BYE, does not see it.
func (t *track) OnGoodbye(f func()) { t.goodbye.Store(&f) }

// Unbind stops encoding for a PeerConnection.
func (t *track) Unbind(ctx webrtc.TrackLocalContext) error {
	t.mu.Lock()
	if ch, ok := t.unbound[ctx.ID()]; ok {
		close(ch)
		delete(t.unbound, ctx.ID())
	}
	t.mu.Unlock()
	return t.Track.Unbind(ctx)
}

// readRTCP reads the track's RTCP until the sender stops or the binding
// ends, asks the encoder for a keyframe on PLI or FIR and passes a BYE to
// the OnGoodbye function.
func (t *track) readRTCP(r interceptor.RTCPReader, unbound <-chan struct{}) {
	buf := make([]byte, rtcpMTU)
	for {
		n, _, err := r.Read(buf, interceptor.Attributes{})
		if err != nil {
			return
		}
		select {
		case <-unbound:
			return
		default:
		}
		keyFrame, bye := classifyRTCP(buf[:n])
		if keyFrame {
			if kf, ok := t.EncoderController().(codec.KeyFrameController); ok {
				_ = kf.ForceKeyFrame()
			}
		}
		if f := t.goodbye.Load(); bye && f != nil {
			(*f)()
		}
	}
}

// rtcpMTU bounds one read of RTCP.
const rtcpMTU = 1500

// classifyRTCP reports whether an RTCP compound packet asks for a
// keyframe and whether it holds a BYE.
func classifyRTCP(b []byte) (keyFrame, bye bool) {
	pkts, err := rtcp.Unmarshal(b)
	if err != nil {
		return false, false
	}
	for _, p := range pkts {
		switch p.(type) {
		case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
			keyFrame = true
		case *rtcp.Goodbye:
			bye = true
		}
	}
	return keyFrame, bye
}

// idleRTCPReader is the RTCP reader mediadevices gets: it returns io.EOF
// once the binding ends and reads nothing before, leaving the sender's RTCP
// to track.readRTCP.
type idleRTCPReader <-chan struct{}

// Read waits for the end of the binding.
func (r idleRTCPReader) Read([]byte, interceptor.Attributes) (int, interceptor.Attributes, error) {
	<-r
	return 0, nil, io.EOF
}

// encodedPayloadType returns the payload type of the first negotiated codec
// the track's encoder produces.
func encodedPayloadType(kind webrtc.RTPCodecType, codecs []webrtc.RTPCodecParameters) (webrtc.PayloadType, bool) {
	mime := webrtc.MimeTypeVP8
	if kind == webrtc.RTPCodecTypeAudio {
		mime = webrtc.MimeTypeOpus
	}
	for _, c := range codecs {
		if strings.EqualFold(c.MimeType, mime) {
			return c.PayloadType, true
		}
	}
	return 0, false
}

// bindContext is the TrackLocalContext mediadevices binds with: the
// payload-type-rewriting writer and the idle RTCP reader.
type bindContext struct {
	webrtc.TrackLocalContext
	w    *payloadTypeWriter
	rtcp idleRTCPReader
}

// WriteStream returns the rewriting writer.
func (c *bindContext) WriteStream() webrtc.TrackLocalWriter { return c.w }

// RTCPReader returns the idle reader.
func (c *bindContext) RTCPReader() interceptor.RTCPReader { return c.rtcp }

// payloadTypeWriter sets the payload type of the packets it forwards; zero
// (not yet known) forwards them unchanged.
type payloadTypeWriter struct {
	next webrtc.TrackLocalWriter
	pt   atomic.Uint32
}

// WriteRTP forwards a packet with the negotiated payload type.
func (w *payloadTypeWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	if pt := w.pt.Load(); pt != 0 {
		h.PayloadType = uint8(pt)
	}
	return w.next.WriteRTP(h, payload)
}

// Write forwards a marshaled packet with the negotiated payload type.
func (w *payloadTypeWriter) Write(b []byte) (int, error) {
	if pt := w.pt.Load(); pt != 0 && len(b) >= 2 {
		b[1] = b[1]&0x80 | uint8(pt)&0x7f
	}
	return w.next.Write(b)
}
