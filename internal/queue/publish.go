package queue

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Publisher puts jobs on the stream and returns only once JetStream has
// stored them.
type Publisher struct {
	js jetstream.JetStream
}

// NewPublisher returns a Publisher on js.
func NewPublisher(js jetstream.JetStream) *Publisher { return &Publisher{js: js} }

// Publish queues jobs. All are sent asynchronously, then every
// acknowledgement is awaited, so a batch costs about one round trip. A nil
// error means every job is stored (or was a duplicate within the window).
func (p *Publisher) Publish(ctx context.Context, jobs ...Job) error {
	_, err := p.PublishNew(ctx, jobs...)
	return err
}

// PublishNew is Publish, and also reports for each job whether it was new
// (false: JetStream dropped it as a duplicate of a job queued within the
// duplicate window).
func (p *Publisher) PublishNew(ctx context.Context, jobs ...Job) ([]bool, error) {
	fresh := make([]bool, len(jobs))
	futures := make([]jetstream.PubAckFuture, 0, len(jobs))
	for _, j := range jobs {
		data, err := j.Marshal()
		if err != nil {
			return nil, fmt.Errorf("encode job %s: %w", j.Ref(), err)
		}
		msg := &nats.Msg{Subject: Subject(j.Source), Data: data, Header: nats.Header{}}
		msg.Header.Set(jetstream.MsgIDHeader, j.ID())
		f, err := p.js.PublishMsgAsync(msg)
		if err != nil {
			return nil, fmt.Errorf("publish job %s: %w", j.Ref(), err)
		}
		futures = append(futures, f)
	}
	var errs []error
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			fresh[i] = !ack.Duplicate
		case err := <-f.Err():
			errs = append(errs, err)
		case <-ctx.Done():
			return nil, fmt.Errorf("publish: %w", ctx.Err())
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("publish: %d of %d jobs not stored: %w", len(errs), len(jobs), errors.Join(errs...))
	}
	return fresh, nil
}
