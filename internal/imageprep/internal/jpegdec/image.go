package jpegdec

import (
	"image"
	"image/color"

	"github.com/regscribe/regscribe/internal/imageprep/internal/zigzag"
)

// kind is the image a frame decodes to.
type kind int

const (
	kindGray kind = iota
	kindYCbCr
	kindRGB
	kindCMYK
)

// layout returns the kind of image the frame decodes to, or why it cannot:
// a YCbCr image holds Y at full resolution and Cb and Cr alike at one of
// the ratios of [image.YCbCrSubsampleRatio]; an RGB one no subsampling.
func (d *decoder) layout() (kind, error) {
	switch len(d.comps) {
	case 1:
		return kindGray, nil
	case 4:
		if !d.adobe {
			// Inverted or not, CMYK or YCCK: only Adobe's marker says.
			return 0, UnsupportedError("4-component JPEG without Adobe APP14 marker")
		}
		return kindCMYK, nil
	}
	y, cb, cr := d.comps[0], d.comps[1], d.comps[2]
	same := y.h == cb.h && y.h == cr.h && y.v == cb.v && y.v == cr.v
	if d.isRGB() {
		if !same {
			return 0, UnsupportedError("subsampled RGB")
		}
		return kindRGB, nil
	}
	if _, ok := d.ratio(); !ok {
		return 0, UnsupportedError("luma/chroma subsampling ratio")
	}
	return kindYCbCr, nil
}

// isRGB reports whether a three-component frame is RGB rather than YCbCr:
// so says an Adobe marker with no transform, or component identifiers
// 'R', 'G' and 'B'.
func (d *decoder) isRGB() bool {
	if d.adobe {
		return d.adobeTransform == adobeNone
	}
	return d.comps[0].id == 'R' && d.comps[1].id == 'G' && d.comps[2].id == 'B'
}

// ratio returns the subsampling of a YCbCr frame.
func (d *decoder) ratio() (image.YCbCrSubsampleRatio, bool) {
	y, cb, cr := d.comps[0], d.comps[1], d.comps[2]
	if cb.h != cr.h || cb.v != cr.v || y.h != d.hmax || y.v != d.vmax {
		return 0, false
	}
	switch [2]int{y.h / cb.h, y.v / cb.v} {
	case [2]int{1, 1}:
		return image.YCbCrSubsampleRatio444, true
	case [2]int{2, 1}:
		return image.YCbCrSubsampleRatio422, true
	case [2]int{2, 2}:
		return image.YCbCrSubsampleRatio420, true
	case [2]int{1, 2}:
		return image.YCbCrSubsampleRatio440, true
	case [2]int{4, 1}:
		return image.YCbCrSubsampleRatio411, true
	case [2]int{4, 2}:
		return image.YCbCrSubsampleRatio410, true
	}
	return 0, false
}

// image finishes a progressive frame's blocks and returns the image.
func (d *decoder) image() (image.Image, error) {
	for i := range d.comps {
		c := &d.comps[i]
		if c.plane == nil && c.coef == nil {
			return nil, FormatError("component without a scan")
		}
		if d.progressive {
			d.finish(c)
		}
	}
	s := 1<<d.shift - 1
	rect := image.Rect(0, 0, (d.width+s)>>d.shift, (d.height+s)>>d.shift)
	k, err := d.layout()
	if err != nil {
		return nil, err
	}
	c := d.comps
	switch k {
	case kindGray:
		return &image.Gray{Pix: c[0].plane, Stride: c[0].bw * d.n, Rect: rect}, nil
	case kindYCbCr:
		ratio, _ := d.ratio()
		return &image.YCbCr{
			Y: c[0].plane, Cb: c[1].plane, Cr: c[2].plane,
			YStride: c[0].bw * d.n, CStride: c[1].bw * d.n,
			SubsampleRatio: ratio, Rect: rect,
		}, nil
	case kindRGB:
		m := image.NewRGBA(rect)
		stride := c[0].bw * d.n
		for y := range rect.Dy() {
			row := m.Pix[y*m.Stride:]
			for x := range rect.Dx() {
				i := y*stride + x
				row[4*x], row[4*x+1], row[4*x+2], row[4*x+3] = c[0].plane[i], c[1].plane[i], c[2].plane[i], 255
			}
		}
		return m, nil
	}
	return d.cmyk(rect), nil
}

// cmyk returns the CMYK image of a four-component frame. Adobe's
// applications write CMYK inverted (255 is no ink), and YCCK as the YCbCr
// of that inverted CMY, taken as RGB, and the inverted K (Adobe Technical
// Note 5116).
func (d *decoder) cmyk(rect image.Rectangle) *image.CMYK {
	m := image.NewCMYK(rect)
	ycck := d.adobe && d.adobeTransform == adobeYCCK
	var at [4]func(x, y int) byte
	for i := range d.comps {
		c := &d.comps[i]
		stride := c.bw * d.n
		hs, vs := d.hmax/c.h, d.vmax/c.v
		at[i] = func(x, y int) byte { return c.plane[y/vs*stride+x/hs] }
	}
	for y := range rect.Dy() {
		row := m.Pix[y*m.Stride:]
		for x := range rect.Dx() {
			p := row[4*x : 4*x+4]
			c0, c1, c2, k := at[0](x, y), at[1](x, y), at[2](x, y), at[3](x, y)
			if ycck {
				// YCbCr of the inverted C, M, Y: its RGB is C, M, Y.
				r, g, b := color.YCbCrToRGB(c0, c1, c2)
				p[0], p[1], p[2], p[3] = r, g, b, 255-k
				continue
			}
			p[0], p[1], p[2], p[3] = 255-c0, 255-c1, 255-c2, 255-k
		}
	}
	return m
}

// finish dequantizes and inverse-transforms every block of a progressive
// frame's component into its plane, and drops the coefficients.
func (d *decoder) finish(c *component) {
	n := d.n
	c.plane = make([]byte, c.bw*c.bh*n*n)
	var q [64]int32 // natural order
	for k, z := range zigzag.Order {
		q[z] = d.quant[c.tq][k]
	}
	var blk [64]int32
	m := n * n
	for b := range c.bw * c.bh {
		coef := c.coef[b*m : b*m+m]
		for v := range n {
			row, qrow, out := coef[v*n:v*n+n], q[v*8:v*8+n], blk[v*8:v*8+n]
			for u := range row {
				out[u] = row[u] * qrow[u]
			}
		}
		d.output(c, b%c.bw, b/c.bw, &blk)
	}
	c.coef, c.nonzero = nil, nil
}
