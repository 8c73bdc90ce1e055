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

	"modelpub/core/convert/converttest"
	"modelpub/core/pipeline/pipelinetest"
	"modelpub/core/tensors"
)

// convertCheckpoint: "modelpub convert" of a full-size SD 1.5 single-file
// checkpoint in F16 (the real key names and shapes, 1.07 billion
// parameters, 2.1 GB: the size of v1-5-pruned-emaonly-fp16.safetensors),
// against cp of the file, at equal durability as for files (tmpfs, and the
// disk against "cp && sync"); with and without the byte-for-byte
// verification, which reads the output and the checkpoint again.
func (b *bench) convertCheckpoint() {
	src := filepath.Join(b.dir, "sd15-ldm-fp16.safetensors")
	ensureSD15Checkpoint(src)
	check(exec.Command("cat", src).Run()) // every contender reads from the page cache

	type contender struct{ args []string }
	cp := contender{[]string{"cp", src, "{out}/copy.safetensors"}}
	cpSync := contender{[]string{"sh", "-c", `cp "$0" "$1" && sync "$1"`, src, "{out}/copy.safetensors"}}
	conv := contender{[]string{b.bin, "convert", src, "{out}/sd15", "--no-verify"}}
	convVerify := contender{[]string{b.bin, "convert", src, "{out}/sd15"}}
	run := func(out string, cs ...contender) ([]time.Duration, []int64) {
		times := make([][]time.Duration, len(cs))
		rss := make([]int64, len(cs))
		for range b.runs {
			for i, c := range cs {
				a := slices.Clone(c.args)
				for k := range a {
					a[k] = strings.ReplaceAll(a[k], "{out}", out)
				}
				d, r := b.timeCmd(out, a[0], a[1:]...)
				times[i] = append(times[i], d)
				rss[i] = max(rss[i], r)
			}
		}
		med := make([]time.Duration, len(cs))
		for i := range cs {
			med[i] = median(times[i])
		}
		check(os.RemoveAll(out))
		return med, rss
	}

	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		t, rss := run(filepath.Join("/dev/shm", "modelpub-bench-out"), cp, conv, convVerify)
		b.add("tmpfs: cp of the 2.1 GB SD 1.5 checkpoint (reference)", fmtDur(t[0]), "", "", "", true)
		b.add("tmpfs: convert to a Diffusers folder", fmtDur(t[1]), "cp "+fmtDur(t[0]), ratio(t[1], t[0]), "≤ 1.20×", t[1].Seconds() <= 1.2*t[0].Seconds())
		b.add("tmpfs: convert, verified byte for byte (info)", fmtDur(t[2]), "cp "+fmtDur(t[0]), ratio(t[2], t[0]), "(info)", true)
		b.add("peak RSS: convert / verified", fmtKB(rss[1])+" / "+fmtKB(rss[2]), "cp "+fmtKB(rss[0]), "", "≤ 200 MB", max(rss[1], rss[2]) <= 200_000)
	}
	t, rss := run(filepath.Join(b.dir, "out"), cpSync, conv, convVerify)
	b.add("disk: cp && sync of the checkpoint (reference)", fmtDur(t[0]), "", "", "", true)
	b.add("disk: convert, fsynced", fmtDur(t[1]), "cp+sync "+fmtDur(t[0]), ratio(t[1], t[0]), "≤ 1.20×", t[1].Seconds() <= 1.2*t[0].Seconds())
	b.add("disk: convert, fsynced, verified (info)", fmtDur(t[2]), "cp+sync "+fmtDur(t[0]), ratio(t[2], t[0]), "(info)", true)
	b.add("peak RSS: convert on disk / verified", fmtKB(rss[1])+" / "+fmtKB(rss[2]), "", "", "≤ 200 MB", max(rss[1], rss[2]) <= 200_000)
}

// ensureSD15Checkpoint writes (once) an original-layout SD 1.5 checkpoint
// at full size in F16: every key of converttest's mapping table with the
// real shape, values streamed from weightSource and converted, so memory
// stays flat.
func ensureSD15Checkpoint(path string) {
	if _, err := tensors.ReadHeaderFile(path); err == nil {
		return
	}
	fmt.Fprintf(os.Stderr, "generating %s (SD 1.5, original layout, F16)…\n", path)
	specs := map[string]map[string]pipelinetest.Spec{}
	for _, c := range []string{pipelinetest.UNet, pipelinetest.VAE, pipelinetest.TextEncoder} {
		specs[c] = map[string]pipelinetest.Spec{}
		for _, s := range pipelinetest.SD15TensorSpecs(c, 1) {
			specs[c][s.Name] = s
		}
	}
	var ws []tensors.WriteTensor
	for i, r := range converttest.SD15Mapping() {
		if r.Component == "-" {
			ids := converttest.Int(r.LDM, tensors.I64, []int64{1, 77})
			ws = append(ws, tensors.WriteTensor{Name: r.LDM, DType: ids.DType, Shape: ids.Shape, Data: tensors.Bytes(ids.Data)})
			continue
		}
		shape := slices.Clone(specs[r.Component][r.Diffusers].Shape)
		if r.Reshape {
			shape = append(shape, 1, 1)
		}
		n := int64(1)
		for _, d := range shape {
			n *= d
		}
		data, err := tensors.Convert(&weightSource{n: 4 * n, seed: int64(i)}, tensors.F32, tensors.F16)
		check(err)
		ws = append(ws, tensors.WriteTensor{Name: r.LDM, DType: tensors.F16, Shape: shape, Data: data})
	}
	check(os.MkdirAll(filepath.Dir(path), 0o755))
	_, err := tensors.WriteFile(context.Background(), path, ws, nil, tensors.WriteOptions{})
	check(err)
}
