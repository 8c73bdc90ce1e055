package publish_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/pipeline/pipelinetest"
	"modelpub/core/publish"
)

// A publish of a synthetic SD-1.5 with an fp16 variant, traced by strace:
// every byte of a staged file is read at most twice (the check that hashes
// it, the upload), and every source file is opened at most twice (Open for
// its header, the save and the check through one held handle). The
// publish runs in a child process (this test binary) under strace; the
// trace is read back here, following each descriptor's path and position.
func TestOnePassReads(t *testing.T) {
	if os.Getenv("MODELPUB_ONEPASS_CHILD") != "" {
		onePassChild(t)
		return
	}
	strace, err := exec.LookPath("strace")
	if err != nil {
		t.Skip("strace is not installed (make test installs it): the read counts need a syscall trace")
	}
	src := sd15(t, pipelinetest.Options{Seed: 41, Scale: 0.01})
	cache := t.TempDir()
	trace := filepath.Join(t.TempDir(), "trace")
	cmd := exec.Command(strace, "-f", "-qq", "-o", trace,
		"-e", "trace=openat,open,close,read,pread64,readv,preadv,preadv2,lseek,sendfile,copy_file_range,splice,dup,dup2,dup3",
		os.Args[0], "-test.run=^TestOnePassReads$", "-test.count=1")
	cmd.Env = append(os.Environ(), "MODELPUB_ONEPASS_CHILD=1", "MODELPUB_ONEPASS_SRC="+src, "MODELPUB_ONEPASS_CACHE="+cache)
	out, err := cmd.CombinedOutput()
	if err != nil && strings.Contains(string(out), "PTRACE_TRACEME") || strings.Contains(string(out), "Operation not permitted") {
		t.Skipf("strace cannot trace here: %s", out)
	}
	require.NoError(t, err, "%s", out)

	staging := filepath.Join(cache, "staging") + string(filepath.Separator)
	reads, opens := readTrace(t, trace, func(p string) bool {
		return strings.HasPrefix(p, staging) && !strings.HasSuffix(p, ".json.tmp") || strings.HasPrefix(p, src+string(filepath.Separator))
	})

	// Every staged file: no byte read more than twice.
	var stagedFiles, weights int
	for path, counts := range reads {
		if !strings.HasPrefix(path, staging) {
			continue
		}
		stagedFiles++
		if strings.HasSuffix(path, ".safetensors") {
			weights++
		}
		most, least := 0, 255
		for _, c := range counts {
			most, least = max(most, int(c)), min(least, int(c))
		}
		assert.LessOrEqual(t, most, 2, "%s: a byte read %d times", path, most)
		if strings.HasSuffix(path, ".safetensors") {
			// To a new repository: checked once, sent once, every byte.
			st, err := os.Stat(path)
			require.NoError(t, err)
			assert.Equal(t, st.Size(), int64(len(counts)), path)
			if !assert.Equal(t, 2, least, "%s: every byte read by the check and by the upload", path) {
				for i, c := range counts {
					if int(c) == least {
						t.Logf("first byte read %d times: %d of %d", least, i, len(counts))
						break
					}
				}
			}
		}
	}
	assert.GreaterOrEqual(t, weights, 6, "the staged weights (main and fp16 of three models) were traced")
	assert.Greater(t, stagedFiles, weights, "configs and tokenizers were traced too")

	// Every source file: opened at most twice.
	n := 0
	err = filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		n++
		assert.LessOrEqual(t, opens[p], 2, "%s opened %d times", p, opens[p])
		if strings.HasSuffix(p, ".safetensors") {
			assert.Equal(t, 2, opens[p], "%s: its header, then one handle for the save and the check", p)
		}
		return nil
	})
	require.NoError(t, err)
	assert.Greater(t, n, 10)
}

// onePassChild is the traced publish.
func onePassChild(t *testing.T) {
	srv := startHub(t)
	o := options(t, srv, os.Getenv("MODELPUB_ONEPASS_SRC"), "alice/onepass", nil)
	o.CacheDir = os.Getenv("MODELPUB_ONEPASS_CACHE")
	o.Variant, o.MaxShardSize, o.KeepStaging = "fp16", 4<<20, true
	res, err := publish.Run(context.Background(), o)
	require.NoError(t, err)
	require.False(t, res.AsIs)
}

var (
	straceLine = regexp.MustCompile(`^(\d+) +(\w+)\((.*)\) += (-?\d+|\?)`)
	openPath   = regexp.MustCompile(`^(?:AT_FDCWD, )?"((?:[^"\\]|\\.)*)"`)
	preadArgs  = regexp.MustCompile(`, (\d+), (\d+)$`)
	offPair    = regexp.MustCompile(`\[(\d+)(?: => \d+)?\]`)
)

// readTrace follows descriptors through an strace -f log and returns, for
// each path keep accepts, how many times each byte was read (read, pread,
// sendfile, copy_file_range as source) and how many times it was opened.
func readTrace(t *testing.T, path string, keep func(string) bool) (map[string][]uint8, map[string]int) {
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	type fdState struct {
		path string
		pos  int64
	}
	fds := map[int]*fdState{}
	reads := map[string][]uint8{}
	opens := map[string]int{}
	pending := map[string]string{} // pid → the first half of an unfinished call
	count := func(p string, off, n int64) {
		if n <= 0 {
			return
		}
		c := reads[p]
		if int64(len(c)) < off+n {
			c = append(c, make([]uint8, off+n-int64(len(c)))...)
			reads[p] = c
		}
		for i := off; i < off+n; i++ {
			if c[i] < 255 {
				c[i]++
			}
		}
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := sc.Text()
		pid, rest, _ := strings.Cut(line, " ")
		if i := strings.Index(rest, " <unfinished ...>"); i >= 0 {
			pending[pid] = line[:len(pid)+1+i]
			// A descriptor is free once close has started: another thread's
			// open may get its number before this close's end is logged.
			if c := strings.TrimSpace(rest[:i]); strings.HasPrefix(c, "close(") {
				if n, err := strconv.Atoi(strings.TrimPrefix(c, "close(")); err == nil {
					delete(fds, n)
				}
			}
			continue
		}
		resumed := strings.Contains(rest, "resumed>")
		if resumed {
			head, ok := pending[pid]
			if !ok {
				continue
			}
			delete(pending, pid)
			_, tail, _ := strings.Cut(rest, "resumed>")
			line = head + strings.TrimPrefix(tail, " ")
		}
		m := straceLine.FindStringSubmatch(line)
		if m == nil || m[4] == "?" {
			continue
		}
		call, args := m[2], m[3]
		ret, _ := strconv.ParseInt(m[4], 10, 64)
		fdArg := func(i int) int {
			parts := strings.SplitN(args, ", ", i+2)
			if len(parts) <= i {
				return -1
			}
			n, err := strconv.Atoi(strings.TrimSpace(parts[i]))
			if err != nil {
				return -1
			}
			return n
		}
		switch call {
		case "open", "openat":
			if ret < 0 {
				continue
			}
			om := openPath.FindStringSubmatch(args)
			if om == nil || !keep(om[1]) {
				delete(fds, int(ret))
				continue
			}
			fds[int(ret)] = &fdState{path: om[1]}
			opens[om[1]]++
		case "close":
			if !resumed { // a resumed close was applied when it started
				delete(fds, fdArg(0))
			}
		case "dup", "dup2", "dup3":
			if s := fds[fdArg(0)]; s != nil && ret >= 0 {
				fds[int(ret)] = &fdState{path: s.path, pos: s.pos}
			}
		case "lseek":
			if s := fds[fdArg(0)]; s != nil && ret >= 0 {
				s.pos = ret
			}
		case "read", "readv":
			if s := fds[fdArg(0)]; s != nil && ret > 0 {
				count(s.path, s.pos, ret)
				s.pos += ret
			}
		case "pread64", "preadv", "preadv2":
			if s := fds[fdArg(0)]; s != nil && ret > 0 {
				pm := preadArgs.FindStringSubmatch(args)
				require.NotNil(t, pm, "cannot read the offset of %q", line)
				off, _ := strconv.ParseInt(pm[2], 10, 64)
				count(s.path, off, ret)
			}
		case "sendfile": // sendfile(out, in, [off], n)
			if s := fds[fdArg(1)]; s != nil && ret > 0 {
				if om := offPair.FindStringSubmatch(args); om != nil {
					off, _ := strconv.ParseInt(om[1], 10, 64)
					count(s.path, off, ret)
				} else {
					count(s.path, s.pos, ret)
					s.pos += ret
				}
			}
		case "copy_file_range", "splice": // (in, [off_in], out, …)
			if s := fds[fdArg(0)]; s != nil && ret > 0 {
				if om := offPair.FindStringSubmatch(args); om != nil {
					off, _ := strconv.ParseInt(om[1], 10, 64)
					count(s.path, off, ret)
				} else {
					count(s.path, s.pos, ret)
					s.pos += ret
				}
			}
		}
	}
	require.NoError(t, sc.Err())
	return reads, opens
}
