// Package zigzag is the order in which JPEG codes the 64 coefficients of
// a block (ITU-T T.81 figure A.6), shared by the decoder and the encoder.
package zigzag

// Order maps the position of a coefficient in the coded order to its
// index in the 8×8 block, row by row.
var Order = func() (z [64]uint8) {
	x, y := 0, 0
	for k := range z {
		z[k] = uint8(8*y + x)
		if (x+y)%2 == 0 { // going up and right
			switch {
			case x == 7:
				y++
			case y == 0:
				x++
			default:
				x, y = x+1, y-1
			}
		} else { // going down and left
			switch {
			case y == 7:
				x++
			case x == 0:
				y++
			default:
				x, y = x-1, y+1
			}
		}
	}
	return z
}()
