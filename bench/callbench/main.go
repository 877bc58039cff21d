// Command callbench measures `rtckit call` next to headless Chromium on the
// same hub (`rtckit signal serve`) in the same run: how fast a call is set
// up, and how fast a file crosses a data channel.
//
// Setup (-tests setup): every run places one call on the hub and times it
// from just before the caller sends its offer.
//
//   - rtckit ↔ rtckit: a fresh `rtckit --json call --answer` process and a
//     fresh caller process with --duration (1 s), both sending the embedded
//     test clip; the times are the caller's report phases since its offer:
//     answer, ICE connected, DTLS connected, first RTP and first keyframe
//     (its first frame), plus the caller process's wall-clock time.
//   - Chromium ↔ Chromium: two tabs of a small page served by callbench
//     that speaks the hub protocol (page/bench.js); the callee tab answers,
//     both send the fake camera (320×240, 30 fps) and microphone; the caller
//     tab records iceConnectionState connected, connectionState connected
//     (DTLS), the first remote track unmuted (first RTP), the first video
//     frame (requestVideoFrameCallback on a playing <video>) and the first
//     decoded frame (getStats framesDecoded > 0, polled every 5 ms).
//
// File (-tests file): every run sends one file of -size bytes on a call with
// only a data channel, in the format of docs/file-transfer.md (16 KiB
// chunks, SHA-256 checked by the receiver, 1 MiB / 256 KiB flow control).
// rtckit: `--send FILE` to `--receive DIR` (both --no-audio --no-video); MB/s
// from the sender's report (channel open to file-ack) and the receiver's
// (header to verified). Chromium: the page generates and hashes the file
// once, then times header sent → file-ack in the caller tab, and header →
// ack sent (SHA-256 included) in the callee tab.
//
// Pion (-pairs …,pion, file test only): two bare pion/webrtc processes,
// callbench itself run as each peer (pionpeer.go), with pion's defaults
// (loopback candidates aside): the file in 64 KiB messages with the flow
// control of pion's data-channels-flow-control example (1 MiB, resume at
// 512 KiB), the SHA-256 checked by the receiver, the offer and the answer
// carried by callbench without trickle. It is the setting of the reference
// figures, measured in the same run.
//
// Runs alternate between the pairs, so that a disturbance of the machine
// hits both. It prints one JSON object a line: a header (with the load
// average before and after), every run, then a summary (median, minimum,
// maximum of every metric) per test and pair; -markdown prints tables of
// the summaries instead. bench/call.sh builds rtckit and runs it.
//
// Examples:
//
//	go build -o /tmp/rtckit . && go run ./bench/callbench -rtckit /tmp/rtckit -markdown
//	go run ./bench/callbench -rtckit /tmp/rtckit -tests setup -pairs cli -runs 20
//	go run ./bench/callbench -rtckit /tmp/rtckit -tests file -size 64MiB
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Defaults of the command-line flags.
const (
	defaultRuns     = 10
	defaultSize     = 256 << 20
	defaultDuration = time.Second
	// defaultTimeout bounds one call of the file test.
	defaultTimeout = 2 * time.Minute
	// defaultSetupTimeout bounds one call of the setup test.
	defaultSetupTimeout = 30 * time.Second
	// maxSize is the largest file the page holds in memory.
	maxSize = 512 << 20
)

// options are the command-line flags.
type options struct {
	rtckit   string
	tests    []string
	pairs    []string
	runs     int
	warmup   int
	size     int64
	dir      string
	duration time.Duration
	timeout  time.Duration
	// setupTimeout bounds a call of the setup test.
	setupTimeout time.Duration
	loopback     bool
	markdown     bool
	verbose      bool
}

// parseSize parses a byte count with an optional KiB, MiB or GiB suffix.
func parseSize(s string) (int64, error) {
	mult := int64(1)
	for suffix, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if strings.HasSuffix(s, suffix) {
			s, mult = strings.TrimSuffix(s, suffix), m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("size %q: want a byte count such as 268435456 or 256MiB", s)
	}
	return n * mult, nil
}

// list splits a comma-separated flag value and checks every item.
func list(name, value string, known []string) ([]string, error) {
	var out []string
	for v := range strings.SplitSeq(value, ",") {
		if v = strings.TrimSpace(v); v == "" {
			continue
		}
		if !slices.Contains(known, v) {
			return nil, fmt.Errorf("-%s %q: want some of %s", name, v, strings.Join(known, ","))
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("-%s: empty", name)
	}
	return out, nil
}

// parseFlags parses args; usage and errors go to stderr.
func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("callbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.rtckit, "rtckit", "", "the rtckit binary: runs the hub, and the calls of the cli pair (required)")
	tests := fs.String("tests", testSetup+","+testFile, "tests to run: setup, file")
	pairs := fs.String("pairs", pairCLI+","+pairChromium, "peer pairs to measure: cli (rtckit ↔ rtckit), chromium (two tabs), pion (two bare pion processes, file test only)")
	fs.IntVar(&o.runs, "runs", defaultRuns, "measured runs per test and pair")
	fs.IntVar(&o.warmup, "warmup", 1, "unreported runs before each test, per pair")
	size := fs.String("size", "256MiB", "file size of the file test (KiB, MiB, GiB suffixes; a multiple of 4, at most 512MiB)")
	fs.StringVar(&o.dir, "dir", defaultDir(), "directory for the file to send and the received copies (a tmpfs keeps the disk out of it)")
	fs.DurationVar(&o.duration, "duration", defaultDuration, "setup test: how long the rtckit caller stays connected (--duration)")
	fs.DurationVar(&o.timeout, "timeout", defaultTimeout, "bound on one call of the file test")
	fs.DurationVar(&o.setupTimeout, "setup-timeout", defaultSetupTimeout, "bound on one call of the setup test")
	fs.BoolVar(&o.loopback, "loopback", true, "rtckit gathers loopback candidates (--include-loopback), Chromium may use them (--allow-loopback-in-peer-connection)")
	fs.BoolVar(&o.markdown, "markdown", false, "print Markdown tables of the summaries instead of JSON lines")
	fs.BoolVar(&o.verbose, "v", false, "log Chromium's output and the pages' console to stderr")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: callbench -rtckit PATH [flags]\n\n"+
			"Times call setup and data-channel file transfer, rtckit ↔ rtckit and Chromium ↔ Chromium, on one hub.\n\nExamples:\n"+
			"  callbench -rtckit ./rtckit -markdown\n"+
			"  callbench -rtckit ./rtckit -tests setup -pairs cli -runs 20\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var err error
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	case o.rtckit == "":
		return o, errors.New("-rtckit is required (it also runs the hub)")
	case o.runs < 1 || o.warmup < 0 || o.timeout <= 0 || o.setupTimeout <= 0 || o.duration <= 0:
		return o, errors.New("-runs must be at least 1, -warmup at least 0, -timeout, -setup-timeout and -duration positive")
	}
	if o.tests, err = list("tests", *tests, []string{testSetup, testFile}); err != nil {
		return o, err
	}
	if o.pairs, err = list("pairs", *pairs, []string{pairCLI, pairChromium, pairPion}); err != nil {
		return o, err
	}
	if o.size, err = parseSize(*size); err != nil {
		return o, err
	}
	if o.size%4 != 0 || o.size > maxSize {
		return o, fmt.Errorf("-size %d: want a multiple of 4 up to %d", o.size, maxSize)
	}
	return o, nil
}

// defaultDir is /dev/shm when it exists, else the temporary directory.
func defaultDir() string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		return "/dev/shm"
	}
	return os.TempDir()
}

func main() {
	if len(os.Args) > 1 && (os.Args[1] == pionSendCommand || os.Args[1] == pionReceiveCommand) {
		if err := runPionPeer(os.Args[1], os.Args[2:], os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "callbench:", os.Args[1]+":", err)
			os.Exit(1)
		}
		return
	}
	opts, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "callbench:", err)
		os.Exit(2)
	}
	level := slog.LevelInfo
	if opts.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, opts, os.Stdout, log)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "callbench:", err)
		os.Exit(1)
	}
}
