// Command regscribe writes AI descriptions of photos stored in OCI registries
// back into those registries.
//
// This package only wires the parts together; see `regscribe help`.
package main

import (
	"context"
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
	cmd, rest := args[0], args[1:]
	for _, a := range rest {
		if a == "-h" || a == "--help" || a == "-help" {
			printUsage(stdout)
			return 0
		}
	}
	switch cmd {
	case "help", "-h", "--help", "-help":
		printUsage(stdout)
		return 0
	case "version", "--version":
		fmt.Fprintln(stdout, "regscribe", buildVersion())
		return 0
	case "up", "notifier", "worker", "show", "describe", "failed":
	default:
		fmt.Fprintf(stderr, "regscribe: unknown command %q (try 'regscribe help')\n", cmd)
		return 2
	}
	if len(rest) > 0 && cmd != "show" && cmd != "describe" && cmd != "failed" {
		fmt.Fprintf(stderr, "regscribe %s: unexpected argument %q (settings are environment variables; try 'regscribe help')\n", cmd, rest[0])
		return 2
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
	switch cmd {
	case "up":
		err = up(ctx, cfg, log)
	case "notifier":
		err = runNotifier(ctx, cfg, log)
	case "worker":
		err = runWorker(ctx, cfg, log)
	case "show":
		return show(ctx, cfg, rest, stdout, stderr)
	case "describe":
		return describe(ctx, cfg, rest, stdout, stderr, log)
	case "failed":
		return failed(ctx, cfg, rest, stdout, stderr)
	}
	if err != nil {
		log.Error("regscribe " + cmd + " stopped: " + err.Error())
		return 1
	}
	return 0
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
