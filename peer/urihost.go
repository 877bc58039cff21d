// The host and port of ICE server URIs: host names, IPv4 and bracketed IPv6
// addresses, and ports.

package peer

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// parseHostPort splits host[:port] or [ipv6][:port]. Port 0 means none was
// given.
func parseHostPort(scheme Scheme, hostport string) (string, int, *URIError) {
	var host, rawPort, reason string
	hasPort := false
	if strings.HasPrefix(hostport, "[") {
		end := strings.IndexByte(hostport, ']')
		if end < 0 {
			return "", 0, bad(ErrHost, "unbalanced '[': missing ']' after the IPv6 address")
		}
		literal, after := hostport[1:end], hostport[end+1:]
		switch {
		case after == "":
		case after[0] == ':':
			rawPort, hasPort = after[1:], true
		default:
			return "", 0, bad(ErrHost, "unexpected %q after ']'; want [address] or [address]:port", after)
		}
		if host, reason = parseIPv6Literal(literal); reason != "" {
			return "", 0, bad(ErrHost, "%s", reason)
		}
	} else {
		if strings.ContainsAny(hostport, "[]") {
			return "", 0, bad(ErrHost, "unbalanced ']': brackets must enclose the whole IPv6 address, as in [2001:db8::1]:3478")
		}
		switch strings.Count(hostport, ":") {
		case 0:
			host = hostport
		case 1:
			host, rawPort, _ = strings.Cut(hostport, ":")
			hasPort = true
		default:
			if a, err := netip.ParseAddr(hostport); err == nil && a.Is6() {
				bracketed := string(scheme) + ":[" + hostport + "]"
				return "", 0, bad(ErrHost, "IPv6 address must be in brackets: write %q, or %q with a port",
					bracketed, bracketed+":"+strconv.Itoa(scheme.DefaultPort()))
			}
			return "", 0, bad(ErrHost, "too many ':'; an IPv6 address must be in brackets, as in [2001:db8::1]:3478")
		}
		if host, reason = parseHostname(host); reason != "" {
			return "", 0, bad(ErrHost, "%s", reason)
		}
	}
	port := 0
	if hasPort {
		if port, reason = parsePort(rawPort); reason != "" {
			return "", 0, bad(ErrPort, "%s", reason)
		}
	}
	return host, port, nil
}

// parseIPv6Literal validates the address between brackets and returns it in
// canonical form.
func parseIPv6Literal(literal string) (string, string) {
	if literal == "" {
		return "", "empty host between '[' and ']'"
	}
	if strings.Contains(literal, "%") {
		return "", fmt.Sprintf("IPv6 zone in %q is not supported", literal)
	}
	a, err := netip.ParseAddr(literal)
	if err != nil {
		return "", fmt.Sprintf("%q is not a valid IPv6 address", literal)
	}
	if a.Is4() {
		return "", fmt.Sprintf("brackets are only for IPv6 addresses; write %s without them", literal)
	}
	return a.String(), ""
}

// parseHostname validates an IPv4 address or a host name (RFC 1123 labels,
// with '_' tolerated) and returns it in lower case. A single trailing dot is
// kept.
func parseHostname(host string) (string, string) {
	if host == "" {
		return "", "empty host"
	}
	if a, err := netip.ParseAddr(host); err == nil && a.Is4() {
		return a.String(), ""
	}
	name := strings.TrimSuffix(host, ".")
	if name == "" {
		return "", fmt.Sprintf("%q is not a valid host name", host)
	}
	if len(name) > maxHostnameLen {
		return "", fmt.Sprintf("host name is %d characters long; at most %d are allowed", len(name), maxHostnameLen)
	}
	labels := strings.Split(name, ".")
	for _, label := range labels {
		if reason := checkLabel(label); reason != "" {
			return "", fmt.Sprintf("%q is not a valid host name: %s", host, reason)
		}
	}
	if isDigits(labels[len(labels)-1]) {
		// An all-numeric top-level label is never a host name (RFC 3696
		// section 2); this is a mistyped IPv4 address.
		return "", fmt.Sprintf("%q is not a valid IPv4 address", host)
	}
	return strings.ToLower(host), ""
}

func checkLabel(label string) string {
	switch {
	case label == "":
		return "empty label"
	case len(label) > maxLabelLen:
		return fmt.Sprintf("label of %d characters; at most %d are allowed", len(label), maxLabelLen)
	case label[0] == '-' || label[len(label)-1] == '-':
		return fmt.Sprintf("label %q starts or ends with '-'", label)
	}
	for i := 0; i < len(label); i++ {
		b := label[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-' || b == '_') {
			return fmt.Sprintf("character %q is not allowed", b)
		}
	}
	return ""
}

// parsePort parses a decimal port in 1-65535.
func parsePort(raw string) (int, string) {
	if raw == "" {
		return 0, "empty port after ':'"
	}
	if !isDigits(raw) {
		return 0, fmt.Sprintf("port %q is not a decimal number", raw)
	}
	digits := strings.TrimLeft(raw, "0")
	if len(digits) > 5 {
		return 0, "port out of range 1-65535"
	}
	port, err := strconv.Atoi("0" + digits)
	if err != nil || port < 1 || port > 65535 {
		return 0, "port out of range 1-65535"
	}
	return port, ""
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
