// Package cmd wires rtckit's command tree with cobra. It holds no logic of its
// own: every command parses flags into an options struct and hands it to a
// library package.
package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rtckit/rtckit/peer"
	"github.com/spf13/cobra"
)

// DefaultTimeout bounds a whole command when --timeout is not given.
const DefaultTimeout = 10 * time.Second

// Streams holds the I/O a command uses, so tests can capture it.
type Streams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
}

// GlobalOptions are the root flags that every command honours.
type GlobalOptions struct {
	// JSON selects machine-readable output on stdout.
	JSON bool
	// Verbose raises the log level on stderr: 1 for info, 2 for debug.
	Verbose int
	// Timeout bounds the whole command; zero means the command's default.
	Timeout time.Duration

	streams Streams
	logger  *slog.Logger
}

// Logger returns the logger configured by --verbose, writing to stderr.
func (g *GlobalOptions) Logger() *slog.Logger {
	if g.logger == nil {
		g.logger = newLogger(g.streams.ErrOut, g.Verbose)
	}
	return g.logger
}

// Context returns a context bounded by --timeout (or def when it is unset).
func (g *GlobalOptions) Context(parent context.Context, def time.Duration) (context.Context, context.CancelFunc) {
	timeout := g.Timeout
	if timeout <= 0 {
		timeout = def
	}
	if timeout <= 0 {
		return context.WithCancel(parent)
	}
	return context.WithTimeout(parent, timeout)
}

func newLogger(w io.Writer, verbose int) *slog.Logger {
	level := slog.LevelWarn
	switch {
	case verbose >= 4:
		level = peer.LevelPionTrace
	case verbose == 3:
		level = peer.LevelPionDebug
	case verbose == 2:
		level = slog.LevelDebug
	case verbose == 1:
		level = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// NewRootCmd builds the whole rtckit command tree around the given streams.
func NewRootCmd(streams Streams) *cobra.Command {
	g := &GlobalOptions{streams: streams}
	root := &cobra.Command{
		Use:   "rtckit",
		Short: "A command-line toolkit for WebRTC",
		Long: `rtckit diagnoses and places WebRTC calls: it discovers NAT behaviour with STUN,
gathers ICE candidates through STUN and TURN servers, runs a signaling hub with
a browser call page, and places scripted or ad-hoc calls.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			if g.Timeout < 0 {
				return usageError(errors.New("--timeout must not be negative (0: the command's default)"))
			}
			return nil
		},
	}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return usageError(err)
	})

	pf := root.PersistentFlags()
	pf.BoolVar(&g.JSON, "json", false, "print machine-readable JSON on stdout")
	pf.CountVarP(&g.Verbose, "verbose", "v", "log progress to stderr (-v info, -vv debug, -vvv and -vvvv the WebRTC stack's debug and trace records)")
	pf.DurationVar(&g.Timeout, "timeout", 0, "bound the whole command (0: the command's default)")

	root.AddCommand(
		newVersionCmd(g),
		newStunCmd(g),
		newICECmd(g),
		newTurnCmd(g),
		newSignalCmd(g),
		newCallCmd(g),
	)
	return root
}

// Main runs rtckit with the process's arguments and returns its exit code.
func Main() int {
	streams := Streams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, streams, os.Args[1:])
}

// Run executes the command tree with args and returns the exit code; errors
// are printed to streams.ErrOut.
func Run(ctx context.Context, streams Streams, args []string) int {
	root := NewRootCmd(streams)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	code := ExitCode(err)
	if !isSilent(err) {
		fmt.Fprintf(streams.ErrOut, "rtckit: %v\n", err)
	}
	return code
}
