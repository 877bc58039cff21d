// The events `rtckit signal serve` prints, as JSON lines or text.

package cmd

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/rtckit/rtckit/turnserver"
)

// signalListeningEvent describes the bound server; a loopback or wildcard
// address is shown as localhost, the origin browsers treat as secure.
func signalListeningEvent(addr string, tls bool, opts *SignalServeOptions, turn *turnserver.Addrs) SignalServeEvent {
	host, port, _ := net.SplitHostPort(addr)
	if ip, err := netip.ParseAddr(host); err == nil && (ip.IsLoopback() || ip.IsUnspecified()) {
		host = "localhost"
	}
	scheme := "http"
	if tls {
		scheme = "https"
	}
	base := scheme + "://" + net.JoinHostPort(host, port)
	uris := []string{}
	if servers, err := opts.ICE.Servers(time.Now()); err == nil {
		for _, s := range servers {
			uris = append(uris, s.URI.String())
		}
	}
	return SignalServeEvent{
		Schema:        signalServeSchema,
		Event:         "listening",
		Addr:          addr,
		URL:           base + "/",
		WebSocket:     "ws" + strings.TrimPrefix(base, "http") + "/ws",
		TLS:           tls,
		TokenRequired: opts.Token != "" || opts.TokenSecret != "",
		ICEServers:    uris,
		TURN:          turn,
	}
}

// writeSignalServeEvent prints ev as one JSON line or as text.
func writeSignalServeEvent(w io.Writer, asJSON bool, ev SignalServeEvent) error {
	if asJSON {
		return json.NewEncoder(w).Encode(ev)
	}
	_, err := io.WriteString(w, signalServeText(ev))
	return err
}

// signalServeText renders an event for people.
func signalServeText(ev SignalServeEvent) string {
	var b strings.Builder
	if ev.Event == "stopped" && ev.Stats != nil {
		s := ev.Stats
		fmt.Fprintf(&b, "signaling hub stopped: %d connections, %d messages, %d error replies, %d slow clients dropped\n",
			s.ConnectionsTotal, s.Messages, s.Errors, s.Drops)
		return b.String()
	}
	b.WriteString("signaling hub listening\n")
	row := func(name, value string) { fmt.Fprintf(&b, "  %-12s %s\n", name, value) }
	row("page", ev.URL)
	row("websocket", ev.WebSocket)
	if ev.TokenRequired {
		row("access", "token required")
	} else {
		row("access", "open")
	}
	if ev.Cluster != nil {
		row("cluster", fmt.Sprintf("%s at %s (node %s)", ev.Cluster.Name, ev.Cluster.URL, ev.Cluster.Node))
	}
	if len(ev.ICEServers) == 0 {
		row("ice servers", "none (host candidates only)")
	}
	for i, u := range ev.ICEServers {
		name := ""
		if i == 0 {
			name = "ice servers"
		}
		row(name, u)
	}
	return b.String()
}
