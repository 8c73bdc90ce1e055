// Command bench measures Modelpub's speed and memory targets and prints each
// as a ratio to a reference measured in the same run ("make bench").
//
// It generates its inputs (a folder holding 4 GB of safetensors, a 2 GB F32
// file, the full-size synthetic SD-1.5 pipeline, a 2.1 GB SD 1.5 single-file
// checkpoint) under -dir, keeps them there for the next run, and runs the modelpub
// binary under GNU time to read peak memory.
package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"modelpub/core/tensors"
)

func main() {
	bin := flag.String("bin", "bin/modelpub", "the modelpub binary to measure")
	dir := flag.String("dir", "", "folder for the generated inputs (default: a folder under the system temp dir, kept between runs)")
	runs := flag.Int("runs", 5, "timed runs per measurement; the median is reported")
	only := flag.String("only", "", "run only these groups, comma-separated: kernel, listing, files, pipelines, hub, publish, convert, xet")
	flag.Parse()
	if *dir == "" {
		*dir = filepath.Join(os.TempDir(), "modelpub-bench")
	}
	abs, err := filepath.Abs(*bin)
	check(err)
	*bin = abs
	check(os.MkdirAll(*dir, 0o755))
	// The user cache of this process and of what it runs (hash caches,
	// Xet shard caches, stagings) is the bench's own, empty at the start:
	// nothing from the user's uploads, or from an earlier bench, is
	// deduplicated against.
	userCache := filepath.Join(*dir, "user-cache")
	check(os.RemoveAll(userCache))
	check(os.Setenv("XDG_CACHE_HOME", userCache))
	b := &bench{bin: *bin, dir: *dir, runs: *runs}
	b.table = append(b.table, row{"measurement", "value", "reference", "ratio", "target", "ok"})
	groups := []struct {
		name string
		run  func()
	}{{"kernel", b.kernel}, {"listing", b.listing}, {"files", b.reshardAndConvert}, {"pipelines", b.pipelines}, {"hub", b.hub}, {"publish", b.publishOnePass}, {"convert", b.convertCheckpoint}, {"xet", b.xetBench}}
	for _, g := range groups {
		if *only == "" || slices.Contains(strings.Split(*only, ","), g.name) {
			g.run()
		}
	}
	b.print()
}

type row [6]string

type bench struct {
	bin, dir string
	runs     int
	table    []row
	failed   bool
}

func (b *bench) add(name, value, ref, ratio, target string, ok bool) {
	mark := "yes"
	if !ok {
		mark, b.failed = "NO", true
	}
	b.table = append(b.table, row{name, value, ref, ratio, target, mark})
}

func (b *bench) print() {
	widths := make([]int, len(row{}))
	for _, r := range b.table {
		for i, c := range r {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	for i, r := range b.table {
		var line strings.Builder
		for j, c := range r {
			line.WriteString(c)
			line.WriteString(strings.Repeat(" ", widths[j]-len([]rune(c))+2))
		}
		fmt.Println(strings.TrimRight(line.String(), " "))
		if i == 0 {
			fmt.Println(strings.Repeat("-", line.Len()))
		}
	}
	if b.failed {
		fmt.Println("\nsome targets were missed")
	}
}

// kernel: the F32→F16 conversion kernel on one core, against copy().
func (b *bench) kernel() {
	const n = 16 << 20
	src := make([]byte, n)
	fillWeights(src, 1)
	dst := make([]byte, n/2)
	cp := make([]byte, n)
	conv := testing.Benchmark(func(tb *testing.B) {
		tb.SetBytes(n)
		for tb.Loop() {
			tensors.ConvertF32ToF16(dst, src)
		}
	})
	cpy := testing.Benchmark(func(tb *testing.B) {
		tb.SetBytes(n)
		for tb.Loop() {
			copy(cp, src)
		}
	})
	gbs := func(r testing.BenchmarkResult) float64 {
		return float64(r.Bytes) * float64(r.N) / r.T.Seconds() / 1e9
	}
	c, k := gbs(conv), gbs(cpy)
	b.add("F32→F16 kernel, 1 core", fmt.Sprintf("%.2f GB/s", c), "4 GB/s target", fmt.Sprintf("%.2f×", c/4),
		"≥ 1.00×", c >= 4)
	b.add("  vs copy() of the buffer", fmt.Sprintf("%.2f GB/s", c), fmt.Sprintf("%.2f GB/s", k),
		fmt.Sprintf("%.2f×", c/k), "(info)", true)
	b.add("  vs PyTorch 1.13 .half()", fmt.Sprintf("%.2f GB/s", c), "1.76 GB/s (measured once)",
		fmt.Sprintf("%.2f×", c/1.76), "(info)", true)
}

// listing: list every tensor of a folder holding 4 GB of safetensors.
func (b *bench) listing() {
	folder := filepath.Join(b.dir, "folder-4GB")
	var files []string
	for i := range 4 {
		p := filepath.Join(folder, fmt.Sprintf("part%d.safetensors", i))
		ensureModel(p, 1_000_000_000, 400, int64(i+2))
		files = append(files, p)
	}
	var times []time.Duration
	var read int64
	var count int
	for range max(b.runs, 5) {
		st := time.Now()
		read, count = 0, 0
		for _, p := range files {
			h, err := tensors.ReadHeaderFile(p)
			check(err)
			read += h.DataStart
			count += len(h.Tensors)
		}
		times = append(times, time.Since(st))
	}
	d := median(times)
	ms := float64(d.Microseconds()) / 1000
	b.add(fmt.Sprintf("list %d tensors in 4 GB (%s read)", count, tensors.FormatSize(read)),
		fmt.Sprintf("%.2f ms", ms), "20 ms target", fmt.Sprintf("%.2f×", ms/20), "≤ 1.00×", ms <= 20)
}

// reshardAndConvert: a 2 GB F32 file into 500 MB shards, and into an F16
// file, against cp of the same file; peak RSS of both.
//
// Modelpub fsyncs every file before giving it its final name; cp does not,
// and leaves 2 GB of dirty pages for later. So the comparison is made twice,
// each time with equal durability: on tmpfs (/dev/shm), where nothing goes
// to disk and the copy engines alone are compared, and on the source's disk
// against "cp && sync". Plain cp on the disk is printed for information.
func (b *bench) reshardAndConvert() {
	src := filepath.Join(b.dir, "model-2GB.safetensors")
	ensureModel(src, 2_000_000_000, 300, 42)
	check(exec.Command("cat", src).Run()) // every contender reads from the page cache

	type contender struct {
		name string
		args []string // {out} is replaced by the output folder
	}
	cp := contender{"cp", []string{"cp", src, "{out}/copy.safetensors"}}
	cpSync := contender{"cp && sync", []string{"sh", "-c", `cp "$0" "$1" && sync "$1"`, src, "{out}/copy.safetensors"}}
	reshard := contender{"reshard", []string{b.bin, "shard", src, "{out}", "--max-shard-size", "500MB"}}
	convert := contender{"convert", []string{b.bin, "shard", src, "{out}", "--dtype", "f16"}}

	type result struct {
		time time.Duration
		rss  int64
	}
	// run interleaves the contenders, so drifts in disk speed hit all alike.
	run := func(out string, cs ...contender) []result {
		times := make([][]time.Duration, len(cs))
		res := make([]result, len(cs))
		for range b.runs {
			for i, c := range cs {
				args := slices.Clone(c.args)
				for k := range args {
					args[k] = strings.ReplaceAll(args[k], "{out}", out)
				}
				d, rss := b.timeCmd(out, args[0], args[1:]...)
				times[i] = append(times[i], d)
				res[i].rss = max(res[i].rss, rss)
			}
		}
		for i := range cs {
			res[i].time = median(times[i])
		}
		check(os.RemoveAll(out))
		return res
	}

	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		r := run(filepath.Join("/dev/shm", "modelpub-bench-out"), cp, reshard, convert)
		b.add("tmpfs: cp of the 2 GB file (reference)", fmtDur(r[0].time), "", "", "", true)
		b.add("tmpfs: reshard into 500 MB shards", fmtDur(r[1].time), "cp "+fmtDur(r[0].time), ratio(r[1].time, r[0].time),
			"≤ 1.20×", r[1].time.Seconds() <= 1.2*r[0].time.Seconds())
		b.add("tmpfs: convert F32 → F16", fmtDur(r[2].time), "cp "+fmtDur(r[0].time), ratio(r[2].time, r[0].time),
			"≤ 1.00×", r[2].time <= r[0].time)
	}

	r := run(filepath.Join(b.dir, "out"), cp, cpSync, reshard, convert)
	b.add("disk: cp && sync (reference)", fmtDur(r[1].time), "", "", "", true)
	b.add("disk: reshard into 500 MB shards, fsynced", fmtDur(r[2].time), "cp+sync "+fmtDur(r[1].time), ratio(r[2].time, r[1].time),
		"≤ 1.20×", r[2].time.Seconds() <= 1.2*r[1].time.Seconds())
	b.add("disk: convert F32 → F16, fsynced", fmtDur(r[3].time), "cp+sync "+fmtDur(r[1].time), ratio(r[3].time, r[1].time),
		"≤ 1.00×", r[3].time <= r[1].time)
	b.add("disk: plain cp, not synced (info)", fmtDur(r[0].time), "", "", "", true)
	b.add("  reshard vs plain cp (info)", fmtDur(r[2].time), "cp "+fmtDur(r[0].time), ratio(r[2].time, r[0].time), "(info)", true)
	b.add("  convert vs plain cp (info)", fmtDur(r[3].time), "cp "+fmtDur(r[0].time), ratio(r[3].time, r[0].time), "(info)", true)
	b.add("peak RSS: reshard", fmtKB(r[2].rss), "cp "+fmtKB(r[0].rss), "", "≤ 200 MB", r[2].rss <= 200_000)
	b.add("peak RSS: convert", fmtKB(r[3].rss), "cp "+fmtKB(r[0].rss), "", "≤ 200 MB", r[3].rss <= 200_000)
}

var maxRSS = regexp.MustCompile(`Maximum resident set size \(kbytes\): (\d+)`)

// timeCmd runs a command b.runs times under GNU time, with an empty output
// folder each time, and returns the median wall time and the largest peak
// RSS in kB.
func (b *bench) timeCmd(out string, name string, args ...string) (time.Duration, int64) {
	var times []time.Duration
	var rss int64
	for range b.runs {
		if out != "" {
			check(os.RemoveAll(out))
			check(os.MkdirAll(out, 0o755))
		}
		check(exec.Command("sync").Run()) // no one pays for another's dirty pages
		var stderr bytes.Buffer
		cmd := exec.Command("/usr/bin/time", append([]string{"-v", name}, args...)...)
		cmd.Stderr = &stderr
		cmd.Stdout = io.Discard
		cmd.Env = append(os.Environ(), "LANG=en_US.UTF-8")
		st := time.Now()
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "%s %v: %v\n%s", name, args, err, stderr.String())
			os.Exit(1)
		}
		times = append(times, time.Since(st))
		if m := maxRSS.FindSubmatch(stderr.Bytes()); m != nil {
			kb, _ := strconv.ParseInt(string(m[1]), 10, 64)
			rss = max(rss, kb)
		}
	}
	return median(times), rss
}

// ensureModel writes (once) a safetensors file of about size bytes of F32
// tensors: a few large ones and many small ones, like a real UNet.
func ensureModel(path string, size int64, count int, seed int64) {
	if st, err := os.Stat(path); err == nil && st.Size() >= size {
		if _, err := tensors.ReadHeaderFile(path); err == nil {
			return
		}
	}
	check(os.MkdirAll(filepath.Dir(path), 0o755))
	fmt.Fprintf(os.Stderr, "generating %s (%s)…\n", path, tensors.FormatSize(size))
	// Sizes: 10% of the tensors share 80% of the bytes.
	nBig := max(1, count/10)
	bigElems := size * 8 / 10 / 4 / int64(nBig)
	smallElems := size * 2 / 10 / 4 / int64(count-nBig)
	var ws []tensors.WriteTensor
	for i := range count {
		n := smallElems
		if i%10 == 0 {
			n = bigElems
		}
		ws = append(ws, tensors.WriteTensor{
			Name: fmt.Sprintf("blocks.%d.weight", i), DType: tensors.F32, Shape: []int64{n},
			Data: &weightSource{n: n * 4, seed: seed*1000 + int64(i)},
		})
	}
	_, err := tensors.WriteFile(context.Background(), path, ws, nil, tensors.WriteOptions{})
	check(err)
}

// weightSource generates n bytes of F32 values distributed roughly like
// trained weights (mean 0, standard deviation 0.02).
type weightSource struct {
	n    int64
	seed int64
}

func (s *weightSource) Size() int64 { return s.n }

func (s *weightSource) CopyTo(ctx context.Context, w io.Writer) error {
	buf := make([]byte, 1<<20)
	for left := s.n; left > 0; {
		k := min(left, int64(len(buf)))
		fillWeights(buf[:k], uint64(s.seed)+uint64(left))
		if _, err := w.Write(buf[:k]); err != nil {
			return err
		}
		left -= k
	}
	return nil
}

// fillWeights fills b with little-endian F32 values, approximately normal
// with σ = 0.02 (a sum of uniform draws), from a xorshift generator.
func fillWeights(b []byte, seed uint64) {
	x := seed*0x9E3779B97F4A7C15 | 1
	for i := 0; i+4 <= len(b); i += 4 {
		var sum float64
		for range 4 {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			sum += float64(x>>11) / (1 << 53)
		}
		v := float32((sum - 2) * 0.02 * math.Sqrt(3))
		binary.LittleEndian.PutUint32(b[i:], math.Float32bits(v))
	}
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func ratio(a, b time.Duration) string { return fmt.Sprintf("%.2f×", a.Seconds()/b.Seconds()) }

func fmtDur(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

func fmtKB(kb int64) string { return fmt.Sprintf("%.1f MB", float64(kb)/1000) }

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
