// Command natprobe measures how long a full NAT classification takes with
// `rtckit stun probe` and with coturn's turnutils_natdiscovery, in the same
// network-namespace NAT lab, for every NAT kind. It needs root and coturn;
// bench/stunprobe.sh builds rtckit and runs it.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"time"

	"github.com/rtckit/rtckit/diag/stunprobe"
	"github.com/rtckit/rtckit/internal/natlab"
)

func main() {
	bin := flag.String("rtckit", "rtckit", "path of the rtckit binary")
	runs := flag.Int("runs", 5, "runs per tool and NAT kind")
	flag.Parse()
	if err := run(*bin, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "natprobe:", err)
		os.Exit(1)
	}
}

// sample is one timed classification.
type sample struct {
	took    time.Duration
	verdict string
}

func run(bin string, runs int) error {
	if runs < 1 {
		return errors.New("-runs must be at least 1")
	}
	if err := natlab.Available(natlab.TurnServer, natlab.NatDiscoveryTool); err != nil {
		return err
	}
	ctx := context.Background()
	fmt.Println("| NAT kind | rtckit stun probe (median) | turnutils_natdiscovery (median) | speed-up | rtckit verdict | natdiscovery verdict |")
	fmt.Println("| --- | ---: | ---: | ---: | --- | --- |")
	for _, kind := range natlab.NATKinds() {
		ours, theirs, err := measureKind(ctx, bin, kind, runs)
		if err != nil {
			return fmt.Errorf("%s: %w", kind, err)
		}
		a, b := median(ours), median(theirs)
		fmt.Printf("| %s | %s | %s | %.1f× | %s | %s |\n", kind, fmtDur(a.took), fmtDur(b.took),
			float64(b.took)/float64(a.took), a.verdict, b.verdict)
	}
	return nil
}

func measureKind(ctx context.Context, bin string, kind natlab.NATKind, runs int) (ours, theirs []sample, err error) {
	lab, err := natlab.New(ctx, natlab.Config{Sites: []natlab.SiteConfig{{NAT: kind}}})
	if err != nil {
		return nil, nil, err
	}
	defer lab.Close()
	if _, err := natlab.StartCoturn(ctx, lab); err != nil {
		return nil, nil, err
	}
	site := lab.Sites[0]
	server := "stun:" + netip.AddrPortFrom(lab.ServerIPs[0], natlab.CoturnPort).String()
	for range runs {
		s, err := timeProbe(ctx, lab, site, bin, server)
		if err != nil {
			return nil, nil, err
		}
		ours = append(ours, s)
		if err := site.SetNAT(ctx, kind); err != nil { // fresh conntrack between runs
			return nil, nil, err
		}
		v, err := site.NatDiscovery(ctx, lab.ServerIPs[0])
		if err != nil {
			return nil, nil, err
		}
		verdict := "no UDP"
		if v.UDP {
			verdict = fmt.Sprintf("%s / %s", v.Mapping, v.Filtering)
		}
		theirs = append(theirs, sample{took: v.Took, verdict: verdict})
		if err := site.SetNAT(ctx, kind); err != nil {
			return nil, nil, err
		}
	}
	return ours, theirs, nil
}

// timeProbe runs one classification and times the whole process.
func timeProbe(ctx context.Context, lab *natlab.Lab, site *natlab.Site, bin, server string) (sample, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := lab.Command(ctx, site.Client, bin, "--json", "stun", "probe", "-4", "--transport", "udp", "-s", server)
	start := time.Now()
	out, err := cmd.Output()
	took := time.Since(start)
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return sample{}, err
	}
	var r stunprobe.Report
	if err := json.Unmarshal(out, &r); err != nil {
		return sample{}, fmt.Errorf("decode report: %w", err)
	}
	verdict := "no UDP"
	if len(r.Families) > 0 && r.Families[0].Status == "ok" {
		f := r.Families[0]
		verdict = fmt.Sprintf("%s / %s", f.Mapping.Behavior, f.Filtering.Behavior)
	}
	return sample{took: took, verdict: verdict}, nil
}

func median(s []sample) sample {
	sorted := slices.Clone(s)
	slices.SortFunc(sorted, func(a, b sample) int { return int(a.took - b.took) })
	return sorted[len(sorted)/2]
}

func fmtDur(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%d ms", d.Milliseconds())
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}
