package imageprep

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"image/color/palette"
	"image/gif"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	xdraw "golang.org/x/image/draw"

	"github.com/regscribe/regscribe/internal/fault"
	"github.com/regscribe/regscribe/internal/imageprep/internal/wasmdec"
)

// validTIFF is an EXIF TIFF block, big-endian, with orientation o in IFD0.
func validTIFF(o uint16) []byte {
	t := []byte("MM\x00\x2a\x00\x00\x00\x08\x00\x01")
	t = append(t, 0x01, 0x12, 0x00, 0x03, 0, 0, 0, 1)
	t = binary.BigEndian.AppendUint16(t, o)
	return append(t, 0, 0, 0, 0, 0, 0)
}

func TestExifOrientation(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		in   []byte
		want int
	}{
		{"valid", validTIFF(6), 6},
		{"empty", nil, 1},
		{"bad byte order", append([]byte("XX"), validTIFF(6)[2:]...), 1},
		{"bad magic", append([]byte("MM\x00\x2b"), validTIFF(6)[4:]...), 1},
		{"ifd offset past the end", []byte("II\x2a\x00\xff\xff\xff\xff\x00\x00"), 1},
		{"huge entry count", []byte("II\x2a\x00\x08\x00\x00\x00\xff\xff\x12\x01"), 1},
		{"value 0", validTIFF(0), 1},
		{"value 9", validTIFF(9), 1},
		{"wrong type", append(validTIFF(6)[:12], append([]byte{0, 7}, validTIFF(6)[14:]...)...), 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, exifOrientation(tc.in))
		})
	}
	// Every truncation of a valid block is safe.
	full := validTIFF(8)
	for i := range full {
		o := exifOrientation(full[:i])
		require.True(t, o >= 1 && o <= 8)
	}
}

// TestParsersOnPrefixes cuts files at every length: the header parsers must
// neither panic nor loop, whatever they find.
func TestParsersOnPrefixes(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	require.NoError(t, jpeg.Encode(&buf, image.NewGray(image.Rect(0, 0, 8, 8)), nil))
	j := buf.Bytes()
	app1 := append([]byte{0xff, 0xe1, 0, byte(2 + 6 + len(validTIFF(3)))}, "Exif\x00\x00"...)
	app1 = append(app1, validTIFF(3)...)
	j = append(append(append([]byte{}, j[:2]...), app1...), j[2:]...)
	require.Equal(t, 3, jpegOrientation(j))
	require.True(t, jpegComplete(j))
	require.Equal(t, 1, jpegScans(j, 10))
	for i := range j {
		p := j[:i]
		_ = jpegOrientation(p)
		_ = jpegScans(p, 10)
		require.False(t, jpegComplete(p), "prefix of %d bytes", i)
	}
	var g bytes.Buffer
	require.NoError(t, gif.Encode(&g, image.NewPaletted(image.Rect(0, 0, 8, 8), palette.WebSafe), nil))
	require.Empty(t, gifCheck(g.Bytes()))
	for i := range g.Len() {
		require.NotEmpty(t, gifCheck(g.Bytes()[:i]), "prefix of %d bytes", i)
	}
	for _, f := range []func([]byte) int{pngOrientation, webpOrientation, exifOrientation} {
		for i := range 64 {
			_ = f(bytes.Repeat([]byte{0xff}, i))
			_ = f(make([]byte, i))
		}
	}
}

func TestMakeWeights(t *testing.T) {
	t.Parallel()
	for _, c := range [][2]int{{2000, 1536}, {1536, 1536}, {3, 1}, {1, 5}, {7, 3}, {10, 100}, {4000, 1}, {5, 4}} {
		ws := makeWeights(c[0], c[1])
		require.LessOrEqual(t, ws.n, c[0])
		for i := range c[1] {
			require.GreaterOrEqual(t, ws.start[i], 0)
			require.LessOrEqual(t, ws.start[i]+ws.n, c[0])
			var sum int32
			for _, w := range ws.w[i*ws.n : i*ws.n+ws.n] {
				sum += w
			}
			require.Equal(t, int32(1<<fixBits), sum, "src %d dst %d out %d", c[0], c[1], i)
		}
	}
}

// TestWeightsTrimmed checks that makeWeights gives every pixel the same
// weight for every source pixel as the whole window of taps does.
func TestWeightsTrimmed(t *testing.T) {
	t.Parallel()
	for _, c := range [][2]int{{2000, 1536}, {3000, 1536}, {1600, 1536}, {7, 3}, {3, 1}, {10, 100}, {5, 4}} {
		trim, whole := makeWeights(c[0], c[1]), windowWeights(c[0], c[1])
		at := func(ws weights, i, j int) int32 {
			if t := j - ws.start[i]; t >= 0 && t < ws.n {
				return ws.w[i*ws.n+t]
			}
			return 0
		}
		for i := range c[1] {
			for j := range c[0] {
				if a, b := at(whole, i, j), at(trim, i, j); a != b {
					t.Fatalf("src %d dst %d: out %d weighs %d by %d, its whole window by %d", c[0], c[1], i, j, b, a)
				}
			}
		}
	}
}

// TestPlaneResamplers checks the plane resamplers, which add two samples'
// products at once, against the weights applied one sample at a time, on
// noise (the full range of samples, where the kernel's lobes overshoot),
// with sizes that leave rows out of the last group of four and columns
// past the last whole step.
func TestPlaneResamplers(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(5, 6))
	for _, c := range [][4]int{{203, 157, 131, 101}, {37, 29, 36, 28}, {64, 3, 13, 1}, {1, 9, 1, 4}, {50, 6, 17, 5}} {
		p := plane{make([]byte, (c[1]-1)*(c[0]+3)+c[0]), c[0] + 3, c[0], c[1]}
		for i := range p.pix {
			p.pix[i] = uint8(r.IntN(2) * 255)
			if r.IntN(3) == 0 {
				p.pix[i] = uint8(r.IntN(256))
			}
		}
		h := resamplePlaneH(p, c[2])
		ws := makeWeights(c[0], c[2])
		for y := range c[1] {
			for x := range c[2] {
				var acc int32
				for t := range ws.n {
					acc += ws.w[x*ws.n+t] * int32(p.pix[y*p.stride+ws.start[x]+t])
				}
				require.Equal(t, clampFix(acc), h.pix[y*h.stride+x], "%v: row %d sample %d", c, y, x)
			}
		}
		v := resamplePlaneV(p, c[3])
		ws = makeWeights(c[1], c[3])
		for y := range c[3] {
			for x := range c[0] {
				var acc int32
				for t := range ws.n {
					acc += ws.w[y*ws.n+t] * int32(p.pix[(ws.start[y]+t)*p.stride+x])
				}
				require.Equal(t, clampFix(acc), v.pix[y*v.stride+x], "%v: row %d sample %d", c, y, x)
			}
		}
	}
}

// smooth is a w×h image of low-frequency waves, where any good filter
// agrees with any other.
func smooth(w, h int) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			fx, fy := float64(x)/float64(w), float64(y)/float64(h)
			v := func(a, b float64) uint8 { return uint8(127.5 + 127*math.Sin(a*fx*2*math.Pi+b*fy*2*math.Pi)) }
			i := m.PixOffset(x, y)
			m.Pix[i], m.Pix[i+1], m.Pix[i+2], m.Pix[i+3] = v(3, 1), v(1, 4), v(5, 5), 0xff
		}
	}
	return m
}

// TestDownscaleMatchesReference compares the box+Catmull-Rom pipeline with
// x/image/draw's Catmull-Rom over the full image.
func TestDownscaleMatchesReference(t *testing.T) {
	t.Parallel()
	src := smooth(2600, 1700)
	var buf bytes.Buffer
	require.NoError(t, jpeg.Encode(&buf, src, &jpeg.Options{Quality: 95}))
	decoded, err := jpeg.Decode(&buf)
	require.NoError(t, err)
	for _, in := range []image.Image{src, decoded} {
		dw, dh := fit(2600, 1700, 1000)
		require.Equal(t, 1000, dw)
		require.Equal(t, 654, dh)
		got := resample(shrink(in, 2600, 1700, boxFactor(2600, 1700, dw, dh)), dw, dh)
		want := image.NewRGBA(image.Rect(0, 0, dw, dh))
		xdraw.CatmullRom.Scale(want, want.Rect, in, in.Bounds(), xdraw.Src, nil)
		var sum, worst int
		for i := range got.Pix {
			d := max(int(got.Pix[i])-int(want.Pix[i]), int(want.Pix[i])-int(got.Pix[i]))
			sum += d
			worst = max(worst, d)
		}
		mean := float64(sum) / float64(len(got.Pix))
		t.Logf("%T: mean abs diff %.3f, max %d", in, mean, worst)
		require.Less(t, mean, 1.0)
		require.LessOrEqual(t, worst, 8)
	}
}

func TestOrientImageInverses(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	src := image.NewRGBA(image.Rect(0, 0, 7, 4))
	for i := range src.Pix {
		src.Pix[i] = uint8(r.IntN(256))
	}
	// Each pair undoes itself.
	for _, p := range [][2]int{{2, 2}, {3, 3}, {4, 4}, {5, 5}, {7, 7}, {6, 8}, {8, 6}} {
		got := orientImage(orientImage(src, p[0]), p[1])
		require.Equal(t, src.Rect, got.Rect, "%v", p)
		require.Equal(t, src.Pix, got.Pix, "%v", p)
	}
	// Rotating 90° clockwise: the source's top-left pixel lands top-right.
	o6 := orientImage(src, 6)
	require.Equal(t, image.Rect(0, 0, 4, 7), o6.Rect)
	require.Equal(t, src.RGBAAt(0, 0), o6.RGBAAt(3, 0))
	require.Equal(t, src.RGBAAt(6, 0), o6.RGBAAt(3, 6))
	require.Same(t, src, orientImage(src, 1))
}

func TestFit(t *testing.T) {
	t.Parallel()
	cases := []struct{ w, h, max, ww, wh int }{
		{6000, 4000, 1536, 1536, 1024},
		{4000, 6000, 1536, 1024, 1536},
		{1536, 1536, 1536, 1536, 1536},
		{100, 50, 1536, 100, 50},
		{100000, 1, 1536, 1536, 1},
		{3000, 2001, 1000, 1000, 667},
	}
	for _, c := range cases {
		w, h := fit(c.w, c.h, c.max)
		require.Equal(t, [2]int{c.ww, c.wh}, [2]int{w, h}, "%dx%d to %d", c.w, c.h, c.max)
	}
}

func TestFlatten(t *testing.T) {
	t.Parallel()
	m := image.NewRGBA(image.Rect(0, 0, 3, 1))
	m.SetRGBA(0, 0, color.RGBA{0x80, 0, 0, 0x80}) // half-transparent red
	m.SetRGBA(1, 0, color.RGBA{})                 // transparent
	m.SetRGBA(2, 0, color.RGBA{1, 2, 3, 0xff})    // opaque
	flatten(m)
	require.Equal(t, color.RGBA{0xff, 0x7f, 0x7f, 0xff}, m.RGBAAt(0, 0))
	require.Equal(t, color.RGBA{0xff, 0xff, 0xff, 0xff}, m.RGBAAt(1, 0))
	require.Equal(t, color.RGBA{1, 2, 3, 0xff}, m.RGBAAt(2, 0))
}

// TestRenderExtremes covers huge box factors and one-pixel sides.
func TestRenderExtremes(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	require.NoError(t, jpeg.Encode(&buf, smooth(900, 7), nil))
	ycc, err := jpeg.Decode(&buf)
	require.NoError(t, err)
	cases := []struct {
		img          image.Image
		maxSide, o   int
		wantW, wantH int
	}{
		{ycc, 1, 1, 1, 1},
		{ycc, 3, 6, 1, 3},
		{ycc, 100, 8, 1, 100},
		{smooth(5, 1000), 2, 1, 1, 2},
		{image.NewGray(image.Rect(0, 0, 3, 3)), 2, 5, 2, 2},
		{image.NewNRGBA64(image.Rect(0, 0, 2, 9)), 4, 7, 4, 1},
	}
	for _, c := range cases {
		b := c.img.Bounds()
		out := render(c.img, b.Dx(), b.Dy(), c.maxSide, c.o)
		require.Equal(t, image.Rect(0, 0, c.wantW, c.wantH), out.Bounds(), "%T %v to %d", c.img, b, c.maxSide)
	}
}

// TestDecoderPanic replaces the HEIC decoder by one that panics, as a bug in
// a WebAssembly host binding might: Prepare returns a permanent ErrCorrupt
// saying so, and does not panic. Not parallel: it swaps a package variable
// (parallel tests run after it).
func TestDecoderPanic(t *testing.T) {
	saved := formatHEIC.decodeFn
	defer func() { formatHEIC.decodeFn = saved }()
	formatHEIC.decodeFn = func(context.Context, []byte, int64) (image.Image, error) { panic("wasm host binding bug") }
	data, err := os.ReadFile("testdata/quadrants.heic")
	require.NoError(t, err)
	_, err = Prepare(data, Limits{})
	require.ErrorIs(t, err, ErrCorrupt)
	require.True(t, fault.Is(err, fault.KindPermanent), "must be permanent: %v", err)
	require.Contains(t, err.Error(), "decoder panicked: wasm host binding bug")
}

// TestClassifyWasmErrors maps what the WebAssembly decoders refuse to the
// sentinels: outgrowing the memory, the time budget or the header's pixels
// is ErrTooLarge; a file the decoder cannot read is ErrCorrupt.
func TestClassifyWasmErrors(t *testing.T) {
	t.Parallel()
	for err, want := range map[error]error{
		&wasmdec.LimitError{Wanted: 2 << 20, Limit: 1 << 20}: ErrTooLarge,
		&wasmdec.BudgetError{Budget: time.Second, Pixels: 1}: ErrTooLarge,
		fmt.Errorf("decode: %w", wasmdec.ErrPixels):          ErrTooLarge,
		wasmdec.ErrDecode: ErrCorrupt,
	} {
		require.Equal(t, want, classify(err), "%v", err)
	}
}

// TestPrepareContextCancelled prepares a 12 MP HEIC under a cancelled
// context: the error wraps the context's, and is not permanent (the photo
// was not at fault: its job is tried again).
func TestPrepareContextCancelled(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("testdata/photo12.heic")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = PrepareContext(ctx, data, Limits{})
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, fault.Is(err, fault.KindPermanent), "must not be permanent: %v", err)
}
