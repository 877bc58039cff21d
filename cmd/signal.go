package cmd

import "github.com/spf13/cobra"

func newSignalCmd(g *GlobalOptions) *cobra.Command {
	c := &cobra.Command{
		Use:   "signal",
		Short: "Signaling: run a WebSocket hub with a browser call page",
	}
	c.AddCommand(newSignalServeCmd(g), newSignalBenchCmd(g))
	return c
}
