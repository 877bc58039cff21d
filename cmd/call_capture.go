//go:build mediadevices

package cmd

import (
	"github.com/rtckit/rtckit/call"
	"github.com/rtckit/rtckit/call/capture"
)

// Builds with the mediadevices tag send live media with `call --capture`.
func init() { call.Capture = capture.Open }
