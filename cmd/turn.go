package cmd

import "github.com/spf13/cobra"

func newTurnCmd(g *GlobalOptions) *cobra.Command {
	c := &cobra.Command{
		Use:   "turn",
		Short: "TURN: run a relay server for labs and self-hosting",
	}
	c.AddCommand(newTurnServeCmd(g))
	return c
}
