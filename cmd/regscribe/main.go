// Command regscribe writes AI descriptions of photos stored in OCI registries
// back into those registries.
//
// This package only wires the parts together; see `regscribe help`. The
// command line is built on cobra, as oras's and crane's are: flags go before
// or after the arguments, every command has -h with examples, and
// `regscribe completion` writes shell completion scripts.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"
	// Root certificates for https registries and model APIs where the
	// system has none, as in the container image (deploy/image), which is
	// the binary alone; SSL_CERT_FILE and SSL_CERT_DIR still take precedence.
	_ "golang.org/x/crypto/x509roots/fallback"

	"github.com/regscribe/regscribe/internal/config"
	"github.com/regscribe/regscribe/internal/imageprep"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run runs the command line args and returns the exit status: 0 when it
// worked, 1 when it failed, 2 for a usage error.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c := newCLI(stdout, stderr, config.Load)
	c.defaultLogger = true
	return c.execute(ctx, args)
}

// cli is one run of the command line: where it prints, and the
// configuration, read from the environment once by the first command that
// needs it.
type cli struct {
	stdout, stderr io.Writer
	load           func() (config.Config, error)
	cfg            *config.Config
	log            *slog.Logger
	// defaultLogger makes log the process's slog default too.
	defaultLogger bool
}

func newCLI(stdout, stderr io.Writer, load func() (config.Config, error)) *cli {
	return &cli{stdout: stdout, stderr: stderr, load: load}
}

// exitStatus ends a command with a status, once the command has said why.
type exitStatus int

func (e exitStatus) Error() string { return "exit status " + strconv.Itoa(int(e)) }

// exitCode turns a command's exit status into what its RunE returns.
func exitCode(code int) error {
	if code == 0 {
		return nil
	}
	return exitStatus(code)
}

// execute runs args on the command tree. Any error but an exitStatus comes
// from parsing the command line (cobra's, or a command's Args): one line on
// stderr and status 2.
func (c *cli) execute(ctx context.Context, args []string) int {
	root := c.root()
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	var st exitStatus
	switch {
	case err == nil:
		return 0
	case errors.As(err, &st):
		return int(st)
	}
	if cmd == nil {
		cmd = root
	}
	fmt.Fprintf(c.stderr, "%s: %v (see '%s --help')\n", cmd.CommandPath(), err, cmd.CommandPath())
	return 2
}

// config is the configuration from the environment, read on first use; a
// configuration that cannot work is a usage error.
func (c *cli) config() (config.Config, error) {
	if c.cfg == nil {
		cfg, err := c.load()
		if err != nil {
			fmt.Fprintf(c.stderr, "regscribe: %v\n", err)
			return config.Config{}, exitStatus(2)
		}
		c.cfg = &cfg
		imageprep.UseDecoderModules(cfg.HEICWasm, cfg.AVIFWasm)
		c.log = newLogger(c.stderr, cfg.LogLevel, cfg.LogFormat)
		if c.defaultLogger {
			slog.SetDefault(c.log)
		}
	}
	return *c.cfg, nil
}

// tool is the RunE of a command that reads the configuration and returns
// an exit status.
func (c *cli) tool(fn func(ctx context.Context, cfg config.Config, args []string) int) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		cfg, err := c.config()
		if err != nil {
			return err
		}
		return exitCode(fn(cmd.Context(), cfg, args))
	}
}

// settingsFromEnvironment marks a command whose help ends with the
// environment variables (the services, and regscribe itself).
const settingsFromEnvironment = "settings"

// The groups of `regscribe help`.
const (
	groupServices = "services"
	groupTools    = "tools"
)

// root is the command tree.
func (c *cli) root() *cobra.Command {
	root := &cobra.Command{
		Use:   "regscribe",
		Short: "Write AI descriptions of photos in OCI registries back into the registries",
		Long: `regscribe writes AI descriptions of photos stored in OCI registries back
into those registries: a registry announces a push, a worker asks a vision
model what the photo shows and writes the answer into the manifest's
annotations or an OCI referrer.

Services read their settings from the environment (listed below); the other
commands take flags, before or after their arguments.`,
		Example: `  regscribe up
  oras push localhost:5000/photos/pineapple:latest pineapple.jpg:image/jpeg
  regscribe show localhost:5000/photos/pineapple:latest
  regscribe reprocess localhost:5000/photos --wait`,
		Args:              subcommandArgs,
		RunE:              c.missingCommand,
		SilenceErrors:     true,
		SilenceUsage:      true,
		Version:           buildVersion(),
		ValidArgsFunction: cobra.NoFileCompletions,
		Annotations:       map[string]string{settingsFromEnvironment: "true"},
	}
	root.SetOut(c.stdout)
	root.SetErr(c.stderr)
	root.SetVersionTemplate("regscribe {{.Version}}\n")
	root.SetFlagErrorFunc(flagError)
	help := root.HelpFunc()
	root.SetHelpFunc(func(cmd *cobra.Command, args []string) {
		help(cmd, args)
		if cmd.Annotations[settingsFromEnvironment] != "" {
			w := cmd.OutOrStdout()
			fmt.Fprintln(w, "\nConfiguration is read from the environment:")
			_ = config.Usage(w)
		}
	})
	root.AddGroup(
		&cobra.Group{ID: groupServices, Title: "Services (settings from the environment, no arguments):"},
		&cobra.Group{ID: groupTools, Title: "Commands:"},
	)
	root.AddCommand(
		c.service("up", "Run everything in one process: NATS, a registry on localhost, the notifier, workers and the gallery",
			`Runs NATS with JetStream (file storage under REGSCRIBE_DATA_DIR, also listening
on REGSCRIBE_NATS_LISTEN so more workers can join), a CNCF Distribution
registry on REGSCRIBE_REGISTRY_ADDR whose notifications go to the notifier,
the notifier on REGSCRIBE_LISTEN, a worker pool, and the gallery and search
API on REGSCRIBE_WEB_LISTEN. Ctrl-C or SIGTERM stops
it cleanly; queued jobs survive a restart.`,
			`  regscribe up
  REGSCRIBE_MODE=referrer OLLAMA_HOST=gpu-box:11434 regscribe up`, up),
		c.service("notifier", "Receive registry notifications and queue jobs (joins REGSCRIBE_NATS_URL)",
			`Serves POST /v1/events (and the sources of REGSCRIBE_SOURCES_FILE) and
publishes a job per pushed manifest to the NATS at REGSCRIBE_NATS_URL. Needs
REGSCRIBE_NOTIFY_TOKEN and REGSCRIBE_REGISTRIES.`,
			`  REGSCRIBE_NOTIFY_TOKEN=s3cret REGSCRIBE_REGISTRIES=https://registry.example.com regscribe notifier`, runNotifier),
		c.service("worker", "Describe queued photos (joins REGSCRIBE_NATS_URL)",
			`Takes jobs from the NATS at REGSCRIBE_NATS_URL, describes the photos and
writes the descriptions back. Start as many as you like: they share the work.`,
			`  REGSCRIBE_REGISTRIES=http://127.0.0.1:5000 regscribe worker`, runWorker),
		c.service("web", "Serve the gallery and the search API (joins REGSCRIBE_NATS_URL)",
			`Keeps a search index of every description under REGSCRIBE_INDEX_DIR, fed by
the description stream of the NATS at REGSCRIBE_NATS_URL (an index that was
down catches up), and serves the gallery and GET /v1/search on
REGSCRIBE_WEB_LISTEN. Run as many as you like: each keeps its own index.
Off loopback it needs REGSCRIBE_WEB_TOKEN. 'up' serves the same itself.`,
			`  REGSCRIBE_REGISTRIES=https://registry.example.com REGSCRIBE_NATS_URL=nats://nats:4222 regscribe web
  REGSCRIBE_WEB_LISTEN=0.0.0.0:8089 REGSCRIBE_WEB_TOKEN=$(openssl rand -hex 24) regscribe web`, runWeb),
		c.showCmd(),
		c.searchCmd(),
		c.describeCmd(),
		c.failedCmd(),
		c.statusCmd(),
		c.reprocessCmd(),
		c.benchCmd(),
		c.versionCmd(),
	)
	return root
}

// missingCommand is regscribe alone: the help, on stderr, as a usage error.
func (c *cli) missingCommand(cmd *cobra.Command, _ []string) error {
	cmd.SetOut(c.stderr)
	_ = cmd.Help()
	return exitStatus(2)
}

// service is a command that runs until it is stopped; it takes no
// arguments: its settings are environment variables.
func (c *cli) service(name, short, long, example string, run func(ctx context.Context, cfg config.Config, log *slog.Logger) error) *cobra.Command {
	return &cobra.Command{
		Use:               name,
		Short:             short,
		Long:              long,
		Example:           example,
		GroupID:           groupServices,
		Args:              noArguments,
		ValidArgsFunction: cobra.NoFileCompletions,
		Annotations:       map[string]string{settingsFromEnvironment: "true"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := c.config()
			if err != nil {
				return err
			}
			err = run(cmd.Context(), cfg, c.log)
			if err != nil && cmd.Context().Err() != nil && errors.Is(err, context.Canceled) {
				// Stopped (Ctrl-C, SIGTERM) while it was starting: a
				// clean stop, not a failure.
				c.log.Info("regscribe " + name + " stopped while starting")
				return nil
			}
			if err != nil {
				c.log.Error("regscribe " + name + " stopped: " + err.Error())
				return exitStatus(1)
			}
			return nil
		},
	}
}

// noArguments refuses arguments to a service, saying where its settings are.
func noArguments(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected argument %q: settings are environment variables", args[0])
	}
	return nil
}

// subcommandArgs refuses an unknown command in one line, with cobra's
// suggestion.
func subcommandArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q", args[0])
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // cobra's default
	}
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf("; did you mean %q?", s[0])
	}
	return errors.New(msg)
}

// argsBetween accepts min to max arguments (max < 0: any number), named
// what in the error.
func argsBetween(min, max int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < min || max >= 0 && len(args) > max {
			return fmt.Errorf("takes %s, not %d argument(s)", what, len(args))
		}
		return nil
	}
}

// flagError makes pflag's errors one line, suggesting the flag meant.
func flagError(cmd *cobra.Command, err error) error {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "unknown flag: --"); ok {
		if s := suggestFlag(cmd.Flags(), name); s != "" {
			msg += "; did you mean --" + s + "?"
		}
	}
	// -json, as Go's flag package took it, is read as -j -s -o -n.
	if strings.HasPrefix(msg, "unknown shorthand flag: ") {
		if _, name, ok := strings.Cut(msg, " in -"); ok && cmd.Flags().Lookup(name) != nil {
			msg += "; did you mean --" + name + "?"
		}
	}
	return errors.New(msg)
}

// suggestFlag is the flag of flags name most likely meant: one it begins,
// or the nearest within two edits.
func suggestFlag(flags *pflag.FlagSet, name string) string {
	best, bestDist := "", 3
	flags.VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		d := editDistance(name, f.Name)
		if strings.HasPrefix(f.Name, name) {
			d = 0
		}
		if d < bestDist {
			best, bestDist = f.Name, d
		}
	})
	return best
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
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
