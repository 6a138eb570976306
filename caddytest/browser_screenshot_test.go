//go:build linux

package caddytest

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"
)

// screenshotDir is where screenshots go: $TEST_OUTPUT_DIR, or testoutput/
// at the repository root (ignored by git).
func screenshotDir(t *testing.T) string {
	dir := os.Getenv("TEST_OUTPUT_DIR")
	if dir == "" {
		dir = filepath.Join("..", "testoutput")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// saveScreenshot writes the page as a PNG and checks it is not blank.
func saveScreenshot(t *testing.T, p *page, name string) {
	t.Helper()
	buf, err := chromedp.Run(p.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(buf))
	if err != nil {
		t.Fatal(err)
	}
	if err := notBlank(img); err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(screenshotDir(t), name)
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// notBlank demands real variety in the picture: many distinct colours and
// a spread of brightness, as six video tiles with fake camera frames give.
func notBlank(img image.Image) error {
	b := img.Bounds()
	colours := map[uint32]bool{}
	var sum, sumSq, n float64
	for y := b.Min.Y; y < b.Max.Y; y += 4 {
		for x := b.Min.X; x < b.Max.X; x += 4 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colours[(r>>11)<<10|(g>>11)<<5|bl>>11] = true
			l := 0.299*float64(r>>8) + 0.587*float64(g>>8) + 0.114*float64(bl>>8)
			sum += l
			sumSq += l * l
			n++
		}
	}
	mean := sum / n
	variance := sumSq/n - mean*mean
	if len(colours) < 64 || variance < 100 {
		return fmt.Errorf("looks blank: %d colours, brightness variance %.0f", len(colours), variance)
	}
	return nil
}

// TestNotBlank: the screenshot check refuses flat and two-tone pictures
// and accepts a varied one, without a browser.
func TestNotBlank(t *testing.T) {
	const w, h = 320, 200
	paint := func(f func(x, y int) color.Color) image.Image {
		img := image.NewRGBA(image.Rect(0, 0, w, h))
		for y := range h {
			for x := range w {
				img.Set(x, y, f(x, y))
			}
		}
		return img
	}
	tests := []struct {
		name  string
		img   image.Image
		blank bool
	}{
		{"black", paint(func(x, y int) color.Color { return color.Black }), true},
		{"page background only", paint(func(x, y int) color.Color { return color.RGBA{0x11, 0x14, 0x18, 0xff} }), true},
		{"two tones", paint(func(x, y int) color.Color {
			if x < w/2 {
				return color.Black
			}
			return color.White
		}), true},
		{"varied", paint(func(x, y int) color.Color {
			return color.RGBA{uint8(x * 255 / w), uint8(y * 255 / h), uint8((x * y) % 256), 0xff}
		}), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := notBlank(tc.img); (err != nil) != tc.blank {
				t.Fatalf("notBlank = %v, want blank %v", err, tc.blank)
			}
		})
	}
}
