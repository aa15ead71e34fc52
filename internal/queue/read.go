package queue

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// ReadMessages reads the messages of st stored at sequence from or later,
// and at most at upTo (0: no end), in stream order, at most limit of them
// (0: no limit).
//
// Each request asks for the next message that exists (a get by sequence
// with a next-by-subject filter of ">"), so the deleted sequences between
// them cost nothing: the jobs acknowledged out of the work-queue stream, the
// dead letters queued again. It sends one request per message read and at
// most one more to learn the end: a scan is bounded by what it reads.
func ReadMessages(ctx context.Context, st jetstream.Stream, from, upTo uint64, limit int) ([]*jetstream.RawStreamMsg, error) {
	var out []*jetstream.RawStreamMsg
	for seq := max(from, 1); limit <= 0 || len(out) < limit; {
		if upTo != 0 && seq > upTo {
			break
		}
		m, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(">"))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return out, fmt.Errorf("read the message at or after %d: %w", seq, err)
		}
		if upTo != 0 && m.Sequence > upTo {
			break
		}
		out = append(out, m)
		seq = m.Sequence + 1
	}
	return out, nil
}
