package call

import (
	"fmt"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/rtckit/rtckit/call/media"
	"github.com/rtckit/rtckit/peer"
)

// Paths accepted by Assertions.ExpectPath.
const (
	PathRelay  = "relay"
	PathDirect = "direct"
)

// Defaults of Options.
const (
	// DefaultSetupTimeout bounds the time from the offer to ICE and DTLS
	// connected.
	DefaultSetupTimeout = 30 * time.Second
	// DefaultMaxICERestarts is how many ICE restarts in a row a failed
	// connection gets before the call counts as dropped.
	DefaultMaxICERestarts = 3
)

// Options configure one call. Signaling (hub or token) is configured
// separately, by the Signaler passed to Run.
type Options struct {
	// ICE is the shared ICE configuration; servers from the hub's
	// ice-servers message are added to its servers.
	ICE peer.ICEConfig
	// Media chooses what is sent.
	Media MediaOptions
	// RecordDir, when set, receives what arrives as IVF/Ogg files.
	RecordDir string
	// Verify checks every received frame against the embedded clip.
	Verify bool
	// Echo sends received media back instead of a source.
	Echo bool
	// Chat opens a text chat over a DataChannel (stdin → peer → stdout).
	Chat bool
	// SendFiles are sent over DataChannels once connected.
	SendFiles []string
	// ReceiveDir accepts files from the peer into this directory.
	ReceiveDir string
	// Duration ends the call after this long once connected; zero means
	// until hang-up, SIGINT or (with SendFiles) the end of the transfers.
	Duration time.Duration
	// SetupTimeout bounds offer → connected; zero is DefaultSetupTimeout.
	SetupTimeout time.Duration
	// MaxICERestarts bounds ICE restarts in a row; negative disables them.
	MaxICERestarts int
	// Assert are the checks that turn an unhealthy call into ErrCheckFailed.
	Assert Assertions
}

// MediaOptions choose the media sources.
type MediaOptions struct {
	// NoVideo and NoAudio drop a kind.
	NoVideo, NoAudio bool
	// VideoFile and AudioFile replace the embedded clip: IVF or H.264
	// Annex-B video, Ogg Opus audio.
	VideoFile, AudioFile string
	// FPS is the frame rate of H.264 Annex-B files, which carry none.
	FPS int
	// NoLoop sends files once instead of looping them.
	NoLoop bool
	// Capture sends live captured media instead of the clip: "devices"
	// (camera and microphone) or "test" (generated test pattern and tone),
	// encoded live to VP8 and Opus. It needs a build with capture support
	// (build tag mediadevices), which sets Capture.
	Capture string
}

// Capture sources accepted by MediaOptions.Capture.
const (
	CaptureDevices = "devices"
	CaptureTest    = "test"
)

// CaptureFunc opens live capture tracks of the given source ("devices" or
// "test"); stop releases the devices. A track that reads its sender's RTCP
// itself should have an OnGoodbye(func()) method, called on the peer's BYE.
type CaptureFunc func(source string, video, audio bool) (tracks []webrtc.TrackLocal, stop func(), err error)

// Capture opens live capture tracks; builds with the mediadevices tag set
// it, and it is nil otherwise.
var Capture CaptureFunc

// Assertions are the health checks of a call, evaluated when it ends.
// Zero values disable a check.
type Assertions struct {
	// ExpectPath is relay or direct: the selected candidate pair must
	// (or must not) go through a TURN relay.
	ExpectPath string
	// MaxSetup bounds the time from the offer to the first frame (or to
	// ICE connected when nothing is received).
	MaxSetup time.Duration
	// MaxLoss is the largest accepted fraction of lost packets, 0–1, over
	// all received tracks.
	MaxLoss float64
	// MinBitrate is the smallest accepted received bitrate in bit/s, over
	// all received tracks.
	MinBitrate float64
	// MinFrames is the smallest accepted number of received video frames.
	MinFrames int
}

// Validate checks the options for contradictions.
func (o Options) Validate() error {
	if err := o.ICE.Validate(); err != nil {
		return err
	}
	switch o.Assert.ExpectPath {
	case "", PathRelay, PathDirect:
	default:
		return fmt.Errorf("%w: --expect-path must be relay or direct, not %q", ErrUsage, o.Assert.ExpectPath)
	}
	if o.Assert.MaxLoss < 0 || o.Assert.MaxLoss > 1 {
		return fmt.Errorf("%w: --max-loss must be between 0 and 100 %%", ErrUsage)
	}
	if o.Assert.MinBitrate < 0 || o.Assert.MinFrames < 0 || o.Assert.MaxSetup < 0 {
		return fmt.Errorf("%w: assertion limits must not be negative", ErrUsage)
	}
	if o.Duration < 0 || o.SetupTimeout < 0 {
		return fmt.Errorf("%w: durations must not be negative", ErrUsage)
	}
	if o.Media.FPS < 0 || o.Media.FPS > media.MaxFrameRate {
		return fmt.Errorf("%w: --fps must be between 1 and %d", ErrUsage, media.MaxFrameRate)
	}
	if o.MaxICERestarts < -1 {
		return fmt.Errorf("%w: --max-ice-restarts must be -1 (none) or more", ErrUsage)
	}
	if o.Echo && (o.Media.VideoFile != "" || o.Media.AudioFile != "") {
		return fmt.Errorf("%w: --echo sends received media back; it excludes media files", ErrUsage)
	}
	if m := o.Media; m.Capture != "" {
		if m.Capture != CaptureDevices && m.Capture != CaptureTest {
			return fmt.Errorf("%w: --capture must be devices or test, not %q", ErrUsage, m.Capture)
		}
		if Capture == nil {
			return fmt.Errorf("%w: this rtckit was built without capture support (build with -tags mediadevices)", ErrUsage)
		}
		if m.VideoFile != "" || m.AudioFile != "" || o.Echo {
			return fmt.Errorf("%w: --capture excludes media files and --echo", ErrUsage)
		}
	}
	if o.Echo && (o.Media.NoVideo && o.Media.NoAudio) {
		return fmt.Errorf("%w: --echo with --no-video and --no-audio has nothing to send back", ErrUsage)
	}
	return nil
}

func (o Options) setupTimeout() time.Duration {
	if o.SetupTimeout > 0 {
		return o.SetupTimeout
	}
	return DefaultSetupTimeout
}
