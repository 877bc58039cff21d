// Package media is the media side of `rtckit call`: where the frames a call
// sends come from, how they are paced onto a pion track, and what happens to
// the frames that arrive.
//
// # Sending
//
// A Source yields one track's frames (media.Sample with Data and Duration)
// until io.EOF. Clip returns the embedded test clip (VP8 with a visible frame
// counter and an Opus tone, looping forever); Open reads a file: IVF with
// VP8, VP9 or AV1, H.264 Annex-B, or Ogg Opus, told apart by content. Loop
// repeats a file with continuous timing. Send writes a Source to a
// webrtc.TrackLocalStaticSample in real time and counts into SendStats:
//
//	video, audio, err := media.Clip()
//	track, err := webrtc.NewTrackLocalStaticSample(video.Codec(), "video", "rtckit")
//	// add track to the PeerConnection, negotiate, then:
//	var stats media.SendStats
//	err = media.Send(ctx, video, track, &stats) // nil at EOF, ctx.Err() on cancel
//
// # Receiving
//
// A Receiver reads a webrtc.TrackRemote (from OnTrack), reassembles frames
// with pion's sample builder and counts packets, frames and keyframes; with
// ReceiveOptions it also verifies frames against a Verifier (ClipVerifier
// knows the clip), records them (IVF, .h264 or Ogg), and asks for keyframes:
//
//	rx, err := media.NewReceiver(track, media.ReceiveOptions{RecordDir: dir, Verify: v})
//	go func() { err := rx.Run(ctx) }()
//	snapshot := rx.Stats() // from any goroutine
//
// Recordings are written frame by frame as they arrive, so the file is
// whole after a cancelled context or a dropped connection (Run finishes it)
// and even after the process dies (only the IVF frame count is then stale).
// A write error (a full disk) stops the recording and Run returns an error
// wrapping ErrRecord: the file is cut back to its last complete frame, so it
// stays playable, or removed when that is impossible or it holds no frame.
//
// Errors wrap the sentinels ErrUnsupported, ErrBadMedia and ErrRecord. The
// clip is made by clip/make.sh.
package media
