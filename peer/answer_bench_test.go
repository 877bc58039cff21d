package peer

import (
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// BenchmarkAnswer times the answerer's pion calls for an offer of video,
// audio and a data channel, with pion's full codec list and with
// CompactCodecs on both sides: SetRemoteDescription of the offer, then
// CreateAnswer, as µs per call.
func BenchmarkAnswer(b *testing.B) {
	for _, bc := range []struct {
		name    string
		compact bool
	}{{"full-codecs", false}, {"compact-codecs", true}} {
		b.Run(bc.name, func(b *testing.B) {
			api, err := NewAPI(APIConfig{CompactCodecs: bc.compact, ICE: ICEConfig{IncludeLoopback: true, Interfaces: []string{"lo"}, Networks: []string{"udp4"}}})
			if err != nil {
				b.Fatal(err)
			}
			var srd, create time.Duration
			for range b.N {
				offerer, answerer := newPair(b, api)
				offer := makeOffer(b, offerer)
				t0 := time.Now()
				if err := answerer.SetRemoteDescription(offer); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				if _, err := answerer.CreateAnswer(nil); err != nil {
					b.Fatal(err)
				}
				srd, create = srd+t1.Sub(t0), create+time.Since(t1)
				_ = offerer.Close()
				_ = answerer.Close()
			}
			b.ReportMetric(float64(srd.Microseconds())/float64(b.N), "setremote-µs")
			b.ReportMetric(float64(create.Microseconds())/float64(b.N), "createanswer-µs")
		})
	}
}

// newPair makes two peer connections from api.
func newPair(b *testing.B, api *webrtc.API) (*webrtc.PeerConnection, *webrtc.PeerConnection) {
	b.Helper()
	offerer, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		b.Fatal(err)
	}
	answerer, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		b.Fatal(err)
	}
	return offerer, answerer
}

// makeOffer adds a VP8 and an Opus track and a data channel to pc and
// returns its offer.
func makeOffer(b *testing.B, pc *webrtc.PeerConnection) webrtc.SessionDescription {
	b.Helper()
	for _, mime := range []string{webrtc.MimeTypeVP8, webrtc.MimeTypeOpus} {
		track, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: mime}, mime, "bench")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := pc.AddTrack(track); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := pc.CreateDataChannel("bench", nil); err != nil {
		b.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := pc.SetLocalDescription(offer); err != nil {
		b.Fatal(err)
	}
	return offer
}
