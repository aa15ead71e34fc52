// Command regscribe writes AI descriptions of photos stored in OCI registries
// back into those registries.
//
// This package only wires the parts together; see `regscribe help`.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/regscribe/regscribe/internal/config"
	"github.com/regscribe/regscribe/internal/embedded"
	"github.com/regscribe/regscribe/internal/imageprep"
	"github.com/regscribe/regscribe/internal/memo"
	"github.com/regscribe/regscribe/internal/queue"
	"github.com/regscribe/regscribe/internal/registry"
	"github.com/regscribe/regscribe/internal/vision"
	"github.com/regscribe/regscribe/notifier"
	"github.com/regscribe/regscribe/worker"
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
	case "up", "notifier", "worker":
	default:
		fmt.Fprintf(stderr, "regscribe: unknown command %q (try 'regscribe help')\n", cmd)
		return 2
	}
	if len(rest) > 0 {
		fmt.Fprintf(stderr, "regscribe %s: unexpected argument %q (settings are environment variables; try 'regscribe help')\n", cmd, rest[0])
		return 2
	}
	cfg, err := config.Load()
	if err != nil {
		fmt.Fprintf(stderr, "regscribe: %v\n", err)
		return 2
	}
	log := newLogger(stderr, cfg.LogLevel)
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

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

// up runs NATS, the registry, the notifier and a worker pool in one process.
func up(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	if err := os.MkdirAll(cfg.DataPath(), 0o750); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	ns, err := embedded.StartNATS(embedded.NATSOptions{StoreDir: cfg.DataPath("nats"), Listen: cfg.NATSListen, ServerName: "regscribe"})
	if err != nil {
		return err
	}
	defer ns.Stop()
	nc, err := nats.Connect("", nats.InProcessServer(ns), nats.Name("regscribe up"), nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("connect to embedded nats: %w", err)
	}
	defer nc.Close()

	token := cfg.NotifyToken
	if token == "" {
		token = randomToken()
	}
	// The notifier listens before the registry starts, so no notification is refused.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("notifier: listen on %s: %w", cfg.Listen, err)
	}
	var reg *embedded.Registry
	if cfg.RegistryAddr != "off" {
		reg, err = embedded.StartRegistry(ctx, embedded.RegistryOptions{
			RootDir:     cfg.DataPath("registry"),
			Listen:      cfg.RegistryAddr,
			NotifyURL:   "http://" + ln.Addr().String() + "/v1/events",
			NotifyToken: token,
			Debug:       cfg.LogLevel == "debug",
		})
		if err != nil {
			ln.Close()
			return err
		}
		cfg.Registries = append([]string{"http://" + reg.Addr()}, cfg.Registries...)
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = reg.Stop(sctx)
		}()
	}
	js, err := jetstream.New(nc)
	if err != nil {
		ln.Close()
		return err
	}
	notify, err := newNotifier(ctx, cfg, js, token, log)
	if err != nil {
		ln.Close()
		return err
	}
	srv := httpServer(notify)
	go func() { _ = srv.Serve(ln) }()
	defer shutdownHTTP(srv)

	log.Info("regscribe is up",
		"data", cfg.DataPath(),
		"registry", registryLine(reg),
		"notifier", "http://"+ln.Addr().String()+"/v1/events",
		"nats", natsLine(cfg, ns),
		"model", cfg.Provider+"/"+cfg.Model)
	if reg != nil {
		log.Info("try it: oras push " + localName(reg.Addr()) + "/photos/pineapple:latest pineapple.jpg:image/jpeg")
	}
	if cfg.NotifyToken == "" {
		log.Info("notification token generated for this run; set REGSCRIBE_NOTIFY_TOKEN to point another registry here")
	}
	return workerPool(ctx, cfg, js, log)
}

func runNotifier(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	if cfg.NotifyToken == "" {
		return errors.New("REGSCRIBE_NOTIFY_TOKEN is required: registries must authenticate (put the same token in their notification endpoint)")
	}
	nc, err := connectNATS(cfg, "regscribe notifier")
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	notify, err := newNotifier(ctx, cfg, js, cfg.NotifyToken, log)
	if err != nil {
		return err
	}
	srv := httpServer(notify)
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("notifier: listen on %s: %w", cfg.Listen, err)
	}
	go func() { _ = srv.Serve(ln) }()
	log.Info("notifier listening", "url", "http://"+ln.Addr().String()+"/v1/events", "nats", cfg.NATSURL)
	<-ctx.Done()
	shutdownHTTP(srv)
	return nil
}

func runWorker(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	nc, err := connectNATS(cfg, "regscribe worker")
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	return workerPool(ctx, cfg, js, log)
}

func newNotifier(ctx context.Context, cfg config.Config, js jetstream.JetStream, token string, log *slog.Logger) (*notifier.Notifier, error) {
	if _, err := queue.EnsureStream(ctx, js, queue.StreamOptions{}); err != nil {
		return nil, err
	}
	target := cfg.NotifyRegistry
	if target == "" {
		regs, _ := cfg.RegistryEndpoints()
		if len(regs) == 0 {
			return nil, errors.New("REGSCRIBE_REGISTRIES is empty: the notifier must know which registry its events speak for")
		}
		target = regs[0].Host
	}
	return notifier.New(queue.NewPublisher(js), notifier.Options{Token: token, Registry: target, Logger: log})
}

func workerPool(ctx context.Context, cfg config.Config, js jetstream.JetStream, log *slog.Logger) error {
	if _, err := queue.EnsureStream(ctx, js, queue.StreamOptions{}); err != nil {
		return err
	}
	cons, err := queue.EnsureConsumer(ctx, js, queue.ConsumerOptions{AckWait: cfg.AckWait, MaxDeliver: cfg.MaxAttempts})
	if err != nil {
		return err
	}
	mem, err := memo.Open(ctx, js, queue.DescriptionBucket, 1)
	if err != nil {
		return err
	}
	endpoints, err := cfg.RegistryEndpoints()
	if err != nil {
		return err
	}
	if len(endpoints) == 0 {
		return errors.New("REGSCRIBE_REGISTRIES is empty: workers may contact no registry")
	}
	reg, err := registry.New(endpoints, registry.Options{UserAgent: "regscribe/" + buildVersion()})
	if err != nil {
		return err
	}
	model, err := newDescriber(cfg)
	if err != nil {
		return err
	}
	if err := model.Check(ctx); err != nil {
		log.Error(err.Error() + "; jobs stay queued until the model answers")
	} else {
		log.Info("model ready", "model", model.Model())
	}
	w := worker.New(reg, model, mem, worker.Options{
		Concurrency:     cfg.Concurrency,
		MaxBlobBytes:    cfg.MaxBlobBytes,
		Image:           imageprep.Limits{},
		AckWait:         cfg.AckWait,
		MaxAttempts:     cfg.MaxAttempts,
		ShutdownTimeout: cfg.ShutdownTimeout,
		Logger:          log,
	})
	err = w.Run(ctx, cons)
	log.Info("workers stopped")
	return err
}

func newDescriber(cfg config.Config) (*vision.Ollama, error) {
	u, err := config.OllamaURL(cfg.OllamaHost)
	if err != nil {
		return nil, err
	}
	return vision.NewOllama(vision.OllamaOptions{
		BaseURL:     u,
		Model:       cfg.Model,
		Prompt:      vision.Prompt{Text: cfg.Prompt},
		Timeout:     cfg.ModelTimeout,
		KeepAlive:   cfg.KeepAlive,
		MaxTokens:   cfg.MaxTokens,
		Temperature: cfg.Temperature,
	}), nil
}

func connectNATS(cfg config.Config, name string) (*nats.Conn, error) {
	nc, err := nats.Connect(cfg.NATSURL, nats.Name(name), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true))
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", cfg.NATSURL, err)
	}
	return nc, nil
}

func httpServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
}

func shutdownHTTP(srv *http.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
}

func randomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func registryLine(r *embedded.Registry) string {
	if r == nil {
		return "off"
	}
	return "http://" + r.Addr()
}

func natsLine(cfg config.Config, ns *embedded.NATS) string {
	if cfg.NATSListen == "off" {
		return "in-process only"
	}
	return ns.ClientURL()
}

// localName turns 127.0.0.1:5000 into localhost:5000, which oras reaches over
// plain HTTP without --plain-http.
func localName(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err == nil && (host == "127.0.0.1" || host == "::1") {
		return "localhost:" + port
	}
	return strings.TrimSpace(addr)
}
