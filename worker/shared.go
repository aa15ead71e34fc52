package worker

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/regscribe/regscribe/internal/feed"
	"github.com/regscribe/regscribe/internal/lease"
	"github.com/regscribe/regscribe/internal/memo"
	"github.com/regscribe/regscribe/internal/outage"
	"github.com/regscribe/regscribe/internal/queue"
)

// Shared are the parts a worker pool settles its jobs through, shared
// with every other worker process on the same NATS: the description
// memory, the attempts ledger, the description feed, the leases on photos'
// referrers, the reporter of results and dead letters and the board of the
// model's outages. `regscribe up`,
// `regscribe worker` and `regscribe bench` open them with [OpenShared], so
// the benchmark runs the parts users run.
type Shared struct {
	Memory   *memo.Store
	Ledger   *queue.Ledger
	Feed     *feed.Publisher
	Leases   *lease.Leases
	Reporter *queue.Reporter
	Outages  *outage.Board
}

// OpenShared creates (or opens) the shared parts, with replicas copies
// of each bucket and stream (zero: one).
func OpenShared(ctx context.Context, js jetstream.JetStream, replicas int) (Shared, error) {
	var (
		s   = Shared{Feed: feed.NewPublisher(js), Reporter: queue.NewReporter(js)}
		err error
	)
	if s.Memory, err = memo.Open(ctx, js, queue.DescriptionBucket, replicas); err != nil {
		return s, err
	}
	if s.Ledger, err = queue.OpenLedger(ctx, js, replicas); err != nil {
		return s, err
	}
	if _, err = feed.EnsureStream(ctx, js, replicas); err != nil {
		return s, err
	}
	if s.Leases, err = lease.Open(ctx, js, replicas, 0); err != nil {
		return s, err
	}
	if s.Outages, err = outage.Open(ctx, js, replicas); err != nil {
		return s, err
	}
	return s, nil
}

// Use sets o's Reporter, Ledger, Feed, Locker and Outages to s's (the
// memory is [New]'s argument).
func (s Shared) Use(o *Options) {
	o.Reporter, o.Ledger, o.Feed, o.Locker, o.Outages = s.Reporter, s.Ledger, s.Feed, s.Leases, s.Outages
}
