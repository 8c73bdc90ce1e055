package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"modelpub/core/pipeline"
)

// pipelines: save, save with an fp16 variant, validate and inspect the
// full-size synthetic SD-1.5 pipeline (about 4.27 GB of F32), against cp -r
// of the same folder; peak RSS of each.
//
// As for single files, save fsyncs what it writes and cp -r does not, so the
// comparison is made on tmpfs (nothing reaches a disk) and, on disk, against
// "cp -r && sync"; validate writes nothing and is compared with cp -r on
// tmpfs, where cp -r costs only its reads and writes to memory.
func (b *bench) pipelines() {
	src := b.fullSD15()

	// inspect, in process: opening reads headers only.
	var times []time.Duration
	for range max(b.runs, 5) {
		st := time.Now()
		_, err := pipeline.Open(context.Background(), src)
		check(err)
		times = append(times, time.Since(st))
	}
	ms := float64(median(times).Microseconds()) / 1000
	b.add("open/inspect the 4.27 GB SD-1.5 folder", fmt.Sprintf("%.2f ms", ms), "50 ms target", fmt.Sprintf("%.2f×", ms/50), "≤ 1.00×", ms <= 50)

	type contender struct {
		name string
		args []string
	}
	sub := func(args []string, out string) []string {
		a := slices.Clone(args)
		for i := range a {
			a[i] = strings.ReplaceAll(a[i], "{out}", out)
		}
		return a
	}
	cp := contender{"cp -r", []string{"cp", "-r", src, "{out}/copy"}}
	save := contender{"save", []string{b.bin, "save", src, "{out}/saved", "--max-shard-size", "2GB", "--no-validate"}}
	saveFP16 := contender{"save --variant fp16", []string{b.bin, "save", src, "{out}/saved", "--variant", "fp16", "--no-validate"}}
	run := func(out string, cs ...contender) ([]time.Duration, []int64) {
		times := make([][]time.Duration, len(cs))
		rss := make([]int64, len(cs))
		for range b.runs {
			for i, c := range cs {
				a := sub(c.args, out)
				d, r := b.timeCmd(out, a[0], a[1:]...)
				times[i] = append(times[i], d)
				rss[i] = max(rss[i], r)
			}
		}
		med := make([]time.Duration, len(cs))
		for i := range cs {
			med[i] = median(times[i])
		}
		return med, rss
	}

	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		out := filepath.Join("/dev/shm", "modelpub-bench-out")
		t, rss := run(out, cp, save, saveFP16)
		b.add("tmpfs: cp -r of the folder (reference)", fmtDur(t[0]), "", "", "", true)
		b.add("tmpfs: save, 2 GB shards", fmtDur(t[1]), "cp -r "+fmtDur(t[0]), ratio(t[1], t[0]), "≤ 1.20×", t[1].Seconds() <= 1.2*t[0].Seconds())
		b.add("tmpfs: save --variant fp16", fmtDur(t[2]), "cp -r "+fmtDur(t[0]), ratio(t[2], t[0]), "≤ 1.70×", t[2].Seconds() <= 1.7*t[0].Seconds())
		b.add("peak RSS: save / save --variant fp16", fmtKB(rss[1])+" / "+fmtKB(rss[2]), "", "", "≤ 200 MB", max(rss[1], rss[2]) <= 200_000)

		// validate the fp16 save against the source; the saved folder stays
		// in tmpfs, so validate reads only memory, like cp -r above.
		saved := filepath.Join(out, "saved")
		check(os.RemoveAll(out))
		check(os.MkdirAll(out, 0o755))
		a := sub(saveFP16.args, out)
		check(exec.Command(a[0], a[1:]...).Run())
		var vt []time.Duration
		var vrss int64
		for range b.runs {
			d, r := b.timeCmd("", b.bin, "validate", saved, "--against", src)
			vt = append(vt, d)
			vrss = max(vrss, r)
		}
		v := median(vt)
		b.add("validate --against (fp16 save)", fmtDur(v), "cp -r "+fmtDur(t[0]), ratio(v, t[0]), "≤ 1.00×", v <= t[0])
		b.add("peak RSS: validate", fmtKB(vrss), "", "", "≤ 200 MB", vrss <= 200_000)
		check(os.RemoveAll(out))
	}

	cpSync := contender{"cp -r && sync", []string{"sh", "-c", `cp -r "$0" "$1" && sync`, src, "{out}/copy"}}
	t, _ := run(filepath.Join(b.dir, "out"), cpSync, save, saveFP16)
	check(os.RemoveAll(filepath.Join(b.dir, "out")))
	b.add("disk: cp -r && sync (reference)", fmtDur(t[0]), "", "", "", true)
	b.add("disk: save, 2 GB shards, fsynced", fmtDur(t[1]), "cp+sync "+fmtDur(t[0]), ratio(t[1], t[0]), "≤ 1.20×", t[1].Seconds() <= 1.2*t[0].Seconds())
	b.add("disk: save --variant fp16, fsynced", fmtDur(t[2]), "cp+sync "+fmtDur(t[0]), ratio(t[2], t[0]), "≤ 1.70×", t[2].Seconds() <= 1.7*t[0].Seconds())
}
