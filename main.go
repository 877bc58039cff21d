// Command rtckit is a command-line toolkit for WebRTC: NAT discovery, ICE
// gathering, signaling and calls.
package main

import (
	"os"

	"github.com/rtckit/rtckit/cmd"
)

func main() {
	os.Exit(cmd.Main())
}
