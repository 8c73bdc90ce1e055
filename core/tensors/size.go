package tensors

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ErrInvalidSize is wrapped by every error of ParseSize, and by PlanShards
// when it is given a maximum shard size that is not positive.
var ErrInvalidSize = errors.New("invalid size")

// sizeHint lists the accepted forms; it ends every syntax error of ParseSize.
const sizeHint = "use bytes or a number with KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024), e.g. 5GB or 512MiB"

// sizeUnits maps an upper-cased unit suffix to its multiplier. The decimal
// units are those of huggingface_hub's SIZE_UNITS; the binary ones are an
// addition (huggingface_hub rejects "5GiB").
var sizeUnits = map[string]int64{
	"B":   1,
	"KB":  1e3,
	"MB":  1e6,
	"GB":  1e9,
	"TB":  1e12,
	"KIB": 1 << 10,
	"MIB": 1 << 20,
	"GIB": 1 << 30,
	"TIB": 1 << 40,
}

// ParseSize parses a size such as a max_shard_size and returns it in bytes.
//
// Accepted, case-insensitively and with surrounding white space (and white
// space between the number and the unit) allowed:
//   - plain bytes: "123456" or "123456B" (an integer; "1.5B" is rejected);
//   - decimal units like huggingface_hub's parse_size_to_int: KB, MB, GB, TB
//     (10^3 .. 10^12), e.g. "5GB", "1.5GB", "500mb";
//   - binary units: KiB, MiB, GiB, TiB (2^10 .. 2^40), e.g. "2GiB", "0.5MiB".
//
// A number with a unit is computed as huggingface_hub does,
// int(float(number) * multiplier): a float64 product truncated toward zero.
// So the result is bit-for-bit what diffusers would use, including its
// rounding surprises ("8.11KB" is 8109 bytes, because 8.11*1000 is
// 8109.999999999999 in binary floating point). Binary units are exact.
//
// The number is digits with an optional decimal point ("1.5", "1.", ".5").
// Signs, exponents ("1e3GB"), underscores, hexadecimal, NaN and Inf are
// rejected although Python's float() would take some of them. Zero (also a
// product that truncates to zero, like "0.0001KB"), and results above
// math.MaxInt64 are rejected. Every error wraps ErrInvalidSize.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	// Split into number and unit: the unit is the trailing run of letters.
	i := len(t)
	for i > 0 && isSizeLetter(t[i-1]) {
		i--
	}
	num, unit := strings.TrimSpace(t[:i]), strings.ToUpper(t[i:])
	if unit == "" {
		unit = "B"
	}
	mult, ok := sizeUnits[unit]
	if !ok || !isSizeNumber(num) {
		return 0, fmt.Errorf("%w %q: %s", ErrInvalidSize, s, sizeHint)
	}
	if mult == 1 {
		if strings.Contains(num, ".") {
			return 0, fmt.Errorf("%w %q: a byte count must be a whole number; %s", ErrInvalidSize, s, sizeHint)
		}
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%w %q: too large (at most %d bytes)", ErrInvalidSize, s, int64(math.MaxInt64))
		}
		if n == 0 {
			return 0, fmt.Errorf("%w %q: must be greater than zero", ErrInvalidSize, s)
		}
		return n, nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		// Unreachable: isSizeNumber accepted the syntax.
		return 0, fmt.Errorf("%w %q: %s", ErrInvalidSize, s, sizeHint)
	}
	p := math.Trunc(f * float64(mult))
	// float64(math.MaxInt64) rounds up to 2^63, which does not fit.
	if math.IsInf(p, 0) || p >= float64(math.MaxInt64) {
		return 0, fmt.Errorf("%w %q: too large (at most %d bytes)", ErrInvalidSize, s, int64(math.MaxInt64))
	}
	if p <= 0 {
		return 0, fmt.Errorf("%w %q: must be greater than zero", ErrInvalidSize, s)
	}
	return int64(p), nil
}

func isSizeLetter(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// isSizeNumber reports whether s is digits with at most one decimal point and
// at least one digit.
func isSizeNumber(s string) bool {
	digits, dots := 0, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.':
			dots++
		default:
			return false
		}
	}
	return digits > 0 && dots <= 1
}

// FormatSize formats a byte count for people, in decimal (SI) units with
// three significant digits: "512 B", "1.50 KB", "4.27 GB", "16.3 GB",
// "335 MB". It is meant for UI and CLI messages; ParseSize reads its output
// back only approximately.
func FormatSize(n int64) string {
	if n < 0 {
		if n == math.MinInt64 {
			return "-9.22 EB"
		}
		return "-" + FormatSize(-n)
	}
	if n < 1000 {
		return strconv.FormatInt(n, 10) + " B"
	}
	units := [...]string{"KB", "MB", "GB", "TB", "PB", "EB"}
	div := 1.0
	for u, unit := range units {
		div *= 1000
		v := float64(n) / div
		// Three significant digits; a value that rounds up to the next
		// power of ten takes one decimal less, 1000 moves to the next unit.
		for prec, limit := 2, 10.0; prec >= 0; prec, limit = prec-1, limit*10 {
			s := strconv.FormatFloat(v, 'f', prec, 64)
			if r, _ := strconv.ParseFloat(s, 64); r < limit || (prec == 0 && u == len(units)-1) {
				return s + " " + unit
			}
		}
	}
	panic("unreachable")
}
