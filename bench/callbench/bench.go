package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// setupTimeout bounds starting the hub and Chromium and writing the file.
const setupTimeout = 2 * time.Minute

// run measures every test and pair and writes the report to stdout.
func run(ctx context.Context, opts options, stdout io.Writer, log *slog.Logger) error {
	setup, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	out, err := exec.CommandContext(setup, opts.rtckit, "version").Output()
	if err != nil {
		return fmt.Errorf("-rtckit %s: %w", opts.rtckit, err)
	}
	version, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	rep := Report{Header: Header{Record: "header", Schema: schemaVersion, RTCKit: version, Loopback: opts.loopback,
		DurationMS: float64(opts.duration.Milliseconds()), FileSize: opts.size, Runs: opts.runs, Warmup: opts.warmup,
		CPUs: runtime.NumCPU(), LoadStart: loadAverage()}}

	h, err := startHub(setup, opts.rtckit)
	if err != nil {
		return err
	}
	defer h.Close()
	log.Info("hub started", "ws", h.ws)

	var chromium *chromiumPair
	if slices.Contains(opts.pairs, pairChromium) {
		blog := slog.New(slog.DiscardHandler)
		if opts.verbose {
			blog = log
		}
		if chromium, err = startChromium(setup, h.ws, opts.loopback, blog); err != nil {
			return err
		}
		defer chromium.Close()
		rep.Header.Browser = chromium.ua
	}

	var file string
	if slices.Contains(opts.tests, testFile) && (slices.Contains(opts.pairs, pairCLI) || slices.Contains(opts.pairs, pairPion)) {
		if file, err = writeTestFile(opts.dir, opts.size); err != nil {
			return err
		}
		defer os.Remove(file)
	}

	m := &measurer{opts: opts, hub: h.ws, chromium: chromium, file: file, log: log}
	byKey := map[string][]Run{}
	for _, test := range opts.tests {
		for i := -opts.warmup; i < opts.runs; i++ {
			for _, pair := range opts.pairs {
				if !measured(test, pair) {
					continue
				}
				if err := ctx.Err(); err != nil {
					return err
				}
				r := m.once(ctx, test, pair, i)
				logRun(log, r)
				if i >= 0 {
					rep.Runs = append(rep.Runs, r)
					byKey[test+"/"+pair] = append(byKey[test+"/"+pair], r)
				}
			}
		}
		for _, pair := range opts.pairs {
			if !measured(test, pair) {
				continue
			}
			rep.Summaries = append(rep.Summaries, summarize(test, pair, byKey[test+"/"+pair]))
		}
	}
	rep.Header.LoadEnd = loadAverage()
	if opts.markdown {
		return writeMarkdown(stdout, rep)
	}
	return writeJSONLines(stdout, rep)
}

// measured tells whether test is run with pair: the pion pair has only
// the file test.
func measured(test, pair string) bool { return pair != pairPion || test == testFile }

// measurer runs one test of one pair.
type measurer struct {
	opts     options
	hub      string
	chromium *chromiumPair
	// file is the file the cli pair sends.
	file string
	log  *slog.Logger
}

// once measures run index (negative for warm-ups) of test with pair.
func (m *measurer) once(ctx context.Context, test, pair string, index int) Run {
	o := m.opts
	if pair == pairPion {
		return pionRun(ctx, index, m.file, o.size, o.loopback, o.timeout, runtime.NumCPU())
	}
	if pair == pairChromium {
		if test == testSetup {
			return m.chromium.setupRun(ctx, index, o.setupTimeout)
		}
		return m.chromium.fileRun(ctx, index, o.size, o.timeout, runtime.NumCPU())
	}
	// Fresh names per run: a name stays reserved for a while after its
	// connection drops.
	n := fmt.Sprintf("%s%d", test, index+o.warmup)
	caller, callee := "cli-caller-"+n, "cli-callee-"+n
	if test == testSetup {
		ans, call := cliArgs(m.hub, caller, callee, o.loopback, o.setupTimeout+o.duration, nil, []string{"--duration", o.duration.String()}, nil)
		return newCLISetupRun(index, runCLICall(ctx, o.rtckit, ans, call))
	}
	dir, err := os.MkdirTemp(o.dir, "callbench-receive-")
	if err != nil {
		r := newRun(test, pair, index)
		r.Error = err.Error()
		return r
	}
	defer os.RemoveAll(dir)
	ans, call := cliArgs(m.hub, caller, callee, o.loopback, o.timeout, []string{"--no-audio", "--no-video"},
		[]string{"--send", m.file}, []string{"--receive", dir})
	return newCLIFileRun(index, runCLICall(ctx, o.rtckit, ans, call), runtime.NumCPU())
}

// writeTestFile writes size pseudo-random bytes to a new file in dir.
func writeTestFile(dir string, size int64) (string, error) {
	f, err := os.CreateTemp(dir, "callbench-*.bin")
	if err != nil {
		return "", err
	}
	rng := rand.NewChaCha8([32]byte{'r', 't', 'c', 'k', 'i', 't'})
	_, err = io.CopyN(f, rng, size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", fmt.Errorf("test file: %w", err)
	}
	return filepath.Clean(f.Name()), nil
}

// loadAverage is the first three fields of /proc/loadavg, or "?".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := bytes.Fields(b)
	if len(f) < 3 {
		return "?"
	}
	return string(bytes.Join(f[:3], []byte(" ")))
}

func logRun(log *slog.Logger, r Run) {
	args := []any{"test", r.Test, "pair", r.Pair, "run", r.Index, "ok", r.OK}
	for _, name := range metricOrder {
		if v, ok := r.Metrics[name]; ok {
			args = append(args, name, fmt.Sprintf("%.1f", v))
		}
	}
	if r.Path != "" {
		args = append(args, "path", r.Path)
	}
	if r.Error != "" {
		args = append(args, "error", r.Error)
	}
	log.Info("run", args...)
}
