//go:build mediadevices

package capture

import (
	"strings"
	"sync/atomic"

	"github.com/pion/mediadevices"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// streamID groups the captured tracks into one media stream, like the
// call's other tracks.
const streamID = "rtckit"

// track is a mediadevices track as a webrtc.TrackLocal with a stable ID and
// stream ID that sends with the negotiated payload type. mediadevices
// picks its encoder from the negotiated codecs but packetizes with the
// encoder's fixed payload type (VP8 96, Opus 111): right for pion's default
// codecs, wrong for a peer whose offer numbers them differently (Firefox
// offers VP8 as 120 and Opus as 109).
type track struct {
	mediadevices.Track
}

func newTrack(t mediadevices.Track) *track { return &track{Track: t} }

// ID returns the kind ("video" or "audio"), as for the call's other
// tracks.
func (t *track) ID() string { return t.Kind().String() }

// StreamID returns the stream shared by the captured tracks.
func (t *track) StreamID() string { return streamID }

// Bind starts encoding for a PeerConnection, rewriting the payload type of
// every packet to the negotiated one.
func (t *track) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	w := &payloadTypeWriter{next: ctx.WriteStream()}
	// mediadevices starts writing before Bind returns: store the payload
	// type of the codec it will pick (the first negotiated codec of our
	// encoder's kind) first, and the one it reports once Bind returns.
	if pt, ok := encodedPayloadType(t.Kind(), ctx.CodecParameters()); ok {
		w.pt.Store(uint32(pt))
	}
	c, err := t.Track.Bind(&bindContext{TrackLocalContext: ctx, w: w})
	if err != nil {
		return c, err
	}
	w.pt.Store(uint32(c.PayloadType))
	return c, nil
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

// bindContext is a TrackLocalContext with the payload-type-rewriting
// writer.
type bindContext struct {
	webrtc.TrackLocalContext
	w *payloadTypeWriter
}

// WriteStream returns the rewriting writer.
func (c *bindContext) WriteStream() webrtc.TrackLocalWriter { return c.w }

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
