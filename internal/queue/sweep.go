package queue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// settleLag is how long Sweep waits before it trusts that a job message
// below the consumer's ack floor is stranded: in a NATS cluster an
// acknowledged message may leave the stream a moment after the consumer
// counted it.
const settleLag = time.Second

// Sweep turns job messages that no consumer will deliver again into dead
// letters, then removes them from the job stream, and returns how many it
// moved. Such messages were left by earlier versions of regscribe, whose
// consumer stopped delivering a job after MaxDeliver deliveries, or arrived
// on a subject the workers did not take yet.
//
// It is cheap when nothing is stranded (two info requests): a message is
// stranded when the job stream holds more messages than the consumer has
// pending and unacknowledged. It moves the ones at or below the consumer's
// ack floor; a stranded message above it (behind one still in flight) is
// counted by [Status] and moved by a later sweep. Several sweeps at once
// are safe: a dead letter's id is its job message's sequence and the
// ledger remembers it is stored, so none is stored twice.
func Sweep(ctx context.Context, js jetstream.JetStream, rep *Reporter, ledger *Ledger) (int, error) {
	candidates, err := strandedBelowFloor(ctx, js)
	if err != nil || len(candidates) == 0 {
		return 0, err
	}
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(settleLag):
	}
	again, err := strandedBelowFloor(ctx, js)
	if err != nil {
		return 0, err
	}
	moved := 0
	for seq, m := range again {
		if _, ok := candidates[seq]; !ok {
			continue
		}
		if err := sweepOne(ctx, js, rep, ledger, m); err != nil {
			return moved, err
		}
		moved++
	}
	return moved, nil
}

// strandedBelowFloor returns the job messages still in the stream at or
// below the consumer's ack floor, by sequence.
func strandedBelowFloor(ctx context.Context, js jetstream.JetStream) (map[uint64]*jetstream.RawStreamMsg, error) {
	st, err := js.Stream(ctx, Stream)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", Stream, err)
	}
	c, err := js.Consumer(ctx, Stream, Consumer)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, nil // nothing has delivered: every message is still queued
	}
	if err != nil {
		return nil, fmt.Errorf("open consumer %s: %w", Consumer, err)
	}
	ci, err := c.Info(ctx)
	if err != nil {
		return nil, err
	}
	si, err := st.Info(ctx)
	if err != nil {
		return nil, err
	}
	if si.State.Msgs <= ci.NumPending+uint64(ci.NumAckPending) {
		return nil, nil
	}
	if ci.AckFloor.Stream == 0 {
		return nil, nil
	}
	msgs, err := ReadMessages(ctx, st, si.State.FirstSeq, ci.AckFloor.Stream, 0)
	if err != nil {
		return nil, fmt.Errorf("read job messages: %w", err)
	}
	out := make(map[uint64]*jetstream.RawStreamMsg, len(msgs))
	for _, m := range msgs {
		out[m.Sequence] = m
	}
	return out, nil
}

// sweepOne stores the dead letter of a stranded message (unless stored
// already) and removes the message.
func sweepOne(ctx context.Context, js jetstream.JetStream, rep *Reporter, ledger *Ledger, m *jetstream.RawStreamMsg) error {
	rec, _, err := ledger.Get(ctx, m.Sequence, m.Time)
	if err != nil {
		return err
	}
	if !rec.Dead {
		d := DeadLetter{JobSeq: m.Sequence, FailedAt: time.Now().UTC(), Error: strandedReason(rec)}
		if rec.ErrorDelivery > rec.HandedBack {
			d.Attempts = int(rec.ErrorDelivery - rec.HandedBack)
		}
		job, err := ParseJob(m.Data)
		if err != nil {
			d.Error += " (raw job on " + m.Subject + ": " + Excerpt(string(m.Data)) + ")"
		} else {
			d.Job = job
		}
		if err := rep.Dead(ctx, d); err != nil {
			return fmt.Errorf("dead letter for stranded job message %d: %w", m.Sequence, err)
		}
		rec.Dead = true
		if err := ledger.Put(ctx, m.Sequence, rec); err != nil {
			return err
		}
	}
	st, err := js.Stream(ctx, Stream)
	if err != nil {
		return err
	}
	if err := st.DeleteMsg(ctx, m.Sequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) && !errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful) {
		return fmt.Errorf("remove stranded job message %d: %w", m.Sequence, err)
	}
	return nil
}

// strandedReason says why a stranded message is a dead letter.
func strandedReason(rec Record) string {
	if rec.GiveUp != "" {
		return rec.GiveUp
	}
	reason := "the queue stopped delivering it (the delivery limit of an earlier regscribe version, or a subject no worker took when it arrived)"
	if rec.LastError != "" {
		reason += "; the last error: " + rec.LastError
	}
	return reason
}
