package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/regscribe/regscribe/internal/bench"
)

func (c *cli) benchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench [flags]",
		Short: "Measure the pipeline with a fake model",
		Long: `Measures the pipeline with a fake model. It reads no configuration: it starts
its own parts, on loopback. --format json is the same as -json.`,
		Example: `  regscribe bench
  regscribe bench -n 200 -only throughput,latency --format json`,
		GroupID:           groupTools,
		ValidArgsFunction: cobra.NoFileCompletions,
		// The benchmark parses its own flags (-n, -only, -json, …: one dash
		// or two); --format is translated for it.
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			args, err := benchArgs(args)
			if err != nil {
				return err
			}
			if len(args) == 1 && args[0] == "-h" {
				return cmd.Help()
			}
			return exitCode(c.bench(cmd.Context(), args, c.stdout, c.stderr))
		},
	}
	cmd.SetHelpFunc(func(cmd *cobra.Command, _ []string) {
		out := cmd.OutOrStdout()
		fmt.Fprintf(out, "%s\n\n", cmd.Long)
		_ = c.bench(cmd.Context(), []string{"-h"}, out, out)
		fmt.Fprintf(out, "\nExamples:\n%s\n", cmd.Example)
	})
	return cmd
}

// bench runs `regscribe bench` (internal/bench). The fake model and the
// memory measurement run in child processes of this binary.
func (c *cli) bench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if ctx == nil {
		ctx = context.Background()
	}
	var self []string
	if exe, err := os.Executable(); err == nil {
		self = []string{exe, "bench"}
	}
	return bench.Main(ctx, self, args, stdout, stderr)
}

// benchArgs turns --format json|text into the benchmark's own -json, and
// any help flag into -h.
func benchArgs(args []string) ([]string, error) {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "--" {
			out = append(out, args[i:]...)
			break
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch name {
		case "h", "help":
			return []string{"-h"}, nil
		case "format":
			if !hasValue {
				if i+1 == len(args) {
					return nil, errors.New("flag needs an argument: --format")
				}
				i++
				value = args[i]
			}
			switch outputFormat(value) {
			case formatJSON:
				out = append(out, "-json")
			case formatText:
			default:
				return nil, fmt.Errorf("invalid argument %q for --format: want json or text", value)
			}
		default:
			out = append(out, a)
		}
	}
	return out, nil
}
