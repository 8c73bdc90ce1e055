package pipeline

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Descriptions of a pipeline's numbers for people, the same in the CLI, the
// window and the model card.

// FormatParameters is a parameter count for people: "859.5M", "1.23B",
// "12.3K", "640".
func FormatParameters(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2fB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fK", float64(n)/1e3)
	}
	return strconv.FormatInt(n, 10)
}

// DTypesBySize lists the dtypes of m (dtype → bytes), largest first, then
// by name.
func DTypesBySize(m map[string]int64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	return keys
}

// DTypeMix is "F32 98%, I64 <1%" for m (dtype → bytes), largest share
// first; "no tensors" when m is empty.
func DTypeMix(m map[string]int64) string {
	var total int64
	for _, v := range m {
		total += v
	}
	var parts []string
	for _, k := range DTypesBySize(m) {
		pct := 100.0
		if total > 0 {
			pct = 100 * float64(m[k]) / float64(total)
		}
		if pct > 0 && pct < 1 {
			parts = append(parts, k+" <1%")
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %.0f%%", k, pct))
	}
	if len(parts) == 0 {
		return "no tensors"
	}
	return strings.Join(parts, ", ")
}
