//go:build mediadevices

package capture

import (
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/pion/mediadevices"
	"github.com/pion/mediadevices/pkg/codec/opus"
	"github.com/pion/mediadevices/pkg/codec/vpx"
	"github.com/pion/mediadevices/pkg/driver"
	"github.com/pion/mediadevices/pkg/prop"
	"github.com/pion/webrtc/v4"

	// Drivers register themselves with mediadevices' driver manager. The
	// camera driver clears registered video drivers when it starts, and
	// Go initializes imported packages in import-path order, so the test
	// pattern (videotest) registers after it and stays.
	_ "github.com/pion/mediadevices/pkg/driver/audiotest"
	_ "github.com/pion/mediadevices/pkg/driver/camera"
	_ "github.com/pion/mediadevices/pkg/driver/microphone"
	_ "github.com/pion/mediadevices/pkg/driver/videotest"
)

// Sources accepted by Open; they are the values of call.CaptureDevices and
// call.CaptureTest.
const (
	// SourceDevices is the camera and the microphone.
	SourceDevices = "devices"
	// SourceTest is a generated test pattern (colour bars with moving
	// noise) and a tone.
	SourceTest = "test"
)

// Encoding of the captured media.
const (
	// VideoBitRate is the VP8 target bitrate in bit/s.
	VideoBitRate = 800_000
	// VideoKeyFrameInterval is the largest number of frames between VP8
	// keyframes (two seconds at 30 frames per second).
	VideoKeyFrameInterval = 60
	// AudioBitRate is the Opus target bitrate in bit/s.
	AudioBitRate = 64_000
)

// Capture format asked of the devices; they offer the nearest they have.
const (
	videoWidth     = 640
	videoHeight    = 480
	videoFrameRate = 30
	audioLatency   = 20 * time.Millisecond
)

// Labels the drivers register with: the test drivers', and that of
// miniaudio's null device ("null" in hex), which generates silence on a
// machine without audio and is no microphone.
const (
	videoTestLabel   = "VideoTest"
	audioTestLabel   = "AudioTest"
	nullCaptureLabel = "6e756c6c"
)

// Open opens live tracks of the source (SourceDevices or SourceTest): a
// VP8 video track when video is set and an Opus audio track when audio is
// set, in that order. The tracks encode once a PeerConnection negotiates
// them and send with the payload types it negotiated. stop closes the
// tracks and releases the devices; calls after the first do nothing.
// Open returns ErrNoDevice when the source has no device of a wanted kind
// and ErrSource for an unknown source or when neither kind is wanted.
//
// The drivers are process-wide: opening a source again fails until the
// first stop.
func Open(source string, video, audio bool) (tracks []webrtc.TrackLocal, stop func(), err error) {
	if source != SourceDevices && source != SourceTest {
		return nil, nil, fmt.Errorf("%w: %q (want %s or %s)", ErrSource, source, SourceDevices, SourceTest)
	}
	if !video && !audio {
		return nil, nil, fmt.Errorf("%w: neither video nor audio asked for", ErrSource)
	}
	selector, err := newCodecSelector()
	if err != nil {
		return nil, nil, err
	}
	c := mediadevices.MediaStreamConstraints{Codec: selector}
	if video {
		ids, err := driverIDs(source, webrtc.RTPCodecTypeVideo)
		if err != nil {
			return nil, nil, err
		}
		c.Video = func(tc *mediadevices.MediaTrackConstraints) {
			tc.DeviceID = prop.StringOneOf(ids)
			tc.Width = prop.Int(videoWidth)
			tc.Height = prop.Int(videoHeight)
			tc.FrameRate = prop.Float(videoFrameRate)
		}
	}
	if audio {
		ids, err := driverIDs(source, webrtc.RTPCodecTypeAudio)
		if err != nil {
			return nil, nil, err
		}
		c.Audio = func(tc *mediadevices.MediaTrackConstraints) {
			tc.DeviceID = prop.StringOneOf(ids)
			tc.Latency = prop.Duration(audioLatency)
		}
	}
	stream, err := mediadevices.GetUserMedia(c)
	if err != nil {
		return nil, nil, fmt.Errorf("opening the %s source: %w", source, err)
	}
	// The stream keeps its tracks in a map: video first, as documented.
	opened := append(stream.GetVideoTracks(), stream.GetAudioTracks()...)
	for _, t := range opened {
		tracks = append(tracks, newTrack(t))
	}
	stop = sync.OnceFunc(func() {
		for _, t := range opened {
			_ = t.Close()
		}
	})
	return tracks, stop, nil
}

// newCodecSelector returns the encoders: VP8 (libvpx) and Opus (libopus).
func newCodecSelector() (*mediadevices.CodecSelector, error) {
	vp8, err := vpx.NewVP8Params()
	if err != nil {
		return nil, fmt.Errorf("VP8 encoder: %w", err)
	}
	vp8.BitRate = VideoBitRate
	vp8.KeyFrameInterval = VideoKeyFrameInterval
	op, err := opus.NewParams()
	if err != nil {
		return nil, fmt.Errorf("opus encoder: %w", err)
	}
	op.BitRate = AudioBitRate
	return mediadevices.NewCodecSelector(
		mediadevices.WithVideoEncoders(&vp8),
		mediadevices.WithAudioEncoders(&op),
	), nil
}

// driverIDs returns the registered drivers of a kind that belong to the
// source, or ErrNoDevice naming what is missing.
func driverIDs(source string, kind webrtc.RTPCodecType) ([]string, error) {
	recorder, testLabel, device := driver.FilterVideoRecorder(), videoTestLabel, "camera"
	if kind == webrtc.RTPCodecTypeAudio {
		recorder, testLabel, device = driver.FilterAudioRecorder(), audioTestLabel, "microphone"
	}
	ofSource := func(d driver.Driver) bool {
		info := d.Info()
		if info.DeviceType == driver.Screen || info.Label == nullCaptureLabel {
			return false
		}
		return (info.Label == testLabel) == (source == SourceTest)
	}
	var ids []string
	for _, d := range driver.GetManager().Query(driver.FilterAnd(recorder, ofSource)) {
		ids = append(ids, d.ID())
	}
	if len(ids) > 0 {
		return ids, nil
	}
	if source == SourceTest {
		return nil, fmt.Errorf("%w: the %s test driver is not registered", ErrNoDevice, kind)
	}
	return nil, fmt.Errorf("%w: no %s found%s", ErrNoDevice, device, deviceHint(kind))
}

// deviceHint tells where a device kind is looked for on Linux.
func deviceHint(kind webrtc.RTPCodecType) string {
	if runtime.GOOS != "linux" {
		return ""
	}
	if kind == webrtc.RTPCodecTypeVideo {
		return " (V4L2 devices /dev/video*)"
	}
	return " (capture devices of ALSA, PulseAudio or JACK)"
}
