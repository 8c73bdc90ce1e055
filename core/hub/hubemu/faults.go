package hubemu

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
)

// FaultKind is one kind of injected failure.
type FaultKind string

// The fault kinds. Every kind but FaultLost strikes before the handler
// runs, so the repo state is untouched; FaultLost runs the handler to the
// end (a commit is applied atomically) and then drops the connection, so a
// client sees a network error for a request that succeeded.
const (
	Fault500  FaultKind = "500"  // 500 Internal Server Error with the Hub's error envelope
	Fault503  FaultKind = "503"  // 503 Service Unavailable
	Fault429  FaultKind = "429"  // 429 Too Many Requests with Retry-After: 1
	FaultDrop FaultKind = "drop" // connection closed before any response
	FaultSlow FaultKind = "slow" // the request is served after FaultSpec.SlowDelay
	FaultLost FaultKind = "lost" // the request is served, then the response is lost
)

// AllFaultKinds lists every kind, the default when a spec names none.
var AllFaultKinds = []FaultKind{Fault500, Fault503, Fault429, FaultDrop, FaultSlow, FaultLost}

// Endpoint classes, the unit of FaultSpec.Endpoints and Request.Class.
const (
	ClassWhoami      = "whoami"
	ClassCreate      = "create"
	ClassDelete      = "delete"
	ClassInfo        = "info"
	ClassPreupload   = "preupload"
	ClassLFSBatch    = "lfs-batch"
	ClassLFSUpload   = "lfs-upload"   // basic PUT and multipart part PUTs
	ClassLFSComplete = "lfs-complete" // multipart completion POST
	ClassLFSVerify   = "lfs-verify"
	ClassCommit      = "commit"
	ClassTree        = "tree" // tree listing and paths-info
	ClassResolve     = "resolve"
	ClassBranch      = "branch" // branch create/delete, refs, commits, settings
	ClassValidate    = "validate-yaml"
	ClassXetToken    = "xet-token" // xet-write-token and xet-read-token
	ClassXet         = "xet"       // the Xet CAS under /v1/ and /v2/ (xorbs, shards, reconstructions, fetches)
	ClassOther       = "other"
)

// AllClasses lists every endpoint class.
var AllClasses = []string{ClassWhoami, ClassCreate, ClassDelete, ClassInfo, ClassPreupload, ClassLFSBatch,
	ClassLFSUpload, ClassLFSComplete, ClassLFSVerify, ClassCommit, ClassTree, ClassResolve, ClassBranch, ClassValidate, ClassXetToken, ClassXet, ClassOther}

// FaultSpec says which requests fail and how. The zero value injects
// nothing. Decisions are a pure function of (Seed, class, method, path,
// how many times that method and path were seen before), so the same
// sequence of requests meets the same faults whatever the interleaving
// of unrelated requests.
type FaultSpec struct {
	Seed      int64         // seeds every decision
	Rate      float64       // fraction of eligible requests that fail, 0..1
	First     int           // the first First requests of each eligible method and path fail (kinds in turn), whatever Rate
	Kinds     []FaultKind   // kinds drawn uniformly; empty = AllFaultKinds
	Endpoints []string      // classes eligible; empty = all
	SlowDelay time.Duration // delay of FaultSlow; 0 = 300ms
}

// ParseFaults parses "seed=3,rate=0.1,kinds=500+503+429+drop+slow+lost,
// endpoints=lfs-upload+commit,slow=500ms,first=2". rate also takes a
// percentage ("10%"); kinds and endpoints take "all". The empty string is
// no faults.
func ParseFaults(spec string) (FaultSpec, error) {
	var f FaultSpec
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return f, nil
	}
	for _, kv := range strings.Split(spec, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return f, fmt.Errorf("faults: %q is not key=value", kv)
		}
		switch k {
		case "seed":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return f, fmt.Errorf("faults: seed %q is not an integer", v)
			}
			f.Seed = n
		case "rate":
			pct := strings.HasSuffix(v, "%")
			r, err := strconv.ParseFloat(strings.TrimSuffix(v, "%"), 64)
			if pct {
				r /= 100
			}
			if err != nil || math.IsNaN(r) || r < 0 || r > 1 {
				return f, fmt.Errorf("faults: rate %q must be between 0 and 1 (or 0%% and 100%%)", v)
			}
			f.Rate = r
		case "kinds":
			f.Kinds = nil
			for _, s := range strings.Split(v, "+") {
				if s == "all" {
					f.Kinds = append(f.Kinds, AllFaultKinds...)
					continue
				}
				kind, ok := parseKind(s)
				if !ok {
					return f, fmt.Errorf("faults: unknown kind %q (use 500, 503, 429, drop, slow, lost)", s)
				}
				f.Kinds = append(f.Kinds, kind)
			}
		case "endpoints":
			f.Endpoints = nil
			for _, s := range strings.Split(v, "+") {
				if s == "all" {
					f.Endpoints = nil
					break
				}
				if !knownClass(s) {
					return f, fmt.Errorf("faults: unknown endpoint %q (use %s)", s, strings.Join(AllClasses, ", "))
				}
				f.Endpoints = append(f.Endpoints, s)
			}
		case "first":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 1000 {
				return f, fmt.Errorf("faults: first %q must be a count from 0 to 1000", v)
			}
			f.First = n
		case "slow":
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 || d > time.Minute {
				return f, fmt.Errorf("faults: slow %q must be a duration up to 1m, e.g. 500ms", v)
			}
			f.SlowDelay = d
		default:
			return f, fmt.Errorf("faults: unknown key %q (use seed, rate, first, kinds, endpoints, slow)", k)
		}
	}
	return f, nil
}

// String formats f so that ParseFaults reads it back.
func (f FaultSpec) String() string {
	if f.Rate == 0 && f.First == 0 {
		return ""
	}
	parts := []string{"seed=" + strconv.FormatInt(f.Seed, 10), "rate=" + strconv.FormatFloat(f.Rate, 'g', -1, 64)}
	if f.First > 0 {
		parts = append(parts, "first="+strconv.Itoa(f.First))
	}
	if len(f.Kinds) > 0 {
		ks := make([]string, len(f.Kinds))
		for i, k := range f.Kinds {
			ks[i] = string(k)
		}
		parts = append(parts, "kinds="+strings.Join(ks, "+"))
	}
	if len(f.Endpoints) > 0 {
		parts = append(parts, "endpoints="+strings.Join(f.Endpoints, "+"))
	}
	if f.SlowDelay > 0 {
		parts = append(parts, "slow="+f.SlowDelay.String())
	}
	return strings.Join(parts, ",")
}

func parseKind(s string) (FaultKind, bool) {
	for _, k := range AllFaultKinds {
		if string(k) == s {
			return k, true
		}
	}
	return "", false
}

func knownClass(s string) bool {
	for _, c := range AllClasses {
		if c == s {
			return true
		}
	}
	return false
}

// faulter draws the faults of one server.
type faulter struct {
	spec FaultSpec
	mu   sync.Mutex
	seen map[string]int // method+path → requests seen so far
}

func newFaulter(spec FaultSpec) *faulter {
	if len(spec.Kinds) == 0 {
		spec.Kinds = AllFaultKinds
	}
	if spec.SlowDelay == 0 {
		spec.SlowDelay = 300 * time.Millisecond
	}
	return &faulter{spec: spec, seen: map[string]int{}}
}

// pick returns the fault for this request, or "" for none.
func (f *faulter) pick(class, method, path string) FaultKind {
	if f.spec.Rate <= 0 && f.spec.First <= 0 {
		return ""
	}
	if len(f.spec.Endpoints) > 0 {
		eligible := false
		for _, c := range f.spec.Endpoints {
			eligible = eligible || c == class
		}
		if !eligible {
			return ""
		}
	}
	key := method + " " + path
	f.mu.Lock()
	n := f.seen[key]
	f.seen[key] = n + 1
	f.mu.Unlock()
	if n < f.spec.First {
		return f.spec.Kinds[n%len(f.spec.Kinds)]
	}
	if f.spec.Rate <= 0 {
		return ""
	}

	var seed [8]byte
	binary.LittleEndian.PutUint64(seed[:], uint64(f.spec.Seed))
	h := sha256.New()
	h.Write(seed[:])
	fmt.Fprintf(h, "\x00%s\x00%d", key, n)
	sum := h.Sum(nil)
	u := float64(binary.LittleEndian.Uint64(sum[:8])>>11) / (1 << 53)
	if u >= f.spec.Rate {
		return ""
	}
	return f.spec.Kinds[binary.LittleEndian.Uint64(sum[8:16])%uint64(len(f.spec.Kinds))]
}
