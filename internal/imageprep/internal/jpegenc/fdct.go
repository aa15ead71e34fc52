package jpegenc

import (
	"math"

	"github.com/regscribe/regscribe/internal/imageprep/internal/zigzag"
)

// The forward DCT is the scaled one of Y. Arai, T. Agui and M. Nakajima ("A
// fast DCT-SQ scheme for images", Trans. IEICE E71, 1988), in float32: an
// 8-point pass over the rows, then over the columns, with 5 multiplications
// each. Its output (u, v) is the DCT of T.81 A.3.3 times 8·a(u)·a(v), a(0)
// = 1 and a(k) = √2·cos(kπ/16); the quantization divides that away.
const (
	aanC4  = 0.70710678118654752 // cos(4π/16)
	aanC6  = 0.38268343236508977 // cos(6π/16)
	aanC26 = 0.54119610014619698 // cos(2π/16) - cos(6π/16)
	aanC62 = 1.30656296487637653 // cos(2π/16) + cos(6π/16)
)

// fdct8 is the one-dimensional pass over the 8 samples of s at 0, d, …, 7d:
// sums and differences of mirrored samples, then the even outputs from the
// sums (a 4-point transform with one rotation by π/4) and the odd ones from
// the differences (the paper's rotation by 3π/8 done with three
// multiplications, and one by π/4).
func fdct8(s []float32, d int) {
	_ = s[7*d]
	sum07, dif07 := s[0]+s[7*d], s[0]-s[7*d]
	sum16, dif16 := s[d]+s[6*d], s[d]-s[6*d]
	sum25, dif25 := s[2*d]+s[5*d], s[2*d]-s[5*d]
	sum34, dif34 := s[3*d]+s[4*d], s[3*d]-s[4*d]

	outer, inner := sum07+sum34, sum16+sum25
	outerD, innerD := sum07-sum34, sum16-sum25
	s[0], s[4*d] = outer+inner, outer-inner
	rot := (innerD + outerD) * aanC4
	s[2*d], s[6*d] = outerD+rot, outerD-rot

	lo, mid, hi := dif34+dif25, dif25+dif16, dif16+dif07
	shared := (lo - hi) * aanC6
	rotLo := aanC26*lo + shared
	rotHi := aanC62*hi + shared
	rotMid := mid * aanC4
	upper, lower := dif07+rotMid, dif07-rotMid
	s[5*d], s[3*d] = lower+rotLo, lower-rotLo
	s[d], s[7*d] = upper+rotHi, upper-rotHi
}

// scaler transforms and quantizes blocks with one quantization table.
type scaler struct {
	// recip is, by zig-zag position, 1 / (8·a(u)·a(v)·q): what turns the
	// scaled DCT into quantized coefficients.
	recip [64]float32
}

// init sets s up for the zig-zag ordered table q.
func (s *scaler) init(q *[64]uint8) {
	a := func(k uint8) float64 {
		if k == 0 {
			return 1
		}
		return math.Sqrt2 * math.Cos(float64(k)*math.Pi/16)
	}
	for k, z := range zigzag.Order {
		s.recip[k] = float32(1 / (8 * a(z%8) * a(z/8) * float64(q[k])))
	}
}

// transform turns the samples b (overwritten) into c, the
// quantized coefficients in zig-zag order, and returns a mask with a bit
// for each non-zero AC coefficient by zig-zag position.
func (s *scaler) transform(b *[64]float32, c *[64]int32) uint64 {
	for y := 0; y < 64; y += 8 {
		fdct8(b[y:y+8], 1)
	}
	for x := range 8 {
		fdct8(b[x:], 8)
	}
	// The level shift (T.81 A.3.1) of the 64 samples by 128 is the DC's
	// by 64·128: the scaled DC is their sum.
	b[0] -= 64 * 128
	var nz uint64
	for k, z := range zigzag.Order {
		v := b[z] * s.recip[k]
		// Rounded to the nearest (halves up) and kept within
		// the 11-bit sizes of T.81 tables F.1 and F.2.
		q := int32(min(max(v, -1023), 1023)+1024.5) - 1024
		c[k] = q
		nz |= uint64(uint32(q|-q)>>31) << k
	}
	return nz &^ 1
}
