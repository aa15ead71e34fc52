package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"text/tabwriter"

	"github.com/regscribe/regscribe/internal/config"
	"github.com/regscribe/regscribe/internal/queue"
)

// failed lists or retries jobs on the dead-letter stream.
func failed(ctx context.Context, cfg config.Config, args []string, stdout, stderr io.Writer, _ *slog.Logger) int {
	usage := func() {
		fmt.Fprintln(stderr, "usage: regscribe failed list [--json]\n       regscribe failed retry ID...|--all")
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		usage()
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	fs := flag.NewFlagSet("regscribe failed "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	all := fs.Bool("all", false, "retry every failed job")
	if done, code := parseFlags(fs, args[1:]); done {
		return code
	}
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
	switch args[0] {
	case "list":
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			if letters == nil {
				letters = []queue.DeadLetter{}
			}
			_ = enc.Encode(letters)
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
		if *all {
			for _, d := range letters {
				seqs = append(seqs, d.Seq)
			}
		}
		for _, a := range fs.Args() {
			n, err := strconv.ParseUint(a, 10, 64)
			if err != nil {
				fmt.Fprintf(stderr, "regscribe failed retry: %q is not an ID from 'regscribe failed list'\n", a)
				return 2
			}
			seqs = append(seqs, n)
		}
		if len(seqs) == 0 {
			usage()
			return 2
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
	usage()
	return 2
}
