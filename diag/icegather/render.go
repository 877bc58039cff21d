package icegather

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// CandidateHeader is the header line above FormatCandidate lines.
const CandidateHeader = "  time      type   proto  address                                   priority (type|local|comp) related               server"

// FormatCandidate renders one candidate as a line of text.
func FormatCandidate(c Candidate) string {
	addr := c.Address + ":" + fmt.Sprint(c.Port)
	if strings.Contains(c.Address, ":") {
		addr = "[" + c.Address + "]:" + fmt.Sprint(c.Port)
	}
	proto := c.Protocol
	if c.TCPType != "" {
		proto += "/" + c.TCPType
	}
	related := ""
	if c.RelatedAddress != "" {
		related = fmt.Sprintf("%s:%d", c.RelatedAddress, c.RelatedPort)
	}
	server := c.Server
	if c.RelayProtocol != "" {
		server += " (relay over " + c.RelayProtocol + ")"
	}
	prio := fmt.Sprintf("%d (%d|%d|%d)", c.Priority, c.TypePreference, c.LocalPreference, c.ComponentPreference)
	return strings.TrimRight(fmt.Sprintf("  %7.1fms %-6s %-6s %-41s %-27s %-21s %s",
		c.ElapsedMS, c.Type, proto, addr, prio, related, server), " ")
}

// WriteText renders the whole report: every candidate, then WriteSummary.
func WriteText(w io.Writer, r *Report) error {
	var b strings.Builder
	b.WriteString("Candidates\n" + CandidateHeader + "\n")
	for _, c := range r.Candidates {
		b.WriteString(FormatCandidate(c) + "\n")
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	return WriteSummary(w, r)
}

// WriteSummary renders what follows the candidate list: servers, findings,
// relay checks and the closing line.
func WriteSummary(w io.Writer, r *Report) error {
	var b strings.Builder
	b.WriteString("\nServers\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, s := range r.Servers {
		first := "-"
		if s.FirstCandidateMS != nil {
			first = fmt.Sprintf("%.1fms", *s.FirstCandidateMS)
		}
		detail := fmt.Sprintf("%d %s, first %s, done %.1fms", s.Candidates, s.Expected, first, s.DoneMS)
		if s.Status != StatusOK {
			detail = s.Error
			if s.ErrorKind != "" {
				detail = s.ErrorKind + ": " + detail
			}
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", s.URI, s.Status, detail)
	}
	_ = tw.Flush()
	if len(r.Servers) == 0 {
		b.WriteString("  (none: host candidates only)\n")
	}
	if len(r.RelayChecks) > 0 {
		b.WriteString("\nRelay checks\n")
		for _, c := range r.RelayChecks {
			if c.Passed {
				fmt.Fprintf(&b, "  %s  passed: connected in %.1fms via %s; %d/%d echoed (%.0f%% loss), RTT p50 %.2fms p90 %.2fms p99 %.2fms max %.2fms\n",
					c.Server, c.ConnectedMS, c.LocalCandidate, c.Received, c.Sent, c.LossPercent, c.RTTP50MS, c.RTTP90MS, c.RTTP99MS, c.RTTMaxMS)
			} else {
				fmt.Fprintf(&b, "  %s  FAILED: %s\n", c.Server, c.Error)
			}
		}
	}
	if len(r.Findings) > 0 {
		b.WriteString("\nFindings\n")
		for _, f := range r.Findings {
			fmt.Fprintf(&b, "  - %s\n", f.Message)
		}
	}
	fmt.Fprintf(&b, "\nGathered %d host, %d srflx, %d relay candidate(s) in %.1fms", r.Counts[TypeHost], r.Counts[TypeSrflx], r.Counts[TypeRelay], r.DurationMS)
	if len(r.Missing) > 0 {
		fmt.Fprintf(&b, "; MISSING required: %s", strings.Join(r.Missing, ", "))
	}
	if r.Interrupted {
		b.WriteString("; INTERRUPTED before gathering finished: the results are partial")
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}
