// Command mkico writes a Windows icon (.ico) holding a PNG image at 256,
// 48, 32 and 16 pixels, scaled down from a square PNG by averaging: the
// icon of the Windows bundle (make windows).
//
//	go run ./build/windows/mkico assets/icon.png out.ico
package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
)

var sizes = []int{256, 48, 32, 16}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: mkico IN.png OUT.ico")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "mkico:", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	src, err := png.Decode(f)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	if b := src.Bounds(); b.Dx() != b.Dy() || b.Dx() < sizes[0] {
		return fmt.Errorf("%s: %dx%d: want a square of at least %d pixels", in, b.Dx(), b.Dy(), sizes[0])
	}
	var images [][]byte
	for _, n := range sizes {
		var buf bytes.Buffer
		if err := png.Encode(&buf, scale(src, n)); err != nil {
			return err
		}
		images = append(images, buf.Bytes())
	}
	// ICONDIR, one ICONDIRENTRY per image, then the PNGs.
	var ico bytes.Buffer
	le := func(v any) { binary.Write(&ico, binary.LittleEndian, v) }
	le([3]uint16{0, 1, uint16(len(images))})
	offset := 6 + 16*len(images)
	for i, n := range sizes {
		wh := uint8(n % 256) // 0 means 256
		le([4]uint8{wh, wh, 0, 0})
		le([2]uint16{1, 32}) // planes, bits per pixel
		le([2]uint32{uint32(len(images[i])), uint32(offset)})
		offset += len(images[i])
	}
	for _, b := range images {
		ico.Write(b)
	}
	return os.WriteFile(out, ico.Bytes(), 0o644)
}

// scale averages src's pixels (alpha-premultiplied) into an n×n image.
func scale(src image.Image, n int) image.Image {
	b := src.Bounds()
	dst := image.NewNRGBA(image.Rect(0, 0, n, n))
	for y := range n {
		y0, y1 := b.Min.Y+y*b.Dy()/n, b.Min.Y+(y+1)*b.Dy()/n
		for x := range n {
			x0, x1 := b.Min.X+x*b.Dx()/n, b.Min.X+(x+1)*b.Dx()/n
			var r, g, bl, a, k uint64
			for sy := y0; sy < y1; sy++ {
				for sx := x0; sx < x1; sx++ {
					pr, pg, pb, pa := src.At(sx, sy).RGBA()
					r, g, bl, a, k = r+uint64(pr), g+uint64(pg), bl+uint64(pb), a+uint64(pa), k+1
				}
			}
			c := color.RGBA64{uint16(r / k), uint16(g / k), uint16(bl / k), uint16(a / k)}
			dst.Set(x, y, c)
		}
	}
	return dst
}
