package jpegscale

import (
	"math"
	"math/rand/v2"
	"testing"
)

// reference: the generic matrix form.
func idctRef(b *block, n int) {
	k := scaledKernel[n]
	var tmp [16]float64
	for v := range n {
		for x := range n {
			var s float64
			for u := range n {
				s += float64(b[v*8+u]) * k[x*n+u]
			}
			tmp[v*n+x] = s
		}
	}
	for y := range n {
		for x := range n {
			var s float64
			for v := range n {
				s += tmp[v*n+x] * k[y*n+v]
			}
			b[y*8+x] = int32(math.Round(s))
		}
	}
}

func TestIdctScaledMatchesMatrix(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		for _, n := range []int{2, 4} {
			var a, b block
			for j := range a {
				if r.IntN(3) == 0 || j == 0 {
					a[j] = int32(r.IntN(4096) - 2048)
				}
			}
			if i%5 == 0 {
				for j := 1; j < 64; j++ {
					a[j] = 0
				}
			}
			b = a
			idctScaled(&a, n)
			idctRef(&b, n)
			for y := range n {
				for x := range n {
					if d := a[y*8+x] - b[y*8+x]; d > 1 || d < -1 {
						t.Fatalf("n %d: (%d,%d) %d, want %d", n, x, y, a[y*8+x], b[y*8+x])
					}
				}
			}
		}
	}
}
