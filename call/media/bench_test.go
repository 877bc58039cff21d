package media

import (
	"testing"

	"github.com/pion/webrtc/v4"
)

func BenchmarkVerifierContains(b *testing.B) {
	v, err := ClipVerifier()
	if err != nil {
		b.Fatal(err)
	}
	video, _, err := Clip()
	if err != nil {
		b.Fatal(err)
	}
	key, err := video.Next() // the largest frame: a 9 KB keyframe
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(key.Data)))
	for b.Loop() {
		if !v.Contains(key.Data) {
			b.Fatal("keyframe not known")
		}
	}
}

// BenchmarkReceiveClipVideo measures a Receiver's packet path (sample
// builder, keyframe detection, verification) on the clip's video, one pass
// per iteration, the passes following each other as in a looping call.
func BenchmarkReceiveClipVideo(b *testing.B) {
	v, err := ClipVerifier()
	if err != nil {
		b.Fatal(err)
	}
	packets := flatten(clipPackets(b, true, ClipFrames))
	size := 0
	for _, p := range packets {
		size += len(p.Payload)
	}
	r, err := newReceiver(newFakeTrack(0), webrtc.RTPCodecTypeVideo, webrtc.RTPCodecParameters{RTPCodecCapability: codecVP8}, "v", 1, ReceiveOptions{Verify: v})
	if err != nil {
		b.Fatal(err)
	}
	const passTicks = ClipFrames * 3000 // 3 s at 90 kHz
	b.SetBytes(int64(size))
	pass := 0
	for b.Loop() {
		for _, p := range packets {
			q := *p
			q.SequenceNumber += uint16(pass * len(packets)) //nolint:gosec // wraps on purpose
			q.Timestamp += uint32(pass * passTicks)         //nolint:gosec // wraps on purpose
			if err := r.packet(&q); err != nil {
				b.Fatal(err)
			}
		}
		pass++
	}
	if s := r.Stats(); s.Verify.Mismatched != 0 || s.Frames < uint64(pass*ClipFrames-1) { //nolint:gosec // small
		b.Fatalf("%d frames, %d mismatched after %d passes", s.Frames, s.Verify.Mismatched, pass)
	}
}
