// Removing labs: Close for a lab of this process, Sweep for labs whose owner died.

package natlab

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// Close kills the lab's processes, deletes its namespaces (and with them
// every interface and rule) and its directory. It is safe to call more than
// once, concurrently, and on a lab whose setup failed; later calls return the
// first call's result.
func (l *Lab) Close() error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed = true
		procs := slices.Clone(l.procs)
		namespaces := slices.Clone(l.namespaces)
		l.mu.Unlock()

		var errs []error
		for _, p := range procs {
			if err := p.kill(); err != nil {
				errs = append(errs, err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		for _, ns := range slices.Backward(namespaces) {
			if err := deleteNamespace(ctx, l.log, ns); err != nil {
				errs = append(errs, err)
			}
		}
		if l.Dir != "" {
			if err := os.RemoveAll(l.Dir); err != nil {
				errs = append(errs, err)
			}
		}
		l.closeErr = errors.Join(errs...)
		l.log.Debug("natlab: lab closed", "err", l.closeErr)
	})
	return l.closeErr
}

// deleteNamespace kills whatever still runs in ns and deletes it. A
// namespace that does not exist is not an error.
func deleteNamespace(ctx context.Context, log *slog.Logger, ns string) error {
	if !namespaceExists(ns) {
		return nil
	}
	out, err := runLogged(ctx, log, nil, "ip", "netns", "pids", ns)
	if err == nil {
		self := os.Getpid()
		for _, f := range strings.Fields(string(out)) {
			// A thread of this process may be inside ns during Do; the
			// process itself must survive.
			if pid, convErr := strconv.Atoi(f); convErr == nil && pid > 1 && pid != self {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	if _, err := runLogged(ctx, log, nil, "ip", "netns", "delete", ns); err != nil && namespaceExists(ns) {
		return err
	}
	return nil
}

func namespaceExists(ns string) bool {
	_, err := os.Stat(filepath.Join(netnsDir, ns))
	return err == nil
}

// parseID extracts the owner pid from a name that starts with a lab ID
// ("rtk<pid>x<6 hex digits>", then "-..." for namespaces and directories).
func parseID(name string) (pid int, ok bool) {
	rest, found := strings.CutPrefix(name, NamePrefix)
	if !found {
		return 0, false
	}
	digits, rest, found := strings.Cut(rest, "x")
	if !found || len(rest) < 7 || rest[6] != '-' {
		return 0, false
	}
	if _, err := strconv.ParseUint(rest[:6], 16, 32); err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(digits)
	if err != nil || pid <= 0 || strconv.Itoa(pid) != digits {
		return 0, false
	}
	return pid, true
}

// processAlive reports whether pid names a live process.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// Sweep removes the namespaces and temporary directories of labs whose
// process has died (a crashed or killed test run), killing whatever still
// runs in those namespaces. Labs of live processes are left alone.
func Sweep(ctx context.Context) error {
	var errs []error
	entries, err := os.ReadDir(netnsDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	for _, e := range entries {
		pid, ok := parseID(e.Name())
		if !ok || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		if err := deleteNamespace(ctx, nil, e.Name()); err != nil {
			errs = append(errs, err)
		}
	}
	dirs, err := os.ReadDir(os.TempDir())
	if err != nil {
		errs = append(errs, err)
	}
	for _, e := range dirs {
		pid, ok := parseID(e.Name())
		if !ok || !e.IsDir() || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(os.TempDir(), e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
