package index

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/regscribe/regscribe/internal/feed"
)

// Following the stream: events are fetched and applied followBatch at a
// time, committed as one bleve batch, then acknowledged.
const (
	followBatch = 2500
	followWait  = time.Second
	// followAckWait is how long the server waits for a batch's ack before
	// sending its events again.
	followAckWait = 2 * time.Minute
)

// Follow consumes the description stream with the index's own durable
// consumer (named from the index's id: [Index.Consumer]) until ctx ends,
// catching up on what it missed while down; a new index directory reads
// the stream from its start. Events are applied in batches, each
// committed before it is acknowledged. A malformed event is terminated
// with its reason, and logged. When NATS is away, Follow waits and goes
// on. It returns nil when ctx ends.
func (ix *Index) Follow(ctx context.Context, js jetstream.JetStream) error {
	backoff := minBackoff
	var cons jetstream.Consumer
	for ctx.Err() == nil {
		if cons == nil {
			var err error
			if cons, err = ix.consumer(ctx, js); err != nil {
				ix.log.Warn("index: cannot follow the description stream yet", "error", err.Error())
				if !sleep(ctx, backoff) {
					break
				}
				backoff = min(2*backoff, 30*time.Second)
				continue
			}
			backoff = minBackoff
		}
		n, err := ix.followOnce(ctx, cons)
		switch {
		case ctx.Err() != nil:
		case errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted):
			ix.log.Warn("index: the consumer is gone; making it again", "consumer", ix.Consumer())
			cons = nil
		case errors.Is(err, errDeliveryLost):
			ix.log.Warn("index: a delivery of the description stream was lost (NATS restarted?); reading again from the first event not applied",
				"consumer", ix.Consumer(), "from", ix.resumeAt)
			cons = nil
		case err != nil:
			ix.log.Warn("index: following the description stream", "error", err.Error())
			if ix.resumeAt > 0 {
				cons = nil // a batch not applied: read again from it
			}
			if !sleep(ctx, backoff) {
				break
			}
			backoff = min(2*backoff, 30*time.Second)
		case n == 0:
			if ix.catchUp(ctx, cons) {
				ix.log.Warn("index: the description stream delivered events that never arrived (NATS restarted?); reading again from the first event not applied",
					"consumer", ix.Consumer(), "from", ix.resumeAt)
				cons = nil
			}
			backoff = minBackoff
		default:
			backoff = minBackoff
		}
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-ctx.Done():
		return false
	}
}

// consumer makes (or finds) the stream and the index's durable consumer.
func (ix *Index) consumer(ctx context.Context, js jetstream.JetStream) (jetstream.Consumer, error) {
	s, err := js.Stream(ctx, feed.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = feed.EnsureStream(ctx, js, 1)
	}
	if err != nil {
		return nil, err
	}
	cfg := jetstream.ConsumerConfig{
		Durable:       ix.Consumer(),
		Description:   "regscribe: search index " + ix.id,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckAllPolicy,
		AckWait:       followAckWait,
		MaxAckPending: 4 * followBatch,
		FilterSubject: feed.SubjectPrefix + ">",
	}
	if ix.replay || ix.resumeAt > 0 {
		// Emptied to be rebuilt, the consumer reads the stream from the
		// start again; after a lost delivery, from the first event not
		// applied.
		if err := s.DeleteConsumer(ctx, ix.Consumer()); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil, fmt.Errorf("consumer %s: %w", ix.Consumer(), err)
		}
		if !ix.replay {
			cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, ix.resumeAt
		}
		ix.replay, ix.resumeAt = false, 0
	}
	cons, err := s.CreateOrUpdateConsumer(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", ix.Consumer(), err)
	}
	ix.nextDelivery = 0 // numbered by this consumer from now on
	if ix.catchUp(ctx, cons) {
		// Deliveries of an earlier run that never were acknowledged:
		// read again from the first event not applied now, rather than
		// after the ack wait (a consumer made from there has delivered
		// nothing, so this happens once).
		return ix.consumer(ctx, js)
	}
	return cons, nil
}

// errDeliveryLost is returned by followOnce when a delivery never arrived
// (a gap in the deliveries' consumer sequence): the consumer acknowledges
// all before an acknowledged event, so it is made again from the first
// event not applied.
var errDeliveryLost = errors.New("a delivery of the description stream was lost on the way")

// catchUp records, from the consumer's state, what was applied before:
// everything acknowledged, and, when the index received every delivery
// the consumer made and nothing is pending, everything the consumer
// passed. It reports lost deliveries (the consumer delivered events the
// index never received: a fetch lost in a NATS restart, or an earlier run
// stopped before its acknowledgement), and then sets resumeAt: the
// consumer is to be made again from the first event not applied, since its
// state cannot tell what the index has.
func (ix *Index) catchUp(ctx context.Context, cons jetstream.Consumer) (lost bool) {
	info, err := cons.Info(ctx)
	if err != nil {
		// Nothing learnt: the deliveries seen still say what must come
		// next (forgetting them would let a lost delivery be acknowledged
		// with the next).
		return false
	}
	ix.markApplied(info.AckFloor.Stream)
	if ix.nextDelivery == 0 {
		ix.nextDelivery = info.AckFloor.Consumer + 1
	}
	if info.Delivered.Consumer >= ix.nextDelivery {
		applied, _ := ix.appliedSeq()
		ix.resumeAt = applied + 1
		return true
	}
	if info.NumPending == 0 && info.NumAckPending == 0 && info.NumRedelivered == 0 {
		ix.markApplied(info.Delivered.Stream)
	}
	return false
}

// followOnce fetches, applies, commits and acknowledges one batch, and
// returns how many events it held.
func (ix *Index) followOnce(ctx context.Context, cons jetstream.Consumer) (int, error) {
	batch, err := cons.Fetch(followBatch, jetstream.FetchMaxWait(followWait))
	if err != nil {
		return 0, err
	}
	var msgs []jetstream.Msg
	for m := range batch.Messages() {
		msgs = append(msgs, m)
	}
	if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && len(msgs) == 0 {
		return 0, err
	}
	if len(msgs) == 0 {
		return 0, nil
	}
	ix.mu.Lock()
	w := ix.newWriter()
	var (
		last  uint64
		ackOn jetstream.Msg // the last event applied: acking it acks all before it
	)
	lost := false
	for i, m := range msgs {
		md, err := m.Metadata()
		if err != nil {
			continue
		}
		if ix.nextDelivery > 0 && md.Sequence.Consumer > ix.nextDelivery {
			// A delivery before m never came: acknowledging m would
			// acknowledge it too. What came before is applied; the
			// rest is read again from the first event not applied.
			lost = true
			nakAll(msgs[i:])
			break
		}
		ix.nextDelivery = md.Sequence.Consumer + 1
		last = max(last, md.Sequence.Stream)
		e, err := feed.Parse(m.Data())
		if err != nil {
			ix.log.Error("index: malformed description event set aside", "subject", m.Subject(), "seq", md.Sequence.Stream, "reason", err.Error())
			if terr := m.TermWithReason("malformed description event: " + err.Error()); terr != nil {
				ix.log.Warn("index: terminating a malformed event", "error", terr.Error())
			}
			continue
		}
		ix.log.Debug("index: applying", "seq", md.Sequence.Stream, "delivery", md.Sequence.Consumer, "delivered", md.NumDelivered,
			"kind", e.Kind, "ref", e.Ref(), "by", e.By, "replaces", e.Replaces, "tags", e.Tags, "photos", len(e.Photos), "at", e.At)
		if err = w.apply(ix.canonical(e)); err != nil {
			err = fmt.Errorf("apply %s: %w", describe(e), err)
			w.abandon()
			ix.mu.Unlock()
			return 0, ix.readAgain(msgs, err)
		}
		ackOn = m
	}
	err = w.commit()
	ix.mu.Unlock()
	if err != nil {
		return 0, ix.readAgain(msgs, err)
	}
	if ackOn != nil {
		if err := ackOn.Ack(); err != nil {
			// The server sends them again; applying them again changes nothing.
			ix.log.Warn("index: acknowledging applied events", "error", err.Error())
		}
	}
	ix.markApplied(last)
	if lost {
		applied, _ := ix.appliedSeq()
		ix.resumeAt = applied + 1
		return len(msgs), errDeliveryLost
	}
	return len(msgs), nil
}

// readAgain gives a batch that could not be applied back and has the
// consumer made again from the first event not applied: the consumer's
// ack-all policy would let the acknowledgement of a later batch
// acknowledge these too, before they came again.
func (ix *Index) readAgain(msgs []jetstream.Msg, err error) error {
	nakAll(msgs)
	applied, _ := ix.appliedSeq()
	ix.resumeAt = applied + 1
	return err
}

// nakAll asks for msgs again a little later.
func nakAll(msgs []jetstream.Msg) {
	for _, m := range msgs {
		_ = m.NakWithDelay(time.Second)
	}
}
