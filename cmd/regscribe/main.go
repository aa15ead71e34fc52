// Command regscribe writes AI descriptions of photos stored in OCI registries
// back into those registries.
//
// This package only wires the parts together; see `regscribe help`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"golang.org/x/term"

	"github.com/regscribe/regscribe/internal/config"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = ""

const usage = `regscribe writes AI descriptions of photos stored in OCI registries back
into those registries.

Usage:
  regscribe <command> [-h]

Commands:
  up        run everything in one process: NATS (JetStream), the notifier,
            workers and a CNCF Distribution registry on localhost
  notifier  receive registry notifications and queue jobs (joins REGSCRIBE_NATS_URL)
  worker    describe queued photos (joins REGSCRIBE_NATS_URL)
  show      show the description(s) of a photo: regscribe show [--json] REF
  describe  describe one photo now, without the queue:
            regscribe describe [--mode annotation|referrer|auto] [--force] REF
  failed    jobs given up: regscribe failed list [--json] | retry ID...|--all
  status    jobs queued, in flight, waiting for a retry, dead letters and
            stranded (joins REGSCRIBE_NATS_URL): regscribe status [--json]
  reprocess describe the photos already in a repository or registry:
            regscribe reprocess [--force] [--wait] [--local] REGISTRY/REPOSITORY | --all REGISTRY
  bench     measure the pipeline with a fake model: regscribe bench [-n N] [-only …] [-json]
  version   print the version
  help      print this help

Configuration is read from the environment:
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printUsage(stderr)
		return 2
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "-h", "--help", "-help":
		printUsage(stdout)
		return 0
	case "version", "--version":
		fmt.Fprintln(stdout, "regscribe", buildVersion())
		return 0
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "regscribe: unknown command %q (try 'regscribe help')\n", name)
		return 2
	}
	if cmd.service != nil {
		for _, a := range rest {
			if a == "-h" || a == "--help" || a == "-help" {
				printUsage(stdout)
				return 0
			}
		}
		if len(rest) > 0 {
			fmt.Fprintf(stderr, "regscribe %s: unexpected argument %q (settings are environment variables; try 'regscribe help')\n", name, rest[0])
			return 2
		}
	}
	cfg, err := config.Load()
	if err != nil {
		fmt.Fprintf(stderr, "regscribe: %v\n", err)
		return 2
	}
	log := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	slog.SetDefault(log)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cmd.tool != nil {
		return cmd.tool(ctx, cfg, rest, stdout, stderr, log)
	}
	if err := cmd.service(ctx, cfg, log); err != nil {
		log.Error("regscribe " + name + " stopped: " + err.Error())
		return 1
	}
	return 0
}

// command is a subcommand: a service runs until it is stopped and takes no
// arguments (settings are environment variables); a tool takes flags and
// arguments and returns an exit code.
type command struct {
	service func(ctx context.Context, cfg config.Config, log *slog.Logger) error
	tool    func(ctx context.Context, cfg config.Config, args []string, stdout, stderr io.Writer, log *slog.Logger) int
}

var commands = map[string]command{
	"up":        {service: up},
	"notifier":  {service: runNotifier},
	"worker":    {service: runWorker},
	"show":      {tool: show},
	"describe":  {tool: describe},
	"failed":    {tool: failed},
	"status":    {tool: status},
	"reprocess": {tool: reprocessCmd},
	"bench":     {tool: benchCmd},
}

// parseFlags parses a tool's flags; done is true when the tool should
// return code at once (-h, or a usage error).
func parseFlags(fs *flag.FlagSet, args []string) (done bool, code int) {
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return true, 0
	case err != nil:
		return true, 2
	}
	return false, 0
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, usage)
	_ = config.Usage(w)
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// newLogger logs text to a terminal and JSON otherwise (to a collector).
func newLogger(w io.Writer, level, format string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: l}
	f, isFile := w.(*os.File)
	if format == "json" || format == "auto" && !(isFile && term.IsTerminal(int(f.Fd()))) {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
