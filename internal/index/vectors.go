package index

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// VectorBucketName is the KV bucket that remembers vectors, keyed by
// embedding model and text: <sha256(model)[:8]>.<sha256(text)[:16]>, hex;
// the value is the normalised vector as little-endian float32s.
const VectorBucketName = "regscribe-vectors"

// VectorBucket creates or opens the vector bucket, with replicas copies
// (0: 1), for [Options.Vectors].
func VectorBucket(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      VectorBucketName,
		Description: "regscribe: embeddings of descriptions, per embedding model and text",
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("vector bucket %s: %w", VectorBucketName, err)
	}
	return kv, nil
}

// Embedding work is done in batches of embedBatch texts, each call within
// embedTimeout; failures wait from minBackoff, doubling up to maxBackoff.
const (
	embedBatch   = 64
	embedTimeout = 2 * time.Minute
	minBackoff   = 500 * time.Millisecond
	maxBackoff   = time.Minute
)

// vectors holds the embedding model's vector of every entry, in memory,
// and embeds (or finds in the bucket) the ones still missing.
//
// Vectors are held quantised: each normalised vector as int8 components
// and one scale (component ≈ int8 × scale), a quarter of float32's
// memory; a query is quantised the same way and compared with an integer
// dot product. For unit vectors the error of a similarity is below 0.01,
// far less than the gaps that decide a ranking.
type vectors struct {
	ix     *Index
	emb    Embedder
	kv     jetstream.KeyValue
	prefix string // the model's part of bucket keys

	mu      sync.RWMutex
	dims    int
	data    []int8    // slot i is data[i*dims : (i+1)*dims]
	scales  []float32 // slot → scale of its components
	ids     []docKey  // slot → entry
	vkeys   []textKey // slot → text key
	slot    map[docKey]int32
	waiting map[docKey]textKey // entries still without a vector
	wake    chan struct{}
}

func newVectors(ix *Index, emb Embedder, kv jetstream.KeyValue) *vectors {
	sum := sha256.Sum256([]byte(emb.Model()))
	return &vectors{
		ix: ix, emb: emb, kv: kv, prefix: hex.EncodeToString(sum[:8]),
		slot: map[docKey]int32{}, waiting: map[docKey]textKey{}, wake: make(chan struct{}, 1),
	}
}

// want asks for the vector of entry id, whose text key is vkey.
func (v *vectors) want(id docKey, vkey textKey) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if s, ok := v.slot[id]; ok {
		if v.vkeys[s] == vkey {
			return
		}
		v.dropLocked(id)
	}
	v.waiting[id] = vkey
	select {
	case v.wake <- struct{}{}:
	default:
	}
}

// drop forgets entry id.
func (v *vectors) drop(id docKey) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.dropLocked(id)
}

func (v *vectors) dropLocked(id docKey) {
	delete(v.waiting, id)
	s, ok := v.slot[id]
	if !ok {
		return
	}
	last := int32(len(v.ids) - 1)
	d := int32(v.dims)
	if s != last {
		copy(v.data[s*d:(s+1)*d], v.data[last*d:])
		v.ids[s], v.vkeys[s], v.scales[s] = v.ids[last], v.vkeys[last], v.scales[last]
		v.slot[v.ids[s]] = s
	}
	v.data = v.data[:last*d]
	v.ids, v.vkeys, v.scales = v.ids[:last], v.vkeys[:last], v.scales[:last]
	delete(v.slot, id)
}

// set stores the vector (normalised) of entry id, if it still waits for
// that text.
func (v *vectors) set(id docKey, vkey textKey, vec []float32) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if w, ok := v.waiting[id]; !ok || w != vkey {
		return
	}
	delete(v.waiting, id)
	if v.dims == 0 {
		v.dims = len(vec)
	}
	if len(vec) != v.dims {
		v.ix.log.Error("embedding model returned a vector of another size; the entry is left out of semantic search",
			"model", v.emb.Model(), "dims", len(vec), "want", v.dims)
		return
	}
	v.slot[id] = int32(len(v.ids))
	v.ids = append(v.ids, id)
	v.vkeys = append(v.vkeys, vkey)
	v.data = slices.Grow(v.data, v.dims)
	n := len(v.data)
	v.data = v.data[:n+v.dims]
	v.scales = append(v.scales, quantise(v.data[n:], vec))
}

// release forgets every vector.
func (v *vectors) release() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.data, v.scales, v.ids, v.vkeys = nil, nil, nil, nil
	v.slot, v.waiting = map[docKey]int32{}, map[docKey]textKey{}
}

func (v *vectors) has() bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return len(v.ids) > 0
}

func (v *vectors) counts() (done, waiting int) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return len(v.ids), len(v.waiting)
}

// quantise writes x as int8 components to q (len(x)) and returns their
// scale: x[i] ≈ q[i] × scale.
func quantise(q []int8, x []float32) float32 {
	var m float32
	for _, c := range x {
		m = max(m, c, -c)
	}
	if m == 0 {
		clear(q)
		return 0
	}
	scale := m / 127
	inv := 1 / scale
	for i, c := range x {
		q[i] = int8(math.Round(float64(c * inv)))
	}
	return scale
}

// neighbour is an entry near the query and its cosine similarity.
type neighbour struct {
	id  docKey
	sim float32
}

// scanChunk is the fewest vectors a goroutine of a scan takes on: below
// it, one goroutine scans them all.
const scanChunk = 8192

// nearest is the k entries most similar to q (normalised), at least
// minSim similar, best first: an exact scan of every vector, split over
// GOMAXPROCS goroutines when there are many.
func (v *vectors) nearest(q []float32, k int, minSim float64) []neighbour {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if len(q) != v.dims || v.dims == 0 || k <= 0 {
		return nil
	}
	q8 := make([]int8, len(q))
	qscale := quantise(q8, q)
	if qscale == 0 {
		return nil
	}
	qq := make([]int32, len(q)) // widened once: the scan's loop is faster so
	for i, c := range q8 {
		qq[i] = int32(c)
	}
	n := len(v.ids)
	k = min(k, n) // no more neighbours than vectors, whatever was asked
	parts := min(runtime.GOMAXPROCS(0), max(n/scanChunk, 1))
	if parts == 1 {
		return v.scan(qq, qscale, 0, n, k, float32(minSim))
	}
	found := make([][]neighbour, parts)
	var wg sync.WaitGroup
	for p := range parts {
		wg.Go(func() { found[p] = v.scan(qq, qscale, p*n/parts, (p+1)*n/parts, k, float32(minSim)) })
	}
	wg.Wait()
	best := slices.Concat(found...)
	slices.SortFunc(best, func(a, b neighbour) int {
		return cmp.Or(cmp.Compare(b.sim, a.sim), bytes.Compare(a.id[:], b.id[:]))
	})
	return best[:min(k, len(best))]
}

// scan is the k best of slots [from, to), best first. The caller holds mu.
// The list grows as neighbours are found: a large k costs memory only for
// the vectors above the floor.
func (v *vectors) scan(q []int32, qscale float32, from, to, k int, floor float32) []neighbour {
	best := make([]neighbour, 0, min(k, to-from, candidates)+1)
	d := v.dims
	for s := from; s < to; s++ {
		sim := float32(dotInt8(q, v.data[s*d:(s+1)*d])) * qscale * v.scales[s]
		if sim < floor || (len(best) == k && sim <= best[k-1].sim) {
			continue
		}
		i, _ := slices.BinarySearchFunc(best, sim, func(e neighbour, t float32) int {
			if e.sim > t {
				return -1
			}
			return 1
		})
		best = slices.Insert(best, i, neighbour{id: v.ids[s], sim: sim})
		if len(best) > k {
			best = best[:k]
		}
	}
	return best
}

// dotInt8 is the dot product of a (int8 components widened to int32)
// and b (len(b) ≥ len(a)).
func dotInt8(a []int32, b []int8) int32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 int32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * int32(b[i])
		s1 += a[i+1] * int32(b[i+1])
		s2 += a[i+2] * int32(b[i+2])
		s3 += a[i+3] * int32(b[i+3])
	}
	for ; i < len(a); i++ {
		s0 += a[i] * int32(b[i])
	}
	return s0 + s1 + s2 + s3
}

// normalise returns v scaled to length 1 (a zero vector stays zero).
func normalise(v []float32) []float32 {
	var sum float64
	for _, x := range v {
		sum += float64(x) * float64(x)
	}
	out := make([]float32, len(v))
	if sum == 0 {
		return out
	}
	inv := 1 / math.Sqrt(sum)
	for i, x := range v {
		out[i] = float32(float64(x) * inv)
	}
	return out
}

func encodeVector(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func decodeVector(b []byte) ([]float32, bool) {
	if len(b) == 0 || len(b)%4 != 0 {
		return nil, false
	}
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v, true
}

func (v *vectors) key(vkey textKey) string { return v.prefix + "." + vkey.String() }

type wanted struct {
	id   docKey
	vkey textKey
}

// next takes up to n entries that wait for a vector.
func (v *vectors) next(n int) []wanted {
	v.mu.RLock()
	defer v.mu.RUnlock()
	out := make([]wanted, 0, min(n, len(v.waiting)))
	for id, vkey := range v.waiting {
		if len(out) == n {
			break
		}
		out = append(out, wanted{id, vkey})
	}
	return out
}

// loop fills in missing vectors until stop closes: from the bucket when
// another index (or an earlier run) embedded the text, else from the
// embedding model, waiting longer after each failure.
func (v *vectors) loop(stop <-chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-stop; cancel() }()
	if v.kv != nil {
		v.preload(ctx)
	}
	backoff, failing := minBackoff, false
	for {
		batch := v.next(embedBatch)
		if len(batch) == 0 {
			select {
			case <-v.wake:
				continue
			case <-stop:
				return
			}
		}
		err := v.fill(ctx, batch)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			if failing {
				_, waiting := v.counts()
				v.ix.log.Info("embedding model answers again", "model", v.emb.Model(), "waiting", waiting)
			}
			backoff, failing = minBackoff, false
			continue
		}
		if !failing {
			_, waiting := v.counts()
			v.ix.log.Warn("entries are searchable by text; their vectors wait for the embedding model",
				"model", v.emb.Model(), "waiting", waiting, "error", err.Error())
		}
		failing = true
		select {
		case <-time.After(backoff):
		case <-stop:
			return
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// preload reads the model's vectors from the bucket in one pass, for the
// entries that wait for one (after a restart, all of them).
func (v *vectors) preload(ctx context.Context) {
	if _, waiting := v.counts(); waiting == 0 {
		return
	}
	byKey := map[textKey][]docKey{}
	v.mu.RLock()
	for id, vkey := range v.waiting {
		byKey[vkey] = append(byKey[vkey], id)
	}
	v.mu.RUnlock()
	w, err := v.kv.Watch(ctx, v.prefix+".*", jetstream.IgnoreDeletes())
	if err != nil {
		v.ix.log.Warn("reading vectors from the bucket", "error", err.Error())
		return
	}
	defer func() { _ = w.Stop() }()
	for e := range w.Updates() {
		if e == nil {
			return // every stored vector was read
		}
		vkey, ok := parseTextKey(e.Key()[len(v.prefix)+1:])
		if ids := byKey[vkey]; ok && len(ids) > 0 {
			if vec, ok := decodeVector(e.Value()); ok {
				for _, id := range ids {
					v.set(id, vkey, vec)
				}
			}
		}
	}
}

// fill finds or makes the vectors of batch.
func (v *vectors) fill(ctx context.Context, batch []wanted) error {
	var missing []wanted
	for _, w := range batch {
		if v.kv != nil {
			e, err := v.kv.Get(ctx, v.key(w.vkey))
			if err == nil {
				if vec, ok := decodeVector(e.Value()); ok {
					v.set(w.id, w.vkey, vec)
					continue
				}
			} else if !errors.Is(err, jetstream.ErrKeyNotFound) && ctx.Err() == nil {
				v.ix.log.Debug("reading a vector from the bucket", "error", err.Error())
			}
		}
		missing = append(missing, w)
	}
	if len(missing) == 0 {
		return nil
	}
	ids := make([]string, len(missing))
	for i, w := range missing {
		ids[i] = w.id.String()
	}
	docs, err := v.ix.docs(ids)
	if err != nil {
		return err
	}
	var texts []string
	var vkeys []textKey
	at := map[textKey]int{}
	for _, w := range missing {
		d := docs[w.id.String()]
		if d == nil || d.VKey != w.vkey.String() {
			v.forget(w) // gone or changed since: its own want follows
			continue
		}
		if _, ok := at[w.vkey]; !ok {
			at[w.vkey] = len(texts)
			texts = append(texts, d.embedText())
			vkeys = append(vkeys, w.vkey)
		}
	}
	if len(texts) == 0 {
		return nil
	}
	ectx, cancel := context.WithTimeout(ctx, embedTimeout)
	defer cancel()
	vecs, err := v.emb.Embed(ectx, texts)
	if err != nil {
		return err
	}
	if len(vecs) != len(texts) {
		return fmt.Errorf("embedding model %s returned %d vectors for %d texts", v.emb.Model(), len(vecs), len(texts))
	}
	for i := range vecs {
		vecs[i] = normalise(vecs[i])
		if v.kv != nil {
			if _, err := v.kv.Put(ctx, v.key(vkeys[i]), encodeVector(vecs[i])); err != nil && ctx.Err() == nil {
				v.ix.log.Warn("remembering a vector in the bucket failed; it is kept in memory", "error", err.Error())
			}
		}
	}
	for _, w := range missing {
		if i, ok := at[w.vkey]; ok {
			v.set(w.id, w.vkey, vecs[i])
		}
	}
	return nil
}

// forget stops waiting for w if it still waits for that text.
func (v *vectors) forget(w wanted) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if vkey, ok := v.waiting[w.id]; ok && vkey == w.vkey {
		delete(v.waiting, w.id)
	}
}

// vector is entry id's vector as stored (quantised), or nil when it has
// none yet.
func (v *vectors) vector(id docKey) []float32 {
	v.mu.RLock()
	defer v.mu.RUnlock()
	s, ok := v.slot[id]
	if !ok {
		return nil
	}
	out := make([]float32, v.dims)
	scale := v.scales[s]
	for i, c := range v.data[int(s)*v.dims : (int(s)+1)*v.dims] {
		out[i] = float32(c) * scale
	}
	return normalise(out)
}
