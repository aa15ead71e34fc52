package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/regscribe/regscribe/internal/config"
	"github.com/regscribe/regscribe/internal/embed"
	"github.com/regscribe/regscribe/internal/feed"
	"github.com/regscribe/regscribe/internal/index"
	"github.com/regscribe/regscribe/internal/lease"
	"github.com/regscribe/regscribe/internal/registry"
	"github.com/regscribe/regscribe/internal/web"
)

// runWeb is `regscribe web`: a search index of its own, fed by the
// description stream of the NATS at REGSCRIBE_NATS_URL, and the web address.
func runWeb(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	if cfg.WebListen == "off" {
		return errors.New("REGSCRIBE_WEB_LISTEN is off: 'web' has nothing to serve")
	}
	if err := web.CheckExposure(cfg.WebListen, cfg.WebToken); err != nil {
		return err
	}
	nc, js, o, err := join(cfg, "regscribe web")
	if err != nil {
		return err
	}
	defer nc.Close()
	g, err := startGallery(ctx, cfg, js, o, log)
	if err != nil {
		return err
	}
	defer g.stop()
	log.Info("regscribe web is up", "gallery", g.url, "search", g.url+"/v1/search?q=", "index", indexDir(cfg), "nats", cfg.NATSURL,
		"semantic_search", embedLine(cfg))
	<-ctx.Done()
	return nil
}

// gallery is a running search index and web address.
type gallery struct {
	url  string
	stop func()
}

// indexDir is where the search index lives.
func indexDir(cfg config.Config) string {
	if cfg.IndexDir != "" {
		return cfg.IndexDir
	}
	return cfg.DataPath("index")
}

// embedLine says what semantic search uses, for the start-up line.
func embedLine(cfg config.Config) string {
	if cfg.EmbedModel == "" {
		return "off (text search only; set REGSCRIBE_EMBED_MODEL)"
	}
	return cfg.Provider + "/" + cfg.EmbedModel
}

// startGallery opens the search index, follows the description stream and
// serves the gallery and the search API on REGSCRIBE_WEB_LISTEN (its
// exposure must have been checked). o, if not nil, serves /metrics,
// /healthz and /readyz there too, without the token, for the probes of
// `regscribe web` (`up` serves them on REGSCRIBE_LISTEN).
func startGallery(ctx context.Context, cfg config.Config, js jetstream.JetStream, o *ops, log *slog.Logger) (*gallery, error) {
	endpoints, err := registryEndpoints(cfg)
	if err != nil {
		return nil, err
	}
	if len(endpoints) == 0 {
		return nil, errors.New("REGSCRIBE_REGISTRIES is empty: the gallery shows photos of the configured registries only")
	}
	reg, err := registry.New(endpoints, registry.Options{UserAgent: "regscribe/" + buildVersion(), Logger: log})
	if err != nil {
		return nil, err
	}
	if _, err := feed.EnsureStream(ctx, js, cfg.Replicas); err != nil {
		return nil, err
	}
	embedder, err := embed.FromConfig(cfg)
	if err != nil {
		return nil, err
	}
	vectors, err := index.VectorBucket(ctx, js, cfg.Replicas)
	if err != nil {
		return nil, err
	}
	ix, err := index.Open(index.Options{Dir: indexDir(cfg), Language: cfg.Language, Embedder: embedder, Vectors: vectors, Log: log, Registry: reg.Canonical})
	if err != nil {
		return nil, fmt.Errorf("search index %s: %w", indexDir(cfg), err)
	}
	leases, err := lease.Open(ctx, js, cfg.Replicas, 0)
	if err != nil {
		_ = ix.Close()
		return nil, err
	}
	hosts := make([]string, len(endpoints))
	for i, e := range endpoints {
		hosts[i] = e.Host
	}
	srv, err := web.New(web.Options{
		Catalog: ix, JetStream: js, Registry: reg, Registries: hosts, Leases: leases,
		Model: cfg.Provider + "/" + cfg.ModelName(), Referrer: cfg.Mode == "referrer",
		ThumbDir: cfg.DataPath("thumbs"), ThumbCacheBytes: int64(cfg.ThumbCacheMB) << 20, MaxBlobBytes: cfg.MaxBlobBytes,
		Token: cfg.WebToken, Log: log,
	})
	if err != nil {
		_ = ix.Close()
		return nil, err
	}
	var h http.Handler = srv
	if o != nil {
		h = o.handler(srv)
	}
	addr, stopHTTP, err := serve(cfg.WebListen, h)
	if err != nil {
		srv.Close()
		_ = ix.Close()
		return nil, fmt.Errorf("web: %w (set REGSCRIBE_WEB_LISTEN, or off)", err)
	}
	fctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := ix.Follow(fctx, js); err != nil && fctx.Err() == nil {
			log.Error("search index stopped following the description stream: " + err.Error())
		}
	}()
	return &gallery{url: "http://" + browsable(addr), stop: func() {
		// The web server first: it ends the reprocess runs' event
		// streams, which the HTTP server's shutdown would wait for.
		srv.Close()
		if err := stopHTTP(); err != nil {
			log.Warn("web: requests still open when the gallery stopped", "err", err)
		}
		cancel()
		wg.Wait()
		_ = ix.Close()
	}}, nil
}

// browsable is addr as a browser on this machine reaches it (an
// unspecified host is reached on loopback).
func browsable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
