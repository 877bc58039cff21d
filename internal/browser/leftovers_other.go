//go:build !linux

package browser

import "time"

// killLeftovers relies on Chromium stopping its own helpers where /proc and
// pidfds are not available.
func killLeftovers(string, time.Duration) error { return nil }
