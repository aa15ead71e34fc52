package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/regscribe/regscribe/internal/config"
	"github.com/regscribe/regscribe/internal/lease"
	"github.com/regscribe/regscribe/internal/metrics"
	"github.com/regscribe/regscribe/internal/reconcile"
	regclient "github.com/regscribe/regscribe/internal/registry"
	"github.com/regscribe/regscribe/worker"
)

// startReconcile starts the workers' reconcile loop (until ctx ends): it
// sweeps every registry workers may reach, every REGSCRIBE_RECONCILE_INTERVAL
// (the ones in cfg.ReconcileOnce once at start), one sweep at a time across
// worker processes.
func startReconcile(ctx context.Context, cfg config.Config, js jetstream.JetStream, leases *lease.Leases, model string,
	endpoints []regclient.Endpoint, sel worker.Selection, m *metrics.Metrics, log *slog.Logger) error {
	every, on, err := cfg.ReconcileEvery()
	if err != nil {
		return err
	}
	if !on {
		log.Info("reconcile sweeps are off (REGSCRIBE_RECONCILE_INTERVAL=off): a photo whose notification is lost stays undescribed until `regscribe reprocess`")
		return nil
	}
	var targets []reconcile.Target
	for _, e := range endpoints {
		t := reconcile.Target{Registry: e.Host, Every: every}
		for _, once := range cfg.ReconcileOnce {
			if strings.EqualFold(once, e.Host) {
				t.Every = 0
			}
		}
		targets = append(targets, t)
	}
	client, err := reconcile.NewClient(endpoints, cfg.ReconcileRPS, regclient.Options{UserAgent: "regscribe/" + buildVersion() + " (reconcile)", Logger: log})
	if err != nil {
		return err
	}
	rec, err := reconcile.New(ctx, js, client, reconcile.Options{
		Targets: targets, Model: model, Repositories: cfg.Repositories, Include: sel.Includes,
		Referrer: cfg.Mode == string(worker.ModeReferrer), Replicas: cfg.Replicas, Locker: leases, Metrics: m, Logger: log,
	})
	if err != nil {
		return err
	}
	for _, t := range targets {
		log.Info("reconcile sweeps", "registry", t.String(), "requests_per_second", cfg.ReconcileRPS)
	}
	go rec.Run(ctx)
	return nil
}

// printSweeps writes the last reconcile sweep of each registry, for
// `regscribe status`: what it found, or that it failed and why.
func printSweeps(sweeps []reconcile.Sweep, w io.Writer) {
	if len(sweeps) == 0 {
		fmt.Fprintln(w, "reconcile: no sweep yet")
	}
	for _, s := range sweeps {
		c := s.Counts
		fmt.Fprintf(w, "last sweep of %s: %s (%s ago, took %s): ",
			s.Registry, s.Ended.Format(time.RFC3339), time.Since(s.Ended).Round(time.Second), s.Took().Round(time.Millisecond))
		if s.Error != "" {
			fmt.Fprintf(w, "FAILED (%d in a row; tried again after a backoff): %s; before it failed: ", s.Failures, s.Error)
		}
		fmt.Fprintf(w, "%d tags, %d unchanged, %d manifests checked, %d photos caught and queued, %d already queued, %d given up before, %d unreadable\n",
			c.Tags, c.Unchanged, c.Manifests, c.Queued, c.AlreadyQueued, c.FailedBefore, c.Errors)
	}
}
