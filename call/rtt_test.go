package call

import (
	"testing"
	"time"

	"github.com/pion/rtcp"
)

func TestRTTFromReport(t *testing.T) {
	sent := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	lsr := uint32(ntpTime(sent) >> 16)
	// The peer held the report for 250 ms; it comes back 400 ms after it left.
	dlsr := uint32(250 * 65536 / 1000)
	rtt, ok := rttFromReport(rtcp.ReceptionReport{LastSenderReport: lsr, Delay: dlsr}, sent.Add(400*time.Millisecond))
	if !ok || rtt < 149*time.Millisecond || rtt > 151*time.Millisecond {
		t.Errorf("rtt %v %v, want 150 ms", rtt, ok)
	}
	if _, ok := rttFromReport(rtcp.ReceptionReport{}, sent); ok {
		t.Error("a report without LSR gave an RTT")
	}
	if _, ok := rttFromReport(rtcp.ReceptionReport{LastSenderReport: lsr, Delay: dlsr}, sent); ok {
		t.Error("a delay longer than the elapsed time gave an RTT")
	}
}
