package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/regscribe/regscribe/internal/config"
	"github.com/regscribe/regscribe/internal/queue"
)

func (c *cli) failedCmd() *cobra.Command {
	var format outputFormat
	var all bool
	cmd := &cobra.Command{
		Use:   "failed",
		Short: "List the jobs given up (dead letters) with their reasons, or queue them again",
		Long: `Lists the jobs given up (dead letters) with their reasons, or queues them
again once their cause is fixed (joins REGSCRIBE_NATS_URL).`,
		Example: `  regscribe failed list
  regscribe failed list --format json
  regscribe failed retry 12 15
  regscribe failed retry --all`,
		GroupID:           groupTools,
		Args:              subcommandArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(*cobra.Command, []string) error {
			return errors.New("which? list or retry")
		},
	}
	list := &cobra.Command{
		Use:               "list",
		Short:             "List the jobs given up, with their reasons",
		Example:           "  regscribe failed list\n  regscribe failed list --format json",
		Args:              argsBetween(0, 0, "no arguments"),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: c.tool(func(ctx context.Context, cfg config.Config, _ []string) int {
			return failed(ctx, cfg, "list", nil, false, format, c.stdout, c.stderr)
		}),
	}
	addFormatFlags(list, list.Flags(), &format, "an array of dead letters")
	retry := &cobra.Command{
		Use:               "retry ID... | --all",
		Short:             "Queue jobs given up again, by their ID in 'regscribe failed list'",
		Example:           "  regscribe failed retry 12 15\n  regscribe failed retry --all",
		ValidArgsFunction: cobra.NoFileCompletions,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 && !all {
				return errors.New("takes the IDs of 'regscribe failed list', or --all")
			}
			for _, a := range args {
				if _, err := strconv.ParseUint(a, 10, 64); err != nil {
					return fmt.Errorf("%q is not an ID from 'regscribe failed list'", a)
				}
			}
			return nil
		},
		RunE: c.tool(func(ctx context.Context, cfg config.Config, args []string) int {
			return failed(ctx, cfg, "retry", args, all, format, c.stdout, c.stderr)
		}),
	}
	retry.Flags().BoolVar(&all, "all", false, "retry every failed job")
	cmd.AddCommand(list, retry)
	return cmd
}

// failed lists (verb list) or retries (verb retry: the jobs of ids, or
// all) jobs on the dead-letter stream.
func failed(ctx context.Context, cfg config.Config, verb string, ids []string, all bool, format outputFormat, stdout, stderr io.Writer) int {
	js, closeNATS, err := connectJetStream(cfg, "regscribe failed")
	if err != nil {
		fmt.Fprintln(stderr, "regscribe failed:", err)
		return 1
	}
	defer closeNATS()
	if _, err := queue.EnsureStream(ctx, js, queue.StreamOptions{Replicas: cfg.Replicas}); err != nil {
		fmt.Fprintf(stderr, "regscribe failed: %v (is regscribe up, or NATS at %s?)\n", err, cfg.NATSURL)
		return 1
	}
	letters, err := queue.DeadLetters(ctx, js)
	if err != nil {
		fmt.Fprintln(stderr, "regscribe failed:", err)
		return 1
	}
	switch verb {
	case "list":
		if format == formatJSON {
			if letters == nil {
				letters = []queue.DeadLetter{}
			}
			writeIndented(stdout, letters)
			return 0
		}
		if len(letters) == 0 {
			fmt.Fprintln(stdout, "no failed jobs")
			return 0
		}
		tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tFAILED\tATTEMPTS\tPHOTO\tREASON")
		for _, d := range letters {
			fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\n", d.Seq, d.FailedAt.Format("2006-01-02 15:04:05"), d.Attempts, d.Job.Ref(), d.Error)
		}
		_ = tw.Flush()
		return 0
	case "retry":
		var seqs []uint64
		if all {
			for _, d := range letters {
				seqs = append(seqs, d.Seq)
			}
		}
		for _, a := range ids {
			n, _ := strconv.ParseUint(a, 10, 64) // checked by the command's Args
			seqs = append(seqs, n)
		}
		if len(seqs) == 0 {
			fmt.Fprintln(stdout, "no failed jobs")
			return 0
		}
		code := 0
		for _, seq := range seqs {
			job, err := queue.RetryDead(ctx, js, seq)
			if err != nil {
				fmt.Fprintln(stderr, "regscribe failed retry:", err)
				code = 1
				continue
			}
			fmt.Fprintf(stdout, "queued again: %d %s\n", seq, job.Ref())
		}
		return code
	}
	return 2
}
