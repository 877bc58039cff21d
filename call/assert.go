package call

import "fmt"

// checks evaluates the assertions, frame verification and file transfers
// against the finished report.
func (s *session) checks(rep *Report) []Check {
	a := s.opts.Assert
	var out []Check
	if a.ExpectPath != "" {
		c := Check{Name: "expect-path", Want: a.ExpectPath, Got: "no selected pair"}
		if rep.Path != nil {
			c.Got = PathDirect
			if rep.Path.Relay {
				c.Got = PathRelay
			}
			c.Got += fmt.Sprintf(" (%s %s ↔ %s)", rep.Path.Local.Protocol, rep.Path.Local.Type, rep.Path.Remote.Type)
			c.OK = (a.ExpectPath == PathRelay) == rep.Path.Relay
		}
		out = append(out, c)
	}
	if a.MaxSetup > 0 {
		c := Check{Name: "max-setup", Want: "≤ " + a.MaxSetup.String(), Got: fmt.Sprintf("%.1f ms", rep.SetupMS)}
		c.OK = rep.SetupMS > 0 && rep.SetupMS <= ms(a.MaxSetup)
		out = append(out, c)
	}
	var lost, received int64
	var bitrate float64
	var frames uint64
	for _, t := range rep.Tracks {
		if t.Direction != "in" {
			continue
		}
		lost += max(t.Lost, 0)
		received += int64(t.Packets)
		bitrate += t.BitrateBPS
		if t.Kind == "video" {
			frames += t.Frames
		}
	}
	if a.MaxLoss > 0 {
		loss := 0.0
		if lost+received > 0 {
			loss = float64(lost) / float64(lost+received)
		}
		out = append(out, Check{Name: "max-loss", Want: fmt.Sprintf("≤ %.2f %%", a.MaxLoss*100),
			Got: fmt.Sprintf("%.2f %% (%d of %d packets)", loss*100, lost, lost+received), OK: received > 0 && loss <= a.MaxLoss})
	}
	if a.MinBitrate > 0 {
		out = append(out, Check{Name: "min-bitrate", Want: fmt.Sprintf("≥ %.0f kbit/s", a.MinBitrate/1000),
			Got: fmt.Sprintf("%.0f kbit/s", bitrate/1000), OK: bitrate >= a.MinBitrate})
	}
	if a.MinFrames > 0 {
		out = append(out, Check{Name: "min-frames", Want: fmt.Sprintf("≥ %d video frames", a.MinFrames),
			Got: fmt.Sprint(frames), OK: frames >= uint64(a.MinFrames)})
	}
	if s.opts.Verify {
		var verified, mismatched uint64
		for _, t := range rep.Tracks {
			if t.Direction == "in" {
				verified += t.Verified
				mismatched += t.Mismatched
			}
		}
		out = append(out, Check{Name: "verify", Want: "every received frame is a frame of the clip",
			Got: fmt.Sprintf("%d verified, %d mismatched", verified, mismatched), OK: verified > 0 && mismatched == 0})
	}
	for _, f := range rep.Files {
		c := Check{Name: "file-" + f.Direction, Want: "transfer complete, SHA-256 matches", Got: "ok", OK: f.OK}
		if !f.OK {
			c.Got = f.Error
		}
		c.Reason = f.Name
		out = append(out, c)
	}
	return out
}
