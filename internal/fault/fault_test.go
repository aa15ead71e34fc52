package fault_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/regscribe/regscribe/internal/fault"
	"github.com/stretchr/testify/require"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	base := errors.New("boom")
	cases := []struct {
		name  string
		err   error
		kind  fault.Kind
		after time.Duration
	}{
		{"plain error retries", base, fault.KindRetry, 0},
		{"permanent", fault.Permanent(base), fault.KindPermanent, 0},
		{"wrapped permanent", fmt.Errorf("fetch: %w", fault.Permanent(base)), fault.KindPermanent, 0},
		{"retry after", fault.RetryAfter(base, 3*time.Second), fault.KindRetry, 3 * time.Second},
		{"unavailable", fault.Unavailable(base), fault.KindUnavailable, 0},
		{"skip", fault.Skip("no image layer"), fault.KindSkip, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			kind, after := fault.Classify(tc.err)
			require.Equal(t, tc.kind, kind)
			require.Equal(t, tc.after, after)
			require.True(t, fault.Is(tc.err, tc.kind))
		})
	}
	require.Nil(t, fault.Permanent(nil))
	require.ErrorIs(t, fault.Permanent(base), base)
}

func TestFromStatus(t *testing.T) {
	t.Parallel()
	base := errors.New("boom")
	for _, tc := range []struct {
		status int
		kind   fault.Kind
	}{
		{400, fault.KindPermanent}, {401, fault.KindPermanent}, {403, fault.KindPermanent},
		{404, fault.KindPermanent}, {408, fault.KindRetry}, {409, fault.KindPermanent},
		{429, fault.KindRetry}, {500, fault.KindRetry}, {502, fault.KindRetry}, {503, fault.KindRetry},
	} {
		err := fault.FromStatus(tc.status, time.Second, base)
		kind, after := fault.Classify(err)
		require.Equal(t, tc.kind, kind, "status %d", tc.status)
		require.ErrorIs(t, err, base)
		if kind == fault.KindRetry {
			require.Equal(t, time.Second, after, "status %d keeps the server's delay", tc.status)
		}
	}
	require.Nil(t, fault.FromStatus(500, 0, nil))
}
