// Command browsergather measures how fast headless Chromium gathers ICE
// candidates, as the reference for `rtckit ice gather` against the same
// STUN and TURN servers.
//
// It serves a small Trickle-ICE-style page on 127.0.0.1, and for every run
// creates a fresh RTCPeerConnection (iceCandidatePoolSize 0) with a data
// channel, calls createOffer and setLocalDescription, and records the time of
// each icecandidate event, of the null candidate and of iceGatheringState
// "complete", all from just before setLocalDescription. It prints one JSON
// object a line: a header, every run, then a median summary per scenario
// (-markdown prints a table of the summaries instead).
//
// With -coturn it starts coturn on 127.0.0.1 itself and measures the
// scenarios host (no servers), stun, turn-udp, turn-tcp and all; otherwise it
// measures one scenario, "custom", with the servers given by -stun and -turn.
//
// With -rtckit PATH it also runs `PATH --json ice gather` against the same
// servers, as many times, and reports its first candidate of each type,
// its gathering time (the report's duration_ms; no relay check) and the
// process's wall-clock time from exec to exit, start-up included, next to
// Chromium's. bench/icegather-browser.sh installs what it needs, builds
// rtckit and runs it.
//
// Examples:
//
//	go run ./bench/browsergather -coturn -runs 10 -markdown
//	go build -o /tmp/rtckit . && go run ./bench/browsergather -coturn -rtckit /tmp/rtckit -markdown
//	go run ./bench/browsergather -stun stun:127.0.0.1:3478 \
//	    -turn 'turn:127.0.0.1:3478?transport=udp' -user u -pass p -runs 10
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
	"strings"
	"syscall"
	"time"
)

// Defaults of the command-line flags.
const (
	defaultRuns = 10
	// defaultTimeout bounds one gathering. Against servers that answer,
	// Chromium completes in well under a second; one that does not answer
	// makes it wait for its STUN/TURN retransmissions (up to ~40 s).
	defaultTimeout = 30 * time.Second
)

// options are the command-line flags.
type options struct {
	stun, turn []string
	user, pass string
	coturn     bool
	scenarios  []string
	runs       int
	warmup     int
	timeout    time.Duration
	loopback   bool
	mode       string
	markdown   bool
	verbose    bool
	// rtckit is the rtckit binary to compare with; empty for Chromium only.
	rtckit string
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error {
	*l = append(*l, s)
	return nil
}

// parseFlags parses args; usage and errors go to stderr.
func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("browsergather", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Var((*listFlag)(&o.stun), "stun", "STUN server URI, e.g. stun:127.0.0.1:3478 (repeatable)")
	fs.Var((*listFlag)(&o.turn), "turn", "TURN server URI, e.g. 'turn:127.0.0.1:3478?transport=tcp' (repeatable)")
	fs.StringVar(&o.user, "user", "", "TURN username (for every -turn)")
	fs.StringVar(&o.pass, "pass", "", "TURN password (for every -turn)")
	fs.BoolVar(&o.coturn, "coturn", false, "start coturn on 127.0.0.1 and measure the -scenarios against it")
	scenarios := fs.String("scenarios", strings.Join(coturnScenarioNames, ","), "with -coturn: comma-separated scenarios to run")
	fs.IntVar(&o.runs, "runs", defaultRuns, "measured runs per scenario, each in a fresh RTCPeerConnection (and, with -rtckit, a fresh rtckit process)")
	fs.IntVar(&o.warmup, "warmup", 1, "unreported runs before each scenario")
	fs.DurationVar(&o.timeout, "timeout", defaultTimeout, "bound on one gathering (rtckit gets it as --timeout)")
	fs.BoolVar(&o.loopback, "loopback", true, "let Chromium use loopback candidates (--allow-loopback-in-peer-connection)")
	fs.StringVar(&o.mode, "mode", modeGranted, "page mode: granted (holds media permission like a call page: every interface, raw addresses), "+
		"plain (no permission: default-route address only), mdns (no permission, .local host names; multicasts, so run it in a network namespace)")
	fs.StringVar(&o.rtckit, "rtckit", "", "also run `PATH` --json ice gather against the same servers, as many runs, and report rtckit next to Chromium "+
		"(rtckit gathers on every interface with raw addresses, whatever -mode)")
	fs.BoolVar(&o.markdown, "markdown", false, "print a Markdown table of the summaries instead of JSON lines")
	fs.BoolVar(&o.verbose, "v", false, "log Chromium's output and every candidate to stderr")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: browsergather [flags]\n\n"+
			"Times ICE candidate gathering in headless Chromium, and in rtckit with -rtckit.\n\nExamples:\n"+
			"  browsergather -coturn -runs 10 -markdown\n"+
			"  browsergather -coturn -rtckit ./rtckit -markdown\n"+
			"  browsergather -stun stun:127.0.0.1:3478 -turn 'turn:127.0.0.1:3478?transport=udp' -user u -pass p\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if !slices.Contains(modes, o.mode) {
		return o, fmt.Errorf("-mode %q: want one of %s", o.mode, strings.Join(modes, ", "))
	}
	if o.runs < 1 || o.warmup < 0 || o.timeout <= 0 {
		return o, errors.New("-runs must be at least 1, -warmup at least 0 and -timeout positive")
	}
	if o.coturn {
		if len(o.stun) > 0 || len(o.turn) > 0 {
			return o, errors.New("-coturn brings its own servers: drop -stun and -turn")
		}
		for s := range strings.SplitSeq(*scenarios, ",") {
			if s = strings.TrimSpace(s); s != "" {
				o.scenarios = append(o.scenarios, s)
			}
		}
	} else if len(o.stun) == 0 && len(o.turn) == 0 {
		return o, errors.New("give -stun or -turn servers, or -coturn")
	}
	return o, nil
}

func main() {
	opts, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "browsergather:", err)
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
		fmt.Fprintln(os.Stderr, "browsergather:", err)
		os.Exit(1)
	}
}
