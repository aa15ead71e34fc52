package bench_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/bench"
)

// TestRunReportsEverySection runs every section at a tiny scale in this
// process and checks that the report is complete and consistent. It asserts
// counts, never timings.
func TestRunReportsEverySection(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole stack several times")
	}
	var progress bytes.Buffer
	rep, err := bench.Run(context.Background(), bench.Options{
		Photos: 6, Latency: 20 * time.Millisecond, Concurrency: 2, Workers: 4, Pushers: 3, DemoPhotos: 3, SearchPhotos: 300,
		CPUKinds: []bench.Kind{bench.OneMP, bench.PNG}, MemoryKind: bench.OneMP, Progress: &progress,
	})
	require.NoError(t, err, progress.String())

	require.Positive(t, rep.Machine.Cores)
	require.InDelta(t, 100, rep.Settings.Ceiling, 0.001, "C/L = 2/20 ms")
	require.Contains(t, rep.Settings.Model, "in this process")

	th := rep.Throughput
	require.NotNil(t, th)
	require.Equal(t, 6, th.Photos)
	require.Equal(t, 6, th.ModelCalls, "each photo described once")
	require.Equal(t, 6, th.Jobs.Described)
	require.Zero(t, th.Jobs.Skipped, "a write-back makes no job: the notifier knows regscribe's own tag moves")
	require.Zero(t, th.Jobs.Failed)
	require.LessOrEqual(t, th.MaxServed, 2, "the fake served at most C at once")
	require.Positive(t, th.Ratio)
	require.InDelta(t, th.PerSecond/rep.Settings.Ceiling, th.Ratio, 1e-9)
	require.GreaterOrEqual(t, th.Seconds, th.PushSeconds)

	l := rep.Latency
	require.NotNil(t, l)
	require.Equal(t, 6, l.Photos)
	require.Equal(t, 1, l.AtOnce)
	require.LessOrEqual(t, l.P50Ms, l.P95Ms)
	require.LessOrEqual(t, l.P95Ms, l.P99Ms)
	require.LessOrEqual(t, l.P99Ms, l.MaxMs)
	require.GreaterOrEqual(t, l.StageMs["model"], 20.0, "the model stage includes L")

	require.Len(t, rep.CPU, 2)
	for _, c := range rep.CPU {
		require.Equal(t, 6, c.Photos)
		require.Equal(t, 6, c.Jobs.Described)
		require.Positive(t, c.DescribeMs)
		require.InDelta(t, c.PushMs+c.DescribeMs, c.TotalMs, 1e-9)
	}

	m := rep.Memory
	require.NotNil(t, m)
	require.Equal(t, 6, m.Photos)
	require.False(t, m.FreshProcess)
	require.Positive(t, m.PeakRSSMB)
	require.GreaterOrEqual(t, m.WholeRunPeakRSSMB, m.PeakRSSMB)

	g := rep.Ingest
	require.NotNil(t, g)
	require.EqualValues(t, g.Events+g.SequentialEvents, g.Stored, "every notification stored one job")
	require.Positive(t, g.PerSecond)
	require.Positive(t, g.SequentialPerSecond)

	d := rep.Demo
	require.NotNil(t, d)
	require.Equal(t, 3, d.Photos)
	require.Equal(t, 3, d.ModelCalls)
	require.Positive(t, d.Speedup)

	sr := rep.Search
	require.NotNil(t, sr)
	require.Equal(t, 300, sr.Photos)
	require.Equal(t, 200, sr.Queries)
	require.Equal(t, bench.SearchEmbedDims, sr.EmbedDims)
	require.Positive(t, sr.IndexPerSecond)
	require.Positive(t, sr.EmbedPerSecond)
	require.Positive(t, sr.DiskBytesPerPhoto)

	var table bytes.Buffer
	require.NoError(t, bench.WriteTable(&table, rep))
	for _, s := range []string{"ingest", "throughput", "latency", "cpu", "memory", "demo", "search", "naive scan", "TARGET"} {
		require.Contains(t, table.String(), s)
	}
	require.Len(t, rep.Targets(), 8)
	t.Log("\n" + progress.String() + "\n" + table.String())
}
