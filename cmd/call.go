package cmd

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/rtckit/rtckit/call"
	"github.com/rtckit/rtckit/signal/hubclient"
	"github.com/spf13/cobra"
)

// CallOptions are the inputs of `rtckit call`.
type CallOptions struct {
	Call call.Options
	// Hub is the hub's WebSocket URL; As the name to register; To the peer
	// to call; Answer waits for calls instead, From limits who may call.
	Hub, As, To string
	Answer      bool
	From        []string
	// HubToken is the hub's access token.
	HubToken string
	// Wait bounds waiting for the peer to come online (--to) or for a call
	// (--answer); zero means no waiting for --to and forever for --answer.
	Wait time.Duration
	// Offer and Accept select serverless signaling with tokens.
	Offer  bool
	Accept string
	// MaxLossPercent and MinBitrateKbps are the flag forms of the assertions.
	MaxLossPercent, MinBitrateKbps float64
}

func newCallCmd(g *GlobalOptions) *cobra.Command {
	opts := &CallOptions{}
	c := &cobra.Command{
		Use:   "call",
		Short: "Place or answer a call, send media, files or chat, report its health",
		Long: `Call places or answers a WebRTC call (audio, video and data) with a browser on
rtckit's call page or with another rtckit, through a hub (rtckit signal serve)
or without any server by exchanging two tokens.

By default it sends an embedded test clip (VP8 video with a frame counter and
an Opus tone) looped for as long as the call lasts; --video and --audio send
files instead (IVF with VP8/VP9/AV1, H.264 Annex-B, Ogg Opus), --echo sends
back what arrives. --record writes what arrives as IVF/Ogg files; --verify
checks every received frame against the clip. --send and --receive transfer
files over data channels (SHA-256 checked, the browser page's format); --chat
is a text chat over a data channel.

At the end it prints a report (--json for machines): the timeline of the
call, the selected candidate pair, per-track statistics and file transfers.
Assertions (--expect-path, --max-setup, --max-loss, --min-bitrate,
--min-frames) make an unhealthy call exit non-zero (see docs/exit-codes.md).`,
		Example: `  # Answer calls as "bot" on a hub, sending the test clip, for 60 s
  rtckit call --hub ws://localhost:8080/ws --as bot --answer --duration 60s

  # Call "bot" and prove media crosses intact through a TURN relay
  rtckit call --hub ws://localhost:8080/ws --as ci --to bot --duration 10s \
    --ice-policy relay --turn turn:u:p@turn.example.net --verify \
    --expect-path relay --max-loss 1 --min-frames 200

  # Send a file to a browser user and record what they send for a minute
  rtckit call --hub ws://localhost:8080/ws --as me --to alice --send report.pdf --record rec/ --duration 1m

  # Without a server: one side prints a token, the other answers with one
  rtckit call --offer --chat          # paste the answer token when asked
  rtckit call --accept rtc1.… --chat`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := g.Context(cmd.Context(), 0)
			defer cancel()
			return runCall(ctx, g, opts)
		},
	}
	f := c.Flags()
	f.StringVar(&opts.Hub, "hub", "", "hub WebSocket URL, ws://host:port/ws (rtckit signal serve)")
	f.StringVar(&opts.As, "as", "", "name to register on the hub")
	f.StringVar(&opts.To, "to", "", "name of the user to call")
	f.BoolVar(&opts.Answer, "answer", false, "wait for a call and answer it")
	f.StringSliceVar(&opts.From, "from", nil, "with --answer: accept calls only from these names")
	f.StringVar(&opts.HubToken, "hub-token", "", "the hub's access token (signal serve --token)")
	f.DurationVar(&opts.Wait, "wait", 0, "wait this long for --to to come online, or for a call with --answer (0: no wait / forever)")
	f.BoolVar(&opts.Offer, "offer", false, "serverless: print an offer token, then read the answer token from stdin")
	f.StringVar(&opts.Accept, "accept", "", "serverless: answer this offer token and print the answer token")
	addICEFlags(f, &opts.Call.ICE)

	m := &opts.Call.Media
	f.BoolVar(&m.NoVideo, "no-video", false, "send no video")
	f.BoolVar(&m.NoAudio, "no-audio", false, "send no audio")
	f.StringVar(&m.VideoFile, "video", "", "video file to send: IVF (VP8, VP9, AV1) or H.264 Annex-B (.h264)")
	f.StringVar(&m.AudioFile, "audio", "", "audio file to send: Ogg Opus")
	f.IntVar(&m.FPS, "fps", 0, "frame rate of H.264 Annex-B files (default 30)")
	f.BoolVar(&m.NoLoop, "no-loop", false, "send media files once instead of looping them")
	f.StringVar(&m.Capture, "capture", "", "send live media encoded to VP8/Opus: devices (camera and microphone) or test (generated); needs a build with -tags mediadevices")
	f.BoolVar(&opts.Call.Echo, "echo", false, "send received media back to the peer (a test bot)")
	f.StringVar(&opts.Call.RecordDir, "record", "", "record received media into this directory (IVF, Ogg)")
	f.BoolVar(&opts.Call.Verify, "verify", false, "check every received frame against the embedded test clip")
	f.BoolVar(&opts.Call.Chat, "chat", false, "text chat over a data channel: stdin to the peer, the peer to stdout")
	f.StringArrayVar(&opts.Call.SendFiles, "send", nil, "send this file over a data channel (repeatable)")
	f.StringVar(&opts.Call.ReceiveDir, "receive", "", "accept files from the peer into this directory")

	f.DurationVar(&opts.Call.Duration, "duration", 0, "hang up this long after connecting (0: on hang-up, SIGINT or when --send is done)")
	f.DurationVar(&opts.Call.SetupTimeout, "setup-timeout", call.DefaultSetupTimeout, "give up when the call is not connected this long after it started")
	f.IntVar(&opts.Call.MaxICERestarts, "max-ice-restarts", call.DefaultMaxICERestarts, "ICE restarts in a row after a failure before the call counts as dropped (0 or -1: none)")

	a := &opts.Call.Assert
	f.StringVar(&a.ExpectPath, "expect-path", "", "fail (exit 6) unless the selected path is relay or direct")
	f.DurationVar(&a.MaxSetup, "max-setup", 0, "fail (exit 6) when offer → first frame takes longer")
	f.Float64Var(&opts.MaxLossPercent, "max-loss", 0, "fail (exit 6) when more than this percentage of received packets was lost (0: no check)")
	f.Float64Var(&opts.MinBitrateKbps, "min-bitrate", 0, "fail (exit 6) when the received bitrate is below this many kbit/s (0: no check)")
	f.IntVar(&a.MinFrames, "min-frames", 0, "fail (exit 6) when fewer video frames were received")
	return c
}

// validate checks the signaling flags and fills the derived options.
func (o *CallOptions) validate() error {
	modes := 0
	for _, on := range []bool{o.Hub != "", o.Offer, o.Accept != ""} {
		if on {
			modes++
		}
	}
	switch {
	case modes == 0:
		return fmt.Errorf("say how to reach the peer: --hub URL with --as and --to/--answer, or --offer, or --accept TOKEN")
	case modes > 1:
		return fmt.Errorf("--hub, --offer and --accept exclude each other")
	}
	if o.Hub != "" {
		if o.As == "" {
			return fmt.Errorf("--hub needs --as NAME")
		}
		if (o.To == "") == !o.Answer {
			return fmt.Errorf("--hub needs exactly one of --to NAME and --answer")
		}
		if len(o.From) > 0 && !o.Answer {
			return fmt.Errorf("--from goes with --answer")
		}
		if _, err := hubclient.ParseURL(o.Hub); err != nil {
			return err
		}
	} else if o.As != "" || o.To != "" || o.Answer || len(o.From) > 0 || o.HubToken != "" {
		return fmt.Errorf("--as, --to, --answer, --from and --hub-token need --hub")
	}
	if o.Wait < 0 {
		return fmt.Errorf("--wait must not be negative")
	}
	if math.IsNaN(o.MaxLossPercent) || math.IsNaN(o.MinBitrateKbps) || math.IsInf(o.MinBitrateKbps, 0) {
		return fmt.Errorf("--max-loss and --min-bitrate must be numbers")
	}
	if o.MaxLossPercent < 0 || o.MaxLossPercent > 100 {
		return fmt.Errorf("--max-loss is a percentage, 0 to 100")
	}
	if o.MinBitrateKbps < 0 {
		return fmt.Errorf("--min-bitrate must not be negative")
	}
	o.Call.Assert.MaxLoss = o.MaxLossPercent / 100
	o.Call.Assert.MinBitrate = o.MinBitrateKbps * 1000
	if o.Call.ReceiveDir != "" {
		st, err := os.Stat(o.Call.ReceiveDir)
		if err != nil {
			return fmt.Errorf("--receive: %w", err)
		}
		if !st.IsDir() {
			return fmt.Errorf("--receive %s: not a directory", o.Call.ReceiveDir)
		}
		if err := checkWritableDir(o.Call.ReceiveDir); err != nil {
			return fmt.Errorf("--receive: %w", err)
		}
	}
	files := map[string][]string{"--send": o.Call.SendFiles, "--video": {o.Call.Media.VideoFile}, "--audio": {o.Call.Media.AudioFile}}
	for flag, paths := range files {
		for _, p := range paths {
			if p == "" {
				continue
			}
			st, err := os.Stat(p)
			if err != nil {
				return fmt.Errorf("%s: %w", flag, err)
			}
			if !st.Mode().IsRegular() {
				return fmt.Errorf("%s %s: not a regular file", flag, p)
			}
		}
	}
	if o.Call.MaxICERestarts == 0 {
		o.Call.MaxICERestarts = -1 // the library's 0 is its default
	}
	if err := o.Call.Validate(); err != nil {
		return err
	}
	if err := call.CheckMedia(o.Call.Media); err != nil {
		return err
	}
	if o.Accept != "" && o.Accept != "-" {
		if _, err := call.DecodeToken(o.Accept); err != nil {
			return err // before --record makes a directory
		}
	}
	if o.Call.RecordDir != "" {
		if err := os.MkdirAll(o.Call.RecordDir, 0o750); err != nil {
			return fmt.Errorf("--record: %w", err)
		}
		if err := checkWritableDir(o.Call.RecordDir); err != nil {
			return fmt.Errorf("--record: %w", err)
		}
	}
	return nil
}

// checkWritableDir makes and removes a file in dir, so that a directory
// the call could not write into is found before the call, not when the
// first file or frame arrives.
func checkWritableDir(dir string) error {
	f, err := os.CreateTemp(dir, ".rtckit-write-check-*")
	if err != nil {
		return fmt.Errorf("cannot make a file in %s: %w", dir, err)
	}
	name := f.Name()
	return errors.Join(f.Close(), os.Remove(name))
}

// callGCPercent is the garbage collector's target of a call process
// unless GOGC is set.
const callGCPercent = 400

// callProcs is how many goroutines of a call process run Go code at once
// unless GOMAXPROCS is set or live media is encoded (--capture). Every
// packet of a call passes through a chain of goroutines (socket reader,
// ICE, DTLS, SCTP, data channel, and back); on one processor handing a
// packet on is a run-queue operation, on several it wakes another thread,
// which costs more than the work it hands over: with one, a file transfer
// between two rtckit processes takes about 30 % less CPU per MiB
// (docs/benchmarks.md).
const callProcs = 1

func runCall(ctx context.Context, g *GlobalOptions, opts *CallOptions) error {
	if err := opts.validate(); err != nil {
		return usageError(err)
	}
	start := time.Now()
	if _, set := os.LookupEnv("GOGC"); !set {
		// pion allocates per packet: a larger heap target spends less
		// CPU on garbage collection during bulk transfers, for a few tens
		// of megabytes.
		debug.SetGCPercent(callGCPercent)
	}
	if _, set := os.LookupEnv("GOMAXPROCS"); !set && opts.Call.Media.Capture == "" {
		runtime.GOMAXPROCS(callProcs)
	}
	stdio := call.IO{In: g.streams.In, Out: g.streams.Out, Logger: g.Logger()}
	if isTerminal(g.streams.ErrOut) {
		stdio.Status = g.streams.ErrOut
	}
	var (
		sig      call.Signaler
		setup    call.Setup
		prepared *call.Prepared
	)
	switch {
	case opts.Offer:
		ts := call.NewTokenOffer(g.streams.In, g.streams.Out, g.streams.ErrOut)
		ts.SetJSON(g.JSON)
		sig, setup = ts, call.Setup{Mode: "token", Caller: true, Polite: false}
		stdio.In = ts.Rest() // chat follows the answer token on stdin
	case opts.Accept != "":
		token := opts.Accept
		if token == "-" {
			in := bufio.NewReaderSize(g.streams.In, call.MaxTokenLen+4)
			var err error
			if token, err = call.ReadToken(in); err != nil {
				if errors.Is(err, io.EOF) {
					err = errors.New("no token on standard input")
				}
				return usageError(fmt.Errorf("--accept -: %w", err))
			}
			stdio.In = in // chat follows the token on stdin
		}
		s, err := call.NewTokenAccept(token, g.streams.Out, g.streams.ErrOut)
		if err != nil {
			return err
		}
		s.SetJSON(g.JSON)
		sig, setup = s, call.Setup{Mode: "token", Polite: true}
	default:
		client, err := hubclient.Dial(ctx, opts.Hub, hubclient.Options{Token: opts.HubToken})
		if err != nil {
			return err
		}
		defer client.Close()
		signalingAt := time.Now()
		name, _, err := client.Register(ctx, opts.As)
		if err != nil {
			return err
		}
		if name != opts.As {
			fmt.Fprintf(g.streams.ErrOut, "rtckit: the hub registered us as %q: %q is taken (a user that left keeps its name for the hub's resume grace period) or not a valid name\n", name, opts.As)
		}
		var hs *call.HubSignaler
		if opts.Answer {
			// The peer connection is made while waiting, so that the
			// answer does not wait for it.
			prepared, err = call.Prepare(opts.Call, call.HubICEServers(client), stdio)
			if err != nil {
				return err
			}
			defer func() { _ = prepared.Close() }()
			fmt.Fprintf(g.streams.ErrOut, "rtckit: registered as %q on %s; waiting for a call\n", name, opts.Hub)
			hs, setup, err = call.AnswerOnHub(ctx, client, opts.From, opts.Wait)
		} else {
			hs, setup, err = call.CallOnHub(ctx, client, opts.To, opts.Wait)
		}
		if errors.Is(err, context.Canceled) {
			if opts.Answer {
				// Interrupted before any call: a normal way to stop a bot.
				fmt.Fprintln(g.streams.ErrOut, "rtckit: interrupted before a call")
				return nil
			}
			// A caller interrupted before its call connected made no call.
			return fmt.Errorf("%w: interrupted before %q answered", call.ErrSetup, opts.To)
		}
		if err != nil {
			return err
		}
		sig = hs
		setup.SignalingAt = signalingAt
	}
	setup.Start = start
	var rep *call.Report
	var err error
	if prepared != nil {
		rep, err = prepared.Run(ctx, setup, sig)
	} else {
		rep, err = call.Run(ctx, opts.Call, setup, sig, stdio)
	}
	if rep != nil {
		if werr := writeCallReport(g.streams.Out, g.JSON, rep); werr != nil && err == nil {
			err = werr
		}
	}
	return err
}

// writeCallReport prints the report as JSON or text.
func writeCallReport(w io.Writer, asJSON bool, rep *call.Report) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	_, err := io.WriteString(w, renderCallReport(rep))
	return err
}

// renderCallReport is the text form of a report.
func renderCallReport(rep *call.Report) string {
	var b strings.Builder
	who := rep.Peer
	if who == "" {
		who = "peer"
	}
	status := "ok"
	if !rep.OK {
		status = "FAILED: " + rep.Error
	}
	fmt.Fprintf(&b, "call %s %s (%s, %s): %s\n", map[bool]string{true: "to", false: "from"}[rep.Role == "caller"], who, rep.Mode, rep.EndReason, status)
	for _, p := range rep.Phases {
		fmt.Fprintf(&b, "  %9.1f ms  %s\n", p.AtMS, p.Name)
	}
	if rep.SetupMS > 0 {
		fmt.Fprintf(&b, "setup %.1f ms (offer → first frame), connected %.1f s\n", rep.SetupMS, rep.ConnectedMS/1000)
	}
	if p := rep.Path; p != nil {
		kind := "direct"
		if p.Relay {
			kind = "relay"
		}
		fmt.Fprintf(&b, "path  %s: %s %s %s:%d ↔ %s %s:%d", kind, p.Local.Protocol, p.Local.Type, p.Local.Address, p.Local.Port, p.Remote.Type, p.Remote.Address, p.Remote.Port)
		if p.Local.RelayProtocol != "" {
			fmt.Fprintf(&b, " (relay over %s)", p.Local.RelayProtocol)
		}
		if p.RTTMS > 0 {
			fmt.Fprintf(&b, " rtt %.1f ms", p.RTTMS)
		}
		b.WriteString("\n")
	}
	for _, t := range rep.Tracks {
		fmt.Fprintf(&b, "%-3s %-5s %-5s %7d pkts %9d B %7.0f kbit/s loss %5.2f %% nack %d pli %d frames %d",
			t.Direction, t.Kind, strings.TrimPrefix(t.Codec, t.Kind+"/"), t.Packets, t.Bytes, t.BitrateBPS/1000, t.LossFraction*100, t.NACKs, t.PLIs, t.Frames)
		if t.RTTMS > 0 {
			fmt.Fprintf(&b, " rtt %.1f ms", t.RTTMS)
		}
		if t.Verified+t.Mismatched > 0 {
			fmt.Fprintf(&b, " verified %d/%d", t.Verified, t.Verified+t.Mismatched)
		}
		if t.Recording != "" {
			fmt.Fprintf(&b, " → %s", t.Recording)
		}
		if t.Error != "" {
			fmt.Fprintf(&b, " (%s)", t.Error)
		}
		b.WriteString("\n")
	}
	for _, f := range rep.Files {
		res := "ok"
		if !f.OK {
			res = "FAILED: " + f.Error
		}
		fmt.Fprintf(&b, "file %-3s %s %d B %.1f MB/s sha256 %s: %s\n", f.Direction, f.Name, f.Size, f.MBps, f.SHA256, res)
	}
	for _, c := range rep.Checks {
		mark := "pass"
		if !c.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(&b, "check %s %s: want %s, got %s\n", mark, c.Name, c.Want, c.Got)
	}
	return b.String()
}

// isTerminal tells whether w is a terminal (for the live status line).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
