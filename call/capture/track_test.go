//go:build mediadevices

package capture

import (
	"bytes"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// recordWriter keeps what a payloadTypeWriter forwards.
type recordWriter struct{ headers, raw [][]byte }

func (w *recordWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	b, err := (&rtp.Packet{Header: *h, Payload: payload}).Marshal()
	w.headers = append(w.headers, b)
	return len(payload), err
}

func (w *recordWriter) Write(b []byte) (int, error) {
	w.raw = append(w.raw, append([]byte(nil), b...))
	return len(b), nil
}

func TestPayloadTypeWriter(t *testing.T) {
	tests := []struct {
		name   string
		pt     uint32
		marker bool
		want   uint8
	}{
		{"not yet known", 0, true, 96},
		{"negotiated", 120, true, 120},
		{"negotiated without marker", 109, false, 109},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := &recordWriter{}
			w := &payloadTypeWriter{next: next}
			w.pt.Store(tt.pt)
			pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, Marker: tt.marker, SequenceNumber: 7, SSRC: 42}, Payload: []byte{1, 2, 3}}
			raw, err := pkt.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			h := pkt.Header
			if _, err := w.WriteRTP(&h, pkt.Payload); err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(raw); err != nil {
				t.Fatal(err)
			}
			for _, b := range [][]byte{next.headers[0], next.raw[0]} {
				var got rtp.Packet
				if err := got.Unmarshal(b); err != nil {
					t.Fatal(err)
				}
				if got.PayloadType != tt.want || got.Marker != tt.marker || got.SequenceNumber != 7 || got.SSRC != 42 || !bytes.Equal(got.Payload, pkt.Payload) {
					t.Errorf("forwarded %+v; want payload type %d, the rest unchanged", got.Header, tt.want)
				}
			}
		})
	}
}

func TestEncodedPayloadType(t *testing.T) {
	negotiated := []webrtc.RTPCodecParameters{
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: "video/H264"}, PayloadType: 102},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: "video/vp8"}, PayloadType: 120},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, PayloadType: 96},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, PayloadType: 109},
	}
	if pt, ok := encodedPayloadType(webrtc.RTPCodecTypeVideo, negotiated); !ok || pt != 120 {
		t.Errorf("video: %d, %v; want the first VP8, 120", pt, ok)
	}
	if pt, ok := encodedPayloadType(webrtc.RTPCodecTypeAudio, negotiated); !ok || pt != 109 {
		t.Errorf("audio: %d, %v; want 109", pt, ok)
	}
	if _, ok := encodedPayloadType(webrtc.RTPCodecTypeAudio, negotiated[:3]); ok {
		t.Error("audio without Opus negotiated: found a payload type")
	}
}
