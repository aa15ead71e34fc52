package index

import (
	"log/slog"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// randomUnit is a random normalised vector of dims components.
func randomUnit(rng *rand.Rand, dims int) []float32 {
	v := make([]float32, dims)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return normalise(v)
}

func exactDot(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

// TestQuantisedScanMatchesExactRanking holds the int8 vectors to the
// float ranking: every similarity within 0.01 of the exact one, the same
// entries in the top k but where two are closer than that, and the scan
// split over goroutines equal to one scan of all.
func TestQuantisedScanMatchesExactRanking(t *testing.T) {
	const dims, n, k = 384, 3*scanChunk + 17, 50
	rng := rand.New(rand.NewPCG(1, 2))
	v := &vectors{slot: map[docKey]int32{}, waiting: map[docKey]textKey{}, wake: make(chan struct{}, 1),
		ix: &Index{log: slog.Default()}}
	all := make([][]float32, n)
	for i := range n {
		var id docKey
		id[0], id[1], id[2] = byte(i), byte(i>>8), byte(i>>16)
		all[i] = randomUnit(rng, dims)
		v.waiting[id] = textKey{1}
		v.set(id, textKey{1}, all[i])
	}
	// A query near entry 7, so the top of the ranking is well apart.
	q := slices.Clone(all[7])
	for i := range q {
		q[i] += 0.3 * float32(rng.NormFloat64()) / 20
	}
	q = normalise(q)

	got := v.nearest(q, k, -1)
	require.Len(t, got, k)
	require.Equal(t, byte(7), got[0].id[0], "the entry the query was made from first")
	exact := make([]float64, n)
	for i := range n {
		exact[i] = exactDot(q, all[i])
	}
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		if exact[a] > exact[b] {
			return -1
		}
		return 1
	})
	for r, nb := range got {
		i := int(nb.id[0]) | int(nb.id[1])<<8 | int(nb.id[2])<<16
		require.InDelta(t, exact[i], float64(nb.sim), 0.01, "similarity of rank %d", r)
		if r+1 < k && exact[order[r]]-exact[order[r+1]] > 0.02 && (r == 0 || exact[order[r-1]]-exact[order[r]] > 0.02) {
			require.Equal(t, order[r], i, "rank %d", r)
		}
	}

	one := v.scan(widen(q), quantiseScale(q), 0, n, k, -1)
	require.Equal(t, got, one, "the split scan finds what one scan finds")

	require.Empty(t, v.nearest(q, k, 0.99), "no entry is 0.99 similar to the query: the floor holds")

	// Asking for far more neighbours than there are vectors (a deep page)
	// costs what asking for all of them costs.
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	deep := v.nearest(q, 1<<22, -1)
	runtime.ReadMemStats(&after)
	require.Len(t, deep, n)
	require.Equal(t, got, deep[:k])
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(16<<20), "memory for the vectors there are, not for k")
}

func widen(q []float32) []int32 {
	q8 := make([]int8, len(q))
	quantise(q8, q)
	out := make([]int32, len(q))
	for i, c := range q8 {
		out[i] = int32(c)
	}
	return out
}

func quantiseScale(q []float32) float32 { return quantise(make([]int8, len(q)), q) }
