// Package jpegdec decodes JPEG images (ITU-T T.81 with JFIF and Adobe APP14
// colour conventions): baseline and extended sequential Huffman frames and
// progressive ones (spectral selection and successive approximation), with
// restart intervals, in any chroma subsampling that an [image.YCbCr] can
// hold, grey, RGB, CMYK and YCCK.
//
// It decodes at full size or straight at 1/2, 1/4 or 1/8 of it: a reduced
// scale keeps only the low-frequency n×n coefficients of each 8×8 block and
// computes an n-point inverse DCT from them (n = 4, 2, 1), so the full-size
// image is never made.
//
// At full size its output is the standard library's image/jpeg's (Go 1.26)
// in kind, bounds, subsampling, colour conversion and every coefficient
// decoded, checked by test to the sample on images whose blocks any
// inverse DCT computes exactly. The 8×8 inverse DCT itself is the
// separable integer Chen–Wang algorithm of the IEEE 1180-conformant MPEG
// reference decoder (the one image/jpeg used up to Go 1.25); Go 1.26's is
// another fixed-point one, whose roundings are not published outside its
// source, so about 1.5% of samples (those whose exact value lies near a
// half) come out 1 apart.
//
// The package owns the JPEG bitstream and the pixels decoded from it; how
// large an image may be is its caller's decision, made from the frame header
// before decoding.
package jpegdec

// A FormatError reports that the input is not a valid JPEG.
type FormatError string

func (e FormatError) Error() string { return "invalid JPEG format: " + string(e) }

// An UnsupportedError reports that the input is a JPEG of a kind this
// package does not decode (lossless, hierarchical, arithmetic-coded, 12-bit,
// an unusual sampling).
type UnsupportedError string

func (e UnsupportedError) Error() string { return "unsupported JPEG feature: " + string(e) }
