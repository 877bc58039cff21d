package stunprobe

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteText renders r for a person. The output is a pure function of r and
// ends with one plain verdict line per address family.
func WriteText(w io.Writer, r *Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "STUN probe of %d server(s) in %.0f ms\n", len(r.Servers), r.DurationMS)
	fmt.Fprintf(&b, "UDP: %s   TCP: %s\n", yesNo(r.UDP, "answered", "no reply", "not tested"), yesNo(r.TCP, "answered", "no reply", "not tested"))

	b.WriteString("\nServers\n")
	for _, s := range r.Servers {
		fmt.Fprintf(&b, "  %s", s.URI)
		if s.RFC5780 != nil {
			b.WriteString("  RFC 5780: " + yesNo(s.RFC5780, "yes", "no", ""))
		}
		if s.Software != "" {
			fmt.Fprintf(&b, "  software %q", s.Software)
		}
		b.WriteString("\n")
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		for _, bd := range s.Bindings {
			fmt.Fprintf(tw, "    %s %s\t%s\t%s\n", bd.Transport, bd.Family, bd.Status, bindingDetail(bd))
		}
		_ = tw.Flush()
	}

	for _, f := range r.Families {
		writeFamily(&b, f)
	}
	b.WriteString("\n")
	if len(r.Families) == 0 || r.Outcome == OutcomeInterrupted {
		fmt.Fprintf(&b, "Verdict: %s\n", outcomeSentence(r.Outcome))
	}
	for _, f := range r.Families {
		fmt.Fprintf(&b, "Verdict (%s): %s", familyTitle(f.Family), f.Verdict.Classic)
		if f.Status == "ok" {
			fmt.Fprintf(&b, " (%s)", f.Verdict.RFC4787)
		}
		fmt.Fprintf(&b, " — %s\n", f.Verdict.WebRTC)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeFamily(b *strings.Builder, f FamilyReport) {
	fmt.Fprintf(b, "\n%s", familyTitle(f.Family))
	if f.Local != "" {
		fmt.Fprintf(b, " (local %s)", f.Local)
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	defer tw.Flush()
	if f.Status != "ok" {
		fmt.Fprintf(tw, "  Status\t%s\n", f.Status)
		return
	}
	fmt.Fprintf(tw, "  Public address\t%s\n", strings.Join(f.Public, ", "))
	fmt.Fprintf(tw, "  Behind NAT\t%s\n", yesNo(f.BehindNAT, "yes", "no", "unknown"))
	fmt.Fprintf(tw, "  Port preserved\t%s\n", yesNo(f.PortPreserved, "yes", "no", "unknown"))
	fmt.Fprintf(tw, "  Mapping\t%s\n", classificationLine(f.Mapping))
	fmt.Fprintf(tw, "  Filtering\t%s\n", classificationLine(f.Filtering))
	fmt.Fprintf(tw, "  Varies by server\t%s\n", yesNo(f.MappingVariesByDestination, "yes", "no", "not checked (needs two servers)"))
	fmt.Fprintf(tw, "  Hairpinning\t%s\n", yesNo(f.Hairpinning, "yes", "no", "not checked"))
	fmt.Fprintf(tw, "  ALG\t%s\n", yesNo(f.ALG, "yes: MAPPED-ADDRESS differs from XOR-MAPPED-ADDRESS", "none seen", "not checked"))
	if f.Lifetime != nil {
		fmt.Fprintf(tw, "  Binding lifetime\t%s\n", lifetimeLine(f.Lifetime))
	}
	for _, c := range f.Conflicts {
		fmt.Fprintf(tw, "  Conflict\t%s\n", c)
	}
	fmt.Fprintf(tw, "  Tests\t\n")
	for _, e := range f.Tests {
		fmt.Fprintf(tw, "    %s\t%s → %s\t%s\t%s\n", e.Test, e.Local, e.To, e.Outcome, evidenceDetail(e))
	}
}

func familyTitle(f string) string {
	switch f {
	case "ipv4":
		return "IPv4"
	case "ipv6":
		return "IPv6"
	}
	return f
}

func bindingDetail(b Binding) string {
	var parts []string
	if b.Server != "" {
		parts = append(parts, b.Server)
	}
	if b.Mapped != "" {
		parts = append(parts, "mapped "+b.Mapped)
	}
	if b.OtherAddress != "" {
		parts = append(parts, "other "+b.OtherAddress)
	}
	if b.Status == StatusOK {
		parts = append(parts, fmt.Sprintf("rtt %.1f ms", b.RTTMS))
	}
	if b.Error != "" {
		parts = append(parts, b.Error)
	}
	return strings.Join(parts, "  ")
}

func evidenceDetail(e Evidence) string {
	var parts []string
	if e.From != "" {
		parts = append(parts, "from "+e.From)
	}
	if e.Mapped != "" {
		parts = append(parts, "mapped "+e.Mapped)
	}
	if e.Outcome == OutcomeReply && e.RTTMS > 0 {
		parts = append(parts, fmt.Sprintf("%.1f ms", e.RTTMS))
	}
	if e.Note != "" {
		parts = append(parts, e.Note)
	}
	return strings.Join(parts, "  ")
}

func classificationLine(c Classification) string {
	s := string(c.Behavior)
	if c.Method != "" && c.Behavior.Known() {
		s += " (" + c.Method + ")"
	}
	if c.Reason != "" {
		s += ": " + c.Reason
	}
	return s
}

func lifetimeLine(l *LifetimeResult) string {
	switch l.Status {
	case "measured":
		return fmt.Sprintf("between %gs and %gs", l.AliveAfterS, *l.ExpiredAfterS)
	case "longer-than-max":
		return fmt.Sprintf("longer than %gs (the maximum searched)", l.MaxS)
	}
	return "inconclusive: " + l.Reason
}

func yesNo(v *bool, yes, no, unknown string) string {
	switch {
	case v == nil:
		return unknown
	case *v:
		return yes
	}
	return no
}

func outcomeSentence(o string) string {
	switch o {
	case OutcomeUnreachable:
		return "no STUN server answered over any transport"
	case OutcomeNoUDP:
		return "UDP is blocked: calls need a TURN relay over TCP or TLS"
	case OutcomeInterrupted:
		return "interrupted before the probe finished: the results above are partial"
	}
	return o
}
