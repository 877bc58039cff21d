// Package capture opens live media as WebRTC tracks for rtckit call: the
// camera and microphone, or generated test media (a moving test pattern and
// a tone), encoded live to VP8 and Opus with libvpx and libopus.
//
// The encoders and device drivers need cgo, libvpx and pkg-config, so Open
// exists only in builds with the mediadevices build tag; the default build
// stays pure Go and this package holds only its errors there. Such a build
// sets call.Capture to Open.
package capture
