package cmd

//go:generate go run ../internal/gendocs -out ../docs/cli
