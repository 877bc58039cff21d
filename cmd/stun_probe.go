package cmd

import "github.com/spf13/cobra"

func newStunProbeCmd(g *GlobalOptions) *cobra.Command {
	return &cobra.Command{Use: "probe", Short: "Discover the public address and NAT behaviour"}
}
