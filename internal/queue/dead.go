package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/regscribe/regscribe/internal/feed"
)

// DeadLetters lists every dead letter, oldest first. The dead-letter
// stream's retention ([StreamOptions]) bounds them; pages read a window
// instead ([ReadDeadLetters]).
func DeadLetters(ctx context.Context, js jetstream.JetStream) ([]DeadLetter, error) {
	s, err := js.Stream(ctx, DeadStream)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", DeadStream, err)
	}
	msgs, err := ReadMessages(ctx, s, 1, 0, 0)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", DeadStream, err)
	}
	out := make([]DeadLetter, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, deadLetter(m))
	}
	return out, nil
}

// deadLetter reads the dead letter stored in m.
func deadLetter(m *jetstream.RawStreamMsg) DeadLetter {
	var d DeadLetter
	if err := json.Unmarshal(m.Data, &d); err != nil {
		d = DeadLetter{Error: "unreadable dead letter: " + err.Error()}
	}
	d.Seq = m.Sequence
	return d
}

// DeadLetterWindow selects the dead letters [ReadDeadLetters] reads: the
// newest Limit stored before sequence Before, or the oldest Limit stored
// after sequence After; with neither, the newest Limit.
type DeadLetterWindow struct {
	Before, After uint64
	// Limit bounds the dead letters read. If zero, 100.
	Limit int
}

// DeadLetterPage is a window of the dead letters.
type DeadLetterPage struct {
	// Letters are the window's dead letters, newest first.
	Letters []DeadLetter
	// Older is the Before of the window of older dead letters, Newer the
	// After of the newer ones; 0 when there are none.
	Older, Newer uint64
	// Total is the number of dead letters stored.
	Total uint64
}

// ReadDeadLetters reads a window of the dead letters: at most w.Limit of
// them, with about as many requests (a few more for each run of dead
// letters deleted in between, however long), however many are stored.
func ReadDeadLetters(ctx context.Context, js jetstream.JetStream, w DeadLetterWindow) (DeadLetterPage, error) {
	var p DeadLetterPage
	if w.Limit <= 0 {
		w.Limit = 100
	}
	s, err := js.Stream(ctx, DeadStream)
	if err != nil {
		return p, fmt.Errorf("open %s: %w", DeadStream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return p, fmt.Errorf("read %s: %w", DeadStream, err)
	}
	p.Total = info.State.Msgs
	first, last := info.State.FirstSeq, info.State.LastSeq
	if p.Total == 0 {
		return p, nil
	}
	var msgs []*jetstream.RawStreamMsg
	var low, high uint64 // the sequences the window looked at
	if w.After != 0 {
		low = w.After + 1
		if msgs, err = ReadMessages(ctx, s, low, last, w.Limit); err != nil {
			return p, fmt.Errorf("read %s: %w", DeadStream, err)
		}
		high = last
		if len(msgs) == w.Limit {
			high = msgs[len(msgs)-1].Sequence
		}
	} else {
		high = last
		if w.Before != 0 && w.Before <= last {
			high = w.Before - 1
		}
		budget := 4*w.Limit + 64
		if msgs, low, err = newestIn(ctx, s, first, high, w.Limit, &budget); err != nil {
			return p, fmt.Errorf("read %s: %w", DeadStream, err)
		}
		slices.Reverse(msgs)
	}
	if low > first {
		p.Older = low
	}
	if high < last {
		p.Newer = high
	}
	for _, m := range slices.Backward(msgs) {
		p.Letters = append(p.Letters, deadLetter(m))
	}
	return p, nil
}

// newestIn returns the newest n messages of s stored in [lo, hi] (fewer
// when there are no more), newest first, and floor: every message stored
// in [floor, hi] is among them. It looks back a window at a time, doubling
// it past runs of deleted sequences, so a run of any length costs a few
// requests. A window read full may hold newer messages above the ones read
// (a window reads from its start): those above are read first. It stops
// when budget (requests) runs out; floor then says how far it got.
func newestIn(ctx context.Context, s jetstream.Stream, lo, hi uint64, n int, budget *int) (out []*jetstream.RawStreamMsg, floor uint64, err error) {
	floor = hi + 1
	size := uint64(n)
	for len(out) < n && floor > lo && *budget > 0 {
		top, need := floor-1, n-len(out)
		start := lo
		if top-lo+1 > size {
			start = top - size + 1
		}
		got, err := ReadMessages(ctx, s, start, top, need)
		*budget -= len(got) + 1
		if err != nil {
			return out, floor, err
		}
		if last := len(got) - 1; len(got) == need && got[last].Sequence < top && top-start+1 > uint64(need) {
			above, aboveFloor, err := newestIn(ctx, s, got[last].Sequence+1, top, need, budget)
			out = append(out, above...)
			if err != nil || len(above) < need && aboveFloor > got[last].Sequence+1 {
				return out, aboveFloor, err
			}
			for i := last; i >= 0 && len(out) < n; i-- {
				out = append(out, got[i])
			}
			break
		}
		for _, m := range slices.Backward(got) {
			out = append(out, m)
		}
		floor = start
		if len(got) == 0 {
			size = min(2*size, 1<<48)
		} else {
			size = uint64(n - len(out))
		}
	}
	if len(out) == n && n > 0 {
		floor = out[n-1].Sequence
	}
	return out, floor, nil
}

// Retried is what became of one dead letter queued again.
type Retried struct {
	Seq uint64
	Job Job
	// Err is why it was not queued again (it stays a dead letter), or why
	// it stays although its job was queued again.
	Err error
}

// RetryDeadLetters queues again the jobs of the dead letters stored from
// sequence from to upTo (0: no end), oldest first, at most limit (at
// least 1) of them, and reports each. next is the sequence to go on from
// when limit cut the range short, else 0.
func RetryDeadLetters(ctx context.Context, js jetstream.JetStream, from, upTo uint64, limit int) (done []Retried, next uint64, err error) {
	limit = max(limit, 1)
	s, err := js.Stream(ctx, DeadStream)
	if err != nil {
		return nil, 0, fmt.Errorf("open %s: %w", DeadStream, err)
	}
	// One more is read to learn whether the range goes on.
	msgs, err := ReadMessages(ctx, s, from, upTo, limit+1)
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", DeadStream, err)
	}
	if len(msgs) > limit {
		next, msgs = msgs[limit].Sequence, msgs[:limit]
	}
	gallery := galleryOf(ctx, js)
	for _, m := range msgs {
		j, err := retry(ctx, js, s, m, gallery)
		done = append(done, Retried{Seq: m.Sequence, Job: j, Err: err})
	}
	return done, next, nil
}

// RetryDead queues the job of dead letter seq again (with a fresh message
// id, so the duplicate window does not drop it) and removes the dead letter.
func RetryDead(ctx context.Context, js jetstream.JetStream, seq uint64) (Job, error) {
	s, err := js.Stream(ctx, DeadStream)
	if err != nil {
		return Job{}, fmt.Errorf("open %s: %w", DeadStream, err)
	}
	m, err := s.GetMsg(ctx, seq)
	if err != nil {
		return Job{}, fmt.Errorf("dead letter %d: %w", seq, err)
	}
	return retry(ctx, js, s, m, galleryOf(ctx, js))
}

// retry queues the job of dead letter m of s again and removes m.
func retry(ctx context.Context, js jetstream.JetStream, s jetstream.Stream, m *jetstream.RawStreamMsg, gallery *feed.Publisher) (Job, error) {
	seq := m.Sequence
	var d DeadLetter
	if err := json.Unmarshal(m.Data, &d); err != nil {
		return Job{}, fmt.Errorf("dead letter %d: %w", seq, err)
	}
	if err := d.Job.Validate(); err != nil {
		return Job{}, fmt.Errorf("dead letter %d: %w", seq, err)
	}
	data, err := d.Job.Marshal()
	if err != nil {
		return Job{}, err
	}
	msg := &nats.Msg{Subject: Subject(d.Job.Source), Data: data, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, d.Job.ID()+"-retry-"+strconv.FormatUint(seq, 10))
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		return Job{}, fmt.Errorf("queue dead letter %d again: %w", seq, err)
	}
	if err := s.DeleteMsg(ctx, seq); err != nil {
		return d.Job, fmt.Errorf("job queued again, but dead letter %d stays: %w", seq, err)
	}
	announceRetry(ctx, gallery, d.Job, seq)
	return d.Job, nil
}

// galleryOf is the description stream's publisher, nil without the
// stream (no index follows this queue).
func galleryOf(ctx context.Context, js jetstream.JetStream) *feed.Publisher {
	if _, err := js.Stream(ctx, feed.Stream); err != nil {
		return nil
	}
	return feed.NewPublisher(js)
}

// announceRetry tells the gallery that the photo of a job queued again is
// waiting again (its tile said failed). Best effort: a photo whose
// announcement is lost shows the new outcome once its job ends.
func announceRetry(ctx context.Context, gallery *feed.Publisher, j Job, seq uint64) {
	if gallery == nil || j.Deleted || j.Digest == "" || j.Correction != nil {
		return
	}
	e := feed.Event{Kind: feed.Queued, Registry: j.Registry, Repository: j.Repository, Digest: j.Digest, At: time.Now().UTC()}
	if j.Tag != "" {
		e.Tags = []string{j.Tag}
	}
	_, _ = gallery.Publish(ctx, e, "queued-"+j.ID()+"-retry-"+strconv.FormatUint(seq, 10))
}
