package tensors

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseSize(t *testing.T) {
	// Values with decimal units were computed with Python 3.11:
	// int(float(s[:-2].strip()) * SIZE_UNITS[s[-2:].upper()]), which is
	// huggingface_hub's parse_size_to_int.
	tests := []struct {
		in   string
		want int64
	}{
		{"5GB", 5_000_000_000},
		{"10GB", 10_000_000_000},
		{"500MB", 500_000_000},
		{"10KB", 10_000},
		{"1TB", 1_000_000_000_000},
		{"1.5GB", 1_500_000_000},
		{"5gb", 5_000_000_000},
		{"5Gb", 5_000_000_000}, // transformers' old parser read "Gb" as gigabits; hub does not
		{" 5GB ", 5_000_000_000},
		{"\t5 GB\n", 5_000_000_000},
		{"8.11KB", 8109}, // float rounding, exactly as huggingface_hub
		{"0.3KB", 300},
		{"4.35GB", 4_350_000_000},
		{"1.1GB", 1_100_000_000},
		{"2.675GB", 2_675_000_000},
		{"0.001KB", 1},
		{".5GB", 500_000_000},
		{"5.GB", 5_000_000_000},
		{"0.1MB", 100_000},
		{"9000000TB", 9_000_000_000_000_000_000},
		{"2GiB", 2 << 30},
		{"512MiB", 512 << 20},
		{"10KiB", 10 << 10},
		{"1TiB", 1 << 40},
		{"0.5MiB", 1 << 19},
		{"1.5gib", 3 << 29},
		{"2 GiB", 2 << 30},
		{"123456", 123456},
		{"123456B", 123456},
		{"123456 b", 123456},
		{"1", 1},
		{"007", 7},
		{"9223372036854775807", math.MaxInt64},
		{"9223372036854775807B", math.MaxInt64},
		{"8388607TiB", 8388607 << 40},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSize(tt.in)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestParseSizeErrors(t *testing.T) {
	tests := []struct {
		in, msg string
	}{
		{"", "use bytes or a number with KB"},
		{"   ", "use bytes or a number with KB"},
		{"GB", "use bytes or a number"},
		{"5XB", `invalid size "5XB": use bytes or a number with KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024), e.g. 5GB or 512MiB`},
		{"5G", "use bytes"},
		{"5 G B", "use bytes"},
		{"5PB", "use bytes"},
		{"5GiBs", "use bytes"},
		{"-5GB", "use bytes"},
		{"+5GB", "use bytes"},
		{"-1", "use bytes"},
		{"1e3GB", "use bytes"}, // exponents are not accepted
		{"1e3", "use bytes"},
		{"1_000GB", "use bytes"},
		{"0x10MB", "use bytes"},
		{"1.2.3GB", "use bytes"},
		{".GB", "use bytes"},
		{"NaN", "use bytes"},
		{"nanGB", "use bytes"},
		{"inf", "use bytes"},
		{"InfinityGB", "use bytes"},
		{"5 GB 5", "use bytes"},
		{"1.5", "a byte count must be a whole number"},
		{"1.5B", "a byte count must be a whole number"},
		{"0", "must be greater than zero"},
		{"0B", "must be greater than zero"},
		{"0GB", "must be greater than zero"},
		{"0.0GiB", "must be greater than zero"},
		{"0.0001KB", "must be greater than zero"}, // truncates to 0 bytes
		{"9223372036854775808", "too large"},
		{"99999999999999999999999", "too large"},
		{"9300000TB", "too large"},
		{"9223372036854775KB", "too large"}, // Python gives 9223372036854775808 = 2^63
		{"8388608TiB", "too large"},         // exactly 2^63
		{strings.Repeat("9", 400) + "GB", "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ParseSize(tt.in)
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrInvalidSize)
			assert.Contains(t, err.Error(), tt.msg)
			assert.True(t, strings.HasPrefix(err.Error(), "invalid size "+strconv.Quote(tt.in)), err.Error())
		})
	}
}

func TestFormatSize(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{
		{0, "0 B"},
		{1, "1 B"},
		{999, "999 B"},
		{1000, "1.00 KB"},
		{1500, "1.50 KB"},
		{4_270_000_000, "4.27 GB"},
		{4_274_999_999, "4.27 GB"},
		{16_292_561_536, "16.3 GB"},
		{6_328_582_592, "6.33 GB"},
		{334_643_268, "335 MB"},
		{999_499, "999 KB"},
		{999_500, "1.00 MB"},
		{9_999_999, "10.0 MB"},
		{99_999_999, "100 MB"},
		{10_000_000_000, "10.0 GB"},
		{1 << 40, "1.10 TB"},
		{math.MaxInt64, "9.22 EB"},
		{-1500, "-1.50 KB"},
		{-1, "-1 B"},
		{math.MinInt64, "-9.22 EB"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, FormatSize(tt.in), "FormatSize(%d)", tt.in)
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{
		"5GB", "1.5GB", "500mb", "2GiB", "512MiB", "10KiB", "1TiB", "123456", "123456B", " 5 GB ",
		"", "5XB", "GB", "1e3GB", "-5GB", "0", "NaN", "inf", "9223372036854775807", "9223372036854775808",
		"9223372036854775KB", "8.11KB", ".5GB", "5.GB", "0.0001KB",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidSize) {
				t.Fatalf("ParseSize(%q): error %v does not wrap ErrInvalidSize", s, err)
			}
			return
		}
		if n <= 0 {
			t.Fatalf("ParseSize(%q) = %d, want > 0", s, n)
		}
		// A plain integer is read exactly.
		if p, perr := strconv.ParseInt(strings.TrimSpace(s), 10, 64); perr == nil && p != n {
			t.Fatalf("ParseSize(%q) = %d, want %d", s, n, p)
		}
		// The human form of a size below 1 PB (ParseSize has no PB, EB)
		// parses again, to a value within the rounding of three significant
		// digits.
		if n >= 1e15 {
			return
		}
		h := FormatSize(n)
		m, err := ParseSize(strings.ReplaceAll(h, " ", ""))
		if err != nil {
			t.Fatalf("ParseSize(FormatSize(%d) = %q): %v", n, h, err)
		}
		if d := math.Abs(float64(m)-float64(n)) / float64(n); d > 0.006 {
			t.Fatalf("FormatSize(%d) = %q reads back as %d", n, h, m)
		}
	})
}
