package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/regscribe/regscribe/internal/config"
	"github.com/regscribe/regscribe/internal/embedded"
	"github.com/regscribe/regscribe/internal/feed"
	"github.com/regscribe/regscribe/internal/imageprep"
	"github.com/regscribe/regscribe/internal/metrics"
	"github.com/regscribe/regscribe/internal/queue"
	"github.com/regscribe/regscribe/internal/registry"
	"github.com/regscribe/regscribe/internal/sample"
	"github.com/regscribe/regscribe/internal/vision"
	"github.com/regscribe/regscribe/internal/web"
	"github.com/regscribe/regscribe/notifier"
	"github.com/regscribe/regscribe/worker"
)

// up runs NATS, the registry, the notifier and a worker pool in one process.
func up(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	if err := web.CheckExposure(cfg.WebListen, cfg.WebToken); err != nil {
		return err
	}
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
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	o := newOps()
	o.check("nats", natsCheck(nc))

	token := cfg.NotifyToken
	if token == "" {
		token = randomToken()
	}
	// The notifier listens before the registry starts, so no notification is refused.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("notifier: listen on %s: %w", cfg.Listen, err)
	}
	defer ln.Close()
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
			return err
		}
		// Configured by the name the quick start pushes to (localhost:5000),
		// which the gallery, search and the commands it prints then show.
		cfg.Registries = append([]string{"http://" + localName(reg.Addr())}, cfg.Registries...)
		// It retries its notifications, and loses them only when it stops
		// with regscribe: one sweep at start catches those.
		cfg.ReconcileOnce = append(cfg.ReconcileOnce, localName(reg.Addr()))
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = reg.Stop(sctx)
		}()
	}
	notify, err := newNotifier(ctx, cfg, js, token, o, log)
	if err != nil {
		return err
	}
	srv := httpServer(o.handler(notify))
	go func() { _ = srv.Serve(ln) }()
	defer shutdownHTTP(srv)
	galleryURL := "off"
	if cfg.WebListen != "off" {
		g, err := startGallery(ctx, cfg, js, nil, log)
		if err != nil {
			return err
		}
		defer g.stop()
		galleryURL = g.url
	}

	log.Info("regscribe is up",
		"data", cfg.DataPath(),
		"registry", registryLine(reg),
		"notifier", "http://"+ln.Addr().String()+"/v1/events",
		"metrics", "http://"+ln.Addr().String()+"/metrics",
		"gallery", galleryURL,
		"semantic_search", embedLine(cfg),
		"nats", natsLine(cfg, ns),
		"model", cfg.Provider+"/"+cfg.ModelName(),
		"mode", cfg.Mode)
	if reg != nil {
		// A picture to push, drawn by regscribe (oras pushes files by
		// relative path, hence the cd).
		if p, err := sample.Write(cfg.DataPath()); err != nil {
			log.Warn("could not write the sample picture", "err", err)
		} else {
			log.Info(fmt.Sprintf("try it: cd %s && oras push %s/photos/hills:latest %s:image/jpeg",
				shellQuote(filepath.Dir(p)), localName(reg.Addr()), sample.Name))
		}
	}
	if galleryURL != "off" {
		log.Info("then open " + galleryURL + " or run: regscribe search landscape")
	}
	if cfg.NotifyToken == "" {
		log.Info("notification token generated for this run; set REGSCRIBE_NOTIFY_TOKEN to point another registry here")
	}
	return workerPool(ctx, cfg, js, o, log)
}

func runNotifier(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	if cfg.NotifyToken == "" {
		return errors.New("REGSCRIBE_NOTIFY_TOKEN is required: registries must authenticate (put the same token in their notification endpoint)")
	}
	nc, js, o, err := join(cfg, "regscribe notifier")
	if err != nil {
		return err
	}
	defer nc.Close()
	notify, err := newNotifier(ctx, cfg, js, cfg.NotifyToken, o, log)
	if err != nil {
		return err
	}
	addr, stop, err := serve(cfg.Listen, o.handler(notify))
	if err != nil {
		return fmt.Errorf("notifier: %w", err)
	}
	defer stop()
	log.Info("notifier listening", "url", "http://"+addr+"/v1/events", "nats", cfg.NATSURL)
	<-ctx.Done()
	return nil
}

func runWorker(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	if len(cfg.Registries) == 0 {
		return errors.New("REGSCRIBE_REGISTRIES is empty: name the registries workers may contact, e.g. http://127.0.0.1:5000")
	}
	nc, js, o, err := join(cfg, "regscribe worker")
	if err != nil {
		return err
	}
	defer nc.Close()
	if cfg.MetricsListen != "off" {
		addr, stop, err := serve(cfg.MetricsListen, o.handler(nil))
		if err != nil {
			return fmt.Errorf("metrics: %w (set REGSCRIBE_METRICS_LISTEN, or off)", err)
		}
		defer stop()
		log.Info("worker metrics and health", "url", "http://"+addr+"/metrics")
	}
	return workerPool(ctx, cfg, js, o, log)
}

// join connects a separate notifier or worker process to NATS, with the
// ops endpoints' NATS check.
func join(cfg config.Config, name string) (*nats.Conn, jetstream.JetStream, *ops, error) {
	nc, err := connectNATS(cfg, name)
	if err != nil {
		return nil, nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, nil, err
	}
	o := newOps()
	o.check("nats", natsCheck(nc))
	return nc, js, o, nil
}

// serve serves h on addr until stop is called, and returns the address
// it listens on.
func serve(addr string, h http.Handler) (string, func() error, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := httpServer(h)
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr().String(), func() error { return shutdownHTTP(srv) }, nil
}

func newNotifier(ctx context.Context, cfg config.Config, js jetstream.JetStream, token string, o *ops, log *slog.Logger) (*notifier.Notifier, error) {
	if _, err := queue.EnsureStream(ctx, js, streamOptions(cfg)); err != nil {
		return nil, err
	}
	var sources []notifier.Source
	if cfg.SourcesFile != "" {
		f, err := os.Open(cfg.SourcesFile)
		if err != nil {
			return nil, fmt.Errorf("REGSCRIBE_SOURCES_FILE: %w", err)
		}
		defer f.Close()
		if sources, err = notifier.LoadSources(f); err != nil {
			return nil, fmt.Errorf("REGSCRIBE_SOURCES_FILE %s: %w", cfg.SourcesFile, err)
		}
		for _, src := range sources {
			log.Info("notification source", "url", "/v1/events/"+src.Name, "format", src.Format, "registry", src.Registry)
		}
	}
	names, err := registryNames(cfg)
	if err != nil {
		return nil, err
	}
	target := cfg.NotifyRegistry
	if target == "" {
		regs, _ := cfg.RegistryEndpoints()
		if len(regs) == 0 && len(sources) == 0 {
			return nil, errors.New("REGSCRIBE_REGISTRIES is empty: the notifier must know which registry its events speak for")
		}
		if len(regs) > 0 {
			target = regs[0].Host
		}
	}
	if target == "" {
		token = "" // no default source: only the configured ones
	}
	// Jobs name a registry as configured, whichever of its names the
	// source was given; events may name it by any of them.
	var aliases []string
	target, aliases = canonicalSource(names, target, nil)
	for i := range sources {
		sources[i].Registry, sources[i].Aliases = canonicalSource(names, sources[i].Registry, sources[i].Aliases)
	}
	tags, err := queue.OpenTags(ctx, js, cfg.Replicas)
	if err != nil {
		return nil, err
	}
	if _, err := feed.EnsureStream(ctx, js, cfg.Replicas); err != nil {
		return nil, err
	}
	return notifier.New(queue.NewPublisher(js), notifier.Options{Token: token, Registry: target, Aliases: aliases, Sources: sources, Tags: tags,
		Announce: feed.NewPublisher(js), Logger: log, Metrics: o.metrics})
}

// canonicalSource is the configured name of the registry a notification
// source speaks for, and the names its events may use for it: the ones
// given, the name given when it was not the configured one, and the
// registry's configured aliases.
func canonicalSource(names *registry.Names, host string, aliases []string) (string, []string) {
	e, ok := names.Endpoint(host)
	if !ok || host == "" {
		return host, aliases
	}
	out := slices.Clone(aliases)
	for _, a := range append([]string{strings.ToLower(host)}, e.Aliases...) {
		if a != e.Host && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return e.Host, out
}

// streamOptions and consumerOptions are the JetStream layout from the
// configuration. Every command that ensures the streams passes all of it:
// the last to run sets the dead letters' retention.
func streamOptions(cfg config.Config) queue.StreamOptions {
	o := queue.StreamOptions{Replicas: cfg.Replicas, DeadLetterMaxAge: cfg.DeadLetterMaxAge, DeadLetterMaxCount: cfg.DeadLetterMaxCount}
	if cfg.ZotSubject != "" {
		o.ExtraSubjects = []string{cfg.ZotSubject}
	}
	return o
}

func consumerOptions(cfg config.Config) queue.ConsumerOptions {
	return queue.ConsumerOptions{AckWait: cfg.AckWait, ExtraSubjects: streamOptions(cfg).ExtraSubjects}
}

func workerPool(ctx context.Context, cfg config.Config, js jetstream.JetStream, o *ops, log *slog.Logger) error {
	if _, err := queue.EnsureStream(ctx, js, streamOptions(cfg)); err != nil {
		return err
	}
	cons, err := queue.EnsureConsumer(ctx, js, consumerOptions(cfg))
	if err != nil {
		return err
	}
	shared, err := worker.OpenShared(ctx, js, cfg.Replicas)
	if err != nil {
		return err
	}
	endpoints, err := registryEndpoints(cfg)
	if err != nil {
		return err
	}
	if len(endpoints) == 0 {
		return errors.New("REGSCRIBE_REGISTRIES is empty: workers may contact no registry")
	}
	tags, err := queue.OpenTags(ctx, js, cfg.Replicas)
	if err != nil {
		return err
	}
	reg, err := registry.New(endpoints, registry.Options{UserAgent: "regscribe/" + buildVersion(), Logger: log, Tags: tags})
	if err != nil {
		return err
	}
	model, err := startModel(ctx, cfg, o, log)
	if err != nil {
		return err
	}
	o.check("registry", reg.Ping)
	metrics.Queue(o.registry, func() (metrics.QueueStatus, error) {
		ictx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		st, err := queue.ReadStatus(ictx, js)
		return metrics.QueueStatus{Queued: st.Queued, InFlight: st.InFlight, WaitingRetry: st.WaitingRetry,
			Dead: st.Dead, Stranded: st.Stranded}, err
	})
	opts := workerOptions(cfg, log)
	if cfg.ZotSubject != "" {
		zot := notifier.Source{Name: "zot-nats", Format: notifier.FormatZot}
		zot.Registry, zot.Aliases = canonicalSource(reg.Names(), cfg.ZotRegistry, nil)
		opts.Translate = func(_ string, data []byte) ([]queue.Job, error) {
			return notifier.JobsFromZotEvent(data, zot, time.Now())
		}
		log.Info("taking zot events from NATS", "subject", cfg.ZotSubject, "registry", cfg.ZotRegistry)
	}
	shared.Use(&opts)
	opts.Metrics = o.metrics
	if err := startReconcile(ctx, cfg, js, shared.Leases, model.Model(), endpoints, opts.Select, o.metrics, log); err != nil {
		return err
	}
	go sweep(ctx, js, shared.Reporter, shared.Ledger, sweepEvery, log)
	err = worker.New(reg, model, shared.Memory, opts).Run(ctx, cons)
	log.Info("workers stopped")
	return err
}

// sweepEvery is how often workers look for job messages no consumer will
// deliver again (cheap when there are none).
const sweepEvery = time.Minute

// sweep makes stranded job messages dead letters, at once and then every
// interval until ctx ends.
func sweep(ctx context.Context, js jetstream.JetStream, rep *queue.Reporter, ledger *queue.Ledger, every time.Duration, log *slog.Logger) {
	for {
		n, err := queue.Sweep(ctx, js, rep, ledger)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			log.Warn("looking for stranded jobs failed; trying again later", "err", err)
		case n > 0:
			log.Warn("stranded jobs (no longer delivered) moved to the dead-letter stream (regscribe failed list)", "jobs", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

func natsCheck(nc *nats.Conn) func(context.Context) error {
	return func(context.Context) error {
		if !nc.IsConnected() {
			return fmt.Errorf("not connected to NATS (%s)", nc.Status())
		}
		return nil
	}
}

// workerOptions turns the configuration into the worker's options.
func workerOptions(cfg config.Config, log *slog.Logger) worker.Options {
	return worker.Options{
		Concurrency:     cfg.Concurrency,
		MaxBlobBytes:    cfg.MaxBlobBytes,
		Image:           imageprep.Limits{},
		AckWait:         cfg.AckWait,
		MaxAttempts:     cfg.MaxAttempts,
		ShutdownTimeout: cfg.ShutdownTimeout,
		Mode:            worker.Mode(cfg.Mode),
		Force:           cfg.Force,
		Prune:           cfg.Prune,
		Select: worker.Selection{
			OptIn:               cfg.Select == "opt-in",
			OptInAnnotation:     cfg.OptInAnnotation,
			Repositories:        cfg.Repositories,
			ExcludeRepositories: cfg.ExcludeRepositories,
			ArtifactTypes:       cfg.ArtifactTypes,
		},
		NoImageDescription: !cfg.OCIDescription,
		Logger:             log,
	}
}

// describer is a vision provider as the worker and the start-up check use it.
type describer interface {
	worker.Describer
	worker.Checker
}

// newDescriber builds the configured vision provider.
func newDescriber(cfg config.Config) (describer, error) {
	prompt, err := vision.LoadPrompt(cfg.Prompt, cfg.PromptFile, cfg.Language)
	if err != nil {
		return nil, err
	}
	if cfg.Provider == "none" {
		return vision.NewStandIn(), nil
	}
	if cfg.Provider == "openai" {
		return vision.NewOpenAI(vision.OpenAIOptions{
			BaseURL:     cfg.OpenAIBaseURL,
			APIKey:      cfg.OpenAIAPIKey,
			Model:       cfg.ModelName(),
			Azure:       cfg.OpenAIAzure,
			APIVersion:  cfg.OpenAIVersion,
			Deployment:  cfg.OpenAIDeployment,
			Detail:      cfg.OpenAIDetail,
			Prompt:      prompt,
			Timeout:     cfg.ModelTimeout,
			MaxTokens:   cfg.MaxTokens,
			Temperature: cfg.Temperature,
		})
	}
	u, err := config.OllamaURL(cfg.OllamaHost)
	if err != nil {
		return nil, err
	}
	return vision.NewOllama(vision.OllamaOptions{
		BaseURL:     u,
		Model:       cfg.ModelName(),
		Prompt:      prompt,
		Timeout:     cfg.ModelTimeout,
		KeepAlive:   cfg.KeepAlive,
		MaxTokens:   cfg.MaxTokens,
		Temperature: cfg.Temperature,
	}), nil
}

// startModel builds the configured vision provider, says in the log whether
// it answers and adds it to /readyz. A model that does not answer yet is no
// error: jobs wait for it.
func startModel(ctx context.Context, cfg config.Config, o *ops, log *slog.Logger) (describer, error) {
	model, err := newDescriber(cfg)
	if err != nil {
		return nil, err
	}
	if err := checkModel(ctx, cfg, model, log); err != nil {
		log.Error(err.Error() + "; jobs stay queued until the model answers")
	} else if cfg.Provider == "none" {
		log.Warn("no model (REGSCRIBE_PROVIDER=none): photos get regscribe's stand-in, which says their size and colours and that no model saw them; with a model configured, `regscribe reprocess --all REGISTRY` describes them again", "model", model.Model())
	} else {
		log.Info("model ready", "model", model.Model())
	}
	o.check("model", model.Check)
	return model, nil
}

// checkModel says in one line whether the model answers; with
// REGSCRIBE_PULL it pulls a missing Ollama model first, showing progress.
func checkModel(ctx context.Context, cfg config.Config, model describer, log *slog.Logger) error {
	err := model.Check(ctx)
	if o, ok := model.(*vision.Ollama); ok && err != nil && cfg.Pull && strings.Contains(err.Error(), "ollama pull") {
		log.Info("pulling the model (REGSCRIBE_PULL=true)", "model", model.Model())
		if perr := o.Pull(ctx, os.Stderr); perr != nil {
			return perr
		}
		err = model.Check(ctx)
	}
	return err
}

// connectNATS connects to REGSCRIBE_NATS_URL, saying what to do when
// nothing answers there; once connected it reconnects for ever.
func connectNATS(cfg config.Config, name string) (*nats.Conn, error) {
	nc, err := nats.Connect(cfg.NATSURL, nats.Name(name), nats.MaxReconnects(-1), nats.Timeout(5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("no NATS server at %s (%v): run `regscribe up` (it serves NATS on REGSCRIBE_NATS_LISTEN), or a NATS server with JetStream (`nats-server -js`), or set REGSCRIBE_NATS_URL", cfg.NATSURL, err)
	}
	return nc, nil
}

func httpServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
}

// shutdownHTTP stops srv, waiting up to 5 s for the requests being
// served; an error says some were still open then.
func shutdownHTTP(srv *http.Server) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(ctx)
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
	return "http://" + localName(r.Addr())
}

func natsLine(cfg config.Config, ns *embedded.NATS) string {
	if cfg.NATSListen == "off" {
		return "in-process only"
	}
	return ns.ClientURL()
}

// localName turns 127.0.0.1:5000 into localhost:5000, which oras reaches over
// plain HTTP without --plain-http.
// shellQuote quotes s for a POSIX shell when it holds more than letters,
// digits and /._-+:@, so a printed command can be pasted as it is.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+:@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func localName(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err == nil && (host == "127.0.0.1" || host == "::1") {
		return "localhost:" + port
	}
	return strings.TrimSpace(addr)
}
