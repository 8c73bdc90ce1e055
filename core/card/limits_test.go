package card

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"go.yaml.in/yaml/v3"
	"modelpub/internal/costtest"
)

// keysCard is a README.md whose metadata has n keys "k0000000: 1" after
// license: mit: 11 bytes and two YAML nodes a key.
func keysCard(n int) []byte {
	var b strings.Builder
	b.WriteString("---\nlicense: mit\n")
	for i := range n {
		fmt.Fprintf(&b, "k%06d: 1\n", i)
	}
	b.WriteString("---\n\n# A model\n")
	return []byte(b.String())
}

// TestParseRefusesHugeMetadata: a block over the limits is refused before
// go-yaml builds its tree, with a *YAMLError naming the block's first line
// that matches both ErrInvalidYAML and ErrMetadataTooLarge.
func TestParseRefusesHugeMetadata(t *testing.T) {
	if raceEnabled {
		t.Skip("megabytes of YAML: minutes under -race")
	}
	tests := []struct {
		name string
		data []byte
		msg  string
	}{
		{"a million keys (11 MB)", keysCard(1_000_000), "the metadata block is over the Hub's limit of 10485760 bytes"},
		{"40,000 keys (440 KB)", keysCard(40_000), "YAML values, over the 100000 Modelpub reads"},
		{"a flow list of 60,000 values", []byte("---\nx: [" + strings.Repeat("1,", 60_000) + "1]\n---\n"), "YAML values"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			_, err := Parse(tt.data)
			assert.Less(t, time.Since(start), 2*time.Second, "refused without parsing")
			require.ErrorIs(t, err, ErrMetadataTooLarge)
			require.ErrorIs(t, err, ErrInvalidYAML)
			var ye *YAMLError
			require.ErrorAs(t, err, &ye)
			assert.Equal(t, 2, ye.Line)
			assert.Contains(t, err.Error(), tt.msg)
		})
	}
	c, err := Parse(keysCard(30_000))
	require.NoError(t, err, "30,000 keys are under the limits")
	assert.Len(t, c.Keys(), 30_001)

	// A card grown past the limits in memory cannot be written.
	big := New()
	values := map[string]int{}
	for i := range 40_000 {
		values[fmt.Sprintf("k%06d", i)] = i
	}
	require.NoError(t, big.Set("values", values))
	_, err = big.Bytes()
	require.ErrorIs(t, err, ErrMetadataTooLarge)
}

// countNodes counts the nodes of every document go-yaml decodes from text,
// as parseYAML's decoder builds them (aliases not followed).
func countNodes(text string) int {
	dec := yaml.NewDecoder(strings.NewReader(text))
	n := 0
	var count func(*yaml.Node)
	count = func(x *yaml.Node) {
		if x == nil {
			return
		}
		n++
		for _, c := range x.Content {
			count(c)
		}
	}
	for {
		var doc yaml.Node
		if err := dec.Decode(&doc); err != nil {
			return n
		}
		count(&doc)
	}
}

// TestNodeBoundIsAnUpperBound checks nodeBound on the shapes that make the
// most nodes of the fewest bytes, and that it stays close for usual YAML.
func TestNodeBoundIsAnUpperBound(t *testing.T) {
	tests := []struct {
		text  string
		tight float64 // the bound is at most this many times the nodes (0: unchecked)
	}{
		{"license: mit\ntags:\n- a\n- b\n", 2},
		{"k000001: 1\nk000002: 2\nk000003: 3\nk000004: 4\n", 1.6},
		{"- type: accuracy\n  value: 79.2\n- type: ap\n  value: 43.2\n", 1.6},
		{"a:\nb:\nc:\n", 0},
		{"x:\n-\n-\n-\n- \n-\t\n", 0},
		{"{a, b, c}\n", 0},
		{"x: {a, b: , ? c, d: [e, , f]}\n", 0},
		{"[1,1,1,1,1,[],{},[[[]]]]\n", 0},
		{`{"a":"b","c":"d","e":[1,2,{"f":null}]}` + "\n", 0},
		{"- - - - - a\n- - - -\n", 0},
		{"? a\n? b\n: c\n? - x\n  - y\n: {}\n", 0},
		{"a: &x [1, 2]\nb: *x\nc: [*x, *x,*x]\n", 0},
		{": a\n: b\n", 0},
		{"a: !!str\nb: &y\nc: !!map {}\n", 0},
		{"a: |\n  text: with - indicators, [and] {flow}\nb: >-\n  more\n", 0},
		{"a: 'x: y, z' # c: d\nb: \"[q]\"\n", 0},
		{"a: 1\n---\nb: [2, 3]\n", 0},
		{"a:\n  b:\n    c:\n      d: [x]\n", 0},
	}
	for _, tt := range tests {
		nodes, bound := countNodes(tt.text), nodeBound(tt.text)
		assert.GreaterOrEqual(t, bound, nodes, "%q", tt.text)
		if tt.tight > 0 {
			assert.LessOrEqual(t, float64(bound), tt.tight*float64(nodes)+2, "%q: bound %d for %d nodes", tt.text, bound, nodes)
		}
	}
}

// TestMergeLeavesItsInputsAlone: a merged card shares the parsed nodes of
// its inputs (a deep copy of a big card would cost a tree each time), so
// no edit of the merge may reach them.
func TestMergeLeavesItsInputsAlone(t *testing.T) {
	remote := parseFixture(t, "dreambooth-lora.md")
	before := string(mustBytes(t, remote))
	keys := remote.Keys()
	local := New()
	local.SetMetadata(Metadata{License: "apache-2.0", Tags: []string{"diffusers", "lora"}})
	require.NoError(t, local.Set("extra", map[string]any{"a": []int{1, 2}}))
	localBefore := string(mustBytes(t, local))

	got := Merge(remote, local, true)
	got.Delete("widget")
	require.NoError(t, got.Set("instance_prompt", "changed"))
	require.NoError(t, got.Set("base_model", []string{"x/y", "z/w"}))
	m := got.Metadata()
	m.Tags = append(m.Tags[1:], "new")
	got.SetMetadata(m)
	got.Delete("tags")
	_, err := got.Bytes()
	require.NoError(t, err)
	again := Merge(got, local, false)
	again.Delete("license")

	assert.Equal(t, before, string(mustBytes(t, remote)), "remote unchanged")
	assert.Equal(t, keys, remote.Keys())
	assert.Equal(t, localBefore, string(mustBytes(t, local)), "local unchanged")
	_, err = got.Bytes()
	require.NoError(t, err)
	assert.NotContains(t, string(mustBytes(t, got)), "widget")
}

// TestAliasBombAcrossKeys: an anchor of a million nodes named by many keys
// is expanded within one budget for the whole merge, not one per key.
func TestAliasBombAcrossKeys(t *testing.T) {
	var b strings.Builder
	b.WriteString("---\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 7; i++ {
		fmt.Fprintf(&b, "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	for i := range 500 {
		fmt.Fprintf(&b, "k%d: *a6\n", i)
	}
	b.WriteString("---\n")
	local, err := Parse([]byte(b.String()))
	require.NoError(t, err)
	start := time.Now()
	got := Merge(New(), local, true)
	assert.Less(t, time.Since(start), 5*time.Second)
	n := 0
	var count func(*yaml.Node)
	count = func(x *yaml.Node) {
		n++
		for _, c := range x.Content {
			count(c)
		}
	}
	count(got.doc)
	assert.LessOrEqual(t, n, maxExpanded+2*(7+500)+10, "expanded nodes are bounded for the whole merge")
	_, err = got.Bytes()
	require.NoError(t, err)
}

// TestCardLinearTime parses, merges, checks and writes cards of n and 4n
// keys, and of n and 4n tags: linear work takes 4 to 6 times as long, a
// quadratic step 16 times.
func TestCardLinearTime(t *testing.T) {
	if raceEnabled || testing.Short() {
		t.Skip("timing; slow under -race")
	}
	flow := func(data []byte, tags []string) {
		own, err := Parse(data)
		require.NoError(t, err)
		gen := New()
		gen.SetMetadata(Metadata{LibraryName: "diffusers", Tags: tags})
		c := Merge(own, gen, true)
		m := c.Metadata()
		m.Tags = append(m.Tags, "one-more")
		c.SetMetadata(m)
		c.Validate()
		c.Warnings()
		_, err = c.Bytes()
		require.NoError(t, err)
	}
	for _, tt := range []struct {
		what string
		n    int
		run  func(n int)
	}{
		{"keys", 2000, func(n int) { flow(keysCard(n), []string{"a"}) }},
		{"tags", 2000, func(n int) {
			tags := make([]string, n)
			for i := range tags {
				tags[i] = fmt.Sprintf("tag-%d", i)
			}
			own := New()
			own.SetMetadata(Metadata{Tags: tags})
			data, err := own.Bytes()
			require.NoError(t, err)
			flow(data, tags[n/2:])
		}},
	} {
		small := costtest.CPUTime(t, func() { tt.run(tt.n) })
		large := costtest.CPUTime(t, func() { tt.run(4 * tt.n) })
		t.Logf("%s: %d %v, %d %v (%.1fx)", tt.what, tt.n, small, 4*tt.n, large, float64(large)/float64(small))
		assert.Less(t, large, 8*small+10*time.Millisecond, "%s: 4 times as many take %.1f times as long", tt.what, float64(large)/float64(small))
	}
}

// TestHugeCardMemory reads, in a process of its own, an 11 MB README.md of
// a million keys (refused; it took 2.6 GB before) and one of 30,000 keys
// just under the limits (parsed, merged, checked and written): each peak
// RSS stays under 8 times the file plus 100 MB.
func TestHugeCardMemory(t *testing.T) {
	if path := costtest.ChildInput(); path != "" {
		hugeCardChild(t, path)
		return
	}
	if raceEnabled || testing.Short() {
		t.Skip("memory is not measurable under -race")
	}
	costtest.PeakRSS(t) // skip where there is no /proc
	for _, n := range []int{1_000_000, 30_000} {
		path := filepath.Join(t.TempDir(), "README.md")
		data := keysCard(n)
		require.NoError(t, os.WriteFile(path, data, 0o644))
		rss := costtest.ChildPeakRSS(t, path)
		t.Logf("%d keys, %d KB: peak RSS %d MB", n, len(data)>>10, rss>>20)
		assert.LessOrEqual(t, rss, 8*int64(len(data))+100<<20, "%d keys", n)
	}
}

func hugeCardChild(t *testing.T, path string) {
	f, err := os.Open(path)
	require.NoError(t, err)
	data, err := io.ReadAll(f)
	f.Close()
	require.NoError(t, err)
	own, err := Parse(data)
	if errors.Is(err, ErrMetadataTooLarge) {
		costtest.ReportPeakRSS(t)
		return
	}
	require.NoError(t, err)
	gen := New()
	gen.SetMetadata(Metadata{LibraryName: "diffusers", Tags: []string{"diffusers", "safetensors"}})
	c := Merge(own, gen, true)
	require.Empty(t, c.Validate())
	c.Warnings()
	_, err = c.Bytes()
	require.NoError(t, err)
	costtest.ReportPeakRSS(t)
}
