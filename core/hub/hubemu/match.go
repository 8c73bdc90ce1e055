package hubemu

import (
	"regexp"
	"strings"
	"unicode/utf8"
)

// gitPattern is one pattern of a .gitattributes or .gitignore file.
type gitPattern struct {
	re       *regexp.Regexp
	basename bool // no slash in the pattern: it matches the last segment at any depth
	dirOnly  bool // trailing slash (gitignore): matches directories only
}

// compileGitPattern turns a gitignore-style glob into a matcher: '*' and
// '?' stay inside a segment, "**" crosses segments, [...] is a class.
func compileGitPattern(pat string) (gitPattern, bool) {
	var gp gitPattern
	if strings.HasSuffix(pat, "/") {
		gp.dirOnly = true
		pat = strings.TrimRight(pat, "/")
	}
	gp.basename = !strings.Contains(pat, "/")
	pat = strings.TrimPrefix(pat, "/")
	if pat == "" {
		return gp, false
	}
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(pat); {
		switch {
		case strings.HasPrefix(pat[i:], "**/") && (i == 0 || pat[i-1] == '/'):
			b.WriteString("(?:.*/)?")
			i += 3
		case strings.HasPrefix(pat[i:], "**") && i+2 == len(pat) && (i == 0 || pat[i-1] == '/'):
			b.WriteString(".*")
			i += 2
		case pat[i] == '*':
			b.WriteString("[^/]*")
			i++
		case pat[i] == '?':
			b.WriteString("[^/]")
			i++
		case pat[i] == '[':
			j := strings.IndexByte(pat[i+1:], ']')
			if j < 0 {
				b.WriteString(`\[`)
				i++
				continue
			}
			class := pat[i+1 : i+1+j]
			if strings.HasPrefix(class, "!") {
				class = "^" + class[1:]
			}
			b.WriteString("[" + strings.ReplaceAll(class, `\`, `\\`) + "]")
			i += j + 2
		case pat[i] == '\\' && i+1 < len(pat):
			b.WriteString(regexp.QuoteMeta(pat[i+1 : i+2]))
			i += 2
		default:
			b.WriteString(regexp.QuoteMeta(pat[i : i+1]))
			i++
		}
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	if err != nil {
		return gp, false
	}
	gp.re = re
	return gp, true
}

func (gp gitPattern) match(p string, isDir bool) bool {
	if gp.dirOnly && !isDir {
		return false
	}
	if gp.basename {
		_, p = splitParent(p)
	}
	return gp.re.MatchString(p)
}

// lfsRule is one line of .gitattributes that sets or unsets filter.
type lfsRule struct {
	pat gitPattern
	lfs bool
}

// parseGitattributes keeps the lines that decide filter=lfs.
func parseGitattributes(content string) []lfsRule {
	var rules []lfsRule
	for _, line := range strings.Split(content, "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 || strings.HasPrefix(fields[0], "#") || strings.HasPrefix(fields[0], "[attr]") {
			continue
		}
		set, decided := false, false
		for _, a := range fields[1:] {
			switch {
			case a == "filter=lfs":
				set, decided = true, true
			case a == "-filter" || a == "!filter" || strings.HasPrefix(a, "filter="):
				set, decided = false, true
			}
		}
		if !decided {
			continue
		}
		if gp, ok := compileGitPattern(fields[0]); ok {
			rules = append(rules, lfsRule{gp, set})
		}
	}
	return rules
}

// lfsTracked reports whether the last rule matching p sets filter=lfs.
func lfsTracked(rules []lfsRule, p string) bool {
	tracked := false
	for _, r := range rules {
		if r.pat.match(p, false) {
			tracked = r.lfs
		}
	}
	return tracked
}

// ignoreRule is one line of .gitignore.
type ignoreRule struct {
	pat    gitPattern
	negate bool
}

func parseGitignore(content string) []ignoreRule {
	var rules []ignoreRule
	for _, line := range strings.Split(content, "\n") {
		line = strings.TrimRight(line, " \r")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		neg := strings.HasPrefix(line, "!")
		line = strings.TrimPrefix(line, "!")
		if gp, ok := compileGitPattern(line); ok {
			rules = append(rules, ignoreRule{gp, neg})
		}
	}
	return rules
}

// ignored reports whether p (a file) is ignored: it, or one of its
// directories, is matched last by a non-negated rule.
func ignored(rules []ignoreRule, p string) bool {
	if len(rules) == 0 {
		return false
	}
	decide := func(q string, isDir bool) bool {
		ign := false
		for _, r := range rules {
			if r.pat.match(q, isDir) {
				ign = !r.negate
			}
		}
		return ign
	}
	segs := strings.Split(p, "/")
	for i := 1; i < len(segs); i++ {
		if decide(strings.Join(segs[:i], "/"), true) {
			return true
		}
	}
	return decide(p, false)
}

// looksBinary reports whether a sample of a file's head has a NUL byte or
// is not UTF-8 (a rune cut at the end of the sample is allowed).
func looksBinary(sample []byte, truncated bool) bool {
	if strings.IndexByte(string(sample), 0) >= 0 {
		return true
	}
	if truncated {
		for i := 0; i < utf8.UTFMax-1 && len(sample) > 0 && !utf8.Valid(sample); i++ {
			sample = sample[:len(sample)-1]
		}
	}
	return !utf8.Valid(sample)
}
