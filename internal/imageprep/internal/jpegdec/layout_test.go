package jpegdec

import (
	"bytes"
	"fmt"
	"image/jpeg"
	"math/rand/v2"
	"testing"
)

// layouts are frames of every sampling and colour kind image/jpeg decodes.
var layouts = []struct {
	name  string
	comps []testComp
	adobe int // transform + 1
}{
	{"gray", []testComp{{1, 1, 1}}, 0},
	{"gray 2x2", []testComp{{1, 2, 2}}, 0},
	{"444", []testComp{{1, 1, 1}, {2, 1, 1}, {3, 1, 1}}, 0},
	{"444 2x1", []testComp{{1, 2, 1}, {2, 2, 1}, {3, 2, 1}}, 0},
	{"422", []testComp{{1, 2, 1}, {2, 1, 1}, {3, 1, 1}}, 0},
	{"420", []testComp{{1, 2, 2}, {2, 1, 1}, {3, 1, 1}}, 0},
	{"440", []testComp{{1, 1, 2}, {2, 1, 1}, {3, 1, 1}}, 0},
	{"411", []testComp{{1, 4, 1}, {2, 1, 1}, {3, 1, 1}}, 0},
	{"410", []testComp{{1, 4, 2}, {2, 1, 1}, {3, 1, 1}}, 0},
	{"420 Adobe YCbCr", []testComp{{1, 2, 2}, {2, 1, 1}, {3, 1, 1}}, 2},
	{"RGB Adobe", []testComp{{1, 1, 1}, {2, 1, 1}, {3, 1, 1}}, 1},
	{"RGB ids", []testComp{{'R', 1, 1}, {'G', 1, 1}, {'B', 1, 1}}, 0},
	{"CMYK Adobe", []testComp{{1, 1, 1}, {2, 1, 1}, {3, 1, 1}, {4, 1, 1}}, 1},
	{"YCCK Adobe", []testComp{{1, 1, 1}, {2, 1, 1}, {3, 1, 1}, {4, 1, 1}}, 3},
	{"YCCK 420", []testComp{{1, 2, 2}, {2, 1, 1}, {3, 1, 1}, {4, 2, 2}}, 3},
}

// generated returns a JPEG of layout i, w×h, with restart interval
// restart, whose blocks hold random DC values and, if ac, random AC ones.
func generated(i, w, h, restart int, ac bool, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, uint64(i)))
	f := testFrame{w: w, h: h, comps: append([]testComp(nil), layouts[i].comps...), restart: restart, adobe: layouts[i].adobe}
	for k := range f.quant {
		f.quant[k] = uint8(2 + k/4)
	}
	f.quant[0] = 8
	f.coef = func(c, bx, by int) (b [64]int32) {
		b[0] = int32(r.IntN(200) - 100)
		if ac {
			for range r.IntN(12) {
				b[1+r.IntN(63)] = int32(r.IntN(61) - 30)
			}
		}
		return b
	}
	return f.encode()
}

// TestLayoutsSameAsStdlib decodes JPEGs of every sampling and colour kind,
// with and without restart intervals, made of blocks whose samples any
// inverse DCT computes exactly (their DC only, a multiple of 8): their
// pixels must be image/jpeg's exactly. With AC coefficients too, they must
// be within 1 of them.
func TestLayoutsSameAsStdlib(t *testing.T) {
	for i, l := range layouts {
		for _, size := range [][2]int{{37, 29}, {64, 48}, {8, 8}, {1, 1}, {67, 3}} {
			for _, restart := range []int{0, 1, 3} {
				name := fmt.Sprintf("%s %dx%d restart %d", l.name, size[0], size[1], restart)
				data := generated(i, size[0], size[1], restart, false, 1)
				want, werr := jpeg.Decode(bytes.NewReader(data))
				got, err := Decode(data)
				if err != nil || werr != nil {
					t.Fatalf("%s: err %v, image/jpeg err %v", name, err, werr)
				}
				if differ, _, err := compare(got, want, 0); err != nil || differ > 0 {
					t.Fatalf("%s: %d samples differ: %v", name, differ, err)
				}
				data = generated(i, size[0], size[1], restart, true, 2)
				if restart == 0 && size[0] == 37 {
					t.Logf("%s: %d bytes", name, len(data))
				}
				nearStdlib(t, name+" with AC", data, data)
			}
		}
	}
}
