package media

import (
	"bytes"
	_ "embed"
	"errors"
)

// The default test clip, made by clip/make.sh: VP8 320x240 at 30 fps and
// Opus 48 kHz in 20 ms packets, 3 s each, with a keyframe every second.
var (
	//go:embed clip/clip.ivf
	clipIVF []byte
	//go:embed clip/clip.ogg
	clipOgg []byte
)

// Clip properties, as clip/make.sh makes them.
const (
	// ClipFrames is the number of video frames in one pass of the clip.
	ClipFrames = 90
	// ClipPackets is the number of Opus packets in one pass of the clip.
	ClipPackets = 150
	// ClipKeyframeInterval is the number of frames from one keyframe to the next.
	ClipKeyframeInterval = 30
)

// openClipVideo returns one pass of the clip's video.
func openClipVideo() (Source, error) {
	return newIVFSource(bytes.NewReader(clipIVF), nil, "clip.ivf")
}

// openClipAudio returns one pass of the clip's audio.
func openClipAudio() (Source, error) {
	return newOggSource(bytes.NewReader(clipOgg), nil, "clip.ogg")
}

// Clip returns the embedded default test clip, looping forever with
// continuous timing: VP8 video (320x240, 30 fps, a keyframe every second,
// a visible frame counter) and an Opus 440 Hz tone in 20 ms packets. Both
// tracks are 3 s long, so they stay in step.
func Clip() (video, audio Source, err error) {
	video, err = Loop(openClipVideo)
	if err != nil {
		return nil, nil, err
	}
	audio, err = Loop(openClipAudio)
	if err != nil {
		return nil, nil, errors.Join(err, video.Close())
	}
	return video, audio, nil
}

// ClipVerifier returns a Verifier that knows every video frame and Opus
// packet of the clip, to check what a peer sending the clip delivers.
func ClipVerifier() (*Verifier, error) {
	v := NewVerifier()
	for _, open := range []func() (Source, error){openClipVideo, openClipAudio} {
		src, err := open()
		if err != nil {
			return nil, err
		}
		if _, err := v.AddSource(src); err != nil {
			return nil, err
		}
	}
	return v, nil
}
